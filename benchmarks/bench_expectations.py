"""What an expectation and a template cost per request: the gate with them against plain Locust
(issue 15, goal >= 1.3 per CPU second) and against the gate without them (issue 12, goal
>= 0.9), side by side, in one invocation.

    python benchmarks/bench_expectations.py [--users 10] [--seconds 6] [--rounds 2] [--quick]

Every side requests ``GET /json`` (a 45-byte JSON answer) as fast as it can:

  with      the gate (``run_load()``, the declarative scenario on its lean path) checking on
            every request ``expect: {status: 200, json: {ok: true, "length(items)": 3}}`` (its
            body read and parsed, two JMESPath expressions) and carrying a template,
            ``query: {sku: "{row.sku}"}``, filled from a data file of 100 rows (one row per
            iteration, ``cycle``);
  without   the gate requesting the same URL as written (``/json?sku=S-000``), no
            expectation: a plain request, its body drained;
  locust    plain ``locust --headless`` with a FastHttpUser requesting ``/json?sku=S-000``,
            no check: the same denominator as bench_throughput.py's 1.6, so the ratio says
            what the gate's features cost against Locust doing less.

Each round runs ``with | locust`` (requests per CPU second, as bench_throughput.py measures
them: each process's CPU seconds over the same seconds of wall-clock time), ``with |
without`` and the control ``without | without`` (the method's own error: it should be 1.00).
Two gates run in two threads of this process, each load process on the same CPU, counted over
the same seconds (from each result's timeline: requests per 0.5 s from its load start, after
both have warmed up for 2 s); the order in which they start alternates between rounds. Two
CPU-bound processes on one CPU get equal halves of it, so the ratio of their requests/s is the
inverse ratio of their CPU cost per request (see bench_throughput.py for why side by side).
The control of ``with | locust`` is bench_throughput.py's ``locust | locust``.

The server is nginx when installed (one worker, on a CPU of its own when there are two or
more), otherwise benchmarks/fastserver.py; both answer ``/json`` with the same body.
``--quick``: one round of 4 s (a smoke check of the script, not a figure to publish).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from _common import CpuClock, cpu_plan, pinned, plain_server
from bench_throughput import LOCUSTFILE, gate_beside, plain_locust

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult

WARMUP = 2.0  # seconds of each run left out: start-up, spawning
ROWS = [{"sku": f"S-{i:03d}"} for i in range(100)]
PLAIN_LOCUSTFILE = LOCUSTFILE.replace(
    'get("/", name="GET /")', 'get("/json?sku=S-000", name="GET /json")'
)
assert PLAIN_LOCUSTFILE != LOCUSTFILE
EXPECT_JSON = [
    {"expr": "ok", "value": True, "present": None},
    {"expr": "length(items)", "value": 3, "present": None},
]


def plan(url: str, users: int, seconds: float, *, checked: bool) -> LoadPlan:
    if checked:
        request = PlannedRequest(
            "GET",
            "/json",
            "GET /json",
            query={"sku": "{row.sku}"},
            expect_status=[200],
            expect_json=EXPECT_JSON,
        )
        extra: dict[str, object] = {"data_file": "skus.csv", "data_rows": ROWS}
    else:
        request = PlannedRequest("GET", "/json?sku=S-000", "GET /json")
        extra = {}
    return LoadPlan(
        host=url,
        users=users,
        spawn_rate=users,
        duration=seconds + WARMUP,
        warmup=WARMUP,
        requests=[request],
        **extra,  # type: ignore[arg-type]
    )


def cumulative(result: LoadResult) -> list[tuple[float, float]]:
    """(wall-clock time, requests ended so far) at each point of the result's timeline."""
    start = datetime.fromisoformat(result.started_at).timestamp()
    samples, total = [(start, 0.0)], 0.0
    for point in result.timeline:
        total += point.requests
        samples.append((start + point.t, total))
    return samples


