"""The verdict model: decision policy, JSON form, schema, atomic writing, loading."""

from __future__ import annotations

import json
import math
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from pytest_stagegate import _atomic
from pytest_stagegate.budgets import Check, EndpointStats
from pytest_stagegate.verdict.model import (
    SCHEMA_VERSION,
    CommitInfo,
    GateRecord,
    TestRecord,
    Verdict,
    VerdictError,
    baseline_stats,
    load_verdict,
    parse_timestamp,
    schema,
    validate_verdict,
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
    passing_checks,
    verdict,
)

LOGIN = "tests/test_shop.py::test_login"
CART = "tests/test_shop.py::test_cart"


make = verdict


def good_gate(**kwargs: Any) -> GateRecord:
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


# -- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_json(name: str, tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, SAMPLES[name]())
    text = path.read_text(encoding="utf-8")
    check_golden(f"verdict-{name}.json", text)
    assert json.loads(text)["verdict"] == name


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
            checks=list(reversed(verdict.gate.checks)),  # type: ignore[union-attr]
            generator=verdict.gate.generator,  # type: ignore[union-attr]
            load_seconds=30.2,
        ),
    )
    ordered = make(verdict.tests, gate=verdict.gate)
    assert shuffled.to_dict() == ordered.to_dict()


# -- the schema --------------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    document = schema()
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["schema"] == {
        "description": "The version of this format.",
        "const": SCHEMA_VERSION,
    }


def test_schema_returns_a_fresh_copy() -> None:
    schema()["properties"].clear()
    assert schema()["properties"]


def edited(change: Any) -> dict[str, Any]:
    data = SAMPLES["pass"]().to_dict()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param(lambda d: d.update(promote=False), "$.promote", id="pass-not-promoted"),
        pytest.param(lambda d: d.update(verdict="fail"), "$.promote", id="fail-promoted"),
        pytest.param(lambda d: d.update(verdict="maybe"), "$.verdict", id="unknown-verdict"),
        pytest.param(lambda d: d.pop("target"), "$", id="missing-target"),
        pytest.param(lambda d: d["tests"].pop("records"), "$.tests", id="missing-nested"),
        pytest.param(lambda d: d.update(extra=1), "$", id="unknown-field"),
        pytest.param(lambda d: d["tests"].update(total=-1), "$.tests.total", id="negative"),
        pytest.param(
            lambda d: d.update(finished_at="2025-01-15 10:00"), "$.finished_at", id="timestamp"
        ),
        pytest.param(lambda d: d.update(reasons=[]), "$.reasons", id="no-reasons"),
        pytest.param(
            lambda d: d["gate"]["checks"][0].update(outcome="fail"),
            "$.gate",
            id="pass-with-failed-check",
        ),
        pytest.param(
            lambda d: d["gate"].update(status="aborted"),
            "$.gate.status",
            id="pass-with-aborted-gate",
        ),
        pytest.param(lambda d: d["tests"].update(failed=1), "$.tests.failed", id="pass-failed"),
        pytest.param(lambda d: d.update(interrupted=True), "$.interrupted", id="pass-interrupted"),
        pytest.param(
            lambda d: d["problems"].append({"kind": "fail", "reason": "x"}),
            "$.problems",
            id="pass-with-problem",
        ),
        pytest.param(
            lambda d: d["gate"]["endpoints"][0].update(rps="fast"),
            "$.gate.endpoints[0].rps",
            id="wrong-type",
        ),
        pytest.param(
            lambda d: d["commit"].update(source="jenkins"), "$.commit.source", id="unknown-source"
        ),
    ],
)
def test_schema_refuses_edited_verdicts(change: Any, where: str) -> None:
    data = edited(change)
    with pytest.raises(VerdictError, match=r"^not a valid verdict: at ") as info:
        validate_verdict(data)
    assert f"at {where}" in str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - the independent validator agrees
        Draft202012Validator(schema()).validate(data)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2, "verdict schema 2 is newer than this pytest-stagegate understands"),
        (0, "verdict schema 0 is not supported"),
        ("1", 'not a verdict: "schema" must be an integer'),
        (True, 'not a verdict: "schema" must be an integer'),
    ],
)
def test_validate_refuses_other_schema_versions(value: Any, message: str) -> None:
    data = SAMPLES["pass"]().to_dict()
    data["schema"] = value
    with pytest.raises(VerdictError, match=message):
        validate_verdict(data)


def test_validate_refuses_a_document_without_schema_field() -> None:
    with pytest.raises(VerdictError, match='there is no "schema" field'):
        validate_verdict({"verdict": "pass"})


