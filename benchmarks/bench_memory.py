"""The load child's memory over one long run: it must stay flat, whatever the number of requests.

    python benchmarks/bench_memory.py [--seconds 60] [--users 10] [--settle 5]

One run_load() of a declarative scenario (two requests, the lean path) at full speed against
nginx (or benchmarks/fastserver.py) for ``--seconds``; a thread samples the load child's RSS
(psutil) every 0.5 s. Prints the RSS at the first sample after ``--settle`` seconds (users
spawned, pools and histograms allocated), at the last sample, the peak, and the slope of a
least-squares line through the samples after the settling (MiB per minute), with the requests
made: flat memory is a slope near 0 and a peak within a MiB or two of the first; keeping raw
samples would add ~40 bytes per request.
"""

from __future__ import annotations

import argparse
import threading
import time

import psutil
from _common import cpu_plan, plain_server

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load

MIB = 2**20


class RSSOverTime:
    """(seconds since the load child appeared, its RSS) every ``interval`` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        child: psutil.Process | None = None
        born = 0.0
        while not self._stop.wait(self.interval):
            try:
                if child is None:
                    for proc in me.children(recursive=True):
                        if "pytest_stagegate.load.child" in " ".join(proc.cmdline()):
                            child, born = proc, time.monotonic()
                            break
                if child is not None:
                    self.samples.append((time.monotonic() - born, child.memory_info().rss))
            except psutil.Error:
                child = None if child is not None and not child.is_running() else child

    def __enter__(self) -> RSSOverTime:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before 'first'")
    args = parser.parse_args()
    started = time.monotonic()
    server_cpus, _ = cpu_plan()
    with plain_server(server_cpus) as (url, server):
        plan = LoadPlan(
            host=url,
            users=args.users,
            spawn_rate=args.users,
            duration=args.seconds,
            requests=[
                PlannedRequest("GET", "/a", "GET /a"),
                PlannedRequest("GET", "/b", "GET /b"),
            ],
        )
        print(f"server: {server}; {args.users} users, {args.seconds:g} s")
        with RSSOverTime() as rss:
            result = run_load(plan)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    # an RSS of 0: the child exiting between the look-up and the read
    settled = [(t, r / MIB) for t, r in rss.samples if t >= args.settle and r > 0]
    if len(settled) < 3:
        raise SystemExit(f"too few RSS samples after {args.settle:g} s: {len(settled)}")
    first, last = settled[0], settled[-1]
    peak = max(r for _, r in settled)
    per_minute = slope(settled) * 60
    requests = result.requests_including_warmup
    print(
        f"load child RSS: first {first[1]:.1f} MiB (at {first[0]:.1f} s), last {last[1]:.1f} MiB "
        f"(at {last[0]:.1f} s), peak {peak:.1f} MiB; slope {per_minute:+.2f} MiB/min over "
        f"{len(settled)} samples; {requests:,} requests "
        f"(raw samples at ~40 B each would be {requests * 40 / MIB:.1f} MiB)"
    )
    step = 10.0 if args.seconds > 30 else 2.0
    marks, series = args.settle, []
    for t, r in settled:
        if t >= marks:
            series.append(f"{t:.0f} s {r:.1f}")
            marks += step
    print("RSS over time (MiB): " + ", ".join(series))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
