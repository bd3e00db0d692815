"""``load.plan``: the plan's JSON form, and which budgets the child watches for early abort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.config import (
    Capture,
    ConfigError,
    DataSpec,
    FlowSpec,
    GateSettings,
    JsonExpect,
    LoadSettings,
    RequestSpec,
    StageSpec,
    Target,
)
from pytest_stagegate.load.plan import (
    LatencyLimit,
    LoadPlan,
    PlannedFlow,
    PlannedRequest,
    PlannedStage,
    _is_latency_limit,
    data_secrets,
    engine_of,
    load_path_problem,
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


def test_the_early_abort_watches_globs_merged_and_leaves_flows_to_the_end() -> None:
    """A glob's limit is watched over the names it covers (``glob``); a flow's iterations are
    not in the abort's window, so its budgets are judged at the end only."""
    from pytest_stagegate.budgets import parse_budget

    weird = RequestSpec("GET", "/a", "GET /a[1]")  # a request's exact name with glob characters
    load = LoadSettings(
        requests=(RequestSpec("GET", "/api/a", "GET /api/a"), weird),
        flows=(FlowSpec("checkout", 1, steps=(RequestSpec("GET", "/api/b", "GET /api/b"),)),),
    )
    budgets = tuple(
        parse_budget(endpoint, "p95", "300ms")
        for endpoint in ("total", "GET /api/*", "checkout", "GET /a[1]")
    )
    plan = plan_for(TARGET, GateSettings(load=load, budgets=budgets))
    assert plan.abort_latency == [
        LatencyLimit("total", "p95", 300.0),
        LatencyLimit("GET /api/*", "p95", 300.0, glob=True),
        LatencyLimit("GET /a[1]", "p95", 300.0),
    ]
    assert LoadPlan.from_json(plan.to_json()).abort_latency == plan.abort_latency


# --- scenarios (issue 12) ----------------------------------------------------------------------


def test_a_plan_with_flows_and_data_round_trips_through_json() -> None:
    step = PlannedRequest(
        "POST",
        "/api/cart/{vars.cart_id}",
        "POST /api/cart/{vars.cart_id}",
        headers={"Authorization": "Bearer {token}"},
        json={"sku": "{row.sku}"},
        expect_status=[200, 201],
        query={"source": "gate"},
        expect_json=[{"expr": "length(items) > `0`", "value": True, "present": None}],
        expect_contains="ok",
        expect_headers={"content-type": "json"},
        capture=[{"var": "token", "json": "access_token", "header": None}],
    )
    plan = LoadPlan(
        host="h",
        users=2,
        spawn_rate=2.0,
        duration=3.0,
        requests=[step],
        flows=[
            PlannedFlow("checkout", 2, steps=[step, step], on_start=[step], wait=(0.1, 0.3)),
            PlannedFlow("browse"),
        ],
        data_file="users.csv",
        data_mode="unique",
        data_rows=[{"user": "ann", "sku": "S-1"}, {"user": "bob", "sku": "S-2"}],
    )
    back = LoadPlan.from_json(plan.to_json())
    assert back == plan
    assert back.flows[0].wait == (0.1, 0.3) and isinstance(back.flows[0].steps[0], PlannedRequest)


