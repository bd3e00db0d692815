"""The lean request path (issue 15) judges as Locust's FastHttpUser path does: the same
declarative scenario, run once on each (``STAGEGATE_LOAD_PATH=locust`` keeps Locust's), against
servers whose answers are fixed by the data row or by each request's index, gives the same
requests, failures, timeouts, status classes and error texts per name, the same flows, and the
same latency plateaus.

The run covers where lean.py reimplements FastHttpUser, on the journey's steps (rendered,
checked) and on plain requests (the fixed request, FastHttpUser's status rule):

- a timeout that is a read timeout (``/t/slow`` never answers: geventhttpclient's socket
  timeout, ``RetriesExceeded`` naming the URL asked for) and the same after a redirect
  (``/t/moved`` -> ``/t/slow``: the error names the first URL, as FastHttpUser's);
- a timeout that is the whole-request deadline (``/d/drip``: headers, then a byte every
  ``DRIP`` s, each read shorter than the timeout): recorded at the timeout plus the wait before
  the send, its service time the timeout itself;
- a 302 with ``Set-Cookie`` whose target answers 200 only with the cookie (``/redirect`` ->
  ``/landing``: the user's cookie jar, the slow path from then on);
- bodies over ``max_body``: one declared (``Content-Length``, nothing read) and one chunked
  (read until it is over);
- a connection reset mid-body (headers and 100 of 1000 bytes, then a TCP RST).

Counts are compared exactly where they are fixed: the journey runs on unique data rows (the run
ends when they run out, after the iterations under way) and each row says which of its steps
misbehave. A plain request is picked at random beside it, so its count is not fixed: what is
compared is each request's outcome (all fail, none do, timeouts, status classes, error texts).

Latencies: the two paths' client overheads differ by design (the lean path exists to spend
less per request), so a latency that includes them cannot agree within the histogram's 0.1%,
and the machine adds its noise to both. What is compared instead: (1) the deadline's timeouts,
which both paths record at the timeout itself: their service time equals the timeout within
the histogram's accuracy (``RELATIVE_ERROR``) on both, their latency is at least that; (2) the
read timeouts' latency is at least the timeout on both; (3) plateaus of a seeded delay server
(``/delay`` holds every 4th answer ``SLOW`` s and the others ``FAST`` s): p50 of the service
times a fast answer, p95 a slow one on both paths, on any machine. See docs/load-engine.md,
Lean request path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.histogram import RELATIVE_ERROR
from pytest_stagegate.load.plan import LoadPlan, PlannedFlow, PlannedRequest
from pytest_stagegate.load.process import run_load
from pytest_stagegate.load.result import LoadResult
from tests.e2e.test_scenario_engine import EMPTY_EVERY, Shop, endpoint, journey_plan
from tests.faults import FaultServer
from tests.servers import HTTPTestServer, Request, Route

FAST, SLOW = 0.005, 0.080  # seconds /delay holds its answers: every 4th is slow
FAIL_EVERY = 5  # /delay answers 500 to every 5th request
ROWS = 40
USERS = 12
TIMEOUT = 0.8  # the target's timeout (s): far above every answer but the faulty ones
DRIP = 0.1  # s between the drip's body bytes: each read far shorter than the timeout
CAP = 1_000_000  # max_body: the drip's declared 1,000,000 bytes fit, /b/big's do not
COOKIE = "stagegate_sid=c00k1e"

# which of a row's steps misbehave (row i): 8 read timeouts (4 after a redirect), 4 deadline
# timeouts, 10 bodies over max_body each way, 10 resets
HANG = {1: "slow", 5: "moved"}  # by i % 10
DRIPS = {7}  # by i % 10


def rows() -> list[dict[str, str]]:
    return [
        {
            "user": f"user-{i:03d}",
            "sku": f"sku-{i:03d}",
            "hang": HANG.get(i % 10, "ok"),
            "drip": "drip" if i % 10 in DRIPS else "ok",
            "big": "big" if i % 4 == 1 else "ok",
            "huge": "huge" if i % 4 == 2 else "ok",
            "reset": "reset" if i % 4 == 3 else "ok",
        }
        for i in range(ROWS)
    ]


def delay(index: int, elapsed: float) -> float:
    return SLOW if index % 4 == 3 else FAST


def delayed(request: Request) -> Any:
    if request.index % FAIL_EVERY == FAIL_EVERY - 1:
        return 500, b"down"
    return 200, b"ok"


def landing(request: Request) -> Any:
    if COOKIE in (request.header("Cookie") or ""):
        return 200, b"welcome"
    return 401, b"no cookie"


class Servers:
    """The shop and its misbehaving routes on one server, each fault of tests/faults.py on one
    of its own (on its path only; 200 "ok" elsewhere)."""

    def __init__(self, stack: ExitStack) -> None:
        shop = Shop()
        routes = {
            **shop.routes,
            "/delay": Route(latency=delay, respond=delayed),
            "/t/slow": Route(hang=True),
            "/t/moved": Route(status=302, body=b"", headers={"Location": "/t/slow"}),
            "/redirect": Route(
                status=302, body=b"", headers={"Location": "/landing", "Set-Cookie": COOKIE}
            ),
            "/landing": Route(respond=landing),
            "/b/big": Route(body=b"x" * (CAP + 1)),
        }
        self.main = stack.enter_context(HTTPTestServer(routes))
        self.drip = stack.enter_context(
            FaultServer("drip", paths={"/d/drip"}, drip_interval=DRIP, drip_limit=5 * TIMEOUT)
        )
        self.huge = stack.enter_context(FaultServer("huge_body", paths={"/h/huge"}))
        self.reset = stack.enter_context(FaultServer("reset", paths={"/r/reset"}))

    def labels(self) -> dict[str, str]:
        """Each server's URL and what to call it in an error text (the ports differ per run)."""
        return {
            self.main.url: "MAIN",
            self.drip.url: "DRIP",
            self.huge.url: "HUGE",
            self.reset.url: "RESET",
        }


