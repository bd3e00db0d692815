"""Issue 12 in the recorder and the result: status classes per request name, the declared
flows' tallies (closed and open model), a worker's report of them and of its data rows, and
the child's redactor growing with captured values."""

from __future__ import annotations

from typing import Any

from pytest_stagegate.load.child.arrivals import Window
from pytest_stagegate.load.child.assemble import assemble_result, redact_endpoints
from pytest_stagegate.load.child.captured import GrowingRedactor, note
from pytest_stagegate.load.child.data import Feeder
from pytest_stagegate.load.child.recorder import (
    FLOW_METHOD,
    EndpointTally,
    Recorder,
    status_class,
)
from pytest_stagegate.load.plan import LoadPlan, PlannedFlow
from pytest_stagegate.load.result import LoadResult

WARMUP_END = 1000.0


class Response:
    def __init__(self, status_code: Any) -> None:
        self.status_code = status_code


class Broken:
    @property
    def status_code(self) -> int:
        raise RuntimeError("a custom client's response")


def recorder() -> Recorder:
    rec = Recorder()
    rec.warmup_end = WARMUP_END
    return rec


def test_status_class_of_a_response() -> None:
    assert [status_class(Response(c)) for c in (101, 200, 302, 404, 503)] == [1, 2, 3, 4, 5]
    # no response (a timeout), Locust's stand-in for a refused connection, garbage
    assert [status_class(r) for r in (None, Response(0), Response(None), Broken())] == [0] * 4
    assert status_class(Response(700)) == 0 and status_class(Response("200")) == 0


def test_judged_responses_are_counted_by_status_class_per_name() -> None:
    rec = recorder()
    for code in (200, 200, 201, 404, 503, 503):
        rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END, response=Response(code))
    rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END, response=None, exception=OSError())
    rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END - 1, response=Response(500))  # warm-up
    rec.take_fresh()
    ep = rec.measured["/a"]
    assert ep.requests == 7
    assert ep.status_classes == {"2xx": 3, "3xx": 0, "4xx": 1, "5xx": 2}
    rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END, response=Response(100))
    rec.take_fresh()
    assert rec.measured["/a"].status_classes["1xx"] == 1


def test_flows_are_judged_by_their_start_or_slot_and_failures_kept_apart() -> None:
    rec = recorder()
    rec.on_flow("checkout", 120.0, True, WARMUP_END + 1, None)
    rec.on_flow("checkout", 300.0, False, WARMUP_END + 2, None)
    rec.on_flow("checkout", 999.0, True, WARMUP_END - 1, None)  # started in the warm-up
    # the open model: the slot's window decides, whatever the start says
    rec.on_flow("checkout", 80.0, True, 0.0, Window(0, 1, judged=True))
    rec.on_flow("checkout", 80.0, True, WARMUP_END + 5, Window(0, 1, judged=False))
    rec.take_fresh()
    flow = rec.flows_measured["checkout"]
    assert (flow.requests, flow.failures, flow.methods) == (3, 1, {FLOW_METHOD})
    assert flow.hist.count == 2 and flow.hist.max_ms == 120.0
    assert flow.failed_hist.count == 1 and flow.failed_hist.max_ms == 300.0
    assert rec.measured == {}  # flows are not requests: never in total


def test_a_workers_report_carries_classes_flows_and_rows() -> None:
    worker = recorder()
    worker.feeder = Feeder([{"u": "a"}, {"u": "b"}], "unique")
    worker.on_request("GET", "/a", 5.0, start_time=WARMUP_END, response=Response(503))
    worker.on_flow("checkout", 50.0, True, WARMUP_END, None)
    worker.feeder.take()
    master = recorder()
    master.absorb(worker.drain())
    assert master.data_ran_out() is None
    worker.feeder.take()
    assert worker.feeder.take() is None and worker.data_ran_out() == 2
    master.absorb(worker.drain())
    master.take_fresh()
    assert master.measured["/a"].status_classes["5xx"] == 1
    assert master.flows_measured["checkout"].hist.count == 1
    assert master.data_ran_out() == 2 and master.rows_taken == 2
    # a worker of 0.2 sends 7 items per endpoint: no classes, still read
    old = EndpointTally()
    old.add_list(master.measured["/a"].to_list()[:7])
    assert old.requests == 1 and old.status_classes["5xx"] == 0


def test_the_result_has_status_classes_and_every_declared_flow() -> None:
    plan = LoadPlan(
        host="http://127.0.0.1:9", users=1, spawn_rate=1, duration=10,
        flows=[PlannedFlow("checkout"), PlannedFlow("browse")],
    )  # fmt: skip
    rec = recorder()
    rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END, response=Response(200))
    rec.on_flow("checkout", 50.0, True, WARMUP_END, None)
    rec.on_flow("checkout", 70.0, False, WARMUP_END, None)
    rec.take_fresh()
    result = assemble_result(
        plan, status="completed", reason="", load_start=WARMUP_END, warmup_end=WARMUP_END,
        stop_time=WARMUP_END + 10, finished=WARMUP_END + 11, workers=0, run_requests=1,
        run_failures=0, endpoints=redact_endpoints(rec.measured, str), errors=(), processes=(),
        html_report=None, flows=rec.flows_measured,
    )  # fmt: skip
    assert result.endpoints[0].status_classes == {"2xx": 1, "3xx": 0, "4xx": 0, "5xx": 0}
    assert result.total.status_classes["2xx"] == 1
    checkout, browse = result.flows
    assert (checkout.name, checkout.method, checkout.requests, checkout.failures) == (
        "checkout", "FLOW", 2, 1,
    )  # fmt: skip
    assert checkout.histogram.count == 1 and browse.requests == 0
    assert result.total.requests == 1  # flows are not in total
    again = LoadResult.from_dict(result.to_dict())
    assert again.flows == result.flows
    assert again.endpoints[0].status_classes == result.endpoints[0].status_classes


def test_the_childs_redactor_grows_with_captured_values() -> None:
    redact = GrowingRedactor(["plan-secret-value"])
    token = "tok-7f3a9c2e51d0"
    assert redact(f"Bearer {token} and plan-secret-value") == f"Bearer {token} and ***"
    note(token)
    note("abc")  # too short to be masked: not a secret
    # a captured word or JSON value as text is no token: under 8 characters, never masked
    note("items")
    note("true")
    note("1234567")
    assert redact(f"Bearer {token}") == "Bearer ***"
    assert redact("abc") == "abc"
    assert redact('expect.json "length(items) > `0`": got false, expected true') == (
        'expect.json "length(items) > `0`": got false, expected true'
    )
    assert redact("1234567 true") == "1234567 true"
    assert redact.found_in(token) and bool(redact)
