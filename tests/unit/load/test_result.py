"""``load.result``: parsing the load child's JSON and turning it into budget statistics. Pure."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from pytest_stagegate.budgets import TOTAL
from pytest_stagegate.histogram import LogHistogram, exact_percentile
from pytest_stagegate.load.result import (
    GeneratorHealth,
    LoadResult,
    error_phrase,
    request_label,
    unwrapped_error,
)
from pytest_stagegate.metrics import STANDARD_PERCENTILES


def hist_of(samples: list[float]) -> dict[str, Any]:
    h = LogHistogram()
    for s in samples:
        h.record(s)
    return h.to_dict()


A_SAMPLES = [float(10 + i % 50) for i in range(200)]  # 10..59 ms, 4 times each
B_SAMPLES = [100.0 + i for i in range(100)]  # 100..199 ms


A_FAILED = [1.0, 2.0, 3.0]  # refused at once: counted apart, never in the latency


def endpoint(
    name: str,
    method: str,
    samples: list[float],
    failed: list[float] | None = None,
    timeouts: int = 0,
) -> dict[str, Any]:
    """``samples``: the successes and the ``timeouts`` (at their full wait); ``failed``: the
    other failures' times."""
    failed = failed or []
    return {
        "name": name,
        "method": method,
        "requests": len(samples) + len(failed),
        "failures": len(failed) + timeouts,
        "timeouts": timeouts,
        "histogram": hist_of(samples),
        "failed_histogram": hist_of(failed),
    }


def document() -> dict[str, Any]:
    usage = {
        "role": "local",
        "cpu_max_percent": 40.0,
        "cpu_mean_percent": 30.0,
        "cpu_samples": 20,
        "hot_samples": 0,
        "loop_lag_max_ms": 2.5,
        "loop_lag_samples": 100,
        "loop_lag_over": 0,
    }
    return {
        "schema": 1,
        "status": "completed",
        "reason": "",
        "started_at": "2026-01-01T00:00:00.000+00:00",
        "finished_at": "2026-01-01T00:00:12.000+00:00",
        "load_seconds": 12.0,
        "measured_seconds": 10.0,
        "warmup_seconds": 2.0,
        "users": 5,
        "workers": 0,
        "requests_including_warmup": 400,
        "failures_including_warmup": 7,
        "endpoints": [
            endpoint("GET /a", "GET", A_SAMPLES, A_FAILED, timeouts=1),
            endpoint("POST /b", "POST", B_SAMPLES),
        ],
        "total": endpoint("total", "", A_SAMPLES + B_SAMPLES, A_FAILED, timeouts=1),
        "errors": [{"name": "GET /a", "method": "GET", "error": "boom", "occurrences": 7}],
        "generator": {
            "processes": 1,
            "saturated": False,
            "saturation_cpu": 90.0,
            "cpu_max_percent": 40.0,
            "cpu_mean_percent": 30.0,
            "loop_lag_max_ms": 2.5,
            "note": "The load generator kept up.",
            "per_process": [usage],
        },
        "html_report": None,
        "unanswered": 0,
    }


def test_parses_every_field() -> None:
    result = LoadResult.from_dict(document())
    assert result.status == "completed"
    assert result.load_seconds == 12.0 and result.measured_seconds == 10.0
    assert result.warmup_seconds == 2.0
    assert result.users == 5 and result.workers == 0
    assert result.requests_including_warmup == 400 and result.failures_including_warmup == 7
    assert [e.name for e in result.endpoints] == ["GET /a", "POST /b"]
    assert result.endpoints[0].histogram.count == 200
    assert result.total.requests == 303
    assert result.endpoints[0].timeouts == 1 and result.endpoints[0].failed_histogram.count == 3
    assert result.errors[0].occurrences == 7
    assert result.generator.per_process[0].role == "local"
    assert result.html_report is None


def test_round_trips() -> None:
    doc = document()
    result = LoadResult.from_dict(json.loads(json.dumps(doc)))
    # a document of 0.1 reads with the 0.2 additions at their defaults
    added = {
        "model": "closed",
        "rate": None,
        "iterations_due": 0,
        "dropped": 0,
        "stages": [],
        "timeline": [],
        "flows": [],
        "unanswered_measured": 0,
    }
    new = {"service_histogram": None, "status_classes": {}}
    endpoints = [{**e, **new} for e in doc["endpoints"]]
    total = {**doc["total"], **new}
    assert result.to_dict() == {**doc, **added, "endpoints": endpoints, "total": total}
    again = result.to_dict()
    assert LoadResult.from_dict(json.loads(json.dumps(again))).to_dict() == again