@contextmanager
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack)


def plan_for(s: Servers) -> LoadPlan:
    base = journey_plan(s.main.url, ROWS)
    (journey,) = base.flows
    step = PlannedRequest
    faulty = [
        # read timeouts, one after a redirect
        step("GET", "/t/{row.hang}", "GET /t", expect_status=[200]),
        # the whole-request deadline, on another origin
        step("GET", s.drip.url + "/d/{row.drip}", "GET /d", expect_status=[200]),
        # a 302 with a cookie its target checks
        step("GET", "/redirect", "GET /redirect", expect_status=[200]),
        # bodies over max_body: declared, chunked
        step("GET", "/b/{row.big}", "GET /b", expect_status=[200]),
        step("GET", s.huge.url + "/h/{row.huge}", "GET /h"),
        # a reset mid-body
        step("GET", s.reset.url + "/r/{row.reset}", "GET /r"),
    ]
    flow = PlannedFlow(
        "checkout", weight=4, steps=[*journey.steps, *faulty], on_start=journey.on_start
    )
    # plain requests (the fixed request, FastHttpUser's status rule), at random beside it
    plain = [
        PlannedRequest("GET", "/delay", "GET /delay", weight=4),
        PlannedRequest("GET", "/redirect", "plain /redirect"),
        PlannedRequest("GET", "/b/big", "plain /b/big"),
        PlannedRequest("GET", s.huge.url + "/h/huge", "plain /h/huge"),
        PlannedRequest("GET", s.reset.url + "/r/reset", "plain /r/reset"),
    ]
    return journey_plan(
        s.main.url,
        ROWS,
        flows=[flow],
        requests=plain,
        data_rows=rows(),
        rate=60.0,
        users=USERS,
        spawn_rate=USERS,
        timeout=TIMEOUT,
        max_body=CAP,
        abort_enabled=False,  # most of these requests fail on purpose
    )


class Run:
    """One path's run: its result, its log (then the header names /delay last saw), and its
    error texts with each server's URL named (the ports differ per run)."""

    def __init__(self, result: LoadResult, log: str, labels: dict[str, str]) -> None:
        self.result = result
        self.log = log
        self.errors: Counter[tuple[str, str]] = Counter()
        for e in result.errors:
            text = e.error
            for url, name in labels.items():
                text = text.replace(url, name)
            self.errors[(e.name, text)] += e.occurrences


