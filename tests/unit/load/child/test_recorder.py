"""``load.child.recorder``: the measured window, the warm-up, and the workers' reports."""

from __future__ import annotations

import math
import random
import tracemalloc
from typing import Any

import pytest

from pytest_stagegate.histogram import RELATIVE_ERROR, LogHistogram, exact_percentile
from pytest_stagegate.load.child.arrivals import Schedule, Slots, Windows
from pytest_stagegate.load.child.recorder import (
    FAILED,
    MAX_TIMELINE_POINTS,
    SERVICE_KEY,
    SUCCESS,
    TIMEOUT,
    WINDOW_KEY,
    EndpointTally,
    Recorder,
    Timeline,
    classify,
    keeps_locust_stats,
    merge_histograms,
)
from pytest_stagegate.load.plan import LoadPlan, PlannedStage

WARMUP_END = 1000.0


def recorder() -> Recorder:
    rec = Recorder()
    rec.warmup_end = WARMUP_END
    return rec


def test_a_request_counts_by_when_it_started() -> None:
    rec = recorder()
    # started before the warm-up's end, finished after it: warm-up
    rec.on_request("GET", "/a", 500.0, start_time=WARMUP_END - 0.1)
    rec.on_request("GET", "/a", 20.0, start_time=WARMUP_END)
    rec.on_request("POST", "/a", 30.0, exception=ValueError("x"), start_time=WARMUP_END + 1)
    fresh, warm = rec.take_fresh()
    assert set(fresh) == {"/a"} and set(warm) == {"/a"}
    assert fresh["/a"].requests == 2 and fresh["/a"].failures == 1
    assert fresh["/a"].methods == {"GET", "POST"}
    # the failure (no timeout) is timed apart: the judged latency holds the success only
    assert fresh["/a"].hist.max_ms == 20.0 and fresh["/a"].hist.count == 1
    assert fresh["/a"].failed_hist.max_ms == 30.0 and fresh["/a"].timeouts == 0
    assert warm["/a"].count == 1 and warm["/a"].max_ms == 500.0
    assert (rec.run_requests, rec.run_failures) == (3, 1)


def test_without_a_warmup_end_everything_is_warmup() -> None:
    rec = Recorder()
    rec.on_request("GET", "/a", 5.0, start_time=1e12)
    fresh, warm = rec.take_fresh()
    assert fresh == {} and warm["/a"].count == 1
    assert rec.run_requests == 1


def test_without_a_start_time_the_response_time_dates_the_request() -> None:
    rec = Recorder()
    rec.warmup_end = 0.0  # any real clock is past it
    rec.on_request("GET", "/a", 5.0)
    assert rec.take_fresh()[0]["/a"].requests == 1


@pytest.mark.parametrize("garbage", [None, -1.0, math.nan, math.inf])
def test_a_custom_clients_garbage_time_is_counted_but_not_timed(garbage: Any) -> None:
    rec = recorder()
    rec.on_request("GET", "/a", garbage, start_time=WARMUP_END + 1)
    rec.on_request("GET", "/a", 7.0, start_time=WARMUP_END + 1)
    ep = rec.take_fresh()[0]["/a"]
    assert ep.requests == 2 and ep.hist.count == 1 and ep.hist.max_ms == 7.0


def test_take_fresh_folds_into_the_measured_window_and_starts_over() -> None:
    rec = recorder()
    rec.on_request("GET", "/a", 10.0, start_time=WARMUP_END + 1)
    rec.take_fresh()
    rec.on_request("GET", "/a", 20.0, start_time=WARMUP_END + 2)
    fresh, _ = rec.take_fresh()
    assert fresh["/a"].requests == 1
    assert rec.measured["/a"].requests == 2 and rec.measured["/a"].hist.count == 2
    assert rec.take_fresh() == ({}, {})