def test_endpoint_stats_computes_rates_and_percentiles() -> None:
    stats = LoadResult.from_dict(document()).endpoint_stats(["p99.9", "p75"])
    assert set(stats) == {"GET /a", "POST /b", TOTAL}
    a = stats["GET /a"]
    assert a.requests == 203 and a.failures == 4 and a.error_rate == pytest.approx(4 / 203)
    # successful responses (203 - 4) over the measured 10 s, not the 12 s of load
    assert a.rps == pytest.approx(19.9)
    # the latency is over the successes and the timeout, never the fast failures
    assert a.latency_samples == 200 and a.timeouts == 1
    assert a.min_ms == 10.0 and a.max_ms == 59.0
    assert a.failed is not None and a.failed.requests == 3
    assert (a.failed.min_ms, a.failed.max_ms) == (1.0, 3.0)
    assert a.failed.avg_ms == pytest.approx(2.0)
    assert stats["POST /b"].failed is None
    assert a.avg_ms == pytest.approx(sum(A_SAMPLES) / len(A_SAMPLES))
    assert set(a.percentiles) == {*STANDARD_PERCENTILES, "p99.9", "p75"}
    every = A_SAMPLES + B_SAMPLES
    for key, p in [("p50", 50), ("p95", 95), ("p99.9", 99.9), ("p75", 75)]:
        assert stats[TOTAL].percentiles[key] == pytest.approx(exact_percentile(every, p), rel=1e-3)
    assert stats[TOTAL].rps == pytest.approx(29.9)


def test_endpoint_stats_with_no_measured_time() -> None:
    doc = document()
    doc["measured_seconds"] = 0.0
    stats = LoadResult.from_dict(doc).endpoint_stats()
    assert stats[TOTAL].rps == 0.0


@pytest.mark.parametrize("key", ["95", "p", "p100", "p0", "p101", "p-1", "avg", "p9x"])
def test_endpoint_stats_rejects_what_the_metric_grammar_rejects(key: str) -> None:
    # one grammar (pytest_stagegate.metrics): percentiles from p0.1 to p99.9
    with pytest.raises(ValueError, match=r"p0\.1 to p99\.9"):
        LoadResult.from_dict(document()).endpoint_stats([key])


