"""Requests/s of the gate's load engine against plain Locust, same server, same seconds.

    python benchmarks/bench_throughput.py [--users 10] [--seconds 10] [--rounds 3] [--no-workers]

Each round runs:
  gate | locust   the gate (run_load(), a declarative FastHttpUser scenario, one local process)
                  and plain ``locust --headless -f <the equivalent FastHttpUser locustfile>``
                  started together, side by side on the same CPU;
  locust | locust two plain Locust processes the same way: the method's own error, which
                  should be a ratio of 1.00;
  gate            the gate alone, on that CPU;
  gate x2         run_load(..., workers=2): a master and two worker processes, on every CPU;
and prints the median of each: gate / locust (target >= 1.0, and >= 0.95 with --gate-report
(issue 11): the gate's raw-time histograms, whole-request timer, progress and abort checks must
not cost throughput), locust / locust, and gate x2 / gate.

Why side by side: on a shared (virtual) machine a load generator's requests/s moves by 10-25%
from one run to the next, for reasons that have nothing to do with it, which drowns a
difference of a few percent between two runs made one after the other. Two CPU-bound
processes on one CPU get equal halves of it from the scheduler and meet the same slowdowns at
the same moments, so the ratio of their requests/s is the inverse ratio of their CPU cost per
request, which is what a load generator's throughput is made of. Both are counted over the
same seconds of wall-clock time, when both are running at full strength: the gate's measured
window (after a 2 s warm-up), and plain Locust's own request counter read at those instants
(a greenlet of its locustfile samples ``runner.stats.total.num_requests`` 20 times a second,
nothing per request). The method's error shows in ``locust | locust``.

The server is nginx when installed (one worker, fixed 10-byte answers), on a CPU of its own
when there are two or more: far faster than a Locust process, so the ratios compare load
generators. On the 2-core benchmark box nginx shares a CPU with the two-worker run, which
caps that figure: with 3 busy processes on 2 cores, ``gate x2`` cannot reach twice ``gate``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

from _common import cpu_plan, pinned, plain_server

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult

LOCUSTFILE = textwrap.dedent(
    """
    from locust import FastHttpUser, between, task

    class Plain(FastHttpUser):
        wait_time = between(0, 0)
        network_timeout = 10.0
        connection_timeout = 10.0

        @task
        def root(self):
            self.client.get("/", name="GET /")
    """
)

# Reads Locust's own request counter 20 times a second: (time, requests so far), written at
# the stop. Nothing runs per request.
SAMPLER = textwrap.dedent(
    """
    import json, os, time
    import gevent
    from locust import events

    _samples = []

    @events.test_start.add_listener
    def _start_sampling(environment, **_):
        def sample():
            while True:
                _samples.append((time.time(), environment.runner.stats.total.num_requests))
                gevent.sleep(0.05)
        gevent.spawn(sample)

    @events.test_stop.add_listener
    def _write_samples(environment, **_):
        with open(os.environ["STAGEGATE_BENCH_COUNTS"], "w") as f:
            json.dump(_samples, f)
    """
)
WARMUP = 2.0  # seconds of each side-by-side run left out: start-up, spawning


def gate_plan(
    url: str, users: int, seconds: float, warmup: float = 0.0, report: Path | None = None
) -> LoadPlan:
    return LoadPlan(
        host=url,
        users=users,
        spawn_rate=users,
        duration=seconds,
        warmup=warmup,
        requests=[PlannedRequest("GET", "/", "GET /")],
        html_report=str(report) if report else None,
    )


def run_gate(
    url: str,
    users: int,
    seconds: float,
    workers: int,
    warmup: float = 0.0,
    report: Path | None = None,
) -> LoadResult:
    result = run_load(gate_plan(url, users, seconds, warmup, report), workers=workers)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    return result


def gate_rps(url: str, users: int, seconds: float, workers: int) -> float:
    result = run_gate(url, users, seconds, workers)
    return result.total.requests / result.measured_seconds


class Locust:
    """Plain ``locust --headless`` in a child process, its request counter sampled."""

    def __init__(self, url: str, users: int, seconds: float, prefix: Path) -> None:
        self.seconds = seconds
        self.counts = prefix.with_suffix(".counts.json")
        locustfile = prefix.with_suffix(".py")
        locustfile.write_text(LOCUSTFILE + SAMPLER)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
                "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "-H", url,
                "--only-summary", "--loglevel", "WARNING",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "STAGEGATE_BENCH_COUNTS": str(self.counts)},
            # a session of its own, like the gate's load process: with the kernel's automatic
            # scheduling groups, each session shares the CPU evenly with the others, and this
            # script's own work (reading the gate's events) comes out of neither side's half
            start_new_session=True,
        )  # fmt: skip

    def samples(self) -> list[tuple[float, int]]:
        self.proc.wait(timeout=self.seconds + 60)  # exit 1 when a request failed: still counts
        return [(float(t), int(n)) for t, n in json.loads(self.counts.read_text())]


def requests_at(samples: list[tuple[float, int]], t: float) -> float:
    """The request counter at time ``t``, interpolated between the samples around it."""
    for (t0, n0), (t1, n1) in itertools.pairwise(samples):
        if t0 <= t <= t1:
            return n0 + (n1 - n0) * (t - t0) / (t1 - t0) if t1 > t0 else float(n0)
    raise SystemExit(f"plain Locust was not running at {t:.2f} (samples cover too little)")


def rate_between(samples: list[tuple[float, int]], start: float, end: float) -> float:
    return (requests_at(samples, end) - requests_at(samples, start)) / (end - start)


def gate_beside_locust(
    url: str, users: int, seconds: float, tmp: Path, report: Path | None = None
) -> float:
    """gate / locust requests/s, both running on this process's CPUs, same seconds counted."""
    # Locust starts first and stops last: it runs at full strength all through the gate's
    # measured window (its warm-up covers its own start-up; Locust's has happened by then).
    # (a tail long enough for the gate's own start-up on the CPU it shares with Locust)
    locust = Locust(url, users, seconds + WARMUP + 10.0, tmp / "beside")
    gate = run_gate(url, users, seconds + WARMUP, workers=0, warmup=WARMUP, report=report)
    start = datetime.fromisoformat(gate.started_at).timestamp() + gate.warmup_seconds
    end = start + gate.measured_seconds
    return (gate.total.requests / gate.measured_seconds) / rate_between(
        locust.samples(), start, end
    )


