"""The lean request path (issue 15) judges as Locust's FastHttpUser path does: the same
declarative scenario, run once on each (``STAGEGATE_LOAD_PATH=locust`` keeps Locust's), against
servers whose answers and delays are fixed by each request's index, gives the same requests,
failures, errors, flows and latency plateaus.

The journey runs on unique data rows (tests/e2e/test_scenario_engine.py's shop): the run ends
when the rows run out, after the iterations under way, so its counts are exact whatever the
machine's speed. A plain request (``plan.requests``: the lean path's fastest case) is picked
at random beside it, so its count is not; its failures follow the server's every 5th 500.
Latencies are compared by plateau, never by a number of milliseconds: the server holds every
4th answer of ``/delay`` for ``SLOW`` s and the others ``FAST`` s, so p50 is a fast answer and
p95 a slow one on both paths, on any machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult
from tests.e2e.test_scenario_engine import EMPTY_EVERY, Shop, endpoint, journey_plan
from tests.servers import HTTPTestServer, Request, Route

FAST, SLOW = 0.005, 0.080  # seconds /delay holds its answers: every 4th is slow
FAIL_EVERY = 5  # /delay answers 500 to every 5th request
ROWS = 40


def delay(index: int, elapsed: float) -> float:
    return SLOW if index % 4 == 3 else FAST


def delayed(request: Request) -> Any:
    if request.index % FAIL_EVERY == FAIL_EVERY - 1:
        return 500, b"down"
    return 200, b"ok"


def run(tmp_path: Path, label: str, monkeypatch: pytest.MonkeyPatch) -> tuple[LoadResult, str]:
    """The scenario on one path ("lean" or "locust"), against a server of its own."""
    if label == "locust":
        monkeypatch.setenv("STAGEGATE_LOAD_PATH", "locust")
    else:
        monkeypatch.delenv("STAGEGATE_LOAD_PATH", raising=False)
    shop = Shop()
    routes = {**shop.routes, "/delay": Route(latency=delay, respond=delayed)}
    # a plain request: nothing rendered, nothing checked but FastHttpUser's status rule
    plain = PlannedRequest("GET", "/delay", "GET /delay", weight=2)
    with HTTPTestServer(routes) as server:
        plan: LoadPlan = journey_plan(
            server.url, ROWS, (), rate=40.0, users=6, spawn_rate=6, requests=[plain]
        )
        log = tmp_path / f"{label}.log"
        result = run_load(plan, log_path=log)
        headers = server.last_headers("/delay")
    assert result.status == "completed", result.reason
    return result, log.read_text() + "\n" + repr(sorted(headers))


def test_the_lean_path_judges_as_locusts_fasthttpuser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean, lean_log = run(tmp_path, "lean", monkeypatch)
    locust, locust_log = run(tmp_path, "locust", monkeypatch)
    # each run took the path it was asked for
    assert "runs on the lean request path" in lean_log
    assert "runs on Locust's FastHttpUser" in locust_log
    # the same headers on the wire (names; the values are the same by construction)
    assert lean_log.rsplit("\n", 1)[1] == locust_log.rsplit("\n", 1)[1]

    def counts(result: LoadResult) -> dict[str, tuple[Any, ...]]:
        return {
            e.name: (e.requests, e.failures, e.timeouts, e.status_classes) for e in result.endpoints
        }

    plain = counts(lean).pop("GET /delay"), counts(locust).pop("GET /delay")
    journey = {k: v for k, v in counts(lean).items() if k != "GET /delay"}
    assert journey == {k: v for k, v in counts(locust).items() if k != "GET /delay"}
    assert journey["GET /list"][:3] == (ROWS, ROWS // EMPTY_EVERY, 0)
    for result, (requests, failures, timeouts, classes) in zip((lean, locust), plain, strict=True):
        assert requests > 2 * FAIL_EVERY and timeouts == 0
        # the server's every 5th answer was a 500 (one may be cut off by the stop)
        assert abs(failures - requests // FAIL_EVERY) <= 1 + result.unanswered
        assert classes["5xx"] == failures
    # the flows' iterations (which of them failed depends on how the users interleave: the
    # failing answers go by the server's order), and the errors, text for text
    assert [(f.name, f.requests) for f in lean.flows] == [("checkout", ROWS)]
    assert [(f.name, f.requests) for f in locust.flows] == [("checkout", ROWS)]

    def errors(result: LoadResult) -> set[tuple[str, str, int]]:
        return {
            (e.name, e.error, 0 if e.name == "GET /delay" else e.occurrences) for e in result.errors
        }

    assert errors(lean) == errors(locust)
    assert ("GET /delay", "LocustBadStatusCode(code=500)", 0) in errors(lean)
    # the same latency plateaus: p50 a fast answer, p95 a slow one
    for result in (lean, locust):
        hist = endpoint(result, "GET /delay").histogram
        assert hist.percentile(50) < SLOW * 1000 <= hist.percentile(95)