def test_endpoint_stats_reads_every_percentile_of_the_grammar() -> None:
    stats = LoadResult.from_dict(document()).endpoint_stats(["p0.1", "p99.9", "p95.0"])
    every = A_SAMPLES + B_SAMPLES
    total = stats[TOTAL].percentiles
    assert total["p0.1"] == pytest.approx(exact_percentile(every, 0.1), rel=1e-3)
    assert total["p95.0"] == total["p95"]


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["schema"], 2, "unknown schema"),
        (["status"], "passed", "result.status"),
        (["reason"], None, "result.reason must be a string"),
        (["load_seconds"], -1, "result.load_seconds"),
        (["load_seconds"], float("nan"), "result.load_seconds"),
        (["users"], True, "result.users"),
        (["endpoints"], {}, "result.endpoints must be a list"),
        (["endpoints", 0, "requests"], "9", r"result.endpoints\[0\].requests"),
        (["endpoints", 1, "histogram", "count"], 5, r"result.endpoints\[1\].histogram"),
        (["endpoints", 1, "histogram"], KeyError, r"result.endpoints\[1\].histogram"),
        (["total"], KeyError, "result.total must be an object"),
        (["errors", 0, "occurrences"], None, r"result.errors\[0\].occurrences"),
        (["generator", "saturated"], "no", "result.generator.saturated"),
        (["generator", "per_process", 0, "role"], 1, "per_process"),
        (["html_report"], 3, "html_report"),
        (["started_at"], KeyError, "result.started_at is missing"),
    ],
)
def test_malformed_documents_raise_value_error(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadResult.from_dict(_broken(path, value))


def test_not_an_object() -> None:
    with pytest.raises(ValueError, match="result must be an object"):
        LoadResult.from_dict([1, 2])


def test_optional_fields_default() -> None:
    doc = document()
    for key in ("warmup_seconds", "requests_including_warmup", "failures_including_warmup"):
        del doc[key]
    result = LoadResult.from_dict(doc)
    assert result.warmup_seconds == 0.0 and result.requests_including_warmup == 0


def test_a_result_of_0_1_reads_with_no_timeouts_nor_failed_times() -> None:
    doc = document()
    del doc["unanswered"]
    for e in (*doc["endpoints"], doc["total"]):
        del e["timeouts"], e["failed_histogram"]
    result = LoadResult.from_dict(doc)
    assert result.unanswered == 0
    assert result.total.timeouts == 0 and result.total.failed_histogram.count == 0


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["endpoints", 0, "timeouts"], 5, r"timeouts \(5\) is more than failures \(4\)"),
        (["endpoints", 0, "failures"], 204, r"failures \(204\) is more than requests"),
        (["endpoints", 0, "failed_histogram"], [], r"endpoints\[0\].failed_histogram"),
        (["unanswered"], -1, "result.unanswered"),
    ],
)
def test_malformed_failure_fields(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadResult.from_dict(_broken(path, value))


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        ("CatchResponseError('HTTP 500, expected 200')", "HTTP 500"),
        ("BadStatusCode('http://127.0.0.1:1/x', code=404)", "HTTP 404"),
        ("HTTPError('503 Server Error: UNAVAILABLE for url: /x')", "HTTP 503"),
        ("RequestTimedOut('no complete response within 2 s')", "no complete response within 2 s"),
        (
            "ConnectionRefusedError(111, 'Connection refused')",
            "ConnectionRefusedError(111, 'Connection refused')",
        ),
        ("ValueError('boom')", "ValueError: boom"),
        ("RetriesExceeded('http://127.0.0.1:1/hang', 0, original=timed out)", "timed out"),
    ],
)
def test_error_phrase(error: str, phrase: str) -> None:
    assert error_phrase(error) == phrase


def test_top_error_is_the_most_frequent_phrase_of_the_name() -> None:
    doc = document()
    doc["errors"] = [
        {
            "name": "GET /a",
            "method": "GET",
            "error": "CatchResponseError('HTTP 500, expected 200')",
            "occurrences": 3,
        },
        {
            "name": "GET /a",
            "method": "GET",
            "error": "CatchResponseError('HTTP 500, expected 201')",
            "occurrences": 2,
        },
        {
            "name": "GET /a",
            "method": "GET",
            "error": "CatchResponseError('HTTP 404, expected 200')",
            "occurrences": 4,
        },
        {
            "name": "POST /b",
            "method": "POST",
            "error": "CatchResponseError('HTTP 404, expected 200')",
            "occurrences": 9,
        },
    ]
    result = LoadResult.from_dict(doc)
    assert result.top_error("GET /a") == "HTTP 500"  # 5 of them, over 4 of HTTP 404
    assert result.top_error(TOTAL) == "HTTP 404"
    assert result.endpoint_stats()["GET /a"].top_error == "HTTP 500"
    assert result.top_error("GET /none") == ""


def test_failed_result_is_complete_and_serialisable() -> None:
    result = LoadResult.failed("could not start", users=3, workers=2)
    assert result.status == "error"
    assert result.reason == "could not start"
    assert result.endpoint_stats()[TOTAL].requests == 0
    assert LoadResult.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_generator_round_trips_through_its_json_form() -> None:
    generator = LoadResult.from_dict(document()).generator
    assert isinstance(generator, GeneratorHealth)
    assert generator.note == "The load generator kept up."
    assert generator.saturated is False
    assert generator.to_dict() == document()["generator"]


