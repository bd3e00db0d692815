"""How busy a load process was, and the rule that calls a load generator saturated. Pure.

The load child (``load.child.monitor``) samples its own CPU (% of one core) and how late its
event loop wakes a 100 ms sleep (loop lag) into these figures; the rule lives here so that it
can be tested without Locust. A load-generating process is saturated over a span of samples when
  * at least ``HOT_MIN_SAMPLES`` CPU samples, and ``HOT_SHARE`` of them, were at or above the
    threshold (``plan.saturation_cpu``), or
  * the loop lag exceeded ``LAG_LIMIT_MS`` in at least ``LAG_MIN_SAMPLES`` samples and
    ``LAG_SHARE`` of them.
The master's own figures never count: it only aggregates.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from .result import GeneratorHealth, ProcessUsage

__all__ = [
    "HOT_MIN_SAMPLES",
    "HOT_SHARE",
    "LAG_LIMIT_MS",
    "LAG_MIN_SAMPLES",
    "LAG_SHARE",
    "RecentUsage",
    "UsageStats",
    "generator_health",
    "judge_saturation",
]

LAG_LIMIT_MS = 50.0
HOT_SHARE = 0.25
HOT_MIN_SAMPLES = 2
LAG_SHARE = 0.05
LAG_MIN_SAMPLES = 3


class UsageStats:
    """CPU and loop-lag samples summed up; ``usage(role)`` is one ``per_process`` entry."""

    __slots__ = ("cpu_max", "cpu_n", "cpu_sum", "hot", "lag_max", "lag_n", "lag_over")

    def __init__(self) -> None:
        self.cpu_n = self.hot = self.lag_n = self.lag_over = 0
        self.cpu_sum = self.cpu_max = self.lag_max = 0.0

    def add_cpu(self, percent: float, threshold: float) -> None:
        self.cpu_n += 1
        self.cpu_sum += percent
        self.cpu_max = max(self.cpu_max, percent)
        if percent >= threshold:
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
        )


class RecentUsage:
    """The samples of the last ``window`` seconds: is the generator saturated *now*?

    Times are the caller's (any monotonic clock); samples older than ``window`` before the
    latest time seen are dropped.
    """

    def __init__(self, window: float, threshold: float) -> None:
        self.window = window
        self.threshold = threshold
        self._cpu: collections.deque[tuple[float, float]] = collections.deque()
        self._lag: collections.deque[tuple[float, float]] = collections.deque()

    def add_cpu(self, now: float, percent: float) -> None:
        self._cpu.append((now, percent))
        self._prune(self._cpu, now)

    def add_lag(self, now: float, lag_ms: float) -> None:
        self._lag.append((now, lag_ms))
        self._prune(self._lag, now)

    def _prune(self, samples: collections.deque[tuple[float, float]], now: float) -> None:
        while samples and samples[0][0] < now - self.window:
            samples.popleft()

    def usage(self, role: str) -> ProcessUsage:
        stats = UsageStats()
        for _, percent in self._cpu:
            stats.add_cpu(percent, self.threshold)
        for _, lag in self._lag:
            stats.add_lag(lag)
        return stats.usage(role)


def judge_saturation(processes: Sequence[ProcessUsage], threshold: float) -> tuple[bool, str]:
    """(saturated, one-sentence note) from the processes' usage."""
    loaders = [p for p in processes if p.role != "master"]
    for p in loaders:
        n, hot = p.cpu_samples, p.hot_samples
        if hot >= HOT_MIN_SAMPLES and hot >= HOT_SHARE * n:
            return True, (
                f"The load generator was saturated: the {p.role} process was at or above "
                f"{threshold:g}% of one CPU core in {hot} of {n} samples "
                f"(max {p.cpu_max_percent:.0f}%)."
            )
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
    count = f"{len(loaders)} load process" + ("es" if len(loaders) > 1 else "")
    return False, (
        f"The load generator kept up: {count}, CPU at most {cpu_max:.0f}% of one core "
        f"(mean {cpu_mean:.0f}%), event loop at most {lag:.0f} ms late."
    )


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