def test_a_drained_report_absorbed_by_the_master_is_the_same_measurement() -> None:
    worker = recorder()
    for i in range(50):
        worker.on_request("GET", "/a", float(i), start_time=WARMUP_END + 1)
    worker.on_request("GET", "/b", 99.0, exception=OSError("x"), start_time=WARMUP_END + 1)
    worker.on_request("GET", "/a", 400.0, start_time=WARMUP_END - 1)
    worker.on_request("GET", "/b", 2000.0, exception=TimeoutError(), start_time=WARMUP_END + 1)
    worker.unfinished = 3

    def tally(e: EndpointTally) -> tuple[Any, ...]:
        return (e.requests, e.failures, e.timeouts, e.hist.to_dict(), e.failed_hist.to_dict())

    expected = {n: tally(e) for n, e in worker.fresh.items()}
    assert expected["/b"][:3] == (2, 2, 1)
    master = Recorder()
    master.absorb(worker.drain())
    assert (worker.run_requests, worker.fresh, worker.fresh_warmup) == (0, {}, {})
    assert worker.unfinished == 0
    fresh, warm = master.take_fresh()
    assert {n: tally(e) for n, e in fresh.items()} == expected
    assert fresh["/b"].methods == {"GET"}
    assert warm["/a"].max_ms == 400.0
    assert (master.run_requests, master.run_failures, master.unfinished) == (53, 2, 3)
    master.absorb(worker.drain())  # an empty report adds nothing
    assert master.run_requests == 53 and master.take_fresh() == ({}, {})


def test_a_report_of_a_0_1_worker_still_counts() -> None:
    # [methods, requests, failures, histogram]: no timeouts nor failed times
    h = LogHistogram()
    h.record(5.0)
    master = Recorder()
    master.absorb({"m": {"/a": [["GET"], 2, 1, h.to_dict()]}, "rn": 2, "rf": 1})
    ep = master.take_fresh()[0]["/a"]
    assert (ep.requests, ep.failures, ep.timeouts, ep.hist.count) == (2, 1, 0, 1)


class RequestTimedOut(Exception):
    """As ``load.child.deadline`` names it (that module imports gevent)."""


class Timeout(BaseException):
    """As gevent names its timeout (a BaseException), which geventhttpclient raises."""


def _wrapped_read_timeout() -> BaseException:
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from urllib3.exceptions import ReadTimeoutError

    # requests wraps a read timeout met while reading a body in a ConnectionError
    return RequestsConnectionError(ReadTimeoutError(None, "/x", "Read timed out."))  # type: ignore[arg-type]


def _retries_exceeded_after_a_timeout() -> BaseException:
    # geventhttpclient's RetriesExceeded(url, retries, original=last_error), its class faked
    # here (geventhttpclient imports gevent)
    class RetriesExceeded(ConnectionError):
        def __init__(self, url: str, retries: int, original: BaseException) -> None:
            super().__init__(url, retries)
            self.original = original

    return RetriesExceeded("http://127.0.0.1:1/hang", 0, original=TimeoutError("timed out"))


def _chained_timeout() -> BaseException:
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as inner:
            raise OSError("read failed") from inner
    except OSError as outer:
        return outer


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: None, SUCCESS),
        (lambda: RequestTimedOut("no complete response within 2 s"), TIMEOUT),
        (lambda: Timeout(), TIMEOUT),
        (lambda: TimeoutError("timed out"), TIMEOUT),  # socket.timeout
        (lambda: __import__("requests").exceptions.ReadTimeout("read"), TIMEOUT),
        (lambda: __import__("requests").exceptions.ConnectTimeout("connect"), TIMEOUT),
        (_wrapped_read_timeout, TIMEOUT),
        (_chained_timeout, TIMEOUT),
        (_retries_exceeded_after_a_timeout, TIMEOUT),
        (lambda: ConnectionRefusedError(111, "Connection refused"), FAILED),
        (lambda: ConnectionResetError(104, "reset"), FAILED),
        (lambda: Exception("HTTP 500, expected 200"), FAILED),  # CatchResponseError's kind
        (lambda: OSError("read failed"), FAILED),
    ],
)
def test_classify(make: Any, kind: str) -> None:
    assert classify(make()) == kind