def test_validate_refuses_a_non_object() -> None:
    with pytest.raises(VerdictError, match="expected a JSON object, got list"):
        validate_verdict([1, 2])  # type: ignore[arg-type]


def test_validate_accepts_mappings_and_tuples() -> None:
    from types import MappingProxyType

    data = SAMPLES["pass"]().to_dict()
    data["reasons"] = tuple(data["reasons"])
    validate_verdict(MappingProxyType(data))


# -- decision policy ---------------------------------------------------------------------------


def test_all_passed_is_pass_with_a_summary_sentence() -> None:
    verdict = make(
        [passed(LOGIN, critical=True), passed(CART), passed("t.py::x")], gate=good_gate()
    )
    assert verdict.state == "pass"
    assert verdict.promote is True
    assert verdict.reasons == ["All 3 tests passed and all 4 budgets held on staging."]


def test_summary_singular_and_without_gate() -> None:
    assert make([passed()]).reasons == ["1 test passed on staging."]
    one_budget = good_gate(checks=[check("total", "p95", 300, 100.0)])
    assert make([passed()], gate=one_budget).reasons == [
        "1 test passed and the 1 budget held on staging."
    ]


def test_summary_mentions_skipped_and_expected_failures() -> None:
    verdict = make(
        [
            passed(),
            passed("t.py::a"),
            TestRecord("t.py::b", "skipped", message="not here"),
            TestRecord("t.py::c", "xfailed"),
            TestRecord("t.py::d", "xpassed"),
        ]
    )
    assert verdict.state == "pass"
    assert verdict.reasons[0] == "All 2 tests passed (1 skipped, 1 xfailed, 1 xpassed) on staging."


def test_interrupted_is_error_even_with_failures() -> None:
    verdict = make([TestRecord(LOGIN, "failed", critical=True, message="boom")], interrupted=True)
    assert verdict.state == "error"
    assert verdict.promote is False
    assert verdict.reasons[0].startswith("The run was interrupted before it finished")
    assert f"Critical test {LOGIN} failed: boom." in verdict.reasons


def test_failed_test_fails() -> None:
    verdict = make([passed(), TestRecord("t.py::x", "failed", message="assert 1 == 2")])
    assert verdict.state == "fail"
    assert verdict.reasons == ["Test t.py::x failed: assert 1 == 2."]


def test_error_outcome_fails() -> None:
    verdict = make([passed(), TestRecord("t.py::x", "error", message="fixture 'db' not found")])
    assert verdict.state == "fail"
    assert verdict.reasons == ["Test t.py::x errored: fixture 'db' not found."]


def test_failed_critical_test_is_named_and_comes_first() -> None:
    verdict = make(
        [
            TestRecord("a.py::early", "failed", message="x"),
            TestRecord(LOGIN, "failed", critical=True, message="assert 500 == 200"),
        ]
    )
    assert verdict.state == "fail"
    assert verdict.reasons[0] == f"Critical test {LOGIN} failed: assert 500 == 200."
    assert verdict.reasons[1] == "Test a.py::early failed: x."


def test_failure_without_message_is_still_a_sentence() -> None:
    assert make([TestRecord(LOGIN, "failed", critical=True)]).reasons == [
        f"Critical test {LOGIN} failed."
    ]


def test_flaky_critical_test_fails() -> None:
    verdict = make([passed(LOGIN, critical=True, flaky=True, reruns=2)])
    assert verdict.state == "fail"
    assert verdict.reasons == [f"Critical test {LOGIN} passed only after 2 reruns."]


def test_flaky_non_critical_test_passes_with_a_note() -> None:
    verdict = make([passed(LOGIN), passed(CART, flaky=True, reruns=1)])
    assert verdict.state == "pass"
    assert verdict.reasons[1] == (
        f"Test {CART} passed only after 1 rerun. Flaky tests do not block promotion."
    )


def test_flaky_non_critical_test_fails_when_flaky_blocks() -> None:
    verdict = make([passed(LOGIN), passed(CART, flaky=True, reruns=1)], flaky_blocks=True)
    assert verdict.state == "fail"
    assert verdict.reasons == [
        f"Test {CART} passed only after 1 rerun. Flaky tests block promotion here."
    ]


def test_failed_budget_check_fails() -> None:
    broken = check(
        "total", "p95", 300, 412.0, "fail", message="p95 of total was 412.0 ms, over 300"
    )
    verdict = make([passed()], gate=good_gate(checks=[*passing_checks(), broken]))
    assert verdict.state == "fail"
    assert verdict.reasons == ["p95 of total was 412.0 ms, over 300."]


