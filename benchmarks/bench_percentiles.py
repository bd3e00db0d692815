"""How close the gate's percentiles are to the exact client-side timings, next to Locust's own.

    python benchmarks/bench_percentiles.py [--seconds 10]

For each latency profile, one gate run (run_load, locustfile mode) against
benchmarks/fastserver.py answering after a seeded uniform latency. The locustfile adds an extra
``events.request`` listener that keeps every raw response time of the same run: the exact
reference. Printed per percentile: the exact value, the gate's (LogHistogram, 3 significant
digits), and what stock Locust 2.47 would report (its 2-significant-digit bucketing, computed
here on the same samples with its rank rule), each with its relative error.

Profiles sit just above 100 ms and 1 s, where Locust's rounding step is largest: a true p50
of 106 ms shows as 110 (docs/load-engine.md, "Locust's rounding").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
import time
from pathlib import Path

from _common import fast_server

from pytest_stagegate.histogram import exact_percentile
from pytest_stagegate.load.plan import LoadPlan
from pytest_stagegate.load.process import run_load

LOCUSTFILE = textwrap.dedent(
    """
    import json
    from locust import FastHttpUser, events, task

    SAMPLES = []

    @events.request.add_listener
    def keep(response_time, **kwargs):
        SAMPLES.append(response_time)

    @events.test_stop.add_listener
    def dump(environment, **kwargs):
        with open(environment.stagegate_target["vars"]["samples"], "w") as f:
            json.dump(SAMPLES, f)

    class Timed(FastHttpUser):
        @task
        def get(self):
            self.client.get("/", name="GET /")
    """
)
PERCENTILES = (50.0, 90.0, 95.0, 99.0)
PROFILES = [  # (label, low ms, high ms, users)
    ("100-112 ms", 100.0, 112.0, 10),
    ("1000-1150 ms", 1000.0, 1150.0, 40),
]


def locust_default_bucket(ms: float) -> int:
    """A copy of locust.stats.bucket_response_time as shipped in 2.47 (2 significant digits)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


def locust_percentile(samples: list[float], p: float) -> float:
    # Locust rounds each time into its bucket, then takes the same rank as exact_percentile
    return exact_percentile([locust_default_bucket(s) for s in samples], p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    started = time.monotonic()
    worst_gate = worst_locust = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp, "timed_locustfile.py")
        locustfile.write_text(LOCUSTFILE)
        samples_path = Path(tmp, "samples.json")
        for label, low, high, users in PROFILES:
            with fast_server("--latency", str(low), str(high), "--seed", "7") as url:
                plan = LoadPlan(
                    host=url,
                    users=users,
                    spawn_rate=users,
                    duration=args.seconds,
                    locustfile=str(locustfile),
                    vars={"samples": str(samples_path)},
                )
                result = run_load(plan)
            if result.status != "completed":
                raise SystemExit(f"gate run failed: {result.status}: {result.reason}")
            samples = json.loads(samples_path.read_text())
            hist = result.total.histogram
            print(f"\nserver latency uniform {label}: {len(samples)} samples (gate {hist.count})")
            print(f"{'':>5} {'exact ms':>10} {'gate ms':>10} {'gate err':>9} "
                  f"{'locust ms':>10} {'locust err':>10}")  # fmt: skip
            for p in PERCENTILES:
                exact = exact_percentile(samples, p)
                gate = hist.percentile(p)
                stock = locust_percentile(samples, p)
                gate_err = abs(gate - exact) / exact
                stock_err = abs(stock - exact) / exact
                worst_gate = max(worst_gate, gate_err)
                worst_locust = max(worst_locust, stock_err)
                print(
                    f"p{p:<4g} {exact:10.2f} {gate:10.2f} {gate_err:9.3%} "
                    f"{stock:10.0f} {stock_err:10.3%}"
                )
    print(
        f"\nworst relative error: gate {worst_gate:.3%}, stock Locust {worst_locust:.3%}; "
        f"ratio locust/gate error {worst_locust / max(worst_gate, 1e-9):,.0f}x"
    )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
