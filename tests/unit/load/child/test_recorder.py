"""``load.child.recorder``: the measured window, the warm-up, and the workers' reports."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_stagegate.histogram import LogHistogram
from pytest_stagegate.load.child.recorder import (
    FAILED,
    SUCCESS,
    TIMEOUT,
    EndpointTally,
    Recorder,
    classify,
    keeps_locust_stats,
    merge_histograms,
)
from pytest_stagegate.load.plan import LoadPlan

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
