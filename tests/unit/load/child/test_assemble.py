"""``load.child.assemble``: the child's ``LoadResult``, the very type the parent reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_stagegate._redact import Redactor
from pytest_stagegate.budgets import TOTAL
from pytest_stagegate.load.child.assemble import (
    assemble_result,
    error_result,
    iso_time,
    merge_errors,
    redact_endpoints,
    stage_results,
    unanswered_reason,
)
from pytest_stagegate.load.child.recorder import EndpointTally
from pytest_stagegate.load.plan import LoadPlan, PlannedStage
from pytest_stagegate.load.result import ErrorRecord, LoadResult, StageResult, TimelinePoint
from pytest_stagegate.load.usage import UsageStats

SECRET = "s3cr3t-T0KEN"
PLAN = LoadPlan(
    host="http://127.0.0.1:9",
    users=7,
    spawn_rate=7,
    duration=10,
    warmup=2,
    saturation_cpu=85,
    timeout=30,
)


def tally(
    method: str,
    times: list[float],
    failures: int = 0,
    *,
    timeouts: int = 0,
    failed: list[float] | None = None,
) -> EndpointTally:
    """``times``: the judged latency (successes and ``timeouts``); ``failed``: the other
    failures' times, counted in ``requests`` and ``failures`` too."""
    ep = EndpointTally()
    ep.methods.add(method)
    ep.requests = len(times) + len(failed or [])
    ep.failures = failures + len(failed or [])
    ep.timeouts = timeouts
    for t in times:
        ep.hist.record(t)
    for t in failed or []:
        ep.failed_hist.record(t)
    return ep


def usage(role: str, cpu: float) -> Any:
    stats = UsageStats()
    for _ in range(4):
        stats.add_cpu(cpu, 85.0)
        stats.add_lag(1.5)
    return stats.usage(role)


def assembled(**overrides: Any) -> LoadResult:
    fields: dict[str, Any] = {
        "status": "completed",
        "reason": "",
        "load_start": 1_767_225_600.0,
        "warmup_end": 1_767_225_602.0,
        "stop_time": 1_767_225_610.0004,
        "finished": 1_767_225_611.5,
        "workers": 2,
        "run_requests": 40,
        "run_failures": 3,
        "endpoints": {
            "POST /b": tally("POST", [100.0, 120.0], failures=1),
            "GET /a": tally("GET", [float(i) for i in range(1, 31)], failures=2),
        },
        "errors": (ErrorRecord("GET /a", "GET", "boom", 3),),
        "processes": [usage("master", 99.0), usage("worker 1", 40.0), usage("worker 2", 60.0)],
        "html_report": "/tmp/report.html",
    }
    fields.update(overrides)
    return assemble_result(PLAN, **fields)


def test_assembled_result_round_trips_exactly() -> None:
    result = assembled()
    doc = json.loads(json.dumps(result.to_dict()))
    again = LoadResult.from_dict(doc)
    assert again == result
    assert again.to_dict() == result.to_dict()
    # histograms are not part of the dataclasses' equality: compare them too
    pairs = zip((*result.endpoints, result.total), (*again.endpoints, again.total), strict=True)
    for before, after in pairs:
        assert after.histogram.to_dict() == before.histogram.to_dict()
        assert after.failed_histogram.to_dict() == before.failed_histogram.to_dict()


def test_timeouts_other_failures_and_unanswered_requests_reach_the_result() -> None:
    result = assembled(
        endpoints={
            "GET /a": tally("GET", [10.0, 2000.0], failures=1, timeouts=1, failed=[0.5, 0.7]),
            "GET /b": tally("GET", [], failed=[0.2]),
        },
        unanswered=4,
    )
    a, b = result.endpoints
    assert (a.requests, a.failures, a.timeouts) == (4, 3, 1)
    assert a.histogram.max_ms == 2000.0 and a.failed_histogram.count == 2
    assert (b.requests, b.failures, b.histogram.count, b.failed_histogram.max_ms) == (1, 1, 0, 0.2)
    total = result.total
    assert (total.requests, total.failures, total.timeouts) == (5, 4, 1)
    assert total.histogram.count == 2 and total.failed_histogram.count == 3
    assert total.histogram.min_ms == 10.0  # the refused ones never make it look fast
    assert result.unanswered == 4
    assert LoadResult.from_dict(json.loads(json.dumps(result.to_dict()))).unanswered == 4


