"""Requests still waiting for their answers when the load stops: measured at their waits so
far, a lower bound of their latency (``Recorder.on_unanswered``), never dropped, never counted
as requests, failures or rate; through a worker's report, into the result and the verdict's
sentence on the load."""

from __future__ import annotations

import json

import pytest

from pytest_stagegate.load.child.arrivals import Windows
from pytest_stagegate.load.child.assemble import assemble_result
from pytest_stagegate.load.child.deadline import Unanswered
from pytest_stagegate.load.child.recorder import SERVICE_KEY, WINDOW_KEY, Recorder
from pytest_stagegate.load.plan import LoadPlan, PlannedRequest, PlannedStage
from pytest_stagegate.load.result import LoadResult
from pytest_stagegate.load.usage import UsageStats
from pytest_stagegate.verdict.report import load_model_sentence

START = 1000.0  # the load start (epoch seconds)


def plan(**kw: object) -> LoadPlan:
    fields: dict[str, object] = {
        "host": "http://127.0.0.1:1",
        "users": 50,
        "spawn_rate": 50.0,
        "duration": 3.0,
        "warmup": 1.0,
        "requests": [PlannedRequest("GET", "/work", "GET /work")],
        **kw,
    }
    return LoadPlan(**fields)  # type: ignore[arg-type]


def waiting(name: str, latency: float, start: float, **kw: object) -> Unanswered:
    fields: dict[str, object] = {"service_ms": None, "window": None, **kw}
    return Unanswered("GET", name, latency, start=start, **fields)  # type: ignore[arg-type]


def test_the_judged_waits_join_the_latency_and_nothing_else() -> None:
    rec = Recorder()
    rec.begin(START, plan())
    for i in range(10):  # 10 fast answers after the warm-up
        rec.on_request("GET", "GET /work", 5.0, start_time=START + 1.5 + i * 0.1)
    judged = rec.on_unanswered(
        [
            waiting("GET /work", 1500.0, START + 1.5),
            waiting("GET /work", 1200.0, START + 1.8),
            # a name that never answered: beside no answer its wait proves nothing (a dead
            # target must not gain fast latencies from its last attempts)
            waiting("GET /other", 900.0, START + 2.1),
            waiting("GET /work", 2500.0, START + 0.5),  # started in the warm-up: not judged
        ]
    )
    assert judged == 2 == rec.unanswered_measured
    fresh, warm = rec.take_fresh()
    work = fresh["GET /work"]
    # in the judged latency (max, percentiles), not in requests, failures or status classes
    assert (work.requests, work.failures, work.timeouts) == (10, 0, 0)
    assert work.hist.count == 12 and work.hist.max_ms == pytest.approx(1500.0, rel=0.002)
    assert sum(work.classes) == 0
    assert "GET /other" not in fresh
    assert warm == {}  # a warm-up one is nowhere (as an answered warm-up request's is unjudged)
    assert (rec.run_requests, rec.run_failures) == (10, 0)


def test_an_answer_after_the_stop_is_not_counted_again() -> None:
    rec = Recorder()
    rec.begin(START, plan(warmup=0.0))
    rec.on_request("GET", "GET /work", 5.0, start_time=START + 0.5)
    rec.on_unanswered([waiting("GET /work", 800.0, START + 1.0)])
    # the same request answered while the users were being stopped: already measured
    rec.on_request("GET", "GET /work", 850.0, start_time=START + 1.0)
    assert rec.last_judged is False
    fresh, _ = rec.take_fresh()
    assert fresh["GET /work"].hist.count == 2 and fresh["GET /work"].requests == 1
    assert rec.run_requests == 1


def test_the_open_model_judges_by_the_slots_window_with_service_times_and_stages() -> None:
    stages = [
        PlannedStage("ramp", 1.0, 10.0, None, judge=False),
        PlannedStage("peak", 2.0, 10.0, None, measure=True),
    ]
    staged = plan(warmup=0.0, rate=None, stages=stages, duration=3.0)
    windows = Windows.of(staged)
    ramp, peak = windows.at(0.5), windows.at(2.0)
    rec = Recorder()
    rec.begin(START, staged)
    rec.on_request(
        "GET",
        "GET /work",
        5.0,
        start_time=START + 1.2,
        context={WINDOW_KEY: peak, SERVICE_KEY: 5.0},
    )
    judged = rec.on_unanswered(
        [
            # due in the peak: its latency from its due time, its service time from its send
            waiting("GET /work", 1400.0, START + 1.5, service_ms=300.0, window=peak),
            # its slot was due in the ramp (judge: false), whenever it was sent
            waiting("GET /work", 2400.0, START + 0.5, service_ms=100.0, window=ramp),
        ]
    )
    assert judged == 1
    rec.take_fresh()
    work = rec.measured["GET /work"]
    assert work.hist.max_ms == pytest.approx(1400.0, rel=0.002)
    assert work.service_hist.max_ms == pytest.approx(300.0, rel=0.002)
    assert work.requests == 1
    in_peak = rec.stage_measured[1]["GET /work"]
    assert (in_peak.requests, in_peak.hist.count, in_peak.service_hist.count) == (1, 2, 2)