def test_timeouts_count_in_the_latency_at_their_full_wait_other_failures_apart() -> None:
    rec = recorder()
    for _ in range(98):
        rec.on_request("GET", "/a", 10.0, start_time=WARMUP_END + 1)
    rec.on_request("GET", "/a", 2000.0, exception=RequestTimedOut(), start_time=WARMUP_END + 1)
    rec.on_request("GET", "/a", 0.5, exception=ConnectionRefusedError(), start_time=WARMUP_END + 1)
    ep = rec.take_fresh()[0]["/a"]
    assert (ep.requests, ep.failures, ep.timeouts) == (100, 2, 1)
    assert ep.hist.count == 99 and ep.hist.max_ms == 2000.0  # the slowest answer stays in p99
    assert ep.hist.percentile(99.5) == pytest.approx(2000.0, rel=1e-3)
    assert ep.failed_hist.count == 1 and ep.failed_hist.max_ms == 0.5
    assert ep.hist.min_ms == 10.0  # the refused request does not make it look fast
    assert (rec.run_requests, rec.run_failures) == (100, 2)


def test_warmup_failures_stay_out_of_the_progress_latency() -> None:
    rec = recorder()
    rec.on_request("GET", "/a", 0.1, exception=ConnectionRefusedError(), start_time=WARMUP_END - 1)
    rec.on_request("GET", "/a", 900.0, exception=TimeoutError(), start_time=WARMUP_END - 1)
    warm = rec.take_fresh()[1]["/a"]
    assert warm.count == 1 and warm.min_ms == 900.0


def test_tallies_and_histograms_merge() -> None:
    a, b = EndpointTally(), EndpointTally()
    a.methods.add("GET")
    a.requests, a.failures = 3, 1
    a.hist.record(5.0)
    b.methods.add("POST")
    b.requests, b.failures, b.timeouts = 2, 2, 1
    b.hist.record(9.0)
    b.failed_hist.record(1.0)
    a.add(b)
    assert (a.methods, a.requests, a.failures, a.hist.count) == ({"GET", "POST"}, 5, 3, 2)
    assert (a.timeouts, a.failed_hist.count) == (1, 1)
    assert merge_histograms([a.hist, LogHistogram(), b.hist]).count == 3
    assert merge_histograms([]).count == 0


@pytest.mark.parametrize(
    ("fields", "keeps"),
    [({}, False), ({"html_report": "r.html"}, True), ({"locustfile": "lf.py"}, True)],
)
def test_locusts_statistics_are_kept_only_where_read(fields: dict[str, Any], keeps: bool) -> None:
    plan = LoadPlan(host="http://127.0.0.1:9", users=1, spawn_rate=1, duration=1, **fields)
    assert keeps_locust_stats(LoadPlan.from_json(plan.to_json())) is keeps


# --- windows, the open model, stages ---------------------------------------------------------
def staged_plan(**overrides: Any) -> LoadPlan:
    fields: dict[str, Any] = {
        "host": "http://127.0.0.1:1",
        "users": 4,
        "spawn_rate": 4,
        "duration": 6.0,
        "warmup": 1.0,
        "stages": [
            PlannedStage("ramp", 2.0, rate=10.0, judge=False),
            PlannedStage("peak", 3.0, rate=20.0, measure=True),
            PlannedStage("tail", 1.0, rate=20.0),
        ],
    }
    fields.update(overrides)
    return LoadPlan(**fields)


