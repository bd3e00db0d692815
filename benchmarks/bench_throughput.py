"""Requests per CPU second of the gate's lean load engine against plain Locust and a bare loop,
side by side on one CPU over the same seconds (issue 15).

    python benchmarks/bench_throughput.py [--users 10] [--seconds 6] [--rounds 2] [--scaling]

Each round runs, every pair started together and pinned to the same CPU:
  gate | locust          the gate (run_load(), the declarative scenario ``GET /`` on its lean
                         path, one local load process) beside plain ``locust --headless`` with
                         the equivalent FastHttpUser locustfile;  goal >= 1.6
  gate+report | locust   the same with ``--gate-report`` (Locust's statistics kept for its
                         HTML report);                              goal >= 1.5
  gate | bare            the gate beside benchmarks/bare_loop.py: a gevent loop of
                         geventhttpclient requests, same concurrency, nothing else; goal >= 0.8
  locust | locust        two plain Locust processes: the method's own error (the control,
                         which should be within 2% of 1.00)
and with ``--scaling`` also the gate alone on that CPU and with two worker processes on every
CPU (``gate x2 / gate``). Prints each round, then the median and the spread of each ratio.

The unit is requests per CPU second: each side's requests over the same seconds of wall-clock
time divided by the CPU seconds (user + system) its process used in those seconds (psutil, 10
samples a second, interpolated), i.e. the inverse of its CPU cost per request. Two CPU-bound
processes on one CPU also get equal halves of it, so the ratio of their requests/s says nearly
the same; it is printed beside (``rps``). Why side by side: on a shared (virtual) machine a load
generator's requests/s moves by 10-25% from one run to the next for reasons that have nothing
to do with it; two processes on one CPU meet the same slowdowns at the same moments.

The other side starts first and is counting (its request counter sampled 20 times a second into
a file: a greenlet of the locustfile, nothing per request) and has spawned its users before the
gate starts; it is stopped only once its samples pass the end of the gate's measured window
(after a 2 s warm-up), so a slow start of either side on a busy machine cannot leave the window
uncovered. The gate's figures are its own measured window.

The server is nginx when installed (one worker, fixed 10-byte answers), on a CPU of its own
when there are two or more: far faster than a Python load process, so the ratios compare load
generators. On the 2-core benchmark box nginx shares a CPU with the two-worker run, which caps
``gate x2``: with 3 busy processes on 2 cores it cannot reach twice ``gate``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from _common import (
    CountedProcess,
    CpuClock,
    cpu_plan,
    pinned,
    plain_server,
    rate_between,
    value_at,
)

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

# Appends '<time> <requests so far>' to $STAGEGATE_BENCH_COUNTS 20 times a second from the
# test start (Locust's own counter, runner.stats.total.num_requests), flushed each time so the
# benchmark reads it while Locust runs. Nothing runs per request.
SAMPLER = textwrap.dedent(
    """
    import os, time
    import gevent
    from locust import events

    @events.test_start.add_listener
    def _start_sampling(environment, **_):
        def sample():
            with open(os.environ["STAGEGATE_BENCH_COUNTS"], "a") as out:
                while True:
                    out.write(f"{time.time():.6f} {environment.runner.stats.total.num_requests}\\n")
                    out.flush()
                    gevent.sleep(0.05)
        gevent.spawn(sample)
    """
)
WARMUP = 2.0  # seconds of each side-by-side run left out: start-up, spawning
SPAWNED = 1.5  # seconds after the other side's first sample before the gate starts
LONG = 600  # the other side's own time limit: it is stopped when no longer needed


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
    plan: LoadPlan | None = None,
) -> LoadResult:
    result = run_load(plan or gate_plan(url, users, seconds, warmup, report), workers=workers)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    if result.total.failures:
        raise SystemExit(f"the gate's requests failed: {result.top_error('total')}")
    return result


def gate_rps(url: str, users: int, seconds: float, workers: int) -> float:
    result = run_gate(url, users, seconds, workers)
    return result.total.requests / result.measured_seconds


def plain_locust(
    url: str, users: int, prefix: Path, locustfile: str = LOCUSTFILE
) -> CountedProcess:
    """Plain ``locust --headless`` on ``url``, counting into ``<prefix>.counts``."""
    path = prefix.with_suffix(".py")
    path.write_text(locustfile + SAMPLER)
    counts = prefix.with_suffix(".counts")
    argv = [
        sys.executable, "-m", "locust", "-f", str(path), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{LONG}s", "-H", url,
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    return CountedProcess(argv, counts, {"STAGEGATE_BENCH_COUNTS": str(counts)})


def bare_loop(url: str, users: int, prefix: Path) -> CountedProcess:
    counts = prefix.with_suffix(".counts")
    script = Path(__file__).with_name("bare_loop.py")
    argv = [sys.executable, str(script), url, "--users", str(users), "--seconds", str(LONG)]
    return CountedProcess([*argv, "--counts", str(counts)], counts)


@dataclass
class Pair:
    """Two sides over the same seconds: requests/s and requests per CPU second of each."""

    rps: tuple[float, float]
    per_cpu: tuple[float, float]

    @property
    def ratio(self) -> float:
        return self.per_cpu[0] / self.per_cpu[1]

    @property
    def rps_ratio(self) -> float:
        return self.rps[0] / self.rps[1]


def per_cpu(
    clock: CpuClock, pid: int, requests: float, start: float, end: float, what: str
) -> float:
    series = clock.cpu(pid)
    cpu = value_at(series, end, f"{what}'s CPU") - value_at(series, start, f"{what}'s CPU")
    if cpu <= 0:
        raise SystemExit(f"{what} used no CPU between {start:.2f} and {end:.2f}")
    return requests / cpu


def gate_beside(
    other: CountedProcess,
    what: str,
    url: str,
    users: int,
    seconds: float,
    clock: CpuClock,
    report: Path | None = None,
    plan: LoadPlan | None = None,
) -> tuple[Pair, LoadResult]:
    """The gate beside ``other`` (already started): the gate's figures over its measured
    window against ``other``'s over the same seconds."""
    try:
        other.wait_counting()
        time.sleep(SPAWNED)
        before = set(clock.load_children())
        gate = run_gate(url, users, seconds + WARMUP, 0, WARMUP, report, plan)
        start = datetime.fromisoformat(gate.started_at).timestamp() + gate.warmup_seconds
        end = start + gate.measured_seconds
        samples = other.stop_after(end + 0.3)
    finally:
        other.stop()
    children = [p for p in clock.load_children() if p not in before]
    if len(children) != 1:
        raise SystemExit(f"expected one gate load process, found {len(children)}")
    n_gate = gate.total.requests
    n_other = rate_between(samples, start, end, what) * (end - start)
    pair = Pair(
        rps=(n_gate / (end - start), n_other / (end - start)),
        per_cpu=(
            per_cpu(clock, children[0], n_gate, start, end, "the gate"),
            per_cpu(clock, other.pid, n_other, start, end, what),
        ),
    )
    return pair, gate


