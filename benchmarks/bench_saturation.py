"""Where the load generator's own queueing starts to show in the latency, and whether the
saturation rule (load/usage.py: ``saturation_cpu``, 90% of one core, or the event loop late)
calls it there, on the lean path and on Locust's path (issue 15, item 4).

    python benchmarks/bench_saturation.py [--paths lean locust] [--rates ...] [--users ...]
                                          [--seconds 4] [--quick]

Against nginx (one worker, on a CPU of its own; the load process on the other), one load
process (``run_load()``, the declarative scenario ``GET /``) at each point of two sweeps:

  open     ``rate`` iterations/s (the gate's default users: half a second of the rate, at most
           200): the latency runs from each iteration's due time, the service time from the
           send, so their difference is the generator's own lateness; dropped iterations are
           the ones it could not start within 0.5 s;
  closed   N users, each waiting 0.1 s between its requests (~10 requests/s a user while the
           generator keeps up), and N users with no wait (the generator at full speed: every
           request waits for the others' CPU, so it is always busy).

Each point prints the requests/s, the load process's CPU (mean and max over its 0.5 s samples,
% of one core), the event loop's lag (max), the latency p50/p95 (open: also the service time's
p50/p95), the dropped iterations and the verdict's "saturated" or not. nginx answers in tens
of microseconds whatever the rate here, so latency above the lightest point's is the load
generator's. "inflated" marks a point whose p95 is more than twice the lightest point's and 1 ms
above it (open: the latency's p95 more than twice the service time's p95 and 1 ms above it).

``STAGEGATE_LOAD_PATH=locust`` in the load process's environment selects Locust's path.
Default runtime ~100 s (``--quick``: a few points, ~40 s). The machine's other work shows in
every figure: on a busy machine a load process gets less than a core, its CPU % stays lower
and its loop lag higher than on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psutil
from _common import cpu_plan, pinned, plain_server

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult

WARMUP = 1.0
OPEN_USERS_PER_RATE = 0.5  # the gate's default: half a second of the rate...
OPEN_MAX_USERS = 200  # ...at most


@contextlib.contextmanager
def load_path(path: str) -> Iterator[None]:
    """The load child's path: ``lean`` (the default) or ``locust`` (STAGEGATE_LOAD_PATH)."""
    before = os.environ.get("STAGEGATE_LOAD_PATH")
    if path == "locust":
        os.environ["STAGEGATE_LOAD_PATH"] = "locust"
    else:
        os.environ.pop("STAGEGATE_LOAD_PATH", None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("STAGEGATE_LOAD_PATH", None)
        else:
            os.environ["STAGEGATE_LOAD_PATH"] = before


class RunQueue:
    """The load child's time on a CPU and waiting for one (Linux /proc/PID/schedstat, its main
    thread), sampled 10 times a second: ``share(start, end)`` is (on CPU, waiting) as fractions
    of the wall-clock time between two epoch times. A process that waits for a CPU it cannot
    get is as stuck as one that uses all of it; psutil's CPU % shows only the first."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        pid = None
        while not self._stop.wait(0.1):
            if pid is None:
                for proc in me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "pytest_stagegate.load.child" in " ".join(proc.cmdline()):
                            pid = proc.pid
                continue
            try:
                with open(f"/proc/{pid}/schedstat") as f:
                    run_ns, wait_ns, _ = (int(x) for x in f.read().split())
            except (OSError, ValueError):
                return
            self.samples.append((time.time(), run_ns / 1e9, wait_ns / 1e9))

    def share(self, start: float, end: float) -> tuple[float, float] | None:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        (t0, r0, w0), (t1, r1, w1) = inside[0], inside[-1]
        return (r1 - r0) / (t1 - t0), (w1 - w0) / (t1 - t0)

    def __enter__(self) -> RunQueue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Point:
    path: str
    label: str
    rate: float | None  # asked (open model)
    rps: float
    cpu_mean: float
    cpu_max: float
    hot: str  # samples at or above the threshold / samples
    lag_max: float
    p50: float
    p95: float
    service_p50: float | None
    service_p95: float | None
    dropped: int
    due: int
    saturated: bool
    note: str
    on_cpu: float | None = None  # schedstat: share of the measured window on a CPU
    waiting: float | None = None  # ... and runnable, waiting for one
    inflated: bool = False

    def line(self) -> str:
        service = (
            f"service p50/p95 {self.service_p50:6.2f}/{self.service_p95:7.2f} ms  "
            if self.service_p50 is not None and self.service_p95 is not None
            else ""
        )
        asked = f" ({self.rps / self.rate:.3f} of asked)" if self.rate else ""
        dropped = f"dropped {self.dropped:,}/{self.due:,}  " if self.due else ""
        return (
            f"{self.path:<6} {self.label:<16} {self.rps:7,.0f} req/s{asked:<17} "
            f"CPU mean {self.cpu_mean:3.0f}% max {self.cpu_max:3.0f}% (hot {self.hot:>5})  "
            + (
                f"on CPU {self.on_cpu:4.0%} + waiting {self.waiting:4.0%}  "
                if self.on_cpu is not None and self.waiting is not None
                else ""
            )
            + f"lag max {self.lag_max:5.0f} ms  p50/p95 {self.p50:6.2f}/{self.p95:7.2f} ms  "
            f"{service}{dropped}"
            f"{'SATURATED' if self.saturated else 'kept up'}"
            f"{'  inflated' if self.inflated else ''}"
        )


def measure(path: str, label: str, plan: LoadPlan) -> Point:
    with load_path(path), RunQueue() as runqueue:
        result: LoadResult = run_load(plan)
    if result.status != "completed":
        raise SystemExit(f"{label} on the {path} path: {result.status}: {result.reason}")
    health = result.generator
    loaders = [p for p in health.per_process if p.role != "master"]
    hot = f"{sum(p.hot_samples for p in loaders)}/{sum(p.cpu_samples for p in loaders)}"
    total = result.total
    service = total.service_histogram
    start = datetime.fromisoformat(result.started_at).timestamp() + result.warmup_seconds
    share = runqueue.share(start, start + result.measured_seconds)
    return Point(
        on_cpu=share[0] if share else None,
        waiting=share[1] if share else None,
        path=path,
        label=label,
        rate=plan.rate,
        rps=total.requests / result.measured_seconds if result.measured_seconds else 0.0,
        cpu_mean=health.cpu_mean_percent,
        cpu_max=health.cpu_max_percent,
        hot=hot,
        lag_max=health.loop_lag_max_ms,
        p50=total.histogram.percentile(50),
        p95=total.histogram.percentile(95),
        service_p50=service.percentile(50) if service is not None else None,
        service_p95=service.percentile(95) if service is not None else None,
        dropped=result.dropped,
        due=result.iterations_due,
        saturated=health.saturated,
        note=health.note,
    )


def open_point(url: str, path: str, rate: float, seconds: float) -> Point:
    users = min(OPEN_MAX_USERS, max(10, round(rate * OPEN_USERS_PER_RATE)))
    plan = LoadPlan(
        host=url,
        users=users,
        spawn_rate=users,
        duration=WARMUP + seconds,
        warmup=WARMUP,
        requests=[PlannedRequest("GET", "/", "GET /")],
        rate=rate,
        abort_enabled=False,
    )
    point = measure(path, f"open {rate:g}/s", plan)
    if point.service_p95 is not None:
        point.inflated = point.p95 > max(2 * point.service_p95, point.service_p95 + 1.0)
    return point


def closed_point(url: str, path: str, users: int, wait: float, seconds: float) -> Point:
    plan = LoadPlan(
        host=url,
        users=users,
        spawn_rate=max(users, 10),
        duration=WARMUP + seconds,
        warmup=WARMUP,
        requests=[PlannedRequest("GET", "/", "GET /")],
        wait=(wait, wait),
        abort_enabled=False,
    )
    label = f"closed {users}u" + (f" {wait:g}s" if wait else " no wait")
    return measure(path, label, plan)


def mark_closed(points: list[Point]) -> None:
    """Inflated: p95 more than twice the lightest paced point's and 1 ms above it."""
    paced = [p for p in points if "no wait" not in p.label]
    if not paced:
        return
    light = paced[0].p95
    for p in points:
        p.inflated = p.p95 > max(2 * light, light + 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", default=["lean", "locust"])
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[1000, 2500, 4000, 5000, 6000, 7500]
    )
    parser.add_argument("--users", type=int, nargs="+", default=[20, 200, 600])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point")
    parser.add_argument("--quick", action="store_true", help="three points per path")
    args = parser.parse_args()
    rates, users, seconds = args.rates, args.users, args.seconds
    if args.quick:
        rates, users, seconds = [1000, 5000], [], 3.0
    server_cpus, load_cpus = cpu_plan()
    started = time.monotonic()
    with plain_server(server_cpus) as (url, server), pinned(load_cpus):
        print(f"server: {server}; {WARMUP:g} s warm-up + {seconds:g} s measured per point")
        if server_cpus:
            print(f"server on CPU {server_cpus}, the load process on CPU {load_cpus}")
        for path in args.paths:
            points = [open_point(url, path, rate, seconds) for rate in rates]
            closed = [closed_point(url, path, n, 0.1, seconds) for n in users]
            closed.append(closed_point(url, path, 10, 0.0, seconds))
            mark_closed(closed)
            for point in [*points, *closed]:
                print(point.line(), flush=True)
            kept = [p for p in points if p.dropped == 0]
            if kept:
                top = max(kept, key=lambda p: p.rate or 0)
                print(
                    f"{path}: the highest rate with nothing dropped: {top.rate:g}/s, "
                    f"achieved {top.rps / (top.rate or 1):.3f} of it, CPU mean {top.cpu_mean:.0f}%"
                )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