def test_failed_check_without_message_gets_one() -> None:
    broken = Check("total", "p95", 300.0, 412.0, 2400, "fail", "")
    verdict = make([passed()], gate=good_gate(checks=[broken]))
    assert verdict.reasons == [
        "p95 of total was 412.0 ms, against a limit of 300 ms (2400 samples)."
    ]


def test_aborted_gate_fails_with_the_abort_reason() -> None:
    gate = GateRecord(
        status="aborted", reason="95% of the first 40 requests failed", checks=passing_checks()
    )
    verdict = make([passed()], gate=gate)
    assert verdict.state == "fail"
    assert verdict.reasons == [
        "The load gate was aborted early: 95% of the first 40 requests failed."
    ]


def test_problem_of_kind_fail_fails() -> None:
    verdict = make([passed()], problems=[("fail", "xdist worker gw1 crashed")])
    assert verdict.state == "fail"
    assert verdict.reasons == ["xdist worker gw1 crashed."]


def test_problem_of_kind_error_is_error() -> None:
    verdict = make([passed()], problems=[("error", "Collecting tests/test_x.py failed.")])
    assert verdict.state == "error"
    assert verdict.reasons == ["Collecting tests/test_x.py failed."]


def test_problem_of_kind_inconclusive_is_inconclusive() -> None:
    verdict = make([passed()], problems=[("inconclusive", "The version check was skipped")])
    assert verdict.state == "inconclusive"
    assert verdict.reasons == ["The version check was skipped."]


def test_fail_beats_error_beats_inconclusive_and_all_are_reported() -> None:
    verdict = make(
        [passed()],
        problems=[("inconclusive", "c"), ("error", "b"), ("fail", "a")],
    )
    assert verdict.state == "fail"
    assert verdict.reasons == ["a.", "b.", "c."]
    verdict = make([passed()], problems=[("inconclusive", "c"), ("error", "b")])
    assert verdict.state == "error"
    assert verdict.reasons == ["b.", "c."]


def test_gate_error_is_error() -> None:
    verdict = make([passed()], gate=GateRecord(status="error", reason="Locust exited with code 2."))
    assert verdict.state == "error"
    assert verdict.reasons == ["The load gate could not run: Locust exited with code 2."]


def test_refused_gate_is_error_with_the_refusal_reason() -> None:
    gate = GateRecord(status="refused", reason="production is protected and allow_load is false.")
    verdict = make([passed()], gate=gate)
    assert verdict.state == "error"
    assert verdict.reasons == [
        "The load gate was refused: production is protected and allow_load is false."
    ]


def test_refused_gate_with_a_failed_critical_test_fails() -> None:
    gate = GateRecord(status="refused", reason="production is protected.")
    verdict = make([TestRecord(LOGIN, "failed", critical=True, message="x")], gate=gate)
    assert verdict.state == "fail"
    assert verdict.reasons == [
        f"Critical test {LOGIN} failed: x.",
        "The load gate was refused: production is protected.",
    ]


def test_gate_not_run_after_a_critical_failure_fails() -> None:
    gate = GateRecord(status="not_run", reason="a critical test failed, so the load was skipped.")
    verdict = make([TestRecord(LOGIN, "failed", critical=True, message="x")], gate=gate)
    assert verdict.state == "fail"
    assert verdict.reasons[-1] == (
        "The load gate did not run: a critical test failed, so the load was skipped."
    )


def test_gate_not_run_without_a_failure_is_inconclusive() -> None:
    verdict = make([passed()], gate=GateRecord(status="not_run", reason="no requests to make."))
    assert verdict.state == "inconclusive"
    assert verdict.reasons == ["The load gate did not run: no requests to make."]


def test_gate_requested_but_missing_is_inconclusive() -> None:
    verdict = make([passed()], gate_requested=True)
    assert verdict.state == "inconclusive"
    assert verdict.reasons == ["The load gate was requested but did not run."]
    gate = verdict.to_dict()["gate"]
    assert gate["requested"] is True
    assert gate["status"] == "not_run"


def test_completed_gate_without_budgets_is_inconclusive() -> None:
    verdict = make([passed()], gate=good_gate(checks=[]))
    assert verdict.state == "inconclusive"
    assert verdict.reasons == ["The load gate ran, but there was no budget to check it against."]


def test_check_with_too_few_samples_is_inconclusive() -> None:
    few = check("total", "p99", 500, 120.0, "inconclusive", samples=40, message="only 40 samples")
    verdict = make([passed()], gate=good_gate(checks=[*passing_checks(), few]))
    assert verdict.state == "inconclusive"
    assert verdict.promote is False
    assert verdict.reasons == ["only 40 samples."]


