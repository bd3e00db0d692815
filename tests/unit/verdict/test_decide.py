"""verdict/decide.py: the decision policy, seen through Verdict.state and .reasons."""

from __future__ import annotations

import pytest

from pytest_stagegate.budgets import Budget, Check, EndpointStats, Waiver, evaluate
from pytest_stagegate.verdict import (
    GateRecord,
    TestRecord,
)
from tests.verdict_samples import (
    CART,
    LOGIN,
    check,
    good_gate,
    passed,
    passing_checks,
    state,
)
from tests.verdict_samples import verdict as make

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
    assert verdict.reasons == ["P95 of total was 412.0 ms, over 300."]


def test_failed_check_without_message_gets_one() -> None:
    broken = Check("total", "p95", 300.0, 412.0, 2400, "fail", "")
    verdict = make([passed()], gate=good_gate(checks=[broken]))
    assert verdict.reasons == [
        "The p95 of total was 412.0 ms, over its budget of 300 ms (2400 samples)."
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
    assert verdict.reasons == ["Xdist worker gw1 crashed."]


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
    assert verdict.reasons == ["A.", "B.", "C."]
    verdict = make([passed()], problems=[("inconclusive", "c"), ("error", "b")])
    assert verdict.state == "error"
    assert verdict.reasons == ["B.", "C."]


def test_gate_error_is_error() -> None:
    verdict = make([passed()], gate=GateRecord(status="error", reason="Locust exited with code 2."))
    assert verdict.state == "error"
    assert verdict.reasons == ["The load gate could not run: Locust exited with code 2."]


def test_a_joined_reason_goes_on_without_a_capital_mid_sentence() -> None:
    """The load's reason, a sentence of its own, follows a colon: ``could not run: the load
    process ...``, not ``: The load process ...``; a name keeps its capitals."""
    reason = "The load process did not stop in time: it was still running after 10 s."
    verdict = make([passed()], gate=GateRecord(status="error", reason=reason))
    assert verdict.reasons == [
        "The load gate could not run: the load process did not stop in time: it was still "
        "running after 10 s."
    ]
    gate = GateRecord(status="not_run", reason="HTTP 503 from the readiness check.")
    assert make([passed()], gate=gate).reasons[-1] == (
        "The load gate did not run: HTTP 503 from the readiness check."
    )


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
    assert verdict.reasons == ["Only 40 samples."]


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
    gate = good_gate(generator={"saturated": True, "cpu_max_percent": 99.2, "processes": 1})
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
    assert verdict.reasons == ["Database CPU at 95%.", "No data."]
    # in the order the hooks added them
    assert [c["metric"] for c in verdict.to_dict()["checks"]] == ["p95", "cache_hits", "db_cpu"]


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
    assert verdict.problems == (("error", "The database seed failed."),)
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


# -- failed requests (issue 10) ----------------------------------------------------------------


def test_a_waived_error_budget_is_a_warning_in_a_passing_verdict() -> None:
    waiver = Waiver("GET /api/products", source="stagegate.yaml:31")
    verdict = make([passed()], gate=good_gate(waivers=(waiver,)))
    assert verdict.state == "pass"
    assert verdict.reasons == [
        "1 test passed and all 4 budgets held on staging.",
        "Warning: the error budget of GET /api/products is waived (error_rate: off at "
        "stagegate.yaml:31): its failed requests do not fail the gate unless every one of "
        "them failed.",
    ]
    assert verdict.to_dict()["gate"]["waivers"] == [
        {"endpoint": "GET /api/products", "metric": "error_rate", "source": "stagegate.yaml:31"}
    ]


def test_a_waiver_is_not_warned_about_when_the_gate_did_not_run() -> None:
    waiver = Waiver("GET /x")
    gate = GateRecord(status="refused", reason="production is protected.", waivers=(waiver,))
    assert not any("waived" in r for r in make([passed()], gate=gate).reasons)


def test_a_name_whose_requests_all_failed_fails_the_verdict_with_a_plain_reason() -> None:
    dead = EndpointStats(
        "GET /x", 40, 40, 0.0, 0.0, 0.0, 0.0, {"p95": 0.0}, latency_samples=0, top_error="HTTP 500"
    )
    total = EndpointStats("total", 40, 40, 0.0, 0.0, 0.0, 0.0, latency_samples=0)
    waiver = Waiver("GET /x", source="stagegate.yaml:9")
    checks = evaluate(
        [Budget("total", "p95", 300.0)],
        {"GET /x": dead, "total": total},
        min_samples=100,
        default_error_rate=0.01,
        waivers=[waiver],
    )
    gate = good_gate(endpoints=[dead, total], checks=checks, waivers=(waiver,))
    verdict = make([passed()], gate=gate)
    assert verdict.state == "fail"
    # in the order of the checks: total's default error budget, then the waived name's
    assert verdict.reasons[0].startswith("Every request failed: 40 requests, all failed")
    assert verdict.reasons[1].startswith("Every request to GET /x failed (most often HTTP 500)")
    # p95 of total has no successful response to be judged on: never a pass
    assert any("P95 of total could not be judged: none of its 40" in r for r in verdict.reasons)
    entry = verdict.to_dict()["gate"]["endpoints"][0]
    assert (entry["name"], entry["failures"], entry["timeouts"]) == ("GET /x", 40, 0)
    # no successful response: no latency at all, never "0 ms"
    assert (entry["avg_ms"], entry["max_ms"], entry["percentiles"]) == (None, None, {"p95": None})


def test_a_hang_that_measured_nothing_is_error_saying_the_target_did_not_answer() -> None:
    reason = (
        "the target did not answer within the timeout (30 s): 4 requests were still waiting "
        "for an answer when the load stopped after 5 s, and none was answered, so nothing "
        "could be measured"
    )
    gate = GateRecord(status="error", reason=reason, load_seconds=5.0)
    verdict = make([passed()], gate=gate)
    assert verdict.state == "error"
    assert verdict.reasons == [
        "The load gate measured nothing: the target did not answer within the timeout (30 s): "
        "4 requests were still waiting for an answer when the load stopped after 5 s, and none "
        "was answered, so nothing could be measured."
    ]


def test_every_reason_starts_with_a_capital_whoever_wrote_it() -> None:
    """A budget's clause ("no baseline value for ..."), a hook's problem and note: each reason
    passes through ``sentence``, which starts it with a capital."""
    total = EndpointStats("total", 500, 0, 50.0, 90.0, 1.0, 120.0, {"p95": 100.0})
    checks = evaluate([Budget("total", "p95_regression", 0.1)], {"total": total}, min_samples=1)
    verdict = make([passed()], gate=good_gate(checks=checks))
    verdict.add_problem("inconclusive", "the database seed was skipped")
    verdict.add_reason("deployed by the Friday pipeline")
    assert verdict.reasons[0].startswith("No baseline value for p95 of total: no baseline")
    assert verdict.reasons[1:] == [
        "The database seed was skipped.",
        "Deployed by the Friday pipeline.",
    ]
    assert all(r[:1].isupper() for r in verdict.reasons)


def test_checks_keep_the_order_of_stagegate_yaml_everywhere() -> None:
    """The budgets' order as written (total first here, metrics unsorted), then the default
    error budgets: the same in the reasons, the JSON, the report's table and JUnit's cases."""
    from pytest_stagegate.verdict.junit import to_xml
    from pytest_stagegate.verdict.report import gate_table_lines

    slow = {"p95": 400.0, "p50": 300.0}
    stats = {
        "total": EndpointStats("total", 500, 0, 50.0, 300.0, 1.0, 500.0, slow),
        "GET /b": EndpointStats("GET /b", 250, 0, 25.0, 300.0, 1.0, 500.0, slow),
        "GET /a": EndpointStats("GET /a", 250, 0, 25.0, 300.0, 1.0, 500.0, slow),
    }
    written = [
        Budget("total", "p95", 100.0),
        Budget("total", "min_rps", 10.0),
        Budget("GET /b", "p50", 100.0),
        Budget("GET /a", "p95", 100.0),
    ]
    checks = evaluate(written, stats, min_samples=1, default_error_rate=0.01)
    order = [(b.metric, b.endpoint) for b in written]
    defaults = [("error_rate", name) for name in ("GET /a", "GET /b", "total")]
    data = make([passed()], gate=good_gate(checks=checks)).to_dict()
    got = [(c["metric"], c["endpoint"]) for c in data["gate"]["checks"]]
    assert got[:4] == order and sorted(got[4:], key=lambda m: m[1]) == defaults
    failed = [(m, e) for m, e in order if m != "min_rps"]
    reasons = make([passed()], gate=good_gate(checks=checks)).reasons
    assert [r.split(" was ")[0] for r in reasons] == [
        f"{m[:1].upper()}{m[1:]} of {e}" for m, e in failed
    ]
    table = [line for line, _ in gate_table_lines(data["gate"]) if " of " in line]
    assert [line.split()[0:3] for line in table] == [[m, "of", *e.split()[:1]] for m, e in got]
    xml = to_xml(data).decode()
    positions = [xml.index(f'name="{m} of {e} ') for m, e in got]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("no baseline value for p95 of total", "No baseline value for p95 of total."),
        ("p99.9 of total had 12 samples", "P99.9 of total had 12 samples."),
        ("xdist worker gw1 crashed", "Xdist worker gw1 crashed."),
        # a first word from code keeps its case: a metric key, a node id, a call, a host
        ("min_rps of total was low", "min_rps of total was low."),
        ("tests/test_a.py::test_b failed", "tests/test_a.py::test_b failed."),
        ("pytest.exit() stopped the run: done", "pytest.exit() stopped the run: done."),
        ("example.com did not answer", "example.com did not answer."),
    ],
)
def test_a_sentence_starts_with_a_capital_unless_it_starts_with_a_name(
    text: str, shown: str
) -> None:
    from pytest_stagegate.verdict.decide import sentence

    assert sentence(text) == shown