def test_assembled_fields() -> None:
    result = assembled()
    assert result.started_at == "2026-01-01T00:00:00.000+00:00"
    assert result.finished_at == "2026-01-01T00:00:11.500+00:00"
    assert (result.load_seconds, result.measured_seconds) == (10.0, 8.0)
    assert (result.warmup_seconds, result.users, result.workers) == (2.0, 7, 2)
    assert (result.requests_including_warmup, result.failures_including_warmup) == (40, 3)
    assert [(e.name, e.method, e.requests) for e in result.endpoints] == [
        ("GET /a", "GET", 30),
        ("POST /b", "POST", 2),
    ]
    assert (result.total.name, result.total.method) == (TOTAL, "")
    assert (result.total.requests, result.total.failures) == (32, 3)
    assert result.total.histogram.count == 32 and result.total.histogram.max_ms == 120.0
    assert result.html_report == "/tmp/report.html"


def test_the_generator_counts_the_load_processes_not_the_master() -> None:
    generator = assembled().generator
    assert generator.processes == 2
    assert generator.saturated is False  # the busy master does not count
    assert generator.cpu_max_percent == 60.0 and generator.loop_lag_max_ms == 1.5
    assert generator.saturation_cpu == 85.0
    assert [p.role for p in generator.per_process] == ["master", "worker 1", "worker 2"]
    hot = assembled(processes=[usage("local", 99.0)]).generator
    assert hot.saturated is True and "the local process" in hot.note


def test_a_run_aborted_in_its_warmup_measured_nothing() -> None:
    result = assembled(stop_time=1_767_225_601.0, endpoints={}, status="aborted", reason="r")
    assert result.measured_seconds == 0.0 and result.load_seconds == 1.0
    assert result.endpoints == () and result.total.requests == 0
    assert LoadResult.from_dict(result.to_dict()) == result


def test_endpoints_are_redacted_and_merged() -> None:
    redact = Redactor([SECRET])
    measured = {
        f"/a?token={SECRET}": tally("GET", [1.0]),
        "/a?token=***": tally("POST", [2.0, 3.0], failures=1, timeouts=1, failed=[0.1]),
        "/b": tally(f"X-{SECRET}", [4.0]),
    }
    merged = redact_endpoints(measured, redact)
    assert set(merged) == {"/a?token=***", "/b"}
    a = merged["/a?token=***"]
    assert (a.methods, a.requests, a.failures, a.hist.count) == ({"GET", "POST"}, 4, 2, 3)
    assert (a.timeouts, a.failed_hist.count) == (1, 1)
    assert merged["/b"].methods == {"X-***"}


def test_errors_are_redacted_merged_and_the_most_frequent_first() -> None:
    errors = merge_errors(
        [
            ("GET /a", "GET", f"rejected {SECRET}", 2),
            ("GET /b", "GET", "HTTP 500", 3),
            ("GET /a", "GET", "rejected ***", 2),
        ],
        Redactor([SECRET]),
    )
    assert errors == (
        ErrorRecord("GET /a", "GET", "rejected ***", 4),
        ErrorRecord("GET /b", "GET", "HTTP 500", 3),
    )


def test_a_failed_expectations_error_is_its_message_not_an_exception_repr() -> None:
    """Locust records a catch_response failure as CatchResponseError('...'): the result, and
    so the terminal, the verdict, verify and report, has its message once; a real exception
    keeps its class name."""
    expectation = 'expect.json "length(items) > `0`": got false, expected true'
    errors = merge_errors(
        [
            ("GET /list", "GET", f"CatchResponseError({expectation!r})", 2),
            ("GET /list", "GET", expectation, 1),
            ("GET /x", "GET", "ConnectionRefusedError(111, 'Connection refused')", 1),
        ],
        Redactor([SECRET]),
    )
    assert errors == (
        ErrorRecord("GET /list", "GET", expectation, 3),
        ErrorRecord("GET /x", "GET", "ConnectionRefusedError(111, 'Connection refused')", 1),
    )