def test_stages_decide_by_the_requests_start() -> None:
    rec = Recorder()
    rec.begin(WARMUP_END, staged_plan())
    rec.on_request("GET", "/a", 10.0, start_time=WARMUP_END + 1.5)  # ramp: judge false
    assert rec.last_judged is False
    rec.on_request("GET", "/a", 20.0, start_time=WARMUP_END + 2.5)  # peak, measured
    assert rec.last_judged is True
    rec.on_request("GET", "/a", 30.0, exception=OSError("x"), start_time=WARMUP_END + 3.0)
    rec.on_request("GET", "/a", 40.0, start_time=WARMUP_END + 5.5)  # tail
    rec.on_request("GET", "/a", 50.0, start_time=WARMUP_END + 60.0)  # after the end: tail
    fresh, warm = rec.take_fresh()
    assert fresh["/a"].requests == 4 and fresh["/a"].hist.count == 3
    assert warm["/a"].count == 1 and warm["/a"].max_ms == 10.0
    peak = rec.stage_measured[1]["/a"]
    assert (peak.requests, peak.failures, peak.hist.max_ms) == (2, 1, 20.0)
    assert set(rec.stage_measured) == {1} and rec.stage_fresh == {}
    assert rec.measured["/a"].requests == 4


def test_the_open_model_judges_by_the_slots_window_and_keeps_service_times() -> None:
    plan = staged_plan()
    rec = Recorder()
    rec.begin(WARMUP_END, plan)
    windows = Windows.of(plan)
    peak, ramp = windows.at(3.0), windows.at(1.5)
    # the request started in the ramp's time but its slot was due in the peak: and vice versa
    early, late = WARMUP_END + 1.0, WARMUP_END + 3.0
    ctx = {WINDOW_KEY: peak, SERVICE_KEY: 30.0}
    rec.on_request("GET", "/a", 80.0, start_time=early, context=ctx)
    rec.on_request("GET", "/a", 70.0, start_time=late, context={WINDOW_KEY: ramp, SERVICE_KEY: 5.0})
    timeout = TimeoutError()
    rec.on_request(
        "GET",
        "/a",
        2500.0,
        exception=timeout,
        start_time=WARMUP_END + 3,
        context={WINDOW_KEY: peak, SERVICE_KEY: 2000.0},
    )
    rec.on_request(  # another failure: its latency apart, no service time
        "GET",
        "/a",
        90.0,
        exception=OSError("refused"),
        context={WINDOW_KEY: peak, SERVICE_KEY: 1.0},
    )
    rec.on_request("GET", "/a", 60.0, context={WINDOW_KEY: peak, SERVICE_KEY: math.nan})
    fresh, warm = rec.take_fresh()
    ep = fresh["/a"]
    assert (ep.requests, ep.failures, ep.timeouts) == (4, 2, 1)
    assert _samples(ep.hist) == pytest.approx([60.0, 80.0, 2500.0], rel=0.002)
    # the garbage service time left out
    assert _samples(ep.service_hist) == pytest.approx([30.0, 2000.0], rel=0.002)
    assert ep.failed_hist.max_ms == 90.0
    assert warm["/a"].max_ms == 70.0
    assert rec.stage_measured[1]["/a"].service_hist.count == 2


def _samples(h: LogHistogram) -> list[float]:
    return [h.min_ms, h.max_ms] if h.count == 2 else [h.min_ms, h.percentile(50), h.max_ms]


