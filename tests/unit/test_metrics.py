"""metrics.py: the one grammar of metric names."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from pytest_stagegate.metrics import (
    STANDARD_PERCENTILES,
    Metric,
    parse_metric,
    parse_percentile,
    sort_key,
    sorted_percentiles,
)


@pytest.mark.parametrize(
    ("name", "base", "percentile", "regression", "unit"),
    [
        ("p95", "p95", Fraction(95), False, "ms"),
        ("p95.0", "p95", Fraction(95), False, "ms"),
        ("p05", "p5", Fraction(5), False, "ms"),
        ("p99.9", "p99.9", Fraction(999, 10), False, "ms"),
        ("p0.1", "p0.1", Fraction(1, 10), False, "ms"),
        ("avg", "avg", None, False, "ms"),
        ("max", "max", None, False, "ms"),
        ("error_rate", "error_rate", None, False, "ratio"),
        ("min_rps", "min_rps", None, False, "rps"),
        ("p95_regression", "p95", Fraction(95), True, "ms"),
        ("p99.9_regression", "p99.9", Fraction(999, 10), True, "ms"),
        ("avg_regression", "avg", None, True, "ms"),
        ("max_regression", "max", None, True, "ms"),
    ],
)
def test_canonical_forms(
    name: str, base: str, percentile: Fraction | None, regression: bool, unit: str
) -> None:
    metric = parse_metric(name)
    assert metric == Metric(base, regression=regression, percentile=percentile)
    assert metric.unit == unit
    assert metric.is_latency is (unit == "ms")
    assert metric.name == (base + "_regression" if regression else base)


def test_percentiles_go_from_p0_1_to_p99_9() -> None:
    for tenths in range(1, 1000):
        whole, tenth = divmod(tenths, 10)
        text = f"p{whole}.{tenth}"
        assert parse_percentile(text).percentile == Fraction(tenths, 10), text
    for text in ("p0", "p0.0", "p99.95", "p1.25", "p", "p.5", "p-1", "p1e2", "p100.0"):
        with pytest.raises(ValueError, match=r"percentiles go from p0\.1 to p99\.9"):
            parse_percentile(text)


@pytest.mark.parametrize("name", ["p100", "p100.0", "p100_regression"])
def test_p100_is_refused_with_the_max_hint(name: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_metric(name)
    assert str(excinfo.value) == (
        f"unknown budget {name!r}: percentiles go from p0.1 to p99.9 (e.g. p95, p99.9); "
        "for the slowest request use max"
    )


def test_p101_has_no_max_hint() -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_metric("p101")
    assert "use max" not in str(excinfo.value)


@pytest.mark.parametrize("name", ["error_rate_regression", "min_rps_regression"])
def test_only_latencies_have_regressions(name: str) -> None:
    with pytest.raises(ValueError, match="only latencies have regression budgets"):
        parse_metric(name)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("p59_regresion", "did you mean"),
        ("avgg_regression", "avg_regression"),
        ("eror_rate", "error_rate"),
        ("min_rsp", "min_rps"),
        ("mean", None),
    ],
)
def test_did_you_mean(name: str, suggestion: str | None) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_metric(name)
    message = str(excinfo.value)
    assert message.startswith(f"unknown budget {name!r}: ")
    if suggestion is None:
        assert "did you mean" not in message
        assert "valid budgets are pNN, pNN.N, avg, max, error_rate, min_rps" in message
    else:
        assert "did you mean" in message
        assert suggestion in message


def test_a_misspelt_regression_explains_the_form() -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_metric("median_regression")
    assert "a regression budget is <pNN|avg|max>_regression" in str(excinfo.value)


def test_sort_order_puts_percentiles_in_numeric_order() -> None:
    ordered = [
        "avg",
        "avg_regression",
        "error_rate",
        "max",
        "min_rps",
        "p9",
        "p50",
        "p95",
        "p95_regression",
        "p99",
        "p99.9",
        "p100",  # outside the grammar: after the percentiles
        "zzz",
    ]
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=sort_key) == ordered
    # what a string sort gets wrong
    assert sorted(["p9", "p50", "p99.9", "p99"], key=sort_key) == ["p9", "p50", "p99", "p99.9"]


def test_sorted_percentiles_adds_the_standard_ones_canonical_without_repeats() -> None:
    assert STANDARD_PERCENTILES == ("p50", "p90", "p95", "p99")
    assert sorted_percentiles(["p99.9", "p95.0", "p9", "p50"]) == [
        "p9",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_status_classes_are_rates_like_error_rate(n: int) -> None:
    metric = parse_metric(f"status_{n}xx")
    assert metric.name == metric.base == f"status_{n}xx"
    assert metric.status_class == f"{n}xx"
    assert metric.unit == "ratio" and metric.is_rate
    assert not metric.is_latency and not metric.regression and metric.percentile is None
    assert parse_metric("error_rate").is_rate and parse_metric("error_rate").status_class is None
    assert not parse_metric("p95").is_rate


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("status_5xx_regression", "only latencies have regression budgets.*use status_5xx"),
        ("status_6xx", "a status budget is status_1xx, .* or status_5xx.*did you mean 'status_5"),
        ("status_500", "did you mean 'status_5xx'"),
        ("status_5XX", "did you mean 'status_5xx'"),
        ("service_time_status_5xx", "a service-time budget is"),
    ],
)
def test_status_class_misspellings_say_what_is_valid(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_metric(key)