def open_document() -> dict[str, Any]:
    doc = document()
    for e in (*doc["endpoints"], doc["total"]):
        e["service_histogram"] = hist_of([5.0, 6.0, 7.0])
    stage_total = endpoint(TOTAL, "", B_SAMPLES)
    doc.update(
        model="open",
        rate=50.0,
        iterations_due=1500,
        dropped=3,
        stages=[
            {
                "name": "ramp",
                "start_s": 0.0,
                "end_s": 2.0,
                "judged": False,
                "level_from": 0.0,
                "level_to": 50.0,
                "unit": "iterations/s",
                "endpoints": [],
                "total": None,
            },
            {
                "name": "peak",
                "start_s": 2.0,
                "end_s": 10.0,
                "judged": True,
                "level_from": 50.0,
                "level_to": 50.0,
                "unit": "iterations/s",
                "endpoints": [{**stage_total, "name": "GET /b", "method": "GET"}],
                "total": stage_total,
            },
        ],
        timeline=[
            {"t": 0.5, "requests": 20, "failures": 0, "p95_ms": None, "stage": "ramp"}
            | {"judged": False},
            {"t": 1.0, "requests": 25, "failures": 1, "p95_ms": 12.5, "stage": "ramp"}
            | {"judged": False},
        ],
    )
    return doc


def test_the_load_model_fields_round_trip() -> None:
    doc = open_document()
    result = LoadResult.from_dict(doc)
    assert (result.model, result.rate, result.iterations_due, result.dropped) == (
        "open",
        50.0,
        1500,
        3,
    )
    assert [s.name for s in result.stages] == ["ramp", "peak"]
    assert result.stages[0].total is None and result.stages[1].total is not None
    assert [p.p95_ms for p in result.timeline] == [None, 12.5]
    assert result.total.service_histogram is not None
    assert result.total.service_histogram.count == 3
    again = LoadResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    stats = result.stages[1].endpoint_stats(["p99"], result.warmup_seconds)
    assert stats is not None and stats[TOTAL].requests == len(B_SAMPLES)
    service = result.endpoint_stats()[TOTAL].service
    assert service is not None and service.samples == 3


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["model"], "half-open", "result.model must be one of"),
        (["rate"], -1, "result.rate must be a finite number >= 0"),
        (["dropped"], -3, "result.dropped must be an integer >= 0"),
        (["stages", 0, "unit"], "rps", "result.stages[0].unit must be 'users' or 'iterations/s'"),
        (["stages", 1, "total", "requests"], "x", "result.stages[1].total.requests"),
        (["timeline", 1, "p95_ms"], "slow", "result.timeline[1].p95_ms"),
        (["timeline", 1, "p95_ms"], math.inf, "result.timeline[1].p95_ms must be a finite"),
        (["timeline", 1, "p95_ms"], math.nan, "result.timeline[1].p95_ms must be a finite"),
        (["timeline", 1, "p95_ms"], 10**400, "result.timeline[1].p95_ms must be a finite"),
        (["total", "service_histogram"], [], "result.total.service_histogram must be an object"),
    ],
)
def test_malformed_load_model_fields(path: list[Any], value: Any, message: str) -> None:
    doc = open_document()
    where: Any = doc
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LoadResult.from_dict(doc)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ("""CatchResponseError('expect.contains "Welcome": not in the body')""",
         'expect.contains "Welcome": not in the body'),
        ("""CatchResponseError("capture token: it's missing")""", "capture token: it's missing"),
        ("""CatchResponseError('a "b" it\\'s')""", """a "b" it's"""),
        ("RequestTimedOut('no complete response within 2 s')", "no complete response within 2 s"),
        # a real exception says what happened by its class: kept, as error_phrase keeps it
        ("ConnectionRefusedError(111, 'Connection refused')",
         "ConnectionRefusedError(111, 'Connection refused')"),
        ("HTTP 500, expected 200", "HTTP 500, expected 200"),
        ("CatchResponseError('a', 'b')", "CatchResponseError('a', 'b')"),
    ],
)  # fmt: skip
def test_a_plain_exceptions_text_is_unwrapped_once(error: str, text: str) -> None:
    assert unwrapped_error(error) == text
    assert unwrapped_error(unwrapped_error(error)) == text


def test_a_request_name_is_printed_as_the_user_named_it() -> None:
    # a custom name= of a locustfile request, or a declarative name: as it is
    assert request_label("notfound-contains", "GET") == "notfound-contains"
    assert request_label("GET /api/products", "GET") == "GET /api/products"
    # Locust's default name is the path (or the URL) alone: with its method
    assert request_label("/api/products", "GET") == "GET /api/products"
    assert request_label("http://127.0.0.1:8/x", "POST") == "POST http://127.0.0.1:8/x"