def test_a_drained_open_model_report_keeps_service_times_stages_and_slots() -> None:
    plan = staged_plan()
    worker = Recorder()
    worker.begin(WARMUP_END, plan)
    slots = Slots(Schedule.of(plan), Windows.of(plan), plan.arrival_lag)
    slots.begin(WARMUP_END)
    worker.slots = slots
    peak = Windows.of(plan).at(3.0)
    for i in range(20):
        ctx = {WINDOW_KEY: peak, SERVICE_KEY: float(i)}
        worker.on_request("GET", "/a", float(i) + 5, context=ctx)
    for _ in range(3):
        slot = slots.pull()
        assert slot is not None
        slots.started(slot)
    judged = [slots.pull() for _ in range(40)][-1]
    assert judged is not None and judged.window.judged
    slots.drop(judged)
    expected = worker.fresh["/a"].to_list()
    stage_expected = worker.stage_fresh[1]["/a"].to_list()
    master = Recorder()
    master.absorb(worker.drain())
    assert worker.fresh == {} and worker.stage_fresh == {}
    assert master.fresh["/a"].to_list() == expected
    assert master.stage_fresh[1]["/a"].to_list() == stage_expected
    assert master.slot_counts() == (1, 1)
    # by stage too: the peak's own share, for its budgets' dropped rule
    assert master.stage_slot_counts() == worker.stage_slot_counts() == {1: (1, 1)}
    master.absorb(worker.drain())  # nothing new
    assert master.slot_counts() == (1, 1) and master.stage_slot_counts() == {1: (1, 1)}
    nxt = slots.pull()
    assert nxt is not None and nxt.window.stage == 1
    slots.started(nxt)
    master.absorb(worker.drain())
    assert master.stage_slot_counts() == {1: (2, 1)}
    master.absorb({"m": {}, "rn": 0, "rf": 0})  # a worker of 0.2 sends none
    assert master.stage_slot_counts() == {1: (2, 1)}
    master.take_fresh()
    assert master.stage_measured[1]["/a"].service_hist.count == 20


def test_every_stage_counts_its_requests_by_the_verdicts_windows() -> None:
    plan = staged_plan(warmup=3.0)  # ramp 0-2 s (judge: false), peak 2-5 s, tail 5-6 s
    rec = Recorder()
    rec.begin(WARMUP_END, plan)

    def at(t: float, **kwargs: Any) -> None:
        rec.on_request("GET", "/a", 5.0, start_time=WARMUP_END + t, **kwargs)

    at(0.5)
    at(1.5, exception=OSError("x"))  # the ramp, not judged: both count
    at(2.5)  # the peak's part in the warm-up: not judged, not the peak's
    at(3.5)
    at(4.9, exception=OSError("x"))
    at(5.5)  # the tail
    # the open model: the slot's window decides, not the start (in the tail's time)
    at(5.9, context={WINDOW_KEY: Windows.of(plan).at(4.5), SERVICE_KEY: 1.0})
    judge = [st.judge for st in plan.stages]
    totals = rec.stage_totals(judge)
    assert totals == {0: (2, 1), 1: (3, 1), 2: (1, 0)}
    fresh, _ = rec.take_fresh()
    # the judged stages add up to what the verdict judges; every request is in a stage but
    # the warm-up's part of a judged one
    assert totals[1][0] + totals[2][0] == fresh["/a"].requests == 4
    assert sum(r for r, _ in totals.values()) + 1 == rec.run_requests
    # a worker's counts reach the master with its reports, and start over after each
    master = Recorder()
    master.absorb(rec.drain())
    assert rec.stage_totals(judge) == {}
    at(3.0)
    master.absorb(rec.drain())
    master.absorb(rec.drain())  # nothing new
    assert master.stage_totals(judge) == {0: (2, 1), 1: (4, 1), 2: (1, 0)}
    master.absorb({"m": {}, "rn": 0, "rf": 0})  # a worker of 0.2 sends none
    assert master.stage_totals(judge)[1] == (4, 1)


def test_a_worker_of_0_2_sends_no_service_times() -> None:
    h = LogHistogram()
    h.record(5.0)
    master = Recorder()
    entry = [["GET"], 1, 0, h.to_dict(), 0, LogHistogram().to_dict()]
    master.absorb({"m": {"/a": entry}, "rn": 1, "rf": 0})
    ep = master.take_fresh()[0]["/a"]
    assert ep.hist.count == 1 and ep.service_hist.count == 0
    assert master.slot_counts() == (0, 0)


# --- the timeline ----------------------------------------------------------------------------
def hist_of(*ms: float) -> LogHistogram:
    h = LogHistogram()
    for m in ms:
        h.record(m)
    return h


