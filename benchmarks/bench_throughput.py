"""Requests/s of the gate's load engine against plain Locust, same server, same minute.

    python benchmarks/bench_throughput.py [--users 10] [--seconds 10] [--rounds 3]

Runs, in alternation, ``rounds`` times each:
  gate        run_load() with a declarative FastHttpUser scenario (one local process),
  locust      ``locust --headless -f <the equivalent FastHttpUser locustfile> -u N -r N -t Ns``,
  gate x2     run_load(..., workers=2): a master and two worker processes,
and prints the median requests/s of each and the ratios gate/locust (target >= 0.9: the
gate's raw-time histograms, progress and abort checks must not cost throughput; also as the
median of each round's ratio, which a slow drift of the machine does not skew) and
gate x2 / gate. With two CPUs or more, the server gets the last one and the single-process
runs (gate, locust) the first: see ``cpu_plan``.

The server is nginx when installed (one worker, fixed 10-byte answers): far faster than a
Locust process, so the ratios compare load generators. On the 2-core benchmark box nginx
shares the CPU with the load processes, which caps the two-worker figure: with 3 busy
processes on 2 cores, ``gate x2`` cannot reach twice ``gate``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import pinned, plain_server

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load

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


def gate_rps(url: str, users: int, seconds: float, workers: int) -> float:
    plan = LoadPlan(
        host=url,
        users=users,
        spawn_rate=users,
        duration=seconds,
        requests=[PlannedRequest("GET", "/", "GET /")],
    )
    result = run_load(plan, workers=workers)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    return result.total.requests / result.measured_seconds


def locust_rps(url: str, users: int, seconds: float, tmp: Path) -> float:
    locustfile = tmp / "plain_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = tmp / "plain"
    subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "-H", url,
            "--json-file", str(prefix), "--only-summary", "--loglevel", "WARNING",
        ],
        check=False,  # exits 1 when any request failed; the numbers still count
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds + 60,
    )  # fmt: skip
    entries = json.loads(Path(f"{prefix}.json").read_text())
    requests = sum(e["num_requests"] for e in entries)
    start = min(e["start_time"] for e in entries)
    end = max(e["last_request_timestamp"] for e in entries)
    return requests / (end - start)


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPUs, the single load process's CPUs): apart, when there are two or more.

    Left to the scheduler, the load process and the server now and then share a core for a
    while, and a run's requests/s moves by 10% for reasons that have nothing to do with the
    load generator. The gate and plain Locust get the same CPU; the two-worker run gets all
    of them, as it would in CI.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, {cpus[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"gate": [], "locust": [], "gate x2": []}
    server_cpus, load_cpus = cpu_plan()
    started = time.monotonic()
    with plain_server(server_cpus) as (url, server), tempfile.TemporaryDirectory() as tmp:
        where = f"server on CPU {server_cpus}, gate and locust on CPU {load_cpus}"
        print(f"server: {server}; {args.users} users, {args.seconds:g} s per run")
        print(where if server_cpus else "CPUs: not pinned (one CPU, or no affinity control)")
        for i in range(args.rounds):
            with pinned(load_cpus):
                runs["gate"].append(gate_rps(url, args.users, args.seconds, workers=0))
                runs["locust"].append(locust_rps(url, args.users, args.seconds, Path(tmp)))
            runs["gate x2"].append(gate_rps(url, args.users, args.seconds, workers=2))
            print(
                f"round {i + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in runs.items())
                + f"; gate / locust {runs['gate'][-1] / runs['locust'][-1]:.3f}"
            )
    med = {k: statistics.median(v) for k, v in runs.items()}
    paired = statistics.median(g / loc for g, loc in zip(runs["gate"], runs["locust"], strict=True))
    print("medians: " + ", ".join(f"{k} {v:,.0f} requests/s" for k, v in med.items()))
    print(f"ratio gate / plain locust:      {med['gate'] / med['locust']:.3f}  (target >= 0.9)")
    print(f"  median of the rounds' ratios: {paired:.3f}")
    print(f"ratio gate x2 workers / gate:   {med['gate x2'] / med['gate']:.3f}")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