def test_a_workers_waits_reach_the_master() -> None:
    worker = Recorder()
    worker.begin(START, plan(warmup=0.0))
    worker.unfinished += 3
    worker.on_request("GET", "GET /work", 5.0, start_time=START + 0.5)
    master = Recorder()
    master.absorb(worker.drain())  # a report before the stop: the worker keeps what answered
    worker.on_unanswered([waiting("GET /work", 700.0, START + 2.0) for _ in range(2)])
    master.absorb(worker.drain())
    assert (master.unfinished, master.unanswered_measured) == (3, 2)
    fresh, _ = master.take_fresh()
    assert fresh["GET /work"].hist.count == 3 and fresh["GET /work"].requests == 1
    master.absorb(worker.drain())  # nothing new: drained once
    assert master.unanswered_measured == 2


def result_of(rec: Recorder, the_plan: LoadPlan) -> LoadResult:
    rec.take_fresh()
    return assemble_result(
        the_plan,
        status="completed",
        reason="",
        load_start=START,
        warmup_end=START + the_plan.warmup,
        stop_time=START + the_plan.duration,
        finished=START + the_plan.duration + 1,
        workers=0,
        run_requests=rec.run_requests,
        run_failures=rec.run_failures,
        endpoints=rec.measured,
        errors=(),
        processes=[UsageStats().usage("local")],
        html_report=None,
        unanswered=rec.unfinished,
        unanswered_measured=rec.unanswered_measured,
    )


def test_a_server_slow_at_the_end_fails_the_p95_it_passed_before() -> None:
    # the tester's case: 45 fast answers, then 105 requests still waiting at the stop
    the_plan = plan(warmup=0.0)
    rec = Recorder()
    rec.begin(START, the_plan)
    for i in range(45):
        rec.on_request("GET", "GET /work", 10.0, start_time=START + i * 0.03)
    rec.unfinished += 105
    rec.on_unanswered(
        [waiting("GET /work", 1500.0 - i * 14, START + 1.5 + i * 0.014) for i in range(105)]
    )
    result = result_of(rec, the_plan)
    assert result.status == "completed"
    assert (result.unanswered, result.unanswered_measured) == (105, 105)
    total = result.total
    assert (total.requests, total.failures) == (45, 0)  # error_rate and rps as before
    stats = total.stats(["p95", "p99"], result.measured_seconds)
    assert stats.rps == 15.0 and stats.error_rate == 0.0
    assert stats.latency_samples == 150 and stats.percentiles["p95"] > 1000.0
    again = LoadResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.unanswered_measured == 105


def test_a_hang_stays_an_error_and_judges_nothing() -> None:
    the_plan = plan(warmup=0.0)
    rec = Recorder()
    rec.begin(START, the_plan)
    rec.unfinished += 4
    rec.on_unanswered([waiting("GET /work", 2900.0, START + 0.1) for _ in range(4)])
    result = result_of(rec, the_plan)
    assert result.status == "error" and "did not answer within the timeout" in result.reason
    # nothing judged, the waits neither: the hang rule decides (an error, not a latency fail)
    assert result.endpoints == () and result.total.histogram.count == 0
    assert (result.unanswered, result.unanswered_measured) == (4, 0)


@pytest.mark.parametrize(
    ("load", "users", "expected"),
    [
        (
            {"model": "closed", "unanswered": 3, "unanswered_measured": 0},
            50,
            "Closed model: 50 users.",
        ),
        (
            {"model": "closed", "unanswered": 60, "unanswered_measured": 50},
            50,
            "Closed model: 50 users. 50 judged requests were still waiting for an answer when the "
            "load stopped: each is in the latency at its wait so far (a lower bound).",
        ),
        (
            {"model": "open", "rate": 50, "iterations_due": 150, "unanswered_measured": 1},
            500,
            "Open model: 50 iterations/s, users up to 500; 0 of 150 iterations dropped (0%). 1 "
            "judged request was still waiting for an answer when the load stopped: each is in "
            "the latency at its wait so far (a lower bound).",
        ),
    ],
)
def test_the_verdict_says_how_many_were_measured_at_their_wait(
    load: dict[str, object], users: int, expected: str
) -> None:
    assert load_model_sentence(load, users) == expected