def test_error_result_round_trips_and_says_nothing_was_generated() -> None:
    result = error_result(PLAN, "The locustfile x does not exist.", 3, 1_767_225_600.0)
    assert result.status == "error" and result.reason == "The locustfile x does not exist."
    assert result.started_at == result.finished_at == iso_time(1_767_225_600.0)
    assert (result.users, result.workers, result.warmup_seconds) == (7, 3, 2.0)
    assert result.generator.note == "No load was generated."
    assert result.generator.saturation_cpu == 85.0 and result.generator.processes == 0
    assert LoadResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    unread = error_result(None, "The load plan could not be read: x", 0, 0.0)
    assert (unread.users, unread.warmup_seconds, unread.generator.saturation_cpu) == (0, 0.0, 0.0)
    assert LoadResult.from_dict(unread.to_dict()).to_dict() == unread.to_dict()


HANG = (
    "the target did not answer within the timeout (30 s): 4 requests were still waiting for an "
    "answer when the load stopped after 10 s, and none was answered, so nothing could be measured"
)


def test_a_completed_run_that_sent_requests_and_measured_none_is_an_error() -> None:
    # a hang: every request still waiting when the load stopped
    result = assembled(endpoints={}, run_requests=0, run_failures=0, errors=(), unanswered=4)
    assert (result.status, result.reason) == ("error", HANG)
    assert result.unanswered == 4 and result.total.requests == 0
    again = LoadResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert (again.status, again.reason) == ("error", HANG)


def test_unanswered_requests_beside_measured_ones_leave_the_status_alone() -> None:
    # some answered: the budgets judge them (the unanswered ones are reported, not a hang)
    result = assembled(unanswered=4)
    assert (result.status, result.reason, result.unanswered) == ("completed", "", 4)
    # nothing measured and nothing waiting: no hang either (the budgets say "no samples")
    empty = assembled(endpoints={}, unanswered=0)
    assert (empty.status, empty.reason) == ("completed", "")


def test_an_aborted_run_keeps_its_own_reason_even_with_requests_waiting() -> None:
    result = assembled(endpoints={}, status="aborted", reason="stopped by CI", unanswered=4)
    assert (result.status, result.reason) == ("aborted", "stopped by CI")


def test_the_unanswered_reason_names_the_timeout_the_duration_and_the_count() -> None:
    assert unanswered_reason(4, PLAN) == HANG
    one = unanswered_reason(
        1, LoadPlan(host="http://h", users=1, spawn_rate=1, duration=2.5, timeout=0.5)
    )
    assert "(0.5 s): 1 request was still waiting" in one and "after 2.5 s," in one
    assert "1,234 requests were" in unanswered_reason(1234, PLAN)


def test_a_closed_model_result_has_no_service_times_nor_slots() -> None:
    result = assembled(iterations_due=5, dropped=1)
    assert (result.model, result.rate, result.iterations_due, result.dropped) == (
        "closed",
        None,
        0,
        0,
    )
    assert result.total.service_histogram is None and result.stages == ()