def requests_at(samples: list[tuple[float, float]], t: float) -> float:
    for (t0, n0), (t1, n1) in itertools.pairwise(samples):
        if t0 <= t <= t1:
            return n0 + (n1 - n0) * (t - t0) / (t1 - t0) if t1 > t0 else n0
    raise SystemExit(f"a run's timeline does not cover {t:.2f}")


def side_by_side(
    url: str, users: int, seconds: float, first: bool, second: bool, swap: bool
) -> tuple[float, float]:
    """requests/s of a gate (``first``: with checks or not) and of a gate beside it
    (``second``), counted over the seconds both ran after their warm-ups."""
    plans = [plan(url, users, seconds, checked=first), plan(url, users, seconds, checked=second)]
    results: list[LoadResult | None] = [None, None]

    def run(i: int) -> None:
        results[i] = run_load(plans[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in ((1, 0) if swap else (0, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done: list[LoadResult] = []
    for result in results:
        if result is None or result.status != "completed":
            raise SystemExit(f"a gate run failed: {result and (result.status, result.reason)}")
        if result.total.failures:
            raise SystemExit(f"a gate run had failed requests: {result.top_error('total')}")
        done.append(result)
    a, b = (cumulative(r) for r in done)
    start = max(a[0][0], b[0][0]) + WARMUP
    end = min(a[-1][0], b[-1][0])
    if end - start < seconds / 2:
        raise SystemExit(f"the two runs overlapped for {end - start:.1f} s only")
    rate = [(requests_at(s, end) - requests_at(s, start)) / (end - start) for s in (a, b)]
    return rate[0], rate[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one round of 4 s")
    args = parser.parse_args()
    users, seconds, rounds = args.users, args.seconds, args.rounds
    if args.quick:
        seconds, rounds = 4.0, 1
    runs: dict[str, list[float]] = {
        "with | locust": [],
        "with | without": [],
        "without | without": [],
    }
    server_cpus, load_cpus = cpu_plan()
    started = time.monotonic()
    with (
        plain_server(server_cpus) as (url, server),
        tempfile.TemporaryDirectory() as tmp,
        CpuClock() as clock,
    ):
        print(f"server: {server}; {users} users per gate, {seconds:g} s measured per run")
        if server_cpus:
            print(f"server on CPU {server_cpus}, both gates' load processes on CPU {load_cpus}")
        else:
            print("CPUs: not pinned (one CPU, or no affinity control)")
        for i in range(rounds):
            swap = i % 2 == 1
            with pinned(load_cpus):
                locust = plain_locust(url, users, Path(tmp, "plain"), PLAIN_LOCUSTFILE)
                checked_plan = plan(url, users, seconds, checked=True)
                pair, _ = gate_beside(
                    locust, "plain Locust", url, users, seconds, clock, plan=checked_plan
                )
                runs["with | locust"].append(pair.ratio)
                checked, plain = side_by_side(url, users, seconds, True, False, swap)
                one, two = side_by_side(url, users, seconds, False, False, swap)
            runs["with | without"].append(checked / plain)
            runs["without | without"].append(one / two)
            print(
                f"round {i + 1}: with / locust per CPU second {pair.ratio:.3f} "
                f"(requests/s {pair.rps_ratio:.3f}), "
                f"with / without {runs['with | without'][-1]:.3f} "
                f"({checked:,.0f} vs {plain:,.0f} requests/s), "
                f"without / without {runs['without | without'][-1]:.3f}"
            )
    med = {k: statistics.median(v) for k, v in runs.items()}
    goals = (
        ("with | locust", "per CPU second, goal >= 1.3"),
        ("with | without", "goal >= 0.9"),
        ("without | without", "control"),
    )
    for name, goal in goals:
        spread = runs[name]
        print(
            f"ratio {name.replace(' | ', ' / '):<18} (side by side): {med[name]:.3f}  "
            f"({goal}; rounds {min(spread):.3f}-{max(spread):.3f})"
        )
    print(
        f"with / without, corrected by the control: "
        f"{med['with | without'] / med['without | without']:.3f}"
    )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