def locust_beside_locust(url: str, users: int, seconds: float, tmp: Path) -> float:
    one = Locust(url, users, seconds + WARMUP + 1.0, tmp / "one")
    two = Locust(url, users, seconds + WARMUP + 1.0, tmp / "two")
    a, b = one.samples(), two.samples()
    start = max(a[0][0], b[0][0]) + WARMUP
    end = start + seconds
    return rate_between(a, start, end) / rate_between(b, start, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-workers", action="store_true", help="skip the two-worker runs (gate x2)"
    )
    args = parser.parse_args()
    users, seconds = args.users, args.seconds
    runs: dict[str, list[float]] = {
        "gate | locust": [],
        "gate with report | locust": [],
        "locust | locust": [],
        "gate": [],
    }
    if not args.no_workers:
        runs["gate x2"] = []
    server_cpus, load_cpus = cpu_plan()
    started = time.monotonic()
    with plain_server(server_cpus) as (url, server), tempfile.TemporaryDirectory() as tmp:
        print(f"server: {server}; {users} users, {seconds:g} s per run")
        if server_cpus:
            print(f"server on CPU {server_cpus}, gate and plain Locust on CPU {load_cpus}")
        else:
            print("CPUs: not pinned (one CPU, or no affinity control)")
        for i in range(args.rounds):
            with pinned(load_cpus):
                runs["gate | locust"].append(gate_beside_locust(url, users, seconds, Path(tmp)))
                runs["gate with report | locust"].append(
                    gate_beside_locust(url, users, seconds, Path(tmp), Path(tmp, "report.html"))
                )
                runs["locust | locust"].append(locust_beside_locust(url, users, seconds, Path(tmp)))
                runs["gate"].append(gate_rps(url, users, seconds, workers=0))
            if "gate x2" in runs:
                runs["gate x2"].append(gate_rps(url, users, seconds, workers=2))
            print(
                f"round {i + 1}: "
                f"gate / locust {runs['gate | locust'][-1]:.3f}, "
                f"with --gate-report {runs['gate with report | locust'][-1]:.3f}, "
                f"locust / locust {runs['locust | locust'][-1]:.3f}, "
                f"gate alone {runs['gate'][-1]:,.0f}/s"
                + (f", gate x2 {runs['gate x2'][-1]:,.0f}/s" if "gate x2" in runs else "")
            )
    med = {k: statistics.median(v) for k, v in runs.items()}
    spread = runs["gate | locust"]
    print(
        f"ratio gate / plain locust (side by side): {med['gate | locust']:.3f}  "
        f"(target >= 1.0; rounds {min(spread):.3f}-{max(spread):.3f})"
    )
    reported = runs["gate with report | locust"]
    print(
        f"  the same with --gate-report:              {med['gate with report | locust']:.3f}  "
        f"(target >= 0.95; rounds {min(reported):.3f}-{max(reported):.3f})"
    )
    print(
        f"ratio locust / locust (the method's error): {med['locust | locust']:.3f}  "
        f"(rounds {min(runs['locust | locust']):.3f}-{max(runs['locust | locust']):.3f})"
    )
    print(f"gate alone: {med['gate']:,.0f} requests/s")
    if "gate x2" in med:
        print(
            f"ratio gate x2 workers / gate alone: {med['gate x2'] / med['gate']:.3f}  "
            f"({med['gate x2']:,.0f} requests/s)"
        )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
