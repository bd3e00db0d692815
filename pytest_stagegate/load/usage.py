"""How busy a load process was, and the rule that calls a load generator saturated. Pure.

The load child (``load.child.monitor``) samples its own CPU (% of one core), the share of the
time it was runnable but waiting for a CPU (Linux: ``run_delay`` in ``/proc/self/schedstat``;
not measured elsewhere) and how late its event loop wakes a 100 ms sleep (loop lag) into these
figures; the rule lives here so that it can be tested without Locust. A sample's *busy* share is
its CPU plus its wait: a process starved of CPU on a shared machine queues its requests as
surely as one that uses a whole core, while psutil's CPU % shows only the time it got. A
load-generating process is saturated over a span of samples when
  * at least ``HOT_MIN_SAMPLES`` samples, and ``HOT_SHARE`` of them, were busy at or above the
    threshold (``plan.saturation_cpu``; busy is the CPU alone where the wait is not measured),
    or
  * the loop lag exceeded ``LAG_LIMIT_MS`` in at least ``LAG_MIN_SAMPLES`` samples and
    ``LAG_SHARE`` of them.
The master's own figures never count: it only aggregates.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from .result import GeneratorHealth, ProcessUsage

__all__ = [
    "HOT_MIN_SAMPLES",
    "HOT_SHARE",
    "LAG_LIMIT_MS",
    "LAG_MIN_SAMPLES",
    "LAG_SHARE",
    "WAIT_NOTE_PERCENT",
    "RecentUsage",
    "UsageStats",
    "generator_health",
    "judge_saturation",
    "parse_schedstat",
    "wait_percent",
]

LAG_LIMIT_MS = 50.0
HOT_SHARE = 0.25
HOT_MIN_SAMPLES = 2
LAG_SHARE = 0.05
LAG_MIN_SAMPLES = 3
# a saturated process that waited for a CPU this share of the time or more is said to have been
# starved (the machine shared or too small), not only busy with its own work
WAIT_NOTE_PERCENT = 10.0


def parse_schedstat(text: str) -> tuple[int, int] | None:
    """(ns on a CPU, ns runnable but waiting for one) from a ``/proc/PID/schedstat`` line
    (``sum_exec_runtime run_delay pcount``), or None when it is not that."""
    fields = text.split()
    if len(fields) < 2:
        return None
    try:
        on_cpu, waited = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return (on_cpu, waited) if on_cpu >= 0 and waited >= 0 else None


def wait_percent(waited_before_ns: int, waited_now_ns: int, wall_seconds: float) -> float | None:
    """The share of ``wall_seconds`` (in %) spent runnable but waiting for a CPU, from two
    ``run_delay`` readings; None when the interval is empty or the counter went backwards."""
    if wall_seconds <= 0 or waited_now_ns < waited_before_ns:
        return None
    return min(100.0, (waited_now_ns - waited_before_ns) / 1e9 / wall_seconds * 100.0)


class UsageStats:
    """CPU, CPU-wait and loop-lag samples summed up; ``usage(role)`` is one ``per_process``
    entry (its wait figures None when no sample had the wait measured)."""

    __slots__ = (
        "busy_max",
        "cpu_max",
        "cpu_n",
        "cpu_sum",
        "hot",
        "lag_max",
        "lag_n",
        "lag_over",
        "wait_max",
        "wait_n",
        "wait_sum",
    )

    def __init__(self) -> None:
        self.cpu_n = self.hot = self.lag_n = self.lag_over = self.wait_n = 0
        self.cpu_sum = self.cpu_max = self.lag_max = 0.0
        self.wait_sum = self.wait_max = self.busy_max = 0.0

    def add_cpu(self, percent: float, threshold: float, wait: float | None = None) -> None:
        """One sample: ``percent`` of one core on a CPU, ``wait`` % of the time runnable but
        waiting for one (None: not measured). It is hot when the two together, the time the
        process had work to do, reach ``threshold``."""
        self.cpu_n += 1
        self.cpu_sum += percent
        self.cpu_max = max(self.cpu_max, percent)
        busy = percent
        if wait is not None:
            self.wait_n += 1
            self.wait_sum += wait
            self.wait_max = max(self.wait_max, wait)
            busy += wait
        self.busy_max = max(self.busy_max, busy)
        if busy >= threshold:
            self.hot += 1

    def add_lag(self, lag_ms: float) -> None:
        self.lag_n += 1
        self.lag_max = max(self.lag_max, lag_ms)
        if lag_ms > LAG_LIMIT_MS:
            self.lag_over += 1

    def usage(self, role: str) -> ProcessUsage:
        return ProcessUsage(
            role=role,
            cpu_max_percent=round(self.cpu_max, 1),
            cpu_mean_percent=round(self.cpu_sum / self.cpu_n, 1) if self.cpu_n else 0.0,
            cpu_samples=self.cpu_n,
            hot_samples=self.hot,
            loop_lag_max_ms=round(self.lag_max, 1),
            loop_lag_samples=self.lag_n,
            loop_lag_over=self.lag_over,
            **self._wait_figures(),
        )

    def _wait_figures(self) -> dict[str, float]:
        if not self.wait_n:
            return {}
        return {
            "wait_mean_percent": round(self.wait_sum / self.wait_n, 1),
            "wait_max_percent": round(self.wait_max, 1),
            "busy_max_percent": round(self.busy_max, 1),
        }


class RecentUsage:
    """The samples of the last ``window`` seconds: is the generator saturated *now*?

    Times are the caller's (any monotonic clock); samples older than ``window`` before the
    latest time seen are dropped.
    """

    def __init__(self, window: float, threshold: float) -> None:
        self.window = window
        self.threshold = threshold
        self._cpu: collections.deque[tuple[float, float, float | None]] = collections.deque()
        self._lag: collections.deque[tuple[float, float]] = collections.deque()

    def add_cpu(self, now: float, percent: float, wait: float | None = None) -> None:
        self._cpu.append((now, percent, wait))
        self._prune(self._cpu, now)

    def add_lag(self, now: float, lag_ms: float) -> None:
        self._lag.append((now, lag_ms))
        self._prune(self._lag, now)

    def _prune(self, samples: collections.deque[Any], now: float) -> None:
        while samples and samples[0][0] < now - self.window:
            samples.popleft()

    def usage(self, role: str) -> ProcessUsage:
        stats = UsageStats()
        for _, percent, wait in self._cpu:
            stats.add_cpu(percent, self.threshold, wait)
        for _, lag in self._lag:
            stats.add_lag(lag)
        return stats.usage(role)


def judge_saturation(processes: Sequence[ProcessUsage], threshold: float) -> tuple[bool, str]:
    """(saturated, one-sentence note) from the processes' usage."""
    loaders = [p for p in processes if p.role != "master"]
    for p in loaders:
        n, hot = p.cpu_samples, p.hot_samples
        if hot >= HOT_MIN_SAMPLES and hot >= HOT_SHARE * n:
            return True, _hot_sentence(p, threshold)
        n, over = p.loop_lag_samples, p.loop_lag_over
        if over >= LAG_MIN_SAMPLES and over >= LAG_SHARE * n:
            return True, (
                f"The load generator was saturated: the {p.role} process's event loop ran "
                f"more than {LAG_LIMIT_MS:g} ms late in {over} of {n} samples "
                f"(max {p.loop_lag_max_ms:.0f} ms)."
            )
    if not loaders or all(p.cpu_samples < 2 for p in loaders):
        return False, "The load generator ran too briefly to measure its own CPU."
    cpu_max = max(p.cpu_max_percent for p in loaders)
    cpu_mean = max(p.cpu_mean_percent for p in loaders)
    lag = max(p.loop_lag_max_ms for p in loaders)
    waits = [p.wait_max_percent for p in loaders if p.wait_max_percent is not None]
    waited = f", waiting for a CPU at most {max(waits):.0f}% of the time" if waits else ""
    count = f"{len(loaders)} load process" + ("es" if len(loaders) > 1 else "")
    return False, (
        f"The load generator kept up: {count}, CPU at most {cpu_max:.0f}% of one core "
        f"(mean {cpu_mean:.0f}%){waited}, event loop at most {lag:.0f} ms late."
    )


