"""budgets.py and metrics.py for the load models: service-time budgets, the dropped-iterations
rule and stage budgets. Pure: hand-made stats."""

from __future__ import annotations

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import (
    TOTAL,
    Budget,
    Dropped,
    EndpointStats,
    ServiceStats,
    evaluate,
    parse_budget,
    percentiles_needed,
)
from pytest_stagegate.metrics import parse_metric, sort_key


def stats(
    p95: float = 250.0,
    *,
    service_p95: float | None = 120.0,
    requests: int = 3000,
    failures: int = 0,
    name: str = TOTAL,
) -> EndpointStats:
    service = (
        None
        if service_p95 is None
        else ServiceStats(
            samples=requests - failures,
            avg_ms=service_p95 / 2,
            min_ms=1.0,
            max_ms=service_p95 * 3,
            percentiles={"p50": service_p95 / 2, "p95": service_p95, "p99": service_p95 * 2},
        )
    )
    return EndpointStats(
        name=name,
        requests=requests,
        failures=failures,
        rps=50.0,
        avg_ms=p95 / 2,
        min_ms=1.0,
        max_ms=p95 * 3,
        percentiles={"p50": p95 / 2, "p95": p95, "p99": p95 * 2},
        latency_samples=requests - failures,
        service=service,
    )


def one(budget: Budget, s: EndpointStats, **kwargs: object) -> tuple[str, str]:
    checks = evaluate([budget], {s.name: s}, min_samples=20, **kwargs)  # type: ignore[arg-type]
    assert len(checks) == 1
    return checks[0].outcome, checks[0].message


# --- the grammar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "base", "name"),
    [
        ("service_time_p95", "p95", "service_time_p95"),
        ("service_time_p99.9", "p99.9", "service_time_p99.9"),
        ("service_time_p95.0", "p95", "service_time_p95"),
        ("service_time_avg", "avg", "service_time_avg"),
        ("service_time_max", "max", "service_time_max"),
    ],
)
def test_service_time_metrics(key: str, base: str, name: str) -> None:
    metric = parse_metric(key)
    assert (metric.base, metric.name, metric.service_time, metric.is_latency) == (
        base,
        name,
        True,
        True,
    )
    assert metric.unit == "ms"
    assert not parse_metric(base).service_time


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("service_time_p95_regression", "service-time budgets have no regression form"),
        ("service_time_error_rate", "a service-time budget is service_time_<pNN|avg|max>"),
        ("service_time_mx", "did you mean 'service_time_max'?"),
        ("service_time_p100", "percentiles go from p0.1 to p99.9"),
        ("service_time", "service_time_<pNN|avg|max>"),
    ],
)
def test_bad_service_time_names(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=key) as info:
        parse_metric(key)
    assert message in str(info.value)


def test_service_time_budgets_parse_like_latency_budgets() -> None:
    assert parse_budget(TOTAL, "service_time_p95", "150ms").limit == 150.0
    with pytest.raises(ValueError, match="a bare number is ambiguous"):
        parse_budget(TOTAL, "service_time_avg", 150)
    assert percentiles_needed([parse_budget(TOTAL, "service_time_p99.9", "1s")]) == {"p99.9"}


def test_service_time_sorts_after_the_latency() -> None:
    names = ["service_time_p99", "p99", "service_time_avg", "service_time_p50", "p95", "max"]
    assert sorted(names, key=sort_key) == [
        "max",
        "p95",
        "p99",
        "service_time_avg",
        "service_time_p50",
        "service_time_p99",
    ]


# --- service time ----------------------------------------------------------------------------


def test_service_time_is_judged_on_the_service_time() -> None:
    s = stats(p95=400.0, service_p95=120.0)
    assert one(Budget(TOTAL, "p95", 300.0), s)[0] == "fail"
    outcome, message = one(Budget(TOTAL, "service_time_p95", 150.0), s)
    assert outcome == "pass"
    assert message.startswith("Service-time p95 of total was 120.0 ms, within its budget")
    outcome, message = one(Budget(TOTAL, "service_time_max", 300.0), s)
    assert (outcome, message[:40]) == ("fail", "Maximum service time of total was 360.0 ")


def test_in_the_closed_model_service_time_is_the_latency() -> None:
    s = stats(p95=250.0, service_p95=None)
    outcome, message = one(Budget(TOTAL, "service_time_p95", 200.0), s)
    assert outcome == "fail"
    assert "was 250.0 ms" in message


def test_service_time_needs_the_same_samples_as_latency() -> None:
    s = stats(requests=50)
    outcome, message = one(Budget(TOTAL, "service_time_p99", 1000.0), s)
    assert outcome == "inconclusive"
    assert "p99 needs at least 100" in message


# --- dropped iterations ----------------------------------------------------------------------


