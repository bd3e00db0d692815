"""verdict/model.py: the Verdict and its JSON form (golden files, content, determinism)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from pytest_stagegate.budgets import Check, EndpointStats
from pytest_stagegate.verdict import (
    CommitInfo,
    GateRecord,
    TestRecord,
    Verdict,
    baseline_stats,
    load_verdict,
    parse_timestamp,
    schema,
    write_verdict,
)
from tests.verdict_samples import (
    FINISHED,
    GITHUB,
    SAMPLES,
    STARTED,
    check,
    check_golden,
    endpoints,
    good_gate,
    passed,
)
from tests.verdict_samples import verdict as make

# -- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_json(name: str, tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, SAMPLES[name]())
    text = path.read_text(encoding="utf-8")
    check_golden(f"verdict-{name}.json", text)
    assert json.loads(text)["verdict"] == ("pass" if name == "open" else name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_json_validates_with_jsonschema(name: str) -> None:
    from tests.verdict_samples import GOLDEN

    data = json.loads((GOLDEN / f"verdict-{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema()).validate(data)
    assert load_verdict(GOLDEN / f"verdict-{name}.json") == data


def test_output_is_byte_identical_for_the_same_run(tmp_path: Path) -> None:
    write_verdict(tmp_path / "a.json", SAMPLES["fail"]())
    write_verdict(tmp_path / "b.json", SAMPLES["fail"]())
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_record_order_does_not_change_the_output() -> None:
    verdict = SAMPLES["fail"]()
    shuffled = make(
        list(reversed(verdict.tests)),
        gate=GateRecord(
            status="completed",
            profile=dict(reversed(list(verdict.gate.profile.items()))),  # type: ignore[union-attr]
            endpoints=list(reversed(verdict.gate.endpoints)),  # type: ignore[union-attr]
            checks=verdict.gate.checks,  # type: ignore[union-attr]  # (their order is kept)
            generator=verdict.gate.generator,  # type: ignore[union-attr]
            load_seconds=30.2,
        ),
    )
    ordered = make(verdict.tests, gate=verdict.gate)
    assert shuffled.to_dict() == ordered.to_dict()


# -- JSON content ------------------------------------------------------------------------------


def test_to_dict_shape() -> None:
    data = SAMPLES["fail"]().to_dict()
    assert list(data) == [
        "schema",
        "verdict",
        "promote",
        "reasons",
        "target",
        "commit",
        "started_at",
        "finished_at",
        "duration_s",
        "plugin_version",
        "interrupted",
        "problems",
        "tests",
        "gate",
        "checks",
    ]
    assert data["started_at"] == "2025-01-15T10:00:00Z"
    assert data["finished_at"] == "2025-01-15T10:01:30.500Z"
    assert data["duration_s"] == 90.5
    assert data["commit"] == {
        "sha": GITHUB.sha,
        "ref": "refs/heads/main",
        "run_url": "https://github.com/acme/shop/actions/runs/4242",
        "source": "github",
    }
    tests = data["tests"]
    assert (tests["total"], tests["passed"], tests["failed"], tests["flaky"]) == (5, 2, 1, 1)
    assert tests["failed_tests"] == [
        {
            "nodeid": "tests/smoke/test_shop.py::test_login",
            "outcome": "failed",
            "critical": True,
            "message": "assert 500 == 200 (POST /api/login answered 500 Internal Server Error)",
        }
    ]
    assert [r["nodeid"] for r in tests["records"]] == sorted(r["nodeid"] for r in tests["records"])
    gate = data["gate"]
    assert [e["name"] for e in gate["endpoints"]] == [
        "GET /api/products",
        "GET /api/products/{id}",
        "total",
    ]
    assert list(gate["endpoints"][0]["percentiles"]) == ["p50", "p95", "p99"]
    failed = [c for c in gate["checks"] if c["outcome"] == "fail"]
    assert failed == [
        {
            "endpoint": "GET /api/products",
            "metric": "p95",
            "observed": 412.0,
            "limit": 300.0,
            "unit": "ms",
            "samples": 600,
            "outcome": "fail",
            "message": "P95 of GET /api/products was 412.0 ms, over its budget of 300 ms",
            "baseline": None,
        }
    ]


def test_failed_tests_list_critical_first() -> None:
    data = make(
        [
            TestRecord("a.py::x", "failed"),
            TestRecord("z.py::y", "error", critical=True),
        ]
    ).to_dict()
    assert [t["nodeid"] for t in data["tests"]["failed_tests"]] == ["z.py::y", "a.py::x"]


def test_gate_is_null_when_not_requested() -> None:
    assert make([passed()]).to_dict()["gate"] is None


def test_base_url_credentials_are_removed() -> None:
    verdict = Verdict(
        target_name="staging",
        base_url="https://deploy:s3cret@shop-staging.example.com:8443/api",
        commit=CommitInfo(),
        started_at=STARTED,
        finished_at=FINISHED,
    )
    assert (
        verdict.to_dict()["target"]["base_url"] == "https://***@shop-staging.example.com:8443/api"
    )


def test_timestamps_are_utc_with_z() -> None:
    cest = timezone(timedelta(hours=2))
    verdict = Verdict(
        target_name="t",
        base_url="http://x",
        commit=CommitInfo(),
        started_at=datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=cest),
        finished_at=datetime(2025, 6, 1, 10, 0, 5),  # naive: taken as UTC
    )
    data = verdict.to_dict()
    assert data["started_at"] == "2025-06-01T10:00:00.250Z"
    assert data["finished_at"] == "2025-06-01T10:00:05Z"
    assert data["duration_s"] == 4.75
    assert parse_timestamp(data["started_at"]) == datetime(
        2025, 6, 1, 10, 0, 0, 250_000, tzinfo=timezone.utc
    )


def test_unfinished_verdict_is_stamped_now() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    data = Verdict(
        target_name="t", base_url="http://x", commit=CommitInfo(), started_at=STARTED
    ).to_dict()
    assert parse_timestamp(data["finished_at"]) >= before


def test_non_finite_numbers_become_null_and_the_json_is_strict(tmp_path: Path) -> None:
    stats = EndpointStats("total", 0, 0, math.nan, math.nan, math.inf, -math.inf, {"p95": math.nan})
    gate = good_gate(
        endpoints=[stats], checks=[check("total", "p95", 300, math.nan, "inconclusive")]
    )
    path = tmp_path / "v.json"
    write_verdict(path, make([passed()], gate=gate))
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    endpoint = json.loads(text)["gate"]["endpoints"][0]
    assert endpoint["rps"] is None and endpoint["percentiles"] == {"p95": None}


def test_free_form_values_are_made_json() -> None:
    gate = good_gate(profile={"locustfile": Path("perf/locustfile.py"), "users": 3, "b": (1, 2)})
    profile = make([passed()], gate=gate).to_dict()["gate"]["profile"]
    assert profile == {"b": [1, 2], "locustfile": "perf/locustfile.py", "users": 3}


def test_request_summary_keeps_counts_as_integers() -> None:
    record = passed(requests={"max_ms": 12.34567, "count": 3, "failures": 0})
    (data,) = make([record]).to_dict()["tests"]["records"]
    assert data["requests"] == {"count": 3, "failures": 0, "max_ms": 12.346}


def test_plugin_version_defaults_to_the_package_version() -> None:
    from pytest_stagegate import __version__

    verdict = Verdict(target_name="t", base_url="x", commit=CommitInfo(), started_at=STARTED)
    assert verdict.to_dict()["plugin_version"] == __version__


def test_test_record_is_not_collected_as_a_test_class() -> None:
    assert TestRecord.__test__ is False


def test_baseline_stats_round_trip() -> None:
    stats = baseline_stats(SAMPLES["pass"]().to_dict())
    assert set(stats) == {"GET /api/products", "GET /api/products/{id}", "total"}
    total = next(e for e in endpoints() if e.name == "total")
    # latency over the successful and timed-out requests, as the run's own stats count them
    samples = total.requests - total.failures + total.timeouts
    assert stats["total"] == dataclasses.replace(total, latency_samples=samples)
    assert baseline_stats(make([passed()]).to_dict()) == {}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55word@shop.example.com/api", "https://***@shop.example.com/api"),
        ("https://token@shop.example.com", "https://***@shop.example.com"),
        ("http://a:b@c@127.0.0.1:8080/", "http://***@127.0.0.1:8080/"),  # the last @ ends it
        ("https://shop.example.com/a@b", "https://shop.example.com/a@b"),  # @ in the path
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_public_url_drops_credentials(url: str, shown: str) -> None:
    from pytest_stagegate.verdict import public_url

    assert public_url(url) == shown


def test_the_verdict_shows_its_base_url_without_credentials() -> None:
    data = make([passed()], base_url="https://ci:s3cr3t-pw@shop.example.com").to_dict()
    assert data["target"]["base_url"] == "https://***@shop.example.com"


# -- scenarios: status classes, covers, flows (0.2, additive) ----------------------------------


def test_status_classes_covers_and_flows_appear_only_when_there_are_some() -> None:
    stats = dataclasses.replace(
        endpoints()[0], status_classes={"5xx": 2, "2xx": 98}, kind="flow", name="checkout"
    )
    group = dataclasses.replace(check("GET /*", "p95", 300.0, 120.0), covers=("GET /a", "GET /b"))
    gate = good_gate(checks=[group], flows=[stats])
    data = json.loads(json.dumps(make(gate=gate).to_dict()))
    Draft202012Validator(schema()).validate(data)
    assert data["gate"]["checks"][0]["covers"] == ["GET /a", "GET /b"]
    assert data["gate"]["flows"][0]["name"] == "checkout"
    assert list(data["gate"]["flows"][0]["status_classes"]) == ["2xx", "5xx"]  # sorted
    plain = make(gate=good_gate()).to_dict()["gate"]
    assert "flows" not in plain
    assert all("status_classes" not in e for e in plain["endpoints"])
    assert all("covers" not in c for c in plain["checks"])


@pytest.mark.parametrize(
    ("where", "value"),
    [("status_classes", {"6xx": 1}), ("status_classes", {"5xx": -1}), ("covers", [])],
)
def test_the_schema_refuses_malformed_scenario_fields(where: str, value: object) -> None:
    data = json.loads(json.dumps(make(gate=good_gate()).to_dict()))
    target = data["gate"]["checks"][0] if where == "covers" else data["gate"]["endpoints"][0]
    target[where] = value
    assert not Draft202012Validator(schema()).is_valid(data)


def test_where_budgets_and_tests_are_written_is_recorded_and_valid() -> None:
    """A check's ``source`` (its budget's file and line) and a test's (file and line), only
    when known; older readers see the same verdict otherwise."""
    checked = Check("total", "p95", 300, 412.0, 600, "fail", "Slow.", file="stagegate.yaml", line=9)
    failed = TestRecord("t.py::test_x", "failed", critical=True, file="t.py", line=3)
    data = make(
        [failed, TestRecord("u.py::test_y", "passed")],
        gate=GateRecord(status="completed", checks=[checked]),
    ).to_dict()
    Draft202012Validator(schema()).validate(data)
    assert data["gate"]["checks"][0]["source"] == {"file": "stagegate.yaml", "line": 9}
    assert data["tests"]["failed_tests"][0]["source"] == {"file": "t.py", "line": 3}
    assert data["tests"]["records"][0]["source"] == {"file": "t.py", "line": 3}
    assert "source" not in data["tests"]["records"][1]
    no_line = dataclasses.replace(checked, line=None)
    data = make(gate=GateRecord(status="completed", checks=[no_line])).to_dict()
    assert data["gate"]["checks"][0]["source"] == {"file": "stagegate.yaml"}
    Draft202012Validator(schema()).validate(data)
    data["gate"]["checks"][0]["source"] = {"file": "stagegate.yaml", "line": 0}
    assert not Draft202012Validator(schema()).is_valid(data)