def test_no_tests_and_no_gate_is_inconclusive() -> None:
    verdict = make([])
    assert verdict.state == "inconclusive"
    assert verdict.reasons == [
        "No tests ran and the load gate was not requested, so nothing was verified."
    ]


def test_only_skipped_tests_and_no_gate_is_inconclusive() -> None:
    verdict = make([TestRecord("t.py::a", "skipped"), TestRecord("t.py::b", "skipped")])
    assert verdict.state == "inconclusive"
    assert verdict.reasons == [
        "No tests ran (2 tests skipped) and the load gate was not requested, so nothing was "
        "verified."
    ]


def test_no_tests_but_a_passing_gate_passes() -> None:
    verdict = make([], gate=good_gate())
    assert verdict.state == "pass"
    assert verdict.reasons == ["All 4 budgets held on staging."]


def test_xfailed_and_non_strict_xpassed_do_not_block() -> None:
    verdict = make([passed(), TestRecord("t.py::a", "xfailed"), TestRecord("t.py::b", "xpassed")])
    assert verdict.state == "pass"


def test_strict_xpass_is_recorded_as_failed_and_fails() -> None:
    # pytest reports a strict XPASS with outcome "failed"; that is what the glue records.
    verdict = make([TestRecord("t.py::b", "failed", message="[XPASS(strict)] fixed by now")])
    assert verdict.state == "fail"
    assert verdict.reasons == ["Test t.py::b failed: [XPASS(strict)] fixed by now."]


def test_saturated_passing_gate_passes_with_a_warning() -> None:
    gate = good_gate(generator={"saturated": True, "max_cpu_percent": 99.2, "processes": 1})
    verdict = make([passed()], gate=gate)
    assert verdict.state == "pass"
    assert verdict.reasons[0] == "1 test passed and all 4 budgets held on staging."
    assert verdict.reasons[1].startswith(
        "Warning: the load generator was saturated (CPU up to 99% of a core)"
    )


def test_safety_skips_are_explained() -> None:
    verdict = make(
        [
            passed(),
            TestRecord("t.py::order", "skipped", safety_skip=True),
            TestRecord("t.py::refund", "skipped", safety_skip=True),
        ]
    )
    assert verdict.state == "pass"
    assert verdict.reasons[1] == "2 destructive tests were skipped because staging is protected."


def test_add_check_fail_fails_and_inconclusive_is_inconclusive() -> None:
    verdict = make([passed()], gate=good_gate())
    verdict.add_check(check("total", "p95", 300, 100.0))
    assert state(verdict) == "pass"
    assert verdict.reasons == [
        "1 test passed, all 4 budgets held and the 1 extra check passed on staging."
    ]
    verdict.add_check(check("custom", "cache_hits", 0.9, None, "inconclusive", message="no data"))
    assert state(verdict) == "inconclusive"
    verdict.add_check(check("custom", "db_cpu", 80, 95.0, "fail", message="database CPU at 95%"))
    assert state(verdict) == "fail"
    assert verdict.reasons == ["database CPU at 95%.", "no data."]
    assert [c["metric"] for c in verdict.to_dict()["checks"]] == ["cache_hits", "db_cpu", "p95"]


def test_add_check_counts_as_something_verified() -> None:
    verdict = make([])
    verdict.add_check(check("total", "p95", 300, 100.0))
    assert verdict.state == "pass"


def test_add_reason_appends_a_sentence() -> None:
    verdict = make([passed()])
    verdict.add_reason("Deployed by the Friday pipeline")
    verdict.add_reason("   ")
    assert verdict.state == "pass"
    assert verdict.reasons == ["1 test passed on staging.", "Deployed by the Friday pipeline."]


def test_add_problem() -> None:
    verdict = make([passed()])
    verdict.add_problem("error", "the database seed failed")
    assert verdict.state == "error"
    assert verdict.problems == (("error", "the database seed failed."),)
    with pytest.raises(ValueError, match="a problem is one of fail, error, inconclusive"):
        verdict.add_problem("warning", "x")  # type: ignore[arg-type]


def test_many_failures_are_summarised() -> None:
    tests = [TestRecord(f"t.py::test_{i:02d}", "failed", message="x") for i in range(25)]
    reasons = make(tests).reasons
    assert len(reasons) == 10
    assert reasons[0] == "Test t.py::test_00 failed: x."
    assert reasons[-1] == "16 more tests failed (see the tests section)."
    assert len(make(tests).to_dict()["tests"]["failed_tests"]) == 25


