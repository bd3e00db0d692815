"""The open model (gate.load.rate) measured: the arrival rate it keeps, and the p99 it reports
for a stalling server against the truth, with plain Locust beside it in the same invocation.

    python benchmarks/bench_arrival.py [--quick] [--rates 100 500 2000] [--seconds 8]
                                       [--stall-rate 100] [--no-locust] [--users-per-rate S]
    python benchmarks/bench_arrival.py --ceiling [--rates 1000 1500 ...] [--seconds 4]

1. Arrival rate. For each rate R (iterations/s), the gate runs a stagegate.yaml with
   ``rate: R/s`` (users left to the default, what a user gets, unless ``--users-per-rate``)
   against nginx (one worker; benchmarks/fastserver.py when nginx is missing), a warm-up then
   ``--seconds`` measured, and prints, each against the schedule's slots in the measured
   window (R x seconds):
     counted   iterations due (started or dropped): below 1 when slots due in the last
               arrival lag (0.5 s) before the stop were neither started nor late enough to drop
     started   due - dropped                  (the goal: within 1%, dropped counted)
     answered  requests measured
     dropped, the requests unanswered when the load stopped, the latency p99;
     server    requests nginx counted over the whole run / the whole run's schedule
   and, beside it, plain Locust asked for the same rate the usual way (R/10 users with
   ``constant_throughput(10)``, closed model), its requests/s over the same seconds / R.
   The highest rate (1,000/s or more) runs again with users = R x 1 s, the default before
   it was capped (``defaults.OPEN_MAX_DEFAULT_USERS``): users cost the load process CPU that
   shows in the latency at high rates.
2. A stall. benchmarks/fastserver.py stalls for the last 500 ms of every 5 s of a schedule this
   script fixes (``--stall 5 0.5 --origin T``): a request that arrives during a stall is
   answered when it ends. The gate runs ``rate: --stall-rate/s`` against it for a whole number
   of periods after its warm-up. The true latency of each scheduled iteration is computed from
   the two schedules (the time left in the stall at its due time, plus the server's ordinary
   answer time: the gate's service-time p50), and its p99 (the gate's rank rule) is the
   reference: the gate's reported p99 / true p99 (goal: within 5%). Beside it, plain Locust's
   closed-model p99 (R/10 users, ``constant_throughput(10)``, a whole number of periods) / the
   true p99: how much coordinated omission hides.
   The truth has each request reach the server the server's ordinary answer time (the
   service-time p50, under 1 ms here) after its due time: one due just before a stall starts
   arrives in it and is held through it. A request that reaches the server later than that
   (the gate's event loop busy) may be held where the truth has it answered, which moves the
   reported p99 up by one slot (10 ms at 100/s); the line shows the latency and service-time
   p50 and the event loop's lateness beside it.

3. ``--ceiling`` (instead of 1. and 2.): the open model just under saturation (issue 15). On
   the lean path and on Locust's (``STAGEGATE_LOAD_PATH=locust``), one load process against
   nginx on a CPU of its own runs each rate of ``--rates`` (default 1,000 to 8,000/s) in turn,
   the gate's default users, until iterations are dropped; prints each point (bench_saturation's
   line: achieved / asked, CPU, loop lag, latency and service time, dropped) and, per path, the
   highest rate with nothing dropped, what it achieved of it, and the first rate that dropped.
   ~1 min.

Each measured point runs at most ~20 s (``--quick``: ~6 s, one stall period). The machine's
noise moves every figure: the ratios are made in one invocation, the references side by side
in time with what they are compared to; run it on a quiet machine for figures worth quoting.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import _common
import yaml
from _common import fast_server, have_nginx, nginx_server, rate_between, read_counts
from bench_throughput import SAMPLER

from pytest_stagegate.config import load_config
from pytest_stagegate.histogram import exact_percentile
from pytest_stagegate.load.plan import plan_for
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult

STALL_PERIOD = 5.0  # seconds
STALL_LENGTH = 0.5

# nginx with a request counter (stub_status) beside the fixed answer
_LOCATION = 'location / {{ return 200 "ok-ok-ok-k"; }}'
assert _LOCATION in _common.NGINX_CONF
_common.NGINX_CONF = _common.NGINX_CONF.replace(
    _LOCATION, "location = /__status {{ stub_status; }}\n        " + _LOCATION
)

PACED_LOCUSTFILE = textwrap.dedent(
    """
    from locust import FastHttpUser, constant_throughput, task

    class Paced(FastHttpUser):
        wait_time = constant_throughput(10)
        network_timeout = 30.0
        connection_timeout = 30.0

        @task
        def root(self):
            self.client.get("/", name="GET /")
    """
)


# --- the gate, as a user runs it: a stagegate.yaml ----------------------------------------
def gate_run(url: str, load: dict[str, Any], tmp: Path) -> tuple[LoadResult, int]:
    """``load`` as gate.load of a stagegate.yaml, read and planned as pytest --gate does:
    the result, and the users (most concurrent iterations) the plan allowed."""
    path = tmp / "stagegate.yaml"
    doc = {
        "targets": {"bench": {"base_url": url, "timeout": "30s"}},
        "gate": {
            "load": {"requests": ["GET /"], "abort": {"enabled": False}, **load},
            "budgets": {"total": {"error_rate": "1%"}},
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = load_config(path)
    plan = plan_for(config.resolve_target("bench", os.environ), config.gate_settings("bench"))
    result = run_load(plan)
    if result.status != "completed":
        raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
    if result.model != "open":
        raise SystemExit(f"the gate ran the {result.model} model for rate {load.get('rate')}")
    return result, plan.users


def open_load(rate: float, warmup: float, seconds: float) -> dict[str, str]:
    """gate.load for ``rate`` iterations/s: ``warmup`` then ``seconds`` measured."""
    return {"rate": f"{rate:g}/s", "duration": f"{warmup + seconds:g}s", "warmup": f"{warmup:g}s"}


# --- plain Locust ----------------------------------------------------------------------------
class PlainLocust:
    """``locust --headless`` with R/10 users paced at 10 iterations/s each (the usual way to
    ask plain Locust for a rate), its request counter sampled, its statistics in a CSV."""

    def __init__(self, url: str, rate: float, seconds: float, prefix: Path) -> None:
        self.seconds = seconds
        self.prefix = prefix
        self.counts = prefix.with_suffix(".counts")
        users = max(1, round(rate / 10))
        locustfile = prefix.with_suffix(".py")
        locustfile.write_text(PACED_LOCUSTFILE + SAMPLER)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
                "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "-H", url,
                "--only-summary", "--loglevel", "WARNING", "--csv", str(prefix),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "STAGEGATE_BENCH_COUNTS": str(self.counts)},
            start_new_session=True,
        )  # fmt: skip

    def wait(self) -> None:
        self.proc.wait(timeout=self.seconds + 60)

    def samples(self) -> list[tuple[float, float]]:
        self.wait()
        return read_counts(self.counts)

    def percentiles_ms(self) -> dict[int, float]:
        """Locust's own p95 and p99 of all its requests (its rounding)."""
        self.wait()
        with open(f"{self.prefix}_stats.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["Name"] == "Aggregated":
                    return {95: float(row["95%"]), 99: float(row["99%"])}
        raise SystemExit("plain Locust wrote no Aggregated row")


# --- 1. arrival rate -------------------------------------------------------------------------
def nginx_requests(url: str) -> int | None:
    """nginx's request counter (stub_status), this request included; None without nginx."""
    try:
        with urllib.request.urlopen(f"{url}/__status", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    # "Active connections: 1 \nserver accepts handled requests\n 5 5 7 \n..."
    return int(text.splitlines()[2].split()[2])


def arrival_point(
    url: str,
    counted: bool,
    rate: float,
    seconds: float,
    warmup: float,
    tmp: Path,
    locust: bool,
    users_per_rate: float | None = None,
) -> str:
    before = nginx_requests(url) if counted else None
    started = time.monotonic()
    load: dict[str, Any] = open_load(rate, warmup, seconds)
    if users_per_rate is not None:
        load["users"] = max(1, math.ceil(rate * users_per_rate))
    result, users = gate_run(url, load, tmp)
    after = nginx_requests(url) if counted else None
    took = time.monotonic() - started
    # the schedule's slots in the measured window: i / rate in [warmup, warmup + seconds)
    slots = math.ceil(rate * (warmup + seconds)) - math.ceil(rate * warmup)
    due, dropped = result.iterations_due, result.dropped
    line = (
        f"{rate:>6,.0f}/s  counted {due / slots:.3f}  started {(due - dropped) / slots:.3f}  "
        f"answered {result.total.requests / slots:.3f}  "
        f"dropped {dropped:,} of {due:,} ({dropped / due if due else 0:.2%})  "
        f"unanswered at the stop {result.unanswered:,}  "
        f"p99 {result.total.histogram.percentile(99):,.1f} ms"
    )
    if before is not None and after is not None:
        # the run's whole schedule (warm-up included) against what nginx answered; the
        # counter's own two requests taken off
        whole = math.ceil(rate * (warmup + seconds))
        line += f"  server {(after - before - 1) / whole:.3f}"
    if locust:
        plain = PlainLocust(url, rate, warmup + seconds + 1.0, tmp / f"paced{rate:g}")
        samples = plain.samples()
        start = samples[0][0] + warmup
        paced = rate_between(samples, start, start + seconds, "plain Locust")
        line += f"  | plain Locust paced {paced / rate:.3f}"
    health = result.generator
    saturated = "saturated" if health.saturated else "not saturated"
    return line + (
        f"  ({users} users; generator {saturated}, CPU at most {health.cpu_max_percent:.0f}%, "
        f"loop at most {health.loop_lag_max_ms:.0f} ms late; {took:.0f} s)"
    )


# --- 2. a stall ------------------------------------------------------------------------------
@contextlib.contextmanager
def stalling_server() -> Iterator[tuple[str, float]]:
    """fastserver.py stalling 500 ms every 5 s from an origin chosen here: (URL, origin)."""
    origin = time.time()
    args = ("--stall", f"{STALL_PERIOD:g}", f"{STALL_LENGTH:g}", "--origin", repr(origin))
    with fast_server(*args) as url:
        yield url, origin


def hold(origin: float, t: float) -> float:
    phase = (t - origin) % STALL_PERIOD
    return STALL_PERIOD - phase if phase >= STALL_PERIOD - STALL_LENGTH else 0.0


def true_percentiles(
    result: LoadResult, origin: float, rate: float, seconds: float, base_ms: float
) -> dict[int, float]:
    """p95 and p99 of what the iterations scheduled in the measured window (``seconds`` after
    the warm-up, as planned) truly waited: a request reaches the server ``base_ms`` after its
    due time (the server's ordinary answer time, which bounds the way there), waits out the
    rest of a stall it arrives in, and is answered ``base_ms`` after its due time otherwise."""
    load_start = datetime.fromisoformat(result.started_at).timestamp()
    first = math.ceil(result.warmup_seconds * rate)
    last = math.ceil((result.warmup_seconds + seconds) * rate)  # slots [first, last)
    latencies = []
    for i in range(first, last):
        due = load_start + i / rate
        latencies.append(1000 * hold(origin, due + base_ms / 1000) + base_ms)
    return {p: exact_percentile(latencies, p) for p in (95, 99)}


def stall_point(
    rate: float,
    periods: int,
    warmup: float,
    tmp: Path,
    locust: bool,
    users_per_rate: float | None = None,
) -> list[str]:
    seconds = periods * STALL_PERIOD
    lines = []
    load: dict[str, Any] = open_load(rate, warmup, seconds)
    if users_per_rate is not None:
        load["users"] = max(1, math.ceil(rate * users_per_rate))
    with stalling_server() as (url, origin):
        result, users = gate_run(url, load, tmp)
        service = result.total.service_histogram
        base = service.percentile(50) if service is not None else 0.0
        reported = {p: result.total.histogram.percentile(p) for p in (95, 99)}
        truth = true_percentiles(result, origin, rate, seconds, base)
        lines.append(f"true (from the schedules): p95 {truth[95]:,.1f} ms, p99 {truth[99]:,.1f} ms")
        lines.append(
            f"gate open model {rate:g}/s: p95 {reported[95]:,.1f} ms, p99 {reported[99]:,.1f} ms;"
            f" reported / true p99 {reported[99] / truth[99]:.3f}  (goal 0.95-1.05; p95 "
            f"{reported[95] / truth[95]:.3f}; dropped {result.dropped} of "
            f"{result.iterations_due}; latency p50 {result.total.histogram.percentile(50):.1f} ms, "
            f"service time p50 {base:.1f} ms"
            + (f", p99 {service.percentile(99):,.1f} ms" if service is not None else "")
            + f"; event loop at most {result.generator.loop_lag_max_ms:.0f} ms late; {users} users)"
        )
        if locust:
            plain = PlainLocust(url, rate, seconds, tmp / "stalled")
            got = plain.percentiles_ms()
            lines.append(
                f"plain Locust closed model ({max(1, round(rate / 10))} users paced at 10/s): "
                f"p95 {got[95]:,.0f} ms, p99 {got[99]:,.0f} ms; / true p99 "
                f"{got[99] / truth[99]:.3f}  (p95 {got[95] / truth[95]:.3f})"
            )
    return lines


# --- 3. the highest rate with nothing dropped -------------------------------------------------
CEILING_RATES = [1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0]


def ceiling(rates: list[float], seconds: float) -> None:
    from bench_saturation import open_point

    server_cpus, load_cpus = _common.cpu_plan()
    with _common.plain_server(server_cpus) as (url, server), _common.pinned(load_cpus):
        print(f"3. the highest rate with nothing dropped: {server}, 1 s warm-up + {seconds:g} s")
        if server_cpus:
            print(f"server on CPU {server_cpus}, the load process on CPU {load_cpus}")
        for path in ("lean", "locust"):
            kept, first_drop = None, None
            for rate in sorted(rates):
                point = open_point(url, path, rate, seconds)
                print(point.line(), flush=True)
                if point.dropped:
                    first_drop = point
                    break
                kept = point
            if kept is None:
                print(f"{path}: iterations dropped from the lowest rate, {min(rates):g}/s, on")
                continue
            print(
                f"{path}: highest rate with nothing dropped {kept.rate:g}/s: achieved "
                f"{kept.rps / (kept.rate or 1):.3f} of it, dropped 0 of {kept.due:,}, CPU mean "
                f"{kept.cpu_mean:.0f}%, latency p95 {kept.p95:.1f} ms "
                f"(service time {kept.service_p95 or 0:.1f})"
                + (
                    f"; at {first_drop.rate:g}/s {first_drop.dropped:,} of {first_drop.due:,} "
                    f"dropped ({first_drop.dropped / first_drop.due:.1%})"
                    if first_drop is not None and first_drop.due
                    else f"; none dropped up to {max(rates):g}/s"
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: checks it works")
    parser.add_argument(
        "--ceiling", action="store_true", help="only 3.: the highest rate with nothing dropped"
    )
    parser.add_argument("--rates", type=float, nargs="+", default=None)
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured seconds per rate (8; --ceiling 4)"
    )
    parser.add_argument("--stall-rate", type=float, default=100.0)
    parser.add_argument("--no-locust", action="store_true", help="skip plain Locust beside")
    parser.add_argument(
        "--users-per-rate",
        type=float,
        metavar="SECONDS",
        help="users = rate x this (default: the gate's default users: the peak rate x 0.5 s, "
        "at least 10, at most 200), in the stall's run too",
    )
    args = parser.parse_args()
    if args.ceiling:
        began = time.monotonic()
        ceiling(args.rates or CEILING_RATES, args.seconds or 4.0)
        print(f"({time.monotonic() - began:.0f} s)")
        return
    args.rates = args.rates or [100.0, 500.0, 2000.0]
    args.seconds = args.seconds or 8.0
    seconds, warmup, periods = (3.0, 1.0, 1) if args.quick else (args.seconds, 2.0, 3)
    locust = not args.no_locust
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server_cm = nginx_server() if have_nginx() else fast_server()
        with server_cm as url:
            what = "nginx, 1 worker process" if have_nginx() else "benchmarks/fastserver.py"
            print(f"1. arrival rate: {what}; {warmup:g} s warm-up + {seconds:g} s measured")
            for rate in args.rates:
                print(
                    arrival_point(
                        url, have_nginx(), rate, seconds, warmup, tmp, locust, args.users_per_rate
                    )
                )
            top = max(args.rates)
            if args.users_per_rate is None and top >= 1000:
                # the default users (capped) against a second of the rate
                print("  the same with users = rate x 1 s:")
                print(arrival_point(url, have_nginx(), top, seconds, warmup, tmp, False, 1.0))
        print(
            f"2. a stall of {STALL_LENGTH * 1000:g} ms every {STALL_PERIOD:g} s "
            f"(benchmarks/fastserver.py): {warmup:g} s warm-up + {periods} period(s) measured"
        )
        for line in stall_point(args.stall_rate, periods, warmup, tmp, locust, args.users_per_rate):
            print(line)
    print(f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
