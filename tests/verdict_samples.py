"""Verdicts with fixed timestamps and commits, shared by the verdict, JUnit and CLI tests, and
the golden-file helper. Set STAGEGATE_REGEN_GOLDEN=1 to rewrite the golden files."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pytest_stagegate.budgets import (
    Check,
    EndpointStats,
    FailedStats,
    ServiceStats,
    Waiver,
    capitalized,
)
from pytest_stagegate.verdict import CommitInfo, GateRecord, TestRecord, Verdict
from pytest_stagegate.verdict.records import LoadModelRecord, StageRecord, TimelineRecord

GOLDEN = Path(__file__).parent / "golden"
JUNIT_XSD = Path(__file__).parent / "schemas" / "junit-10.xsd"
STARTED = datetime(2025, 1, 15, 10, 0, 0, tzinfo=timezone.utc)
FINISHED = STARTED + timedelta(seconds=90, milliseconds=500)
SHA = "3f2a9c1e5b7d4a60812c9e3f5a7b1d2c4e6f8a90"
GITHUB = CommitInfo(
    sha=SHA,
    ref="refs/heads/main",
    run_url="https://github.com/acme/shop/actions/runs/4242",
    source="github",
)
PROFILE = {
    "users": 20,
    "spawn_rate": 10,
    "duration_s": 30,
    "warmup_s": 5,
    "workers": 2,
    "scenario": "requests",
}
HEALTHY_GENERATOR = {"processes": 3, "cpu_max_percent": 41.5, "saturated": False, "note": ""}
LOGIN = "tests/test_shop.py::test_login"
CART = "tests/test_shop.py::test_cart"


def verdict(
    tests: Sequence[TestRecord] = (),
    *,
    gate: GateRecord | None = None,
    **kwargs: Any,
) -> Verdict:
    """A verdict for staging from the fixed commit and times; ``kwargs`` override the rest."""
    fields: dict[str, Any] = {
        "target_name": "staging",
        "base_url": "https://shop-staging.example.com",
        "commit": GITHUB,
        "started_at": STARTED,
        "finished_at": FINISHED,
        "plugin_version": "0.1.0",
        **kwargs,
    }
    return Verdict(tests=tests, gate=gate, **fields)


def endpoints(p95_products: float = 180.0, *, failures: bool = False) -> list[EndpointStats]:
    """``failures``: one of the 2 failures timed out (in the latency at its full wait), the
    other was refused at once and is counted apart (``failed``)."""
    failed = FailedStats(1, 0.75, 0.75, 0.75, {"p50": 0.75, "p95": 0.75}) if failures else None
    apart = {"timeouts": 1, "failed": failed} if failures else {}
    return [
        EndpointStats(
            name="GET /api/products/{id}",
            requests=1800,
            failures=2,
            rps=72.0,
            avg_ms=61.25,
            min_ms=8.5,
            max_ms=402.75,
            percentiles={"p99": 310.0, "p50": 48.0, "p95": 140.0},
            **apart,  # type: ignore[arg-type]
        ),
        EndpointStats(
            name="total",
            requests=2400,
            failures=2,
            rps=96.0,
            avg_ms=70.125,
            min_ms=8.5,
            max_ms=655.0,
            percentiles={"p50": 52.0, "p95": 160.0, "p99": 395.5},
            **apart,  # type: ignore[arg-type]
        ),
        EndpointStats(
            name="GET /api/products",
            requests=600,
            failures=0,
            rps=24.0,
            avg_ms=96.75,
            min_ms=21.0,
            max_ms=655.0,
            percentiles={"p50": 80.0, "p95": p95_products, "p99": 480.0},
        ),
    ]


def check(
    endpoint: str,
    metric: str,
    limit: float,
    observed: float | None,
    outcome: str = "pass",
    *,
    samples: int = 2400,
    unit: str = "ms",
    message: str = "",
) -> Check:
    return Check(
        endpoint=endpoint,
        metric=metric,
        limit=limit,
        observed=observed,
        samples=samples,
        outcome=outcome,  # type: ignore[arg-type]
        message=message or capitalized(f"{metric} of {endpoint} was {observed}, within {limit}"),
        unit=unit,  # type: ignore[arg-type]
    )


def passing_checks() -> list[Check]:
    return [
        check("total", "p95", 300, 160.0),
        check("total", "error_rate", 0.01, 2 / 2400, unit="ratio"),
        check("total", "min_rps", 20, 96.0, unit="rps"),
        check("GET /api/products/{id}", "p99", 500, 310.0, samples=1800),
    ]


def good_gate(**kwargs: Any) -> GateRecord:
    """A completed gate whose budgets all held; ``kwargs`` override its fields."""
    fields: dict[str, Any] = {
        "status": "completed",
        "endpoints": endpoints(),
        "checks": passing_checks(),
        "load_seconds": 30.0,
    }
    fields.update(kwargs)
    return GateRecord(**fields)


def state(verdict: Verdict) -> str:
    # A function call, so that type checkers do not narrow the state across additions.
    return verdict.state


def passed(nodeid: str = CART, **kwargs: Any) -> TestRecord:
    return TestRecord(nodeid, "passed", 0.1, **kwargs)


def smoke_tests() -> list[TestRecord]:
    return [
        TestRecord(
            "tests/smoke/test_shop.py::test_health",
            "passed",
            0.0421,
            critical=True,
            smoke=True,
            requests={"count": 1, "failures": 0, "avg_ms": 12.5, "p50_ms": 12.5, "max_ms": 12.5},
        ),
        TestRecord(
            "tests/smoke/test_shop.py::test_login", "passed", 0.31, critical=True, smoke=True
        ),
        TestRecord(
            "tests/smoke/test_shop.py::TestCatalog::test_list[page-1]", "passed", 0.12, smoke=True
        ),
        TestRecord(
            "tests/smoke/test_shop.py::test_refunds",
            "skipped",
            0.0,
            message="runs only on targets: production",
        ),
        TestRecord(
            "tests/smoke/test_shop.py::test_search_typo",
            "xfailed",
            0.05,
            message="search does not correct typos yet",
        ),
    ]


def pass_verdict() -> Verdict:
    return verdict(
        smoke_tests(),
        gate=GateRecord(
            status="completed",
            profile=PROFILE,
            endpoints=endpoints(),
            checks=passing_checks(),
            generator=HEALTHY_GENERATOR,
            load_seconds=30.2,
            # a waived error budget: a warning in the reasons, a skipped case in JUnit
            waivers=(Waiver("GET /api/products", source="stagegate.yaml:31"),),
        ),
        gate_requested=True,
    )


def fail_verdict() -> Verdict:
    tests = smoke_tests()
    tests[1] = TestRecord(
        "tests/smoke/test_shop.py::test_login",
        "failed",
        0.52,
        critical=True,
        smoke=True,
        message="assert 500 == 200 (POST /api/login answered 500 Internal Server Error)",
    )
    tests[2] = TestRecord(
        "tests/smoke/test_shop.py::TestCatalog::test_list[page-1]",
        "passed",
        0.4,
        smoke=True,
        flaky=True,
        reruns=1,
    )
    checks = passing_checks()
    checks.append(
        check(
            "GET /api/products",
            "p95",
            300,
            412.0,
            "fail",
            samples=600,
            message="P95 of GET /api/products was 412.0 ms, over its budget of 300 ms",
        )
    )
    return verdict(
        tests,
        gate=GateRecord(
            status="completed",
            profile=PROFILE,
            endpoints=endpoints(p95_products=412.0, failures=True),
            checks=checks,
            generator={
                "processes": 1,
                "cpu_max_percent": 97.0,
                "saturated": True,
                "note": (
                    "The load generator was saturated: the local process was at or above 90% "
                    "of a core for 12 of 20 samples."
                ),
            },
            load_seconds=30.2,
        ),
        gate_requested=True,
    )


def error_verdict() -> Verdict:
    return verdict(
        [
            TestRecord("tests/smoke/test_shop.py::test_health", "passed", 0.04, critical=True),
            TestRecord(
                "tests/smoke/test_shop.py::test_place_order",
                "skipped",
                message="stagegate: destructive test skipped: production is protected",
                safety_skip=True,
            ),
        ],
        target_name="production",
        base_url="https://shop.example.com",
        commit=CommitInfo(sha=SHA, ref="main", run_url=None, source="env"),
        finished_at=STARTED + timedelta(seconds=12),
        gate_requested=True,
        interrupted=True,
    )


def inconclusive_verdict() -> Verdict:
    return verdict(
        [TestRecord("tests/smoke/test_shop.py::test_health", "passed", 0.04, smoke=True)],
        commit=CommitInfo(sha=SHA[:12], ref=None, run_url=None, source="git"),
        gate=GateRecord(
            status="completed",
            profile={**PROFILE, "users": 2, "duration_s": 5, "warmup_s": 0, "workers": 0},
            endpoints=[
                EndpointStats("total", 120, 0, 24.0, 30.0, 10.0, 90.0, {"p50": 25.0, "p99.9": 90.0})
            ],
            checks=[
                check("total", "p50", 100, 25.0, samples=120),
                check(
                    "total",
                    "error_rate",
                    0.01,
                    0.0,
                    samples=120,
                    unit="ratio",
                    message="Error rate of total was 0%, within its default budget of 1% "
                    "(120 requests, 0 failed).",
                ),
                check(
                    "total",
                    "p99.9",
                    250,
                    90.0,
                    "inconclusive",
                    samples=120,
                    message="P99.9 of total had only 120 samples; at least 1000 are needed",
                ),
            ],
            generator=HEALTHY_GENERATOR,
            load_seconds=5.0,
        ),
    )


def open_timeline() -> list[TimelineRecord]:
    """30 s in 1 s intervals: a 5 s ramp (not judged), 20 s of peak with a 2 s stall at
    15 s, 5 s of cool-down."""
    points = []
    for i in range(1, 31):
        stage = "ramp" if i <= 5 else "peak" if i <= 25 else "cool"
        rate = 10 * i if i <= 5 else 50 if i <= 25 else 50 - 8 * (i - 25)
        p95 = 620.0 if i in (16, 17) else 90.0 + (i * 7) % 25
        points.append(TimelineRecord(float(i), rate, 1 if i == 16 else 0, p95, stage, judged=i > 5))
    return points


def open_verdict() -> Verdict:
    """The open model with stages: a ramp not judged, a peak with its own budget, a cool-down;
    a few iterations dropped (under 1%), a service-time budget."""
    total = EndpointStats(
        "total",
        1230,
        1,
        49.2,
        131.5,
        40.25,
        640.0,
        {"p50": 98.0, "p90": 140.0, "p95": 250.0, "p99": 610.0},
        service=ServiceStats(1229, 60.5, 38.0, 402.0, {"p50": 55.0, "p95": 120.0, "p99": 380.0}),
    )
    peak_total = EndpointStats(
        "total", 1000, 1, 50.0, 135.0, 40.25, 640.0, {"p50": 99.0, "p95": 270.0, "p99": 615.0}
    )
    return verdict(
        [TestRecord("tests/smoke/test_shop.py::test_health", "passed", 0.04, smoke=True)],
        gate=GateRecord(
            status="completed",
            profile={
                **PROFILE,
                "model": "open",
                "rate": None,
                "users": 60,
                "workers": 0,
                "duration_s": 30,
                "warmup_s": 0,
            },
            endpoints=[total],
            checks=[
                check("total", "p95", 300, 250.0, samples=1229),
                check("total", "service_time_p95", 150, 120.0, samples=1229),
                check(
                    "total",
                    "error_rate",
                    0.01,
                    1 / 1230,
                    samples=1230,
                    unit="ratio",
                ),
                Check(
                    "total",
                    "p95",
                    300,
                    270.0,
                    999,
                    "pass",
                    "p95 of total in stage peak was 270.0 ms, within its budget of 300 ms "
                    "(999 requests).",
                    stage="peak",
                ),
            ],
            generator=HEALTHY_GENERATOR,
            load_seconds=30.0,
            load=LoadModelRecord(
                model="open",
                rate=None,
                iterations_due=1230,
                dropped=3,
                arrival_lag_s=0.5,
                stages=(
                    # the judged stages' requests add up to the total's
                    StageRecord("ramp", 0.0, 5.0, False, 0.0, 50.0, "iterations/s", (), 150, 0),
                    StageRecord(
                        "peak", 5.0, 25.0, True, 50.0, 50.0, "iterations/s", (peak_total,), 1000, 1
                    ),
                    StageRecord("cool", 25.0, 30.0, True, 50.0, 10.0, "iterations/s", (), 230, 0),
                ),
                timeline=tuple(open_timeline()),
            ),
        ),
        gate_requested=True,
    )


SAMPLES: dict[str, Callable[[], Verdict]] = {
    "pass": pass_verdict,
    "fail": fail_verdict,
    "error": error_verdict,
    "inconclusive": inconclusive_verdict,
    "open": open_verdict,
}


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with ``tests/golden/<name>``, or rewrite it when regenerating."""
    path = GOLDEN / name
    if os.environ.get("STAGEGATE_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"{path} is missing; run with STAGEGATE_REGEN_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"golden/{name}",
                "actual",
            )
        )
        raise AssertionError(
            f"{name} differs from the golden file (STAGEGATE_REGEN_GOLDEN=1 rewrites it):\n{diff}"
        )
