"""``load.plan``: the plan's JSON form, and which budgets the child watches for early abort."""

from __future__ import annotations

import json

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.config import GateSettings, LoadSettings, RequestSpec, StageSpec, Target
from pytest_stagegate.load.plan import (
    LatencyLimit,
    LoadPlan,
    PlannedRequest,
    PlannedStage,
    _is_latency_limit,
    plan_for,
)

TARGET = Target(name="t", base_url="http://127.0.0.1:9")


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


def test_an_open_model_plan_with_stages_round_trips_through_json() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=50,
        spawn_rate=50.0,
        duration=150.0,
        stages=[
            PlannedStage("stage 1", 30.0, rate=10.0, judge=False),
            PlannedStage("peak", 120.0, rate=50.0, measure=True),
        ],
        arrival_lag=0.25,
    )
    back = LoadPlan.from_json(plan.to_json())
    assert back == plan and back.open_model and back.stages[1].measure


def test_a_constant_rate_plan_round_trips_through_json() -> None:
    plan = LoadPlan(host="h", users=10, spawn_rate=10.0, duration=5.0, rate=2.5)
    assert LoadPlan.from_json(plan.to_json()) == plan
    assert plan.open_model and plan.arrival_lag == defaults.ARRIVAL_LAG


def test_plan_for_the_closed_model_keeps_users_and_spawn_rate() -> None:
    load = LoadSettings(
        users=4, spawn_rate=2.0, duration=9.0, requests=(RequestSpec("GET", "/a", "a"),)
    )
    plan = plan_for(TARGET, GateSettings(load=load))
    assert (plan.users, plan.spawn_rate, plan.duration) == (4, 2.0, 9.0)
    assert (plan.rate, plan.stages, plan.open_model) == (None, [], False)
    assert plan.arrival_lag == defaults.ARRIVAL_LAG


def test_plan_for_the_open_model_starts_every_user_at_once() -> None:
    plan = plan_for(TARGET, GateSettings(load=LoadSettings(users=60, rate=40.0, duration=7.0)))
    assert (plan.rate, plan.users, plan.spawn_rate, plan.duration) == (40.0, 60, 60.0, 7.0)
    assert plan.open_model and plan.stages == []


def test_plan_for_stages_measures_the_stages_with_budgets() -> None:
    budget = Budget("total", "p95", 300.0)
    load = LoadSettings(
        users=50,
        duration=99.0,  # the loader sets the stages' sum; the plan does not trust it
        stages=(
            StageSpec("ramp", 30.0, rate=10.0, judge=False),
            StageSpec("peak", 120.0, rate=50.0, budgets=(budget,)),
            StageSpec("stage 3", 0.5, rate=0.0),
        ),
    )
    plan = plan_for(TARGET, GateSettings(load=load))
    assert plan.stages == [
        PlannedStage("ramp", 30.0, rate=10.0, judge=False, measure=False),
        PlannedStage("peak", 120.0, rate=50.0, judge=True, measure=True),
        PlannedStage("stage 3", 0.5, rate=0.0, judge=True, measure=False),
    ]
    assert (plan.duration, plan.spawn_rate, plan.rate, plan.open_model) == (150.5, 50.0, None, True)


def test_plan_for_closed_model_stages_keeps_the_spawn_rate() -> None:
    load = LoadSettings(
        users=8, stages=(StageSpec("s", 5.0, users=8), StageSpec("t", 5.0, users=2))
    )
    plan = plan_for(TARGET, GateSettings(load=load))
    assert [(s.users, s.rate) for s in plan.stages] == [(8, None), (2, None)]
    assert (plan.users, plan.spawn_rate, plan.duration, plan.open_model) == (
        8,
        defaults.SPAWN_RATE,
        10.0,
        False,
    )


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
    doc["schema"] = 2
    with pytest.raises(ValueError, match="reads schema 3"):
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


def test_the_early_abort_watches_absolute_latency_limits_only() -> None:
    from pytest_stagegate.budgets import parse_budget

    budgets = tuple(
        parse_budget("total", metric, value)
        for metric, value in (
            ("p95", "300ms"),
            ("service_time_p95", "100ms"),  # judged on the service time, at the end only
            ("p95_regression", "10%"),  # a ratio, not a limit
            ("error_rate", "1%"),
        )
    )
    plan = plan_for(TARGET, GateSettings(budgets=budgets))
    assert plan.abort_latency == [LatencyLimit("total", "p95", 300.0)]