def test_the_timeline_has_a_point_per_check_with_its_stage() -> None:
    tl = Timeline(Windows.of(staged_plan()))
    tl.add(0.0, 0.5, 3, 1, [hist_of(10.0)])
    tl.add(0.5, 1.0, 0, 0, [])
    tl.add(1.0, 1.5, 5, 0, [hist_of(*range(1, 101))])
    tl.add(2.5, 3.0, 5, 0, [hist_of(20.0), hist_of(30.0)])
    tl.add(3.0, 3.0, 2, 2, [hist_of(999.0)])  # after the stop: onto the last point
    points = tl.points()
    assert [(p.t, p.requests, p.failures, p.stage, p.judged) for p in points] == [
        (0.5, 3, 1, "ramp", False),
        (1.0, 0, 0, "ramp", False),
        (1.5, 5, 0, "ramp", False),
        (3.0, 7, 2, "peak", True),
    ]
    assert points[1].p95_ms is None
    assert points[2].p95_ms == pytest.approx(96.0, rel=0.002)  # rank int(100 * .95) + 1
    assert points[3].p95_ms == pytest.approx(999.0, rel=0.002)


def test_a_long_timeline_folds_exactly_and_never_across_a_stage() -> None:
    plan = staged_plan(warmup=0.0)
    tl = Timeline(Windows.of(plan), max_points=10)
    everything = LogHistogram()
    for k in range(120):  # 60 s of 0.5 s checks: most past the planned end, in "tail"
        h = hist_of(float(k + 1))
        everything.merge(h)
        tl.add(k * 0.5, (k + 1) * 0.5, 2, k % 2, [h])
    points = tl.points()
    assert len(points) <= 10
    assert sum(p.requests for p in points) == 240 and sum(p.failures for p in points) == 60
    assert points[-1].t == 60.0
    assert [p.t for p in points] == sorted(p.t for p in points)
    stages_in_order = [p.stage for p in points]
    assert stages_in_order == sorted(stages_in_order, key=["ramp", "peak", "tail"].index)
    assert {"ramp", "peak", "tail"} == set(stages_in_order)
    # the ramp's 4 checks stayed apart from the peak's
    assert points[stages_in_order.index("peak")].t > 2.0
    assert sum(1 for p in points if p.stage == "ramp") >= 1


def test_a_long_timeline_stays_small_and_its_p95s_stay_exact() -> None:
    """Issue 15: the load child's memory grew 6 MiB a minute, most of it the timeline's points
    (a dict-based histogram each, ~22 KiB). 400 checks of 500 spread samples: what the
    timeline keeps is measured by tracemalloc (whatever the representation), and every
    point's p95 is still within the histogram's 0.1% of the exact p95 of its checks."""
    rng = random.Random(5)
    plan = LoadPlan(host="http://127.0.0.1:1", users=1, spawn_rate=1, duration=200.0)
    checks: list[list[float]] = [
        [rng.lognormvariate(math.log(2.0), 0.6) for _ in range(500)] for _ in range(400)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tl = Timeline(Windows.of(plan))
        for k, samples in enumerate(checks):
            tl.add(k * 0.5, (k + 1) * 0.5, len(samples), 0, [hist_of(*samples)])
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    points = tl.points()
    assert len(points) <= MAX_TIMELINE_POINTS
    assert sum(p.requests for p in points) == 400 * 500
    # a dict-based histogram per point kept ~20 MiB here; the frozen ones about 1 MiB
    assert kept < 2 * 2**20, kept
    start = 0.0
    for p in points:
        mine = [ms for k, c in enumerate(checks) if start < (k + 1) * 0.5 <= p.t for ms in c]
        want = exact_percentile(mine, 95)
        # within 0.1% of the exact p95, then rounded to the microsecond
        assert abs(p.p95_ms - want) <= want * RELATIVE_ERROR * 1.001 + 0.0005, (p, want)
        start = p.t
