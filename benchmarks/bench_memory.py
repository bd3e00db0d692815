"""Peak RSS of the load child for a short and a 4x longer run: memory must not grow with time.

    python benchmarks/bench_memory.py [--short 15] [--long 60] [--users 10]

Each run is run_load() with a declarative FastHttpUser scenario at full speed against nginx
(or benchmarks/fastserver.py); a thread samples the load child's RSS with psutil every
0.2 s. Prints both peaks, the requests each run made and the ratio long/short peak (flat
memory: about 1.0; keeping raw samples would add ~40 bytes per request).
"""

from __future__ import annotations

import argparse
import threading
import time

import psutil
from _common import plain_server

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load


class PeakRSS:
    """The largest RSS seen of any load child process under this one."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                try:
                    if "pytest_stagegate.load.child" in " ".join(child.cmdline()):
                        self.peak = max(self.peak, child.memory_info().rss)
                except psutil.Error:
                    pass

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(url: str, users: int, seconds: float) -> tuple[int, int]:
    plan = LoadPlan(
        host=url,
        users=users,
        spawn_rate=users,
        duration=seconds,
        requests=[
            PlannedRequest("GET", "/a", "GET /a"),
            PlannedRequest("GET", "/b", "GET /b"),
        ],
    )
    with PeakRSS() as rss:
        result = run_load(plan)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    return rss.peak, result.requests_including_warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=float, default=15.0)
    parser.add_argument("--long", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    with plain_server() as (url, server):
        print(f"server: {server}; {args.users} users")
        short_peak, short_requests = measure(url, args.users, args.short)
        print(f"{args.short:g} s: peak RSS {short_peak / 2**20:.1f} MiB, {short_requests:,} req")
        long_peak, long_requests = measure(url, args.users, args.long)
        print(f"{args.long:g} s: peak RSS {long_peak / 2**20:.1f} MiB, {long_requests:,} req")
    extra = long_requests - short_requests
    print(
        f"ratio peak RSS {args.long:g} s / {args.short:g} s: {long_peak / short_peak:.3f} "
        f"({(long_peak - short_peak) / 2**20:+.1f} MiB for {extra:,} more requests; "
        f"raw samples at ~40 B each would be {extra * 40 / 2**20:+.1f} MiB)"
    )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
