"""The open model end to end: real Locust child processes against a real server on 127.0.0.1.

Every assertion holds on a slow, busy machine: the counts are bounded by the schedule (the load
stops no sooner than its duration, and every judged slot due more than the arrival lag before
the stop is counted, started or dropped), never by how fast anything ran. The schedule's
arithmetic itself is unit-tested in tests/unit/load/child/test_arrivals.py.
"""

from __future__ import annotations

import math

from pytest_stagegate.load.child.arrivals import Schedule
from pytest_stagegate.load.plan import LoadPlan, PlannedRequest, PlannedStage
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import EndpointResult, LoadResult
from tests.servers import HTTPTestServer, Route

PERCENTILES = (0, 50, 90, 95, 99, 100)


def judged_slots(plan: LoadPlan, start: float, end: float) -> int:
    """The schedule's slots due in [start, end] (seconds from the load start); with stages
    (start, end]: a slot due at a stage's edge is the stage it ends."""
    schedule = Schedule.of(plan)
    if schedule.first:
        return schedule.slots_by(end) - schedule.slots_by(start)
    return schedule.slots_by(end) - schedule.slots_before(start)


def assert_service_within_latency(ep: EndpointResult) -> None:
    # each request's latency (from its due time) is its service time (from its send) plus its
    # wait: order statistics, and so every percentile of the histograms, keep that order
    service = ep.service_histogram
    assert service is not None and service.count == ep.histogram.count > 0
    for p in PERCENTILES:
        assert service.percentile(p) <= ep.histogram.percentile(p), p


def assert_timeline_counts_the_run(result: LoadResult) -> None:
    assert result.timeline
    assert sum(p.requests for p in result.timeline) == result.requests_including_warmup
    assert sum(p.failures for p in result.timeline) == result.failures_including_warmup
    times = [p.t for p in result.timeline]
    assert times == sorted(times) and times[-1] <= result.load_seconds + 0.001


def test_too_few_users_for_the_rate_drop_iterations_and_latency_counts_the_wait() -> None:
    # 2 users against a server that takes 100 ms can start at most 20 iterations a second;
    # 40 are asked for: the rest are dropped, and whatever starts late waited for it
    with HTTPTestServer({"/slow": Route(latency=0.1)}) as server:
        plan = LoadPlan(
            host=server.url,
            users=2,
            spawn_rate=2,
            duration=3.0,
            rate=40.0,
            requests=[PlannedRequest("GET", "/slow", "GET /slow")],
        )
        result = run_load(plan)
        received = server.total
    assert result.status == "completed", result.reason
    assert (result.model, result.rate) == ("open", 40.0)
    # every slot due up to the stop minus the lag is counted; none after the duration exists
    lag = plan.arrival_lag
    assert judged_slots(plan, 0.0, plan.duration - lag) <= result.iterations_due <= 120
    started = result.iterations_due - result.dropped
    # each started iteration sent one request; only those cut at the stop may not have arrived
    assert started - result.unanswered <= received <= started
    assert result.total.requests <= received
    # a user is busy 100 ms per iteration at least: 2 users start at most this many
    most = 2 * (math.floor(result.load_seconds / 0.1) + 1)
    assert result.dropped >= result.iterations_due - most
    assert result.dropped > 0
    assert_service_within_latency(result.total)
    # the slots were due while the users were busy: the latency holds the wait
    service = result.total.service_histogram
    assert service is not None and result.total.histogram.mean_ms > service.mean_ms
    assert_timeline_counts_the_run(result)


def test_stages_across_two_workers_split_the_slots_and_merge_exactly() -> None:
    with HTTPTestServer({"/a": Route(latency=0.005)}) as server:
        plan = LoadPlan(
            host=server.url,
            users=8,
            spawn_rate=8,
            duration=3.0,
            stages=[
                PlannedStage("ramp", 1.0, rate=40.0, judge=False),
                PlannedStage("peak", 2.0, rate=40.0, measure=True),
            ],
            requests=[PlannedRequest("GET", "/a", "GET /a")],
        )
        result = run_load(plan, workers=2)
        received = server.total
    assert result.status == "completed", result.reason
    assert (result.model, result.rate, result.workers) == ("open", None, 2)
    ramp, peak = result.stages
    assert (ramp.name, ramp.judged, ramp.level_from, ramp.level_to) == ("ramp", False, 0.0, 40.0)
    assert (peak.start_s, peak.level_from, peak.unit) == (1.0, 40.0, "iterations/s")
    assert ramp.total is None and peak.total is not None
    # the peak is the only judged stage: its requests apart are the judged ones, exactly
    assert peak.total.requests == result.total.requests > 0
    assert peak.total.histogram.to_dict() == result.total.histogram.to_dict()
    # and its iterations due and dropped, both workers' (its budgets' dropped rule)
    assert (peak.iterations_due, peak.dropped) == (result.iterations_due, result.dropped)
    assert ramp.iterations_due is None and ramp.dropped is None
    # both workers' shares of the judged slots are counted: the ramp's 20 are not
    lag = plan.arrival_lag
    assert judged_slots(plan, 1.0, 3.0 - lag) <= result.iterations_due <= judged_slots(plan, 1, 3)
    # no slot ran twice: at most the schedule's 100, every counted start among them
    started = result.iterations_due - result.dropped
    assert started - result.unanswered <= received <= 100
    assert result.requests_including_warmup <= received
    assert_service_within_latency(result.total)
    assert_service_within_latency(peak.total)
    assert_timeline_counts_the_run(result)
    assert {p.stage for p in result.timeline} <= {"ramp", "peak"}
    assert result.timeline[0].stage == "ramp" and not result.timeline[0].judged
