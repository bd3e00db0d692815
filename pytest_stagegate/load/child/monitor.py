"""This process's CPU (psutil, % of one core), its time runnable but waiting for a CPU (Linux:
``/proc/self/schedstat``'s run_delay) and its event-loop lag, sampled by two greenlets into the
pure figures of ``load.usage``. Each process (local, master, every worker) samples itself."""

from __future__ import annotations

import logging
import math
import time

import gevent
import gevent.pool
import psutil

from ..result import ProcessUsage
from ..usage import RecentUsage, UsageStats, parse_schedstat, wait_percent
from .abort import RECENT_WINDOW

__all__ = ["CPU_SAMPLE_INTERVAL", "LAG_PROBE", "SCHEDSTAT", "UsageMonitor", "read_run_delay"]

CPU_SAMPLE_INTERVAL = 0.5
LAG_PROBE = 0.1  # how late gevent wakes a sleep this long is the loop lag
# this process's main thread (gevent's loop, where the load runs): ns on a CPU, ns runnable but
# waiting for one, times scheduled
SCHEDSTAT = "/proc/self/schedstat"

log = logging.getLogger("pytest_stagegate.load")


def read_run_delay(path: str = SCHEDSTAT) -> int | None:
    """ns this process has spent runnable but waiting for a CPU, or None where the kernel does
    not say (not Linux, no CONFIG_SCHED_INFO)."""
    try:
        with open(path) as f:
            parsed = parse_schedstat(f.read())
    except OSError:
        return None
    return None if parsed is None else parsed[1]


class UsageMonitor:
    """This process's CPU and event-loop lag: whole run, measured window (between
    ``window_start`` and ``window_end``, epoch seconds), and the last ``RECENT_WINDOW``
    seconds (is it saturated now?)."""

    def __init__(self, role: str, saturation_cpu: float) -> None:
        self.role = role
        self.threshold = saturation_cpu
        self.window_start = math.inf
        self.window_end = math.inf
        self.whole = UsageStats()
        self.measured = UsageStats()
        self.recent = RecentUsage(RECENT_WINDOW, saturation_cpu)

    def start(self, group: gevent.pool.Group) -> None:
        group.spawn(self._cpu_loop)
        group.spawn(self._lag_loop)

    def _targets(self) -> tuple[UsageStats, ...]:
        now = time.time()
        if self.window_start <= now < self.window_end:
            return (self.whole, self.measured)
        return (self.whole,)

    def _cpu_loop(self) -> None:
        proc = psutil.Process()
        proc.cpu_percent(None)
        waited, since = read_run_delay(), time.monotonic()
        if waited is None:
            log.info(
                "The %s process cannot read the time it waits for a CPU (%s): its saturation "
                "is judged on its CPU %% and event-loop lag only.",
                self.role,
                SCHEDSTAT,
            )
        while True:
            gevent.sleep(CPU_SAMPLE_INTERVAL)
            pct = proc.cpu_percent(None)
            wait: float | None = None
            now = time.monotonic()
            if waited is not None:
                again = read_run_delay()
                wait = None if again is None else wait_percent(waited, again, now - since)
                waited = again
            since = now
            self.recent.add_cpu(now, pct, wait)
            for s in self._targets():
                s.add_cpu(pct, self.threshold, wait)

    def _lag_loop(self) -> None:
        while True:
            t0 = time.perf_counter()
            gevent.sleep(LAG_PROBE)
            lag = max(0.0, (time.perf_counter() - t0 - LAG_PROBE) * 1000.0)
            self.recent.add_lag(time.monotonic(), lag)
            for s in self._targets():
                s.add_lag(lag)

    def snapshot(self) -> ProcessUsage:
        # the measured window is what the verdict judges; a run aborted in its warm-up has none
        stats = self.measured if self.measured.cpu_n >= 2 else self.whole
        return stats.usage(self.role)

    def recent_snapshot(self) -> ProcessUsage:
        return self.recent.usage(self.role)
