"""``load.plan``: the plan's JSON form, and which budgets the child watches for early abort."""

from __future__ import annotations

import json

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.load.plan import LatencyLimit, LoadPlan, PlannedRequest, _is_latency_limit


def test_plan_round_trips_through_json() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=3,
        spawn_rate=1.5,
        duration=4.0,
        warmup=1.0,
        headers={"X-A": "1"},
        requests=[
            PlannedRequest("POST", "/b", "b", weight=2, json={"k": [1]}, expect_status=[201])
        ],
        wait=(0.1, 0.2),
        abort_latency=[LatencyLimit("total", "p99.9", 300.0)],
        secrets=["s"],
    )
    assert LoadPlan.from_json(plan.to_json()) == plan


def test_plan_defaults_come_from_defaults() -> None:
    plan = LoadPlan(host="http://127.0.0.1:9", users=1, spawn_rate=1, duration=1)
    assert plan.timeout == defaults.REQUEST_TIMEOUT
    assert plan.saturation_cpu == defaults.SATURATION_CPU
    assert (plan.abort_error_rate, plan.abort_min_requests) == (
        defaults.ABORT_ERROR_RATE,
        defaults.ABORT_MIN_REQUESTS,
    )
    assert (plan.abort_latency_factor, plan.abort_latency_for) == (
        defaults.ABORT_LATENCY_FACTOR,
        defaults.ABORT_LATENCY_FOR,
    )


def test_a_plan_of_another_schema_is_refused() -> None:
    doc = json.loads(LoadPlan(host="h", users=1, spawn_rate=1, duration=1).to_json())
    doc["schema"] = 1
    with pytest.raises(ValueError, match="reads schema 2"):
        LoadPlan.from_json(json.dumps(doc))


@pytest.mark.parametrize(
    ("metric", "watched"),
    [
        ("p95", True),
        ("p99.9", True),
        ("avg", True),
        ("max", True),
        ("error_rate", False),
        ("min_rps", False),
        ("p95_regression", False),
        ("avg_regression", False),
    ],
)
def test_only_absolute_latency_budgets_are_watched(metric: str, watched: bool) -> None:
    assert _is_latency_limit(Budget("total", metric, 1.0)) is watched