def run(tmp_path: Path, label: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    """The scenario on one path ("lean" or "locust"), against servers of its own."""
    if label == "locust":
        monkeypatch.setenv("STAGEGATE_LOAD_PATH", "locust")
    else:
        monkeypatch.delenv("STAGEGATE_LOAD_PATH", raising=False)
    with servers() as s:
        log = tmp_path / f"{label}.log"
        result = run_load(plan_for(s), log_path=log)
        headers = s.main.last_headers("/delay")
        labels = s.labels()
    assert result.status == "completed", result.reason
    return Run(result, log.read_text() + "\n" + repr(sorted(headers)), labels)


LOGIN = "POST /api/login"  # the journey's on_start
JOURNEY = (LOGIN, "GET /api/me", "GET /list", "POST /cart")
FAULTY = ("GET /t", "GET /d", "GET /redirect", "GET /b", "GET /h", "GET /r")
PLAIN = ("plain /redirect", "plain /b/big", "plain /h/huge", "plain /r/reset")
TOO_LARGE = "response body larger than the target's max_body of 976.6KB (targets.NAME.max_body)"
RESET = "ConnectionResetError(104, 'Connection reset by peer')"
DEADLINE = f"no complete response within {TIMEOUT:g} s"


def outcome(e: Any) -> tuple[Any, ...]:
    """What every request of a plain name (its count is not fixed) had in common."""
    return (
        e.failures == e.requests,
        e.failures == 0,
        e.timeouts,
        {k for k, n in e.status_classes.items() if n},
    )


def test_the_lean_path_judges_as_locusts_fasthttpuser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean = run(tmp_path, "lean", monkeypatch)
    locust = run(tmp_path, "locust", monkeypatch)
    # each run took the path it was asked for
    assert "runs on the lean request path" in lean.log
    assert "runs on Locust's FastHttpUser" in locust.log
    # the same headers on the wire (names; the values are the same by construction)
    assert lean.log.rsplit("\n", 1)[1] == locust.log.rsplit("\n", 1)[1]

    def counts(r: Run) -> dict[str, tuple[Any, ...]]:
        return {
            e.name: (e.requests, e.failures, e.timeouts, e.status_classes)
            for e in r.result.endpoints
            if e.name not in ("GET /delay", LOGIN, *PLAIN)
        }

    # the journey's steps, the faulty ones among them: the same counts on both paths
    journey = counts(lean)
    assert journey == counts(locust)
    assert set(journey) == {*JOURNEY, *FAULTY} - {LOGIN}
    # the login runs once per user started (on_start): how many users started before the
    # rows ran out depends on the machine's timing, on either path; none failed
    for r in (lean, locust):
        (login,) = (e for e in r.result.endpoints if e.name == LOGIN)
        assert 1 <= login.requests <= USERS and login.failures == 0, login
    ok = {"2xx": ROWS, "3xx": 0, "4xx": 0, "5xx": 0}
    assert journey["GET /list"][:3] == (ROWS, ROWS // EMPTY_EVERY, 0)
    # a timeout has no response: not in the status classes; a reset or too large body had one
    hangs, drips = ROWS // 10 * len(HANG), ROWS // 10 * len(DRIPS)
    no_answer = {**ok, "2xx": ROWS - hangs}
    assert journey["GET /t"] == (ROWS, hangs, hangs, no_answer)
    assert journey["GET /d"] == (ROWS, drips, drips, {**ok, "2xx": ROWS - drips})
    assert journey["GET /redirect"] == (ROWS, 0, 0, ok)  # the cookie went to /landing
    for name in ("GET /b", "GET /h", "GET /r"):
        assert journey[name] == (ROWS, ROWS // 4, 0, ok), name
    # the flows' iterations (which of them failed depends on how the users interleave: the
    # failing answers of /list go by the server's order)
    for r in (lean, locust):
        assert [(f.name, f.requests) for f in r.result.flows] == [("checkout", ROWS)]

    # the plain requests: picked at random, so their counts differ; each request's outcome not
    for name in PLAIN:
        a, b = endpoint(lean.result, name), endpoint(locust.result, name)
        assert a.requests > 0 and b.requests > 0, name
        assert outcome(a) == outcome(b), name
    assert outcome(endpoint(lean.result, "plain /redirect")) == (False, True, 0, {"2xx"})
    for name in ("plain /b/big", "plain /h/huge", "plain /r/reset"):
        assert outcome(endpoint(lean.result, name)) == (True, False, 0, {"2xx"}), name
    for r in (lean, locust):
        e = endpoint(r.result, "GET /delay")
        assert e.requests > 2 * FAIL_EVERY and e.timeouts == 0
        # the server's every 5th answer was a 500 (one may be cut off by the stop)
        assert abs(e.failures - e.requests // FAIL_EVERY) <= 1 + r.result.unanswered
        assert e.status_classes["5xx"] == e.failures

    # the errors, text for text (the URLs asked for, not where a redirect went), and as often
    # where the counts are fixed. A read timeout is geventhttpclient's, unless the deadline's
    # watch (every 0.1 s past the timeout) came first: either is a timeout; which one is not
    # up to the path
    def errors(r: Run) -> Counter[tuple[str, str]]:
        return Counter(
            {
                (name, text): n
                for (name, text), n in r.errors.items()
                if not name.startswith("plain ")
                and name != "GET /delay"
                and (name, text) != ("GET /t", DEADLINE)
            }
        )

    read_timeouts = {
        ("GET /t", f"RetriesExceeded('MAIN/t/{kind}', 0, original=timed out)")
        for kind in ("slow", "moved")
    }
    expected = {
        ("GET /list", 'expect.json "length(items) > `0`": got false, expected true'): ROWS
        // EMPTY_EVERY,
        ("GET /d", DEADLINE): drips,
        ("GET /b", TOO_LARGE): ROWS // 4,
        ("GET /h", TOO_LARGE): ROWS // 4,
        ("GET /r", RESET): ROWS // 4,
    }
    for r in (lean, locust):
        found = errors(r)
        assert {k: v for k, v in found.items() if k not in read_timeouts} == expected
        assert set(found) - set(expected) == read_timeouts
        assert sum(n for (name, _), n in r.errors.items() if name == "GET /t") == hangs
    plain = {
        ("GET /delay", "LocustBadStatusCode(code=500)"),
        ("plain /b/big", TOO_LARGE),
        ("plain /h/huge", TOO_LARGE),
        ("plain /r/reset", RESET),
    }
    assert {k for k in lean.errors if k[0] in ("GET /delay", *PLAIN)} == plain
    assert {k for k in locust.errors if k[0] in ("GET /delay", *PLAIN)} == plain

    # latencies (the module's docstring says why these, and not every percentile)
    timeout_ms = TIMEOUT * 1000
    for r in (lean, locust):
        # the deadline's timeouts (the top tenth of /d): their service time the timeout
        # itself, within the histogram's accuracy; their latency adds the wait before the send
        d = endpoint(r.result, "GET /d")
        assert d.service_histogram is not None
        for q in (95, 100):
            assert d.service_histogram.percentile(q) == pytest.approx(
                timeout_ms, rel=RELATIVE_ERROR
            )
        assert d.histogram.percentile(100) >= d.service_histogram.percentile(100)
        # the read timeouts (the top fifth of /t): at least the timeout
        t = endpoint(r.result, "GET /t")
        assert t.service_histogram is not None
        assert t.service_histogram.percentile(85) >= timeout_ms * (1 - RELATIVE_ERROR)
        assert t.histogram.percentile(85) >= timeout_ms * (1 - RELATIVE_ERROR)
        # the same plateaus of the seeded delay server: p50 a fast answer, p95 a slow one,
        # from the send (the latency from the slot's due time adds the wait for a free user,
        # which a busy machine makes as long as it likes)
        service = endpoint(r.result, "GET /delay").service_histogram
        assert service is not None
        assert FAST * 1000 <= service.percentile(50) < SLOW * 1000 <= service.percentile(95)