def test_an_open_model_result_has_service_times_slots_stages_and_the_timeline() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=7,
        spawn_rate=7,
        duration=10,
        stages=[
            PlannedStage("ramp", 4.0, rate=10.0, judge=False),
            PlannedStage("peak", 6.0, rate=30.0, measure=True),
            PlannedStage("tail", 2.0, rate=30.0),
        ],
    )
    ep = tally("GET", [10.0, 20.0, 30.0])
    for t in (5.0, 6.0, 7.0):
        ep.service_hist.record(t)
    point = TimelinePoint(t=0.5, requests=3, failures=0, p95_ms=30.0, stage="ramp", judged=False)
    result = assemble_result(
        plan,
        status="aborted",
        reason="stopped",
        load_start=1000.0,
        warmup_end=1000.0,
        stop_time=1007.5,  # during the peak
        finished=1008.0,
        workers=0,
        run_requests=3,
        run_failures=0,
        endpoints={"GET /a": ep},
        errors=(),
        processes=[usage("local", 10.0)],
        html_report=None,
        iterations_due=120,
        dropped=3,
        stage_endpoints={1: {"GET /a": ep}},
        timeline=[point],
    )
    assert (result.model, result.rate, result.iterations_due, result.dropped) == (
        "open",
        None,
        120,
        3,
    )
    service = result.total.service_histogram
    assert service is not None and service.max_ms == 7.0
    ramp, peak, tail = result.stages
    assert (ramp.start_s, ramp.end_s, ramp.judged, ramp.level_from, ramp.level_to) == (
        0.0,
        4.0,
        False,
        0.0,
        10.0,
    )
    # planned times cut at the load's end; the levels as planned
    assert (peak.start_s, peak.end_s, peak.level_from, peak.level_to) == (4.0, 7.5, 10.0, 30.0)
    assert (tail.start_s, tail.end_s, tail.unit) == (7.5, 7.5, "iterations/s")
    assert ramp.total is None and tail.total is None and ramp.endpoints == ()
    assert peak.total is not None and peak.total.requests == 3
    assert [e.name for e in peak.endpoints] == ["GET /a"]
    assert peak.total.service_histogram is not None
    assert result.timeline == (point,)
    again = LoadResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


def test_closed_model_stages_are_in_users() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=7,
        spawn_rate=7,
        duration=3,
        stages=[PlannedStage("up", 1.0, users=5), PlannedStage("hold", 2.0, users=5)],
    )
    stages = stage_results(plan, 3.2, {})
    assert [(s.unit, s.level_from, s.level_to, s.end_s) for s in stages] == [
        ("users", 0.0, 5.0, 1.0),
        ("users", 5.0, 5.0, 3.0),
    ]
    assert [(s.requests, s.failures) for s in stages] == [(None, None), (None, None)]


def test_every_stage_has_its_request_counts_and_reads_without_them() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=7,
        spawn_rate=7,
        duration=3,
        stages=[PlannedStage("up", 1.0, users=5), PlannedStage("hold", 2.0, users=5)],
    )
    up, hold = stage_results(plan, 3.2, {}, {0: (12, 2)})
    assert (up.requests, up.failures, hold.requests, hold.failures) == (12, 2, 0, 0)
    assert StageResult.from_dict(up.to_dict(), "s") == up
    older = {k: v for k, v in up.to_dict().items() if k not in ("requests", "failures")}
    assert StageResult.from_dict(older, "s").requests is None
    # iterations due and dropped: the open model's judged stages only
    assert (up.iterations_due, up.dropped) == (None, None)
    assert stage_results(plan, 3.2, {}, {}, {1: (9, 1)})[1].iterations_due is None  # closed


def test_the_open_models_judged_stages_have_their_due_and_dropped_iterations() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9",
        users=7,
        spawn_rate=7,
        duration=3,
        stages=[
            PlannedStage("up", 1.0, rate=5.0, judge=False),
            PlannedStage("peak", 1.0, rate=5.0),
            PlannedStage("down", 1.0, rate=0.0),
        ],
    )
    up, peak, down = stage_results(plan, 3.2, {}, {}, {1: (5, 2), 0: (9, 9)})
    assert (up.iterations_due, up.dropped) == (None, None)  # not judged
    assert (peak.iterations_due, peak.dropped) == (5, 2)
    assert (down.iterations_due, down.dropped) == (0, 0)
    assert StageResult.from_dict(peak.to_dict(), "s") == peak
    older = {k: v for k, v in peak.to_dict().items() if k not in ("iterations_due", "dropped")}
    assert StageResult.from_dict(older, "s").iterations_due is None
    assert [s.iterations_due for s in stage_results(plan, 3.2, {}, {})] == [None] * 3
    with pytest.raises(ValueError, match="requests"):
        StageResult.from_dict({**up.to_dict(), "requests": -1}, "s")