def test_dropped_boundary_exactly_one_percent_is_fine() -> None:
    assert defaults.MAX_DROPPED == 0.01
    assert not Dropped(3000, 30, 0.5).too_many()
    assert Dropped(3000, 31, 0.5).too_many()
    assert not Dropped(100, 1, 0.5).too_many()
    assert Dropped(100, 2, 0.5).too_many()
    assert not Dropped(0, 0, 0.5).too_many()
    assert Dropped(3000, 45, 0.5).sentence() == (
        "45 of 3,000 iterations (1.5%) could not start within 500ms of their schedule"
    )


@pytest.mark.parametrize("metric", ["p95", "avg", "max", "p99"])
def test_too_many_dropped_makes_a_passing_latency_check_inconclusive(metric: str) -> None:
    s = stats(p95=100.0)
    budget = Budget(TOTAL, metric, 2000.0)
    assert one(budget, s, dropped=Dropped(3000, 30, 0.5))[0] == "pass"
    outcome, message = one(budget, s, dropped=Dropped(3000, 31, 0.5))
    assert outcome == "inconclusive"
    assert "within its budget" in message  # what was measured is still said
    assert "31 of 3,000 iterations (1.033%) could not start within 500ms" in message
    assert "(raise users, or add --gate-workers)" in message


def test_too_many_dropped_leaves_service_time_error_rate_and_min_rps_alone() -> None:
    s = stats(p95=100.0)
    budgets = [
        Budget(TOTAL, "service_time_p95", 300.0),
        Budget(TOTAL, "error_rate", 0.01),
        Budget(TOTAL, "min_rps", 10.0),
    ]
    checks = evaluate(budgets, {TOTAL: s}, min_samples=20, dropped=Dropped(100, 50, 0.5))
    assert [c.outcome for c in checks] == ["pass", "pass", "pass"]
    assert not any("iterations" in c.message for c in checks)


def test_a_failure_stands_when_every_dropped_iteration_would_have_been_over() -> None:
    """Each dropped iteration would have waited at least the lag: with a limit under the lag,
    they could only have made the failure worse."""
    s = stats(p95=700.0)
    outcome, message = one(Budget(TOTAL, "p95", 300.0), s, dropped=Dropped(1000, 100, 0.5))
    assert outcome == "fail"
    assert "so the failure stands" in message
    outcome, message = one(Budget(TOTAL, "p95", 600.0), s, dropped=Dropped(1000, 100, 0.5))
    assert outcome == "inconclusive"
    assert "over its budget of 600 ms" in message


def test_a_failed_max_stands_whatever_the_lag() -> None:
    """More samples can never bring a maximum down: the dropped iterations cannot rescue a
    failed max (nor a failed max_regression), even with a lag under the limit."""
    s = stats(p95=400.0)  # max 1,200 ms
    outcome, message = one(Budget(TOTAL, "max", 1000.0), s, dropped=Dropped(1000, 100, 0.5))
    assert outcome == "fail"
    assert "so the failure stands" in message
    assert "more requests could not bring the maximum down" in message
    base = {TOTAL: stats(p95=200.0)}  # baseline max 600 ms: limit 660 ms, over the lag
    outcome, message = one(
        Budget(TOTAL, "max_regression", 0.1), s, baseline=base, dropped=Dropped(1000, 100, 0.5)
    )
    assert outcome == "fail"
    assert "so the failure stands" in message
    # a failed avg could still be rescued by faster dropped iterations: inconclusive
    outcome, _ = one(Budget(TOTAL, "avg", 150.0), s, dropped=Dropped(1000, 100, 0.1))
    assert outcome == "inconclusive"


def test_a_check_already_inconclusive_is_left_as_it_is() -> None:
    s = stats(requests=50)
    outcome, message = one(Budget(TOTAL, "p99", 300.0), s, dropped=Dropped(100, 50, 0.5))
    assert outcome == "inconclusive"
    assert "iterations" not in message


# --- stages ------------------------------------------------------------------------------------


def test_stage_checks_say_their_stage() -> None:
    s = stats(p95=400.0)
    checks = evaluate([Budget(TOTAL, "p95", 300.0)], {TOTAL: s}, min_samples=20, stage="peak")
    assert [(c.stage, c.outcome) for c in checks] == [("peak", "fail")]
    assert checks[0].message.startswith("P95 of total in stage peak was 400.0 ms")


def test_a_stage_does_not_repeat_the_all_failed_rule() -> None:
    broken = stats(requests=100, failures=100, name="GET /x")
    checks = evaluate(
        [Budget(TOTAL, "p95", 300.0)],
        {"GET /x": broken, TOTAL: stats()},
        min_samples=20,
        stage="peak",
    )
    assert [c.endpoint for c in checks] == [TOTAL]
    whole_run = evaluate([Budget(TOTAL, "p95", 300.0)], {"GET /x": broken}, min_samples=20)
    assert any(c.endpoint == "GET /x" and c.outcome == "fail" for c in whole_run)


def test_a_stage_without_the_name_says_so() -> None:
    checks = evaluate(
        [Budget("GET /y", "p95", 300.0)],
        {"GET /x": stats(name="GET /x"), TOTAL: stats()},
        min_samples=20,
        stage="peak",
    )
    assert checks[0].outcome == "inconclusive"
    assert "were made in stage peak" in checks[0].message