def locust_beside_locust(url: str, users: int, seconds: float, tmp: Path, clock: CpuClock) -> Pair:
    one = plain_locust(url, users, tmp / "one")
    two = plain_locust(url, users, tmp / "two")
    try:
        first = max(one.wait_counting(), two.wait_counting())
        start = first + SPAWNED + WARMUP
        time.sleep(max(0.0, start + seconds - time.time()))
        end = start + seconds
        a, b = one.stop_after(end + 0.3), two.stop_after(end + 0.3)
    finally:
        one.stop()
        two.stop()
    n = [rate_between(s, start, end, "plain Locust") * (end - start) for s in (a, b)]
    return Pair(
        rps=(n[0] / seconds, n[1] / seconds),
        per_cpu=(
            per_cpu(clock, one.pid, n[0], start, end, "plain Locust"),
            per_cpu(clock, two.pid, n[1], start, end, "plain Locust"),
        ),
    )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (rounds {min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scaling", action="store_true", help="also the gate alone and with two workers"
    )
    args = parser.parse_args()
    users, seconds = args.users, args.seconds
    names = ["gate | locust", "gate+report | locust", "gate | bare", "locust | locust"]
    pairs: dict[str, list[Pair]] = {name: [] for name in names}
    alone: list[float] = []
    workers: list[float] = []
    server_cpus, load_cpus = cpu_plan()
    started = time.monotonic()
    with (
        plain_server(server_cpus) as (url, server),
        tempfile.TemporaryDirectory() as tmp_dir,
        CpuClock() as clock,
    ):
        tmp = Path(tmp_dir)
        print(f"server: {server}; {users} users (greenlets) per side, {seconds:g} s measured")
        if os.environ.get("STAGEGATE_LOAD_PATH", "").strip().lower() == "locust":
            print("the gate runs on Locust's path (STAGEGATE_LOAD_PATH=locust), not the lean one")
        if server_cpus:
            print(f"server on CPU {server_cpus}, both sides of each pair on CPU {load_cpus}")
        else:
            print("CPUs: not pinned (one CPU, or no affinity control)")
        for i in range(args.rounds):
            with pinned(load_cpus):
                locust = plain_locust(url, users, tmp / "beside")
                pairs["gate | locust"].append(
                    gate_beside(locust, "plain Locust", url, users, seconds, clock)[0]
                )
                locust = plain_locust(url, users, tmp / "beside")
                pairs["gate+report | locust"].append(
                    gate_beside(
                        locust, "plain Locust", url, users, seconds, clock, tmp / "report.html"
                    )[0]
                )
                bare = bare_loop(url, users, tmp / "bare")
                pairs["gate | bare"].append(
                    gate_beside(bare, "the bare loop", url, users, seconds, clock)[0]
                )
                pairs["locust | locust"].append(
                    locust_beside_locust(url, users, seconds, tmp, clock)
                )
                if args.scaling:
                    alone.append(gate_rps(url, users, seconds, workers=0))
            if args.scaling:
                workers.append(gate_rps(url, users, seconds, workers=2))
            print(
                f"round {i + 1}: per CPU second (requests/s side by side) "
                + ", ".join(
                    f"{name} {pairs[name][-1].ratio:.3f} ({pairs[name][-1].rps_ratio:.3f})"
                    for name in names
                )
                + (f"; gate alone {alone[-1]:,.0f}/s, x2 {workers[-1]:,.0f}/s" if alone else "")
            )
    ratios = {name: [p.ratio for p in pairs[name]] for name in names}
    rps = {name: [p.rps_ratio for p in pairs[name]] for name in names}
    goals = {
        "gate | locust": ("lean gate / plain Locust FastHttpUser", 1.6),
        "gate+report | locust": ("  the same with --gate-report", 1.5),
        "gate | bare": ("lean gate / bare geventhttpclient loop", 0.8),
    }
    print("requests per CPU second, median of the rounds:")
    for name, (label, goal) in goals.items():
        met = "met" if statistics.median(ratios[name]) >= goal else "NOT met"
        print(
            f"  {label:<40} {spread(ratios[name])}  goal >= {goal:g}: {met}; "
            f"requests/s side by side {statistics.median(rps[name]):.3f}"
        )
    control = statistics.median(ratios["locust | locust"])
    print(
        f"  {'control: plain Locust / plain Locust':<40} {spread(ratios['locust | locust'])}  "
        f"within 2% of 1: {'yes' if abs(control - 1) <= 0.02 else 'NO'}; "
        f"requests/s side by side {statistics.median(rps['locust | locust']):.3f}"
    )
    each = {
        "lean gate": statistics.median([p.per_cpu[0] for p in pairs["gate | locust"]]),
        "plain Locust": statistics.median([p.per_cpu[1] for p in pairs["gate | locust"]]),
        "bare loop": statistics.median([p.per_cpu[1] for p in pairs["gate | bare"]]),
    }
    print(
        "  absolute, requests per CPU second: "
        + ", ".join(f"{name} {value:,.0f}" for name, value in each.items())
    )
    if alone:
        print(
            f"gate alone {statistics.median(alone):,.0f} requests/s; two workers / one: "
            f"{statistics.median(workers) / statistics.median(alone):.3f} "
            f"({statistics.median(workers):,.0f} requests/s)"
        )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