def test_long_multiline_messages_become_one_bounded_line() -> None:
    verdict = make([TestRecord("t.py::a", "failed", message="line one\nline two " + "x" * 2000)])
    (reason,) = verdict.reasons
    assert "\n" not in reason
    assert reason.startswith("Test t.py::a failed: line one line two xxx")
    assert len(reason) <= 500


def test_state_follows_later_additions() -> None:
    verdict = make([passed()])
    assert verdict.promote
    verdict.add_problem("fail", "late news")
    assert not verdict.promote
    assert verdict.to_dict()["verdict"] == "fail"


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
            "message": "p95 of GET /api/products was 412.0 ms, over its budget of 300 ms",
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
    assert stats["total"] == next(e for e in endpoints() if e.name == "total")
    assert baseline_stats(make([passed()]).to_dict()) == {}


# -- writing -----------------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_verdict_accepts_a_mapping_and_creates_directories(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "deep" / "verdict.json"
    write_verdict(path, SAMPLES["pass"]().to_dict())
    assert load_verdict(path)["verdict"] == "pass"
    assert path.read_text().endswith("}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_verdict_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "verdict.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_verdict(path, SAMPLES["pass"]())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_failing_half_way_leaves_the_old_file_intact_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, SAMPLES["pass"]())
    old = path.read_bytes()

    data = SAMPLES["fail"]().to_dict()
    # Valid by the schema (the profile is free-form), but json cannot encode it: json.dump has
    # already streamed everything before "gate" into the temporary file when it fails.
    data["gate"]["profile"]["oops"] = object()
    written: list[int] = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write

        def write(chunk: str) -> int:
            written.append(len(chunk))
            return int(real_write(chunk))

        handle.write = write
        return handle

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fdopen", spying_fdopen)
        with pytest.raises(TypeError, match="not JSON serializable"):
            write_verdict(path, data)

    assert sum(written) > 100, "the failure should happen after part of the file was written"
    assert path.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_an_invalid_verdict_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    data = SAMPLES["pass"]().to_dict()
    data["promote"] = False
    with pytest.raises(VerdictError, match=r"at \$\.promote"):
        write_verdict(path, data)
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_inside_the_block(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    _atomic.atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), _atomic.atomic_open(path) as fh:
        fh.write("new, but only half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_atomic_write_bytes_and_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.bin"
    _atomic.atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"

    def broken_replace(src: str, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        _atomic.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"one"
    assert leftovers(tmp_path) == []


def test_text_is_written_with_unix_newlines_and_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    _atomic.atomic_write_text(path, "größe\nzwei\n")
    assert path.read_bytes() == "größe\nzwei\n".encode()


# -- loading -----------------------------------------------------------------------------------


def test_load_verdict_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VerdictError, match=r"nope\.json: no such file$"):
        load_verdict(tmp_path / "nope.json")


def test_load_verdict_directory(tmp_path: Path) -> None:
    with pytest.raises(VerdictError, match="is a directory"):
        load_verdict(tmp_path)


def test_load_verdict_not_json(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"schema": 1,\n "verdict": pass}')
    with pytest.raises(
        VerdictError, match=r"not valid JSON \(Expecting value at line 2, column 13\)"
    ):
        load_verdict(path)


def test_load_verdict_truncated(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES["pass"]())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(VerdictError, match="not valid JSON"):
        load_verdict(path)


def test_load_verdict_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(VerdictError, match="not UTF-8 text"):
        load_verdict(path)


def test_load_verdict_refuses_nan(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"schema": 1, "duration_s": NaN}')
    with pytest.raises(VerdictError, match="NaN is not a JSON number"):
        load_verdict(path)


def test_load_verdict_refuses_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    text = json.dumps(SAMPLES["fail"]().to_dict())
    path.write_text(text[:-1] + ', "verdict": "pass"}')
    with pytest.raises(VerdictError, match="the key 'verdict' appears twice"):
        load_verdict(path)


def test_load_verdict_wrong_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    data = SAMPLES["pass"]().to_dict()
    data["schema"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(VerdictError, match=r"v\.json: verdict schema 2 is newer"):
        load_verdict(path)


def test_load_verdict_schema_violation_names_path_and_json_path(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    data = SAMPLES["pass"]().to_dict()
    data["tests"]["records"][0]["outcome"] = "great"
    path.write_text(json.dumps(data))
    with pytest.raises(VerdictError) as info:
        load_verdict(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a valid verdict: at $.tests.records[0].outcome: ")
    assert "'great' is not one of" in message


def test_lone_surrogates_do_not_break_writing(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    record = TestRecord("t.py::a", "failed", message="bad byte \udcff in output")
    write_verdict(path, make([record]))
    assert load_verdict(path)["tests"]["failed_tests"][0]["message"] == "bad byte \ufffd in output"
