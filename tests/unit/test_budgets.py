"""Budgets: every valid and invalid form of parse_budget, every rule of evaluate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_stagegate import budgets, defaults
from pytest_stagegate.budgets import (
    STANDARD_PERCENTILES,
    TOTAL,
    Budget,
    Check,
    EndpointStats,
    evaluate,
    parse_budget,
    percentiles_needed,
    samples_needed,
    summarize,
)

PRODUCTS = "GET /api/products"
PRODUCT = "GET /api/products/{id}"
SATURATED = "the load generator was saturated (CPU 98% of a core)"


def test_public_names() -> None:
    for name in budgets.__all__:
        assert hasattr(budgets, name), name
    assert STANDARD_PERCENTILES == ("p50", "p90", "p95", "p99")
    assert TOTAL == "total"


# --- parse_budget: valid ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "metric", "limit"),
    [
        ("p95", "300ms", "p95", 300.0),
        ("p99", "1.5s", "p99", 1500.0),
        ("p50", "2m", "p50", 120_000.0),
        ("p90", "1h", "p90", 3_600_000.0),
        ("p1", "10ms", "p1", 10.0),
        ("p99.9", "500ms", "p99.9", 500.0),
        ("p0.1", "1ms", "p0.1", 1.0),
        ("p99.5", " 250 ms ", "p99.5", 250.0),
        ("p95.0", "300ms", "p95", 300.0),  # canonical: reads the same value as p95
        ("p05", "300ms", "p5", 300.0),
        ("avg", "120ms", "avg", 120.0),
        ("max", "2s", "max", 2000.0),
        ("max", "0.5ms", "max", 0.5),
        ("error_rate", "1%", "error_rate", 0.01),
        ("error_rate", "0.5%", "error_rate", 0.005),
        ("error_rate", 0.01, "error_rate", 0.01),
        ("error_rate", 0, "error_rate", 0.0),
        ("error_rate", "100%", "error_rate", 1.0),
        ("min_rps", 20, "min_rps", 20.0),
        ("min_rps", 0.5, "min_rps", 0.5),
        ("min_rps", "20", "min_rps", 20.0),
        ("p95_regression", "10%", "p95_regression", 0.1),
        ("p95_regression", 0.1, "p95_regression", 0.1),
        ("p95_regression", 0, "p95_regression", 0.0),
        ("p95_regression", 1, "p95_regression", 1.0),
        ("p99.9_regression", "150%", "p99.9_regression", 1.5),
        ("p95.0_regression", "10%", "p95_regression", 0.1),
        ("avg_regression", "1000%", "avg_regression", 10.0),
        ("max_regression", " 25 % ", "max_regression", 0.25),
        ("max_regression", "0.3", "max_regression", 0.3),
        ("max_regression", "5e-2", "max_regression", 0.05),
        ("min_rps", "1e3", "min_rps", 1000.0),
    ],
)
def test_parse_valid(key: str, value: object, metric: str, limit: float) -> None:
    budget = parse_budget(PRODUCT, key, value)
    assert (budget.endpoint, budget.metric) == (PRODUCT, metric)
    assert budget.limit == pytest.approx(limit)


def test_parse_keeps_the_source() -> None:
    budget = parse_budget(TOTAL, "p95", "300ms", source="stagegate.yaml:31")
    assert budget.source == "stagegate.yaml:31"
    assert parse_budget(TOTAL, "p95", "300ms").source == ""


# --- parse_budget: invalid ----------------------------------------------------------------

PERCENTILE_RANGE = r"percentiles go from p0\.1 to p99\.9 \(e\.g\. p95, p99\.9\)"
VALID_LIST = (
    r"valid budgets are pNN, pNN\.N, avg, max, error_rate, min_rps, status_1xx \.\. status_5xx, "
    r"<pNN\|avg\|max>_regression and service_time_<pNN\|avg\|max>"
)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("p100", rf"^unknown budget 'p100': {PERCENTILE_RANGE}; for the slowest request use max$"),
        ("p0", rf"^unknown budget 'p0': {PERCENTILE_RANGE}$"),
        ("p0.0", rf"^unknown budget 'p0.0': {PERCENTILE_RANGE}$"),
        ("p101", rf"^unknown budget 'p101': {PERCENTILE_RANGE}$"),
        ("p9.99", rf"^unknown budget 'p9.99': {PERCENTILE_RANGE}$"),
        ("p95.", PERCENTILE_RANGE),
        ("p.5", PERCENTILE_RANGE),
        ("p", VALID_LIST),
        ("px", rf"^unknown budget 'px': {VALID_LIST}"),
        ("latency", rf"^unknown budget 'latency': {VALID_LIST}$"),
        ("", VALID_LIST),
        ("P95", "did you mean 'p95'"),
        ("p95ms", "did you mean 'p95'"),
        ("errors", "did you mean 'error_rate'"),
        ("error-rate", "did you mean 'error_rate'"),
        ("rps", VALID_LIST),
        ("avg_ms", "did you mean 'avg'"),
        ("p100_regression", PERCENTILE_RANGE),
        ("p95_regresion", "did you mean 'p95_regression'"),
        ("latency_regression", r"a regression budget is <pNN\|avg\|max>_regression"),
        ("error_rate_regression", "only latencies have regression budgets"),
        ("min_rps_regression", "only latencies have regression budgets"),
        ("_regression", "a regression budget is"),
    ],
)
def test_parse_unknown_key(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_budget(TOTAL, key, "1s")


DURATION = r"expected a duration such as 250ms, 1\.5s, 2m or 1h"
BARE = r"expected a duration with a unit such as 250ms or 1\.5s"
RATE = r"expected a rate such as 1% or 0\.01"
RPS = r"expected a positive number of requests per second"
REGRESSION = r"expected an allowed increase such as 10%, 150% or 0\.1 \(0 to 1000%\)"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("p95", "fast", rf"^{DURATION}, got 'fast'$"),
        ("p95", "300 parsecs", DURATION),
        ("p95", "-5ms", DURATION),
        ("p95", None, DURATION),
        ("p95", True, DURATION),
        ("p95", [300], DURATION),
        ("p95", 300, rf"^{BARE}, got 300: a bare number is ambiguous, write 300ms or 300s$"),
        ("p95", 0.3, "write 0.3ms or 0.3s"),
        ("p95", 10**400, BARE),
        ("p95", "300", BARE),
        ("avg", " 1.5 ", BARE),
        ("max", "0ms", "above 0"),
        ("p99.9", "0s", "above 0"),
        ("error_rate", "5", "ambiguous: write 5% for 5 percent"),
        ("error_rate", "150%", RATE),
        ("error_rate", -0.1, RATE),
        ("error_rate", "lots", RATE),
        ("error_rate", False, RATE),
        ("min_rps", 0, RPS),
        ("min_rps", -3, RPS),
        ("min_rps", "many", RPS),
        ("min_rps", math.inf, RPS),
        ("min_rps", math.nan, RPS),
        ("min_rps", True, RPS),
        ("min_rps", "1_0", RPS),
        ("min_rps", "inf", RPS),
        ("min_rps", "20%", RPS),
        ("min_rps", 10**400, RPS),
        ("min_rps", -0.0, RPS),
        ("min_rps", None, RPS),
        ("p95_regression", "slower", REGRESSION),
        ("p95_regression", "-5%", REGRESSION),
        ("p95_regression", "2000%", REGRESSION),
        ("p95_regression", "nan%", REGRESSION),
        ("p95_regression", True, REGRESSION),
        ("p95_regression", None, REGRESSION),
        ("p95_regression", 10**400, REGRESSION),
        ("p95_regression", "1_0%", REGRESSION),
        ("p95_regression", "10%%", REGRESSION),
        ("p95_regression", 1e309, REGRESSION),
        # `10` almost always means 10%, not 1000%: refuse the guess.
        ("p95_regression", 10, r"a bare number is a fraction \(0\.1 = 10%\), so write 10%"),
        ("avg_regression", "1.5", "a bare number is a fraction"),
    ],
)
def test_parse_bad_value(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_budget(TOTAL, key, value)
    # The config loader puts "file:line: key: " in front; the message must not repeat it.
    assert not str(info.value).startswith(key)


# --- metric helpers -----------------------------------------------------------------------


def test_percentiles_needed() -> None:
    plan = [
        Budget(TOTAL, "p95", 300.0),
        Budget(PRODUCT, "p99.9", 500.0),
        Budget(PRODUCT, "p95", 400.0),
        Budget(PRODUCT, "p90_regression", 0.1),
        Budget(TOTAL, "avg", 100.0),
        Budget(TOTAL, "max_regression", 0.5),
        Budget(TOTAL, "error_rate", 0.01),
        Budget(TOTAL, "min_rps", 20.0),
    ]
    assert percentiles_needed(plan) == {"p95", "p99.9", "p90"}
    assert percentiles_needed([]) == set()


@pytest.mark.parametrize(
    ("metric", "min_samples", "needed"),
    [
        ("p99", 10, 100),  # 1 / (1 - 0.99), exactly: floats would say 101
        ("p99.9", 10, 1000),  # and 1001 here
        ("p95", 10, 20),
        ("p90", 1, 10),
        ("p50", 1, 2),
        ("p0.1", 1, 2),
        ("p99.5", 100, 200),
        ("p95", 100, 100),  # min_samples dominates
        ("avg", 100, 100),
        ("max", 0, 1),  # a check is never judged on no samples at all
        ("error_rate", 50, 50),
        ("p99_regression", 10, 100),
    ],
)
def test_samples_needed(metric: str, min_samples: int, needed: int) -> None:
    assert samples_needed(metric, min_samples) == needed


# --- evaluate -----------------------------------------------------------------------------


def stats_for(
    name: str,
    requests: int = 2140,
    *,
    failures: int = 0,
    rps: float = 50.0,
    avg: float = 100.0,
    low: float = 5.0,
    high: float = 900.0,
    **percentiles: float,
) -> EndpointStats:
    return EndpointStats(
        name=name,
        requests=requests,
        failures=failures,
        rps=rps,
        avg_ms=avg,
        min_ms=low,
        max_ms=high,
        percentiles={k.replace("_", "."): v for k, v in percentiles.items()},
    )


def one(
    budget: Budget,
    *stats: EndpointStats,
    min_samples: int = 100,
    **kwargs: Any,
) -> Check:
    checks = evaluate([budget], {s.name: s for s in stats}, min_samples=min_samples, **kwargs)
    assert len(checks) == 1
    return checks[0]


def test_the_messages_of_the_contract() -> None:
    check = one(Budget(PRODUCTS, "p95", 300.0), stats_for(PRODUCTS, 2140, p95=412.0))
    assert check.message == (
        "P95 of GET /api/products was 412.0 ms, over its budget of 300 ms (2,140 requests)."
    )
    check = one(Budget(TOTAL, "error_rate", 0.01), stats_for(TOTAL, 5000, failures=160))
    assert check.message == (
        "Error rate of total was 3.2%, over its budget of 1% (5,000 requests, 160 failed)."
    )


@pytest.mark.parametrize(
    ("metric", "limit", "stats", "outcome", "observed", "unit", "words"),
    [
        ("p95", 300.0, {"p95": 299.9}, "pass", 299.9, "ms", "P95 of X was 299.9 ms, within"),
        ("p95", 300.0, {"p95": 300.0}, "pass", 300.0, "ms", "within its budget of 300 ms"),
        ("p95", 300.0, {"p95": 300.1}, "fail", 300.1, "ms", "over its budget of 300 ms"),
        ("p99.9", 1500.0, {"p99_9": 1600.0}, "fail", 1600.0, "ms", "P99.9 of X was 1,600 ms"),
        ("avg", 100.0, {"avg": 100.0}, "pass", 100.0, "ms", "Average latency of X"),
        ("avg", 100.0, {"avg": 100.5}, "fail", 100.5, "ms", "over its budget of 100 ms"),
        ("max", 0.5, {"high": 0.75}, "fail", 0.75, "ms", "was 0.75 ms, over its budget of 0.5 ms"),
        ("max", 1000.0, {"high": 1000.0}, "pass", 1000.0, "ms", "Maximum latency of X"),
        ("error_rate", 0.01, {"failures": 21}, "pass", 0.01, "ratio", "(2,100 requests, 21"),
        ("error_rate", 0.01, {"failures": 22}, "fail", 22 / 2100, "ratio", "was 1.05%, over"),
        ("error_rate", 0.0, {"failures": 0}, "pass", 0.0, "ratio", "was 0%, within its"),
        ("min_rps", 20.0, {"rps": 20.0}, "pass", 20.0, "rps", "at or above its minimum of 20"),
        ("min_rps", 20.0, {"rps": 19.9}, "fail", 19.9, "rps", "was 19.9 req/s, under"),
    ],
)
def test_each_metric(
    metric: str,
    limit: float,
    stats: dict[str, Any],
    outcome: str,
    observed: float,
    unit: str,
    words: str,
) -> None:
    check = one(Budget("X", metric, limit), stats_for("X", 2100, **stats))
    assert check.outcome == outcome
    assert check.observed == pytest.approx(observed)
    assert check.unit == unit
    assert check.limit == limit
    assert check.samples == 2100
    assert check.baseline is None
    assert (check.endpoint, check.metric) == ("X", metric)
    assert words in check.message
    assert "2,100 requests" in check.message
    assert check.message.endswith(".")


def test_order_and_count_follow_the_budgets() -> None:
    plan = [Budget(TOTAL, "avg", 1.0), Budget(TOTAL, "max", 1e6), Budget(TOTAL, "avg", 1e6)]
    checks = evaluate(plan, {TOTAL: stats_for(TOTAL)}, min_samples=1)
    assert [(c.metric, c.outcome) for c in checks] == [
        ("avg", "fail"),
        ("max", "pass"),
        ("avg", "pass"),
    ]
    assert evaluate([], {}, min_samples=100) == []


def test_unknown_metric_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown budget 'latency'"):
        evaluate([Budget(TOTAL, "latency", 1.0)], {TOTAL: stats_for(TOTAL)}, min_samples=1)


# --- evaluate: no requests of that name ---------------------------------------------------


def test_no_requests_named_like_the_budget() -> None:
    check = one(
        Budget("GET /api/product/{id}", "p99", 500.0),
        stats_for(TOTAL),
        stats_for(PRODUCTS),
        stats_for(PRODUCT),
    )
    assert check.outcome == "inconclusive"
    assert check.observed is None
    assert check.samples == 0
    assert check.message == (
        "No requests named 'GET /api/product/{id}' were made, so its p99 budget could not be "
        "checked; the requests made were 'GET /api/products', 'GET /api/products/{id}'. "
        "Did you mean 'GET /api/products/{id}'?"
    )


def test_no_requests_at_all() -> None:
    check = one(Budget(TOTAL, "p95", 300.0))
    assert check.outcome == "inconclusive"
    assert "No requests were recorded at all" in check.message


def test_no_total_statistics() -> None:
    check = one(Budget(TOTAL, "p95", 300.0), stats_for(PRODUCTS))
    assert check.outcome == "inconclusive"
    assert "No statistics for all requests together ('total')" in check.message


def test_a_misspelt_total_is_suggested() -> None:
    check = one(Budget("Total", "p95", 300.0), stats_for(TOTAL), stats_for(PRODUCTS))
    assert check.outcome == "inconclusive"
    assert "the requests made were 'GET /api/products'. Did you mean 'total'?" in check.message


# --- evaluate: sample counts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "min_samples", "requests", "outcome"),
    [
        ("avg", 100, 99, "inconclusive"),
        ("avg", 100, 100, "pass"),
        ("error_rate", 100, 99, "inconclusive"),
        ("error_rate", 100, 100, "pass"),
        ("min_rps", 100, 99, "inconclusive"),
        ("min_rps", 100, 100, "pass"),
        ("max", 100, 99, "inconclusive"),
        ("p50", 100, 99, "inconclusive"),
        ("p50", 100, 100, "pass"),
        ("p95", 10, 19, "inconclusive"),  # ceil(1 / 0.05) = 20
        ("p95", 10, 20, "pass"),
        ("p99", 10, 99, "inconclusive"),
        ("p99", 10, 100, "pass"),
        ("p99.9", 100, 999, "inconclusive"),
        ("p99.9", 100, 1000, "pass"),
        ("avg", 0, 0, "inconclusive"),  # nothing measured is never a pass
        ("avg", 0, 1, "pass"),
    ],
)
def test_too_few_samples_is_never_a_pass(
    metric: str, min_samples: int, requests: int, outcome: str
) -> None:
    stats = stats_for("X", requests, p50=10.0, p95=10.0, p99=10.0, p99_9=10.0)
    limit = 1.0 if metric == "min_rps" else 1e6  # a limit every metric here meets
    check = one(Budget("X", metric, limit), stats, min_samples=min_samples)
    assert check.outcome == outcome
    assert check.samples == requests


def test_too_few_samples_message_says_how_many_and_why() -> None:
    check = one(Budget("X", "p99", 300.0), stats_for("X", 57, p99=120.0), min_samples=10)
    assert check.outcome == "inconclusive"
    assert check.observed == 120.0
    assert check.message == (
        "P99 of X could not be judged: only 57 requests were measured and p99 needs at least "
        "100; it was 120.0 ms. Run the load longer."
    )
    check = one(Budget("X", "avg", 300.0), stats_for("X", 1), min_samples=100)
    assert "only 1 request was measured" in check.message
    assert check.message == (
        "Average latency of X could not be judged: only 1 request was measured and the gate "
        "needs at least 100 (min_samples); it was 100.0 ms. Run the load longer, or lower "
        "gate.min_samples."
    )
    assert check.message.count("Run the load longer") == 1


def test_zero_samples_observes_nothing() -> None:
    check = one(Budget("X", "avg", 300.0), stats_for("X", 0, avg=0.0))
    assert check.outcome == "inconclusive"
    assert check.observed is None
    assert check.samples == 0
    assert "no requests to it were measured" in check.message
    assert "at least 100" in check.message


@pytest.mark.parametrize(
    ("metric", "limit", "stats", "outcome", "words"),
    [
        # A single request over the maximum is a failure however many more there could be.
        ("max", 5000.0, {"high": 10_000.0}, "fail", "more requests could not bring"),
        ("max", 5000.0, {"high": 4000.0}, "inconclusive", "could not be judged"),
        # 56 failures of 57: even 43 successes more would leave 56% (57 of 57 is the
        # all-failed rule, test_a_name_whose_requests_all_failed_always_fails).
        ("error_rate", 0.01, {"failures": 56}, "fail", "the 43 missing ones had all succeeded"),
        # 1 failure in 100 is exactly 1%: more successes could still make it pass.
        ("error_rate", 0.01, {"failures": 1}, "inconclusive", "could not be judged"),
        ("error_rate", 0.01, {"failures": 2}, "fail", "would be 2%"),
        ("min_rps", 20.0, {"rps": 1.9}, "fail", "a count of what was served"),
        ("min_rps", 1.0, {"rps": 1.9}, "inconclusive", "could not be judged"),
        # A percentile of few samples is noise both ways.
        ("p95", 300.0, {"p95": 10_000.0}, "inconclusive", "could not be judged"),
        ("avg", 300.0, {"avg": 10_000.0}, "inconclusive", "could not be judged"),
    ],
)
def test_too_few_samples_fail_only_when_certain(
    metric: str, limit: float, stats: dict[str, Any], outcome: str, words: str
) -> None:
    check = one(Budget("X", metric, limit), stats_for("X", 57, **stats), min_samples=100)
    assert check.outcome == outcome
    assert words in check.message
    assert "57 requests" in check.message


def test_missing_percentile_is_inconclusive() -> None:
    check = one(Budget("X", "p99.9", 300.0), stats_for("X", 5000, p95=100.0))
    assert check.outcome == "inconclusive"
    assert check.observed is None
    assert check.samples == 5000
    assert (
        check.message
        == "P99.9 of X could not be judged: the load gate did not compute p99.9 for it."
    )


# --- evaluate: regressions ----------------------------------------------------------------


def test_regression_pass_and_fail() -> None:
    now = stats_for(TOTAL, 5000, p95=412.0)
    before = {TOTAL: stats_for(TOTAL, 4000, p95=329.0)}
    fail = one(Budget(TOTAL, "p95_regression", 0.1), now, baseline=before)
    assert fail.outcome == "fail"
    assert fail.observed == 412.0
    assert fail.baseline == 329.0
    assert fail.limit == pytest.approx(361.9)
    assert fail.unit == "ms"
    assert fail.message == (
        "P95 of total was 412.0 ms, 25.2% above its baseline of 329.0 ms: over its budget of "
        "+10% (at most 361.9 ms; 5,000 requests)."
    )
    ok = one(Budget(TOTAL, "p95_regression", 0.5), now, baseline=before)
    assert ok.outcome == "pass"
    assert ok.limit == pytest.approx(493.5)
    assert "within its budget of +50%" in ok.message


@pytest.mark.parametrize(
    ("metric", "allowed", "now", "then", "outcome"),
    [
        ("avg_regression", 0.1, {"avg": 110.0}, {"avg": 100.0}, "pass"),  # exactly at the limit
        ("avg_regression", 0.1, {"avg": 110.2}, {"avg": 100.0}, "fail"),
        ("max_regression", 0.0, {"high": 900.0}, {"high": 900.0}, "pass"),
        ("max_regression", 0.0, {"high": 900.1}, {"high": 900.0}, "fail"),
        ("p99_regression", 1.5, {"p99": 240.0}, {"p99": 100.0}, "pass"),  # over 100% allowed
        ("p99_regression", 1.5, {"p99": 260.0}, {"p99": 100.0}, "fail"),
        ("p50_regression", 0.1, {"p50": 50.0}, {"p50": 100.0}, "pass"),  # faster
    ],
)
def test_regression_limits(
    metric: str,
    allowed: float,
    now: dict[str, Any],
    then: dict[str, Any],
    outcome: str,
) -> None:
    check = one(
        Budget("X", metric, allowed),
        stats_for("X", 1000, **now),
        baseline={"X": stats_for("X", 1000, **then)},
    )
    assert check.outcome == outcome
    base = next(iter(then.values()))
    assert check.baseline == base
    assert check.limit == pytest.approx(base * (1 + allowed))


def test_regression_message_says_below_and_same() -> None:
    faster = one(
        Budget("X", "p50_regression", 0.1),
        stats_for("X", 1000, p50=50.0),
        baseline={"X": stats_for("X", 1000, p50=100.0)},
    )
    assert "50.0% below its baseline of 100.0 ms" in faster.message
    same = one(
        Budget("X", "avg_regression", 0.1),
        stats_for("X", 1000, avg=100.0),
        baseline={"X": stats_for("X", 1000, avg=100.0)},
    )
    assert "the same as its baseline of 100.0 ms" in same.message


@pytest.mark.parametrize(
    ("baseline", "words"),
    [
        (None, "No baseline value for p95 of X: no baseline verdict was given (--gate-baseline)"),
        ({}, "No baseline value for p95 of X: the baseline made no requests named 'X'"),
        ({"X": stats_for("X", 0)}, "the baseline made no requests named 'X'"),
        ({"X": stats_for("X", 1000)}, "the baseline verdict did not record p95"),
        ({"X": stats_for("X", 50, p95=300.0)}, "the baseline has only 50 requests"),
        ({"X": stats_for("X", 1000, p95=0.0)}, "No usable baseline value"),
    ],
)
def test_regression_without_a_usable_baseline(
    baseline: Mapping[str, EndpointStats] | None, words: str
) -> None:
    check = one(
        Budget("X", "p95_regression", 0.1), stats_for("X", 1000, p95=400.0), baseline=baseline
    )
    assert check.outcome == "inconclusive"
    assert words in check.message
    assert "400.0 ms" in check.message
    # Nothing to compare: the limit stays the allowed increase, as a ratio.
    assert check.observed is None
    assert check.baseline is None
    assert check.limit == 0.1
    assert check.unit == "ratio"


def test_regression_without_baseline_and_few_samples() -> None:
    check = one(Budget("X", "avg_regression", 0.1), stats_for("X", 5, avg=400.0))
    assert check.outcome == "inconclusive"
    assert check.observed is None  # its unit is "ratio": an ms value would be mislabelled
    assert "only 5 requests" in check.message


def test_regression_max_over_with_few_samples_fails() -> None:
    check = one(
        Budget("X", "max_regression", 0.1),
        stats_for("X", 20, high=2000.0),
        baseline={"X": stats_for("X", 1000, high=1000.0)},
    )
    assert check.outcome == "fail"
    assert "+10% on its baseline of 1,000 ms" in check.message


# --- evaluate: saturation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "stats"),
    [
        (Budget("X", "p95", 300.0), {"p95": 412.0}),
        (Budget("X", "avg", 50.0), {"avg": 100.0}),
        (Budget("X", "max", 500.0), {"high": 900.0}),
        (Budget("X", "p95_regression", 0.1), {"p95": 412.0}),
    ],
)
def test_saturation_makes_a_latency_failure_inconclusive(
    budget: Budget, stats: dict[str, Any]
) -> None:
    baseline = {"X": stats_for("X", 1000, p95=300.0)}
    plain = one(budget, stats_for("X", 1000, **stats), baseline=baseline)
    assert plain.outcome == "fail"
    check = one(budget, stats_for("X", 1000, **stats), baseline=baseline, saturated=SATURATED)
    assert check.outcome == "inconclusive"
    assert check.observed == plain.observed
    assert check.limit == plain.limit
    assert check.message.startswith(plain.message)
    assert "The load generator was saturated (CPU 98% of a core)" in check.message
    assert "the load generator's own queueing rather than the server's" in check.message
    assert "fewer users" in check.message
    assert "--gate-workers" in check.message


def test_saturation_leaves_a_pass_alone() -> None:
    check = one(Budget("X", "p95", 500.0), stats_for("X", 1000, p95=412.0), saturated=SATURATED)
    assert check.outcome == "pass"
    assert "saturated" not in check.message


def test_saturation_leaves_the_error_rate_alone() -> None:
    check = one(
        Budget("X", "error_rate", 0.01), stats_for("X", 1000, failures=50), saturated=SATURATED
    )
    assert check.outcome == "fail"
    assert "saturated" not in check.message


def test_saturation_makes_a_throughput_failure_inconclusive() -> None:
    check = one(Budget("X", "min_rps", 20.0), stats_for("X", 1000, rps=12.0), saturated=SATURATED)
    assert check.outcome == "inconclusive"
    assert "could not produce the load asked for" in check.message
    assert "--gate-workers" in check.message


def test_saturation_also_covers_a_certain_failure_on_few_samples() -> None:
    check = one(
        Budget("X", "max", 500.0), stats_for("X", 10, high=9000.0), saturated="it was saturated."
    )
    assert check.outcome == "inconclusive"
    assert "It was saturated, so this latency" in check.message


# --- summarize ----------------------------------------------------------------------------


def check_with(outcome: str) -> Check:
    return Check("X", "p95", 1.0, 1.0, 100, outcome, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ([], "pass"),
        (["pass"], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "inconclusive"], "inconclusive"),
        (["inconclusive", "fail", "pass"], "fail"),
        (["fail"], "fail"),
    ],
)
def test_summarize(outcomes: list[str], verdict: str) -> None:
    assert summarize([check_with(o) for o in outcomes]) == verdict


# --- failed requests (issue 10): default error budgets, waivers, all failed, latency ---------


def failing(
    name: str,
    requests: int,
    failures: int,
    *,
    timeouts: int = 0,
    top_error: str = "HTTP 500",
    **fields: Any,
) -> EndpointStats:
    """Stats as the load measures them since 0.2: latency over successes and timeouts."""
    return EndpointStats(
        name=name,
        requests=requests,
        failures=failures,
        rps=fields.pop("rps", (requests - failures) / 10.0),
        avg_ms=fields.pop("avg", 50.0),
        min_ms=fields.pop("low", 5.0),
        max_ms=fields.pop("high", 90.0),
        percentiles=fields.pop("percentiles", {"p95": 80.0}),
        timeouts=timeouts,
        latency_samples=requests - failures + timeouts,
        top_error=top_error,
        **fields,
    )


def test_every_name_and_total_get_the_default_error_budget() -> None:
    stats = {
        "GET /ok": failing("GET /ok", 1000, 0),
        "GET /missing": failing("GET /missing", 1000, 20, top_error="HTTP 404"),
        TOTAL: failing(TOTAL, 2000, 20),
    }
    checks = evaluate([], stats, min_samples=100, default_error_rate=defaults.ERROR_RATE)
    by_name = {c.endpoint: c for c in checks}
    assert set(by_name) == {"GET /ok", "GET /missing", TOTAL}
    assert all(c.metric == "error_rate" and c.limit == 0.01 for c in checks)
    assert by_name["GET /ok"].outcome == "pass"
    assert by_name["GET /missing"].outcome == "fail"
    assert "over its default budget of 1%" in by_name["GET /missing"].message
    assert by_name[TOTAL].outcome == "pass"  # exactly 1%
    # None: no defaults (the pure function as 0.1 called it)
    assert evaluate([], {"GET /ok": stats["GET /ok"]}, min_samples=1) == []


def test_a_written_error_budget_replaces_the_default_and_gate_changes_it() -> None:
    stats = {"GET /a": failing("GET /a", 1000, 30), TOTAL: failing(TOTAL, 1000, 30)}
    written = Budget("GET /a", "error_rate", 0.05, source="stagegate.yaml:9")
    checks = evaluate([written], stats, min_samples=100, default_error_rate=0.02)
    assert [(c.endpoint, c.limit, c.outcome) for c in checks] == [
        ("GET /a", 0.05, "pass"),
        (TOTAL, 0.02, "fail"),
    ]
    assert "default" not in checks[0].message


def test_default_error_budgets_skip_waived_and_written_names() -> None:
    written = [Budget("GET /a", "error_rate", 0.05), Budget("GET /b", "p95", 300.0)]
    added = budgets.default_error_budgets(
        written, ["GET /a", "GET /b", "GET /c"], rate=0.03, waivers=[budgets.Waiver("GET /c")]
    )
    assert added[:2] == written
    assert [(b.endpoint, b.metric, b.limit, b.source) for b in added[2:]] == [
        ("GET /b", "error_rate", 0.03, budgets.DEFAULT_SOURCE),
        (TOTAL, "error_rate", 0.03, budgets.DEFAULT_SOURCE),
    ]


def test_a_waived_name_has_no_error_check_and_says_so() -> None:
    waiver = budgets.Waiver("GET /flaky", source="stagegate.yaml:12")
    stats = {"GET /flaky": failing("GET /flaky", 1000, 500), TOTAL: failing(TOTAL, 1000, 5)}
    checks = evaluate([], stats, min_samples=100, default_error_rate=0.01, waivers=[waiver])
    assert [(c.endpoint, c.outcome) for c in checks] == [(TOTAL, "pass")]
    assert waiver.sentence() == (
        "Warning: the error budget of GET /flaky is waived (error_rate: off at "
        "stagegate.yaml:12): its failed requests do not fail the gate unless every one of "
        "them failed."
    )


@pytest.mark.parametrize("how", ["default", "written 100%", "waived", "none"])
def test_a_name_whose_requests_all_failed_always_fails(how: str) -> None:
    dead = failing("GET /x", 40, 40, top_error="HTTP 500")
    stats = {"GET /x": dead, TOTAL: failing(TOTAL, 4000, 40)}
    written = [Budget("GET /x", "error_rate", 1.0)] if how == "written 100%" else []
    waivers = [budgets.Waiver("GET /x", "stagegate.yaml:3")] if how == "waived" else []
    default = None if how == "none" else 0.01
    checks = evaluate(written, stats, min_samples=100, default_error_rate=default, waivers=waivers)
    dead_checks = [c for c in checks if c.endpoint == "GET /x"]
    assert len(dead_checks) == 1  # fewer than min_samples: still no "inconclusive"
    check = dead_checks[0]
    assert (check.metric, check.outcome, check.observed, check.samples) == (
        "error_rate",
        "fail",
        1.0,
        40,
    )
    assert check.message.startswith("Every request to GET /x failed (most often HTTP 500)")
    if how == "waived":
        assert "its error budget is waived (error_rate: off at stagegate.yaml:3), but" in (
            check.message
        )
    assert summarize(checks) == "fail"


def test_every_request_timing_out_says_the_target_did_not_answer() -> None:
    hung = failing("GET /slow", 12, 12, timeouts=12, top_error="no complete response within 2 s")
    check = one(Budget("GET /slow", "error_rate", 0.01), hung)
    assert check.outcome == "fail"
    assert check.message.startswith(
        "The target did not answer within the timeout: every request to GET /slow timed out "
        "(no complete response within 2 s)"
    )
    assert budgets.all_failed_sentence(failing(TOTAL, 3, 3, top_error="")) == (
        "Every request failed"
    )


def test_latency_and_throughput_of_a_dead_target_never_pass() -> None:
    # every request refused at once: no latency sample, no successful response
    dead = failing("GET /x", 2000, 2000, top_error="ConnectionRefusedError", rps=0.0)
    plan = [
        Budget("GET /x", "p95", 300.0),
        Budget("GET /x", "avg", 100.0),
        Budget("GET /x", "max", 1000.0),
        Budget("GET /x", "min_rps", 10.0),
    ]
    checks = evaluate(plan, {"GET /x": dead}, min_samples=100)
    for check in checks[:3]:
        assert (check.outcome, check.observed, check.samples) == ("inconclusive", None, 0)
        assert "none of its 2,000 requests succeeded" in check.message
    assert (checks[3].outcome, checks[3].observed) == ("fail", 0.0)
    # no error budget given: the all-failed rule adds its own failing check
    assert (checks[4].metric, checks[4].outcome) == ("error_rate", "fail")
    assert "it has no error budget, but" in checks[4].message
    assert not any(c.outcome == "pass" for c in checks)


def test_latency_samples_are_the_successes_and_timeouts() -> None:
    # 150 requests, 60 refused fast: 90 judged, fewer than the 100 p99 needs
    stats = failing("GET /x", 150, 62, timeouts=2, percentiles={"p95": 80.0, "p99": 2000.0})
    p99 = one(Budget("GET /x", "p99", 500.0), stats, min_samples=10)
    assert (p99.outcome, p99.samples) == ("inconclusive", 90)
    p95 = one(Budget("GET /x", "p95", 100.0), stats, min_samples=10)
    assert (p95.outcome, p95.samples) == ("pass", 90)
    assert "(90 requests, 2 timed out; 60 other failed not counted)" in p95.message
    err = one(Budget("GET /x", "error_rate", 0.5), stats, min_samples=10)
    assert err.samples == 150


def test_min_rps_counts_successful_responses() -> None:
    # the load child's rps is successes per second; the check reads it as it is
    check = one(Budget("GET /x", "min_rps", 10.0), failing("GET /x", 200, 150, rps=5.0))
    assert (check.outcome, check.observed) == ("fail", 5.0)


@pytest.mark.parametrize(
    ("value", "waived"),
    [("off", True), (" OFF ", True), (False, True), ("1%", False), (0, False), (None, False)],
)
def test_is_waiver(value: object, waived: bool) -> None:
    assert budgets.is_waiver("error_rate", value) is waived
    assert budgets.is_waiver("p95", value) is False