def _hot_sentence(p: ProcessUsage, threshold: float) -> str:
    n, hot = p.cpu_samples, p.hot_samples
    if p.wait_mean_percent is None or p.busy_max_percent is None:  # CPU only (not Linux)
        return (
            f"The load generator was saturated: the {p.role} process was at or above "
            f"{threshold:g}% of one CPU core in {hot} of {n} samples "
            f"(max {p.cpu_max_percent:.0f}%)."
        )
    sentence = (
        f"The load generator was saturated: the {p.role} process was busy (on a CPU or waiting "
        f"for one) {threshold:g}% of the time or more in {hot} of {n} samples "
        f"(max {p.busy_max_percent:.0f}%, CPU at most {p.cpu_max_percent:.0f}% of one core)"
    )
    if p.wait_mean_percent >= WAIT_NOTE_PERCENT:
        sentence += (
            f"; it waited for a CPU {p.wait_mean_percent:.0f}% of the time: the machine is "
            "shared or too small"
        )
    return sentence + "."


def generator_health(processes: Sequence[ProcessUsage], threshold: float) -> GeneratorHealth:
    """The result's ``generator``: the saturation rule applied to every process, and the
    highest figures of the load-generating ones (every process when only a master reported)."""
    saturated, note = judge_saturation(processes, threshold)
    loaders = [p for p in processes if p.role != "master"] or list(processes)
    return GeneratorHealth(
        processes=len(loaders),
        saturated=saturated,
        saturation_cpu=float(threshold),
        cpu_max_percent=max((p.cpu_max_percent for p in loaders), default=0.0),
        cpu_mean_percent=max((p.cpu_mean_percent for p in loaders), default=0.0),
        loop_lag_max_ms=max((p.loop_lag_max_ms for p in loaders), default=0.0),
        note=note,
        per_process=tuple(processes),
    )
