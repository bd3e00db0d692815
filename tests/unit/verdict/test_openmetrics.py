"""``verdict.openmetrics``: a verdict's data -> OpenMetrics text, read back by
prometheus_client's parser (a real OpenMetrics parser, not ours)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_stagegate.budgets import EndpointStats
from pytest_stagegate.verdict import GateRecord
from pytest_stagegate.verdict.openmetrics import escape_label, render
from tests.verdict_samples import fail_verdict, pass_verdict, verdict

parser = pytest.importorskip(
    "prometheus_client.openmetrics.parser", reason="prometheus-client (the test extra) is missing"
)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by (name, labels), through prometheus_client's OpenMetrics parser."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge", family
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, key
            out[key] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, frozenset({"target": "staging", **labels}.items()))]


def test_the_values_are_the_verdicts() -> None:
    data = fail_verdict().to_dict()
    text = render(data)
    assert text.endswith("# EOF\n")
    found = samples(text)
    assert value(found, "stagegate_verdict", state="fail") == 1
    for other in ("pass", "error", "inconclusive"):
        assert value(found, "stagegate_verdict", state=other) == 0
    assert value(found, "stagegate_promote") == 0
    assert value(found, "stagegate_run_duration_seconds") == data["duration_s"]
    assert value(found, "stagegate_tests", outcome="failed") == data["tests"]["failed"]
    assert value(found, "stagegate_load_seconds") == data["gate"]["load_seconds"]
    for e in data["gate"]["endpoints"]:
        name = e["name"]
        for key, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            seconds = value(found, "stagegate_latency_seconds", endpoint=name, quantile=q)
            assert math.isclose(seconds * 1000, e["percentiles"][key], rel_tol=1e-12)
        assert math.isclose(
            value(found, "stagegate_latency_max_seconds", endpoint=name) * 1000,
            e["max_ms"],
            rel_tol=1e-12,
        )
        assert value(found, "stagegate_requests", endpoint=name) == e["requests"]
        assert value(found, "stagegate_failures", endpoint=name) == e["failures"]
        assert value(found, "stagegate_error_ratio", endpoint=name) == e["error_rate"]
        assert value(found, "stagegate_throughput_rps", endpoint=name) == e["rps"]
    for c in data["gate"]["checks"]:
        labels = {"endpoint": c["endpoint"], "metric": c["metric"], "stage": ""}
        for outcome in ("pass", "fail", "inconclusive"):
            got = value(found, "stagegate_check", outcome=outcome, **labels)
            assert got == (c["outcome"] == outcome)


def test_a_passing_verdict() -> None:
    found = samples(render(pass_verdict().to_dict()))
    assert value(found, "stagegate_verdict", state="pass") == 1
    assert value(found, "stagegate_promote") == 1


def test_label_values_are_escaped_and_redacted() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    name = 'GET /q?k="s3cr3t-token"\\x\nnext'
    stats = EndpointStats(name, 10, 0, 5.0, 1.0, 1.0, 2.0, {"p95": 2.0})
    data = verdict(gate=GateRecord(status="completed", endpoints=[stats])).to_dict()
    text = render(data, redact=lambda t: t.replace("s3cr3t-token", "***"))
    assert "s3cr3t" not in text
    found = samples(text)
    shown = 'GET /q?k="***"\\x\nnext'
    assert value(found, "stagegate_requests", endpoint=shown) == 10


def test_what_was_not_measured_is_left_out() -> None:
    # every request failed: no latency at all (null in the verdict), never 0 or NaN
    stats = EndpointStats("GET /boom", 4, 4, 0.0, 0.0, 0.0, 0.0, {"p95": 0.0}, latency_samples=0)
    data = verdict(gate=GateRecord(status="completed", endpoints=[stats])).to_dict()
    found = samples(render(data))
    assert value(found, "stagegate_requests", endpoint="GET /boom") == 4
    assert not [k for k in found if k[0].startswith("stagegate_latency")]
    # no gate at all: the verdict and the tests, nothing else
    bare = samples(render(verdict().to_dict()))
    assert {k[0] for k in bare} == {
        "stagegate_verdict",
        "stagegate_promote",
        "stagegate_run_duration_seconds",
        "stagegate_tests",
    }


def test_seconds_carry_no_float_noise() -> None:
    """ms / 1000 is inexact (1.084 / 1000 = 0.0010840000000000001): seconds are rounded to the
    microsecond, the verdict's own precision (ms to 3 decimals), so nothing is lost."""
    data = pass_verdict().to_dict()
    total = next(e for e in data["gate"]["endpoints"] if e["name"] == "total")
    total["percentiles"]["p50"] = 1.084
    total["avg_ms"] = 12.345678912  # not from a verdict (it rounds): to the microsecond
    total["max_ms"] = 1234.567
    text = render(data)
    p50 = 'stagegate_latency_seconds{target="staging",endpoint="total",quantile="0.5"}'
    assert f"{p50} 0.001084\n" in text
    assert 'stagegate_latency_avg_seconds{target="staging",endpoint="total"} 0.012346\n' in text
    assert 'stagegate_latency_max_seconds{target="staging",endpoint="total"} 1.234567\n' in text
    assert not [line for line in text.splitlines() if "0000000" in line]
    found = samples(text)  # still a valid OpenMetrics text
    assert value(found, "stagegate_latency_seconds", endpoint="total", quantile="0.5") == 0.001084