def test_plan_for_carries_flows_expectations_captures_and_the_data_rows(tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text("user,sku\nann@example.com,SKU-1001\nbob,S1\n", encoding="utf-8")
    login = RequestSpec(
        "POST",
        "/login",
        "POST /login",
        json={"user": "{row.user}"},
        capture=(Capture("token", json="access_token"), Capture("rid", header="X-Request-Id")),
    )
    products = RequestSpec(
        "GET",
        "/api/products",
        "GET /api/products",
        headers={"Authorization": "Bearer {token}"},
        query={"q": "{row.sku}"},
        expect_status=(200,),
        expect_json=(JsonExpect("length(items) > `0`", value=True), JsonExpect("t", present=False)),
        expect_contains="items",
        expect_headers={"content-type": "json"},
    )
    load = LoadSettings(
        requests=(RequestSpec("GET", "/health", "GET /health"),),
        flows=(FlowSpec("checkout", 2, steps=(products,), on_start=(login,), wait=(0.1, 0.2)),),
        data=DataSpec(file=csv, mode="random", columns=("user", "sku"), secret=("user",)),
    )
    target = Target(name="t", base_url="http://127.0.0.1:9", secrets=frozenset({"hunter22"}))
    plan = plan_for(target, GateSettings(load=load), secrets=("signing",))
    assert [r.name for r in plan.requests] == ["GET /health"]
    (flow,) = plan.flows
    assert (flow.name, flow.weight, flow.wait) == ("checkout", 2, (0.1, 0.2))
    assert flow.on_start[0].capture == [
        {"var": "token", "json": "access_token", "header": None},
        {"var": "rid", "json": None, "header": "X-Request-Id"},
    ]
    step = flow.steps[0]
    assert (step.query, step.expect_status, step.expect_contains) == (
        {"q": "{row.sku}"},
        [200],
        "items",
    )
    assert step.expect_json == [
        {"expr": "length(items) > `0`", "value": True, "present": None},
        {"expr": "t", "value": None, "present": False},
    ]
    assert step.expect_headers == {"content-type": "json"}
    assert (plan.data_file, plan.data_mode) == ("users.csv", "random")
    assert plan.data_rows == [
        {"user": "ann@example.com", "sku": "SKU-1001"},
        {"user": "bob", "sku": "S1"},
    ]
    # the values of the secret columns (data.secret) that can be masked are secrets, beside
    # the target's and the run's; a plain column's (sku) are not
    assert plan.secrets == sorted({"hunter22", "signing", "ann@example.com"})
    assert data_secrets(load) == {"ann@example.com"}
    assert LoadPlan.from_json(plan.to_json()) == plan


def test_plan_for_without_data_has_no_rows() -> None:
    plan = plan_for(TARGET, GateSettings())
    assert (plan.flows, plan.data_file, plan.data_mode, plan.data_rows) == ([], None, "cycle", [])
    assert data_secrets(LoadSettings()) == frozenset()


def test_a_data_file_broken_after_loading_is_a_config_error(tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text("user\n", encoding="utf-8")
    load = LoadSettings(data=DataSpec(file=csv, columns=("user",)))
    with pytest.raises(ConfigError, match=r"users\.csv has a header"):
        plan_for(TARGET, GateSettings(load=load))


@pytest.mark.parametrize("value", ["", "  ", "lean", "locust", "LOCUST", " Lean "])
def test_the_load_path_switch_takes_lean_or_locust(value: str) -> None:
    assert load_path_problem({"STAGEGATE_LOAD_PATH": value}) is None
    assert load_path_problem({}) is None


@pytest.mark.parametrize("value", ["bogus", "fast", "locustfile", "0"])
def test_any_other_load_path_is_a_usage_paragraph(value: str) -> None:
    text = load_path_problem({"STAGEGATE_LOAD_PATH": value})
    assert text is not None and "\n" not in text
    assert text.startswith(f"pytest-stagegate: $STAGEGATE_LOAD_PATH is {value!r}")
    assert "lean" in text and "locust" in text
    worker = load_path_problem({"STAGEGATE_LOAD_PATH": value}, "stagegate worker")
    assert worker is not None and worker.startswith("stagegate worker: ")


def test_engine_of_names_the_path_the_requests_take() -> None:
    plan = LoadPlan(host="http://127.0.0.1:9", users=1, spawn_rate=1, duration=1)
    assert engine_of(plan, {}) == "lean"
    assert engine_of(plan, {"STAGEGATE_LOAD_PATH": "lean"}) == "lean"
    assert engine_of(plan, {"STAGEGATE_LOAD_PATH": " Locust "}) == "locust"
    assert engine_of(LoadPlan(**{**plan.__dict__, "user_class": "http"}), {}) == "locust"
    with_file = LoadPlan(**{**plan.__dict__, "locustfile": "locustfile.py"})
    assert engine_of(with_file, {"STAGEGATE_LOAD_PATH": "locust"}) == "locustfile"
