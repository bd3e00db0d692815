"""The fault matrix: every way a broken deployment misbehaves on the wire (``tests.faults``),
met by each phase of a run that talks to it, end to end through pytester in a subprocess.

Scenarios (each case writes its own stagegate.yaml; the target ``timeout`` is 1 s):

``smoke``
    A test that makes six requests with the ``http`` fixture (``ahttp`` in the ``-ahttp``
    row). Outcome: the test fails, the run exits 1, the verdict is ``fail`` and names the test;
    the output names the error.
``ready``
    ``ready: {path: /healthz, timeout: 2s}`` and a test that must not run. Outcome: the run
    stops before the tests with exit 1, verdict ``error``, and a reason naming the URL and the
    last error. ``flapping_ready`` is the exception, by design: one 2xx answer is "ready", so a
    target that alternates 503/200, or answers 503 to its first 3 polls, becomes ready and the
    run passes. (``burst5xx`` here is a 503 window longer than the wait: a burst of every 3rd
    request would be ready at the first 200.)
``gate``
    ``--gate`` (2 users for 2 s, 3 s where a few slow requests must be counted; budgets
    ``total: {error_rate: 1%, p95: 500ms}``, ``min_samples: 5``, ``abort.grace: 5s``) after a
    test that makes no request, so the gate alone decides. Outcome: ``error`` when the target
    does not answer HTTP at all (the gate's reachability probe says why, and no load is put on
    it), ``fail`` when the load measured a broken deployment (errors or latency); never
    ``pass``. Rows named ``load-path`` put the fault on the loaded path only (``/`` answers, so
    the probe passes and the load itself meets the fault): a path whose every request fails
    says so ("Every request to GET /api/items failed"), one whose every request timed out says
    the target did not answer within the timeout (each timed-out request counts in the latency
    at its full wait), and a hang that outlasts the load (``load-path-outlasting``: target
    timeout 30 s) measured nothing, so the gate is ``error`` saying the target did not answer
    within the timeout.

Every case must end by itself: the run is a subprocess killed after ``HANG_LIMIT`` seconds (a
hang detector, far above any expected time); nothing else about time is asserted. Each case
prints its exit code, verdict and wall time (also without ``-s``), so a reader can see the
bounds. ``drip`` servers give up after ``DRIP_LIMIT`` seconds of dripping (``tests.faults``):
a client not bounded by the target timeout then fails late with an "incomplete body" error
instead of a timeout, and ``drips_cut`` shows it, without costing a full ``HANG_LIMIT``.

A saturated load generator makes a failing latency check ``inconclusive`` (by design): a row
whose outcome rests on a latency budget alone (``latency=True``) is then skipped, after
checking that the run did not pass. Every other row must give its outcome, saturated or not.
``slow_headers`` in a smoke test, the readiness wait and the probe, and ``huge_body`` under load
are proved once, in ``test_bounded_waits.py``, not here.

Known plugin bugs are strict xfails whose reason starts with ``BUG:``.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from tests.faults import FaultServer, Mode, tls_unavailable

HANG_LIMIT = 120.0  # seconds: a run still going after this is a hang
DRIP_LIMIT = 10.0  # seconds a drip connection lasts before the server itself closes it
DRIP_INTERVAL = 0.25  # well below the 1 s target timeout: every socket read gets a byte in time
LOAD_PATH = "/api/items"
# hypothesis (a test extra, not a user's dependency) costs every child run ~0.7 s to import
CHILD_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--verdict", "v.json")

Scenario = Literal["smoke", "ready", "gate"]

SMOKE_TEST = f"""
def test_smoke(http):
    for _ in range(6):
        response = http.get("{LOAD_PATH}")
        assert response.status_code == 200, f"HTTP {{response.status_code}}"
"""
ASYNC_SMOKE_TEST = f"""
import pytest

@pytest.mark.anyio
async def test_smoke(ahttp):
    for _ in range(6):
        response = await ahttp.get("{LOAD_PATH}")
        assert response.status_code == 200, f"HTTP {{response.status_code}}"
"""
NO_REQUEST_TEST = """
def test_offline():
    pass
"""

ERRORS = "aborted early|Error rate of total was"  # stopped early on errors, or judged after
# the load path's every request failed, or timed out (issue 10: a plain reason, never a pass)
ALL_FAILED = f"Every request to GET {LOAD_PATH} failed (most often "
ALL_TIMED_OUT = (
    f"The target did not answer within the timeout: every request to GET {LOAD_PATH} timed out"
)
# a hang longer than the load: nothing measured, so the gate is an error that says why
MEASURED_NOTHING = "The load gate measured nothing: the target did not answer within the timeout"


@dataclass(frozen=True)
class Case:
    mode: Mode
    scenario: Scenario
    verdict: Literal["pass", "fail", "error"]
    # substrings of the verdict's reasons (for smoke, of the output too); "a|b": either one
    evidence: tuple[str, ...]
    server: Mapping[str, Any] = field(default_factory=dict)  # FaultServer options
    variant: str = ""
    duration: str = "2s"  # gate.load.duration
    timeout: str = "1s"  # targets.local.timeout
    bug: str | None = None  # a known plugin bug: the case is a strict xfail
    # the expected outcome rests on a latency budget alone: a saturated load generator makes
    # that check inconclusive (budgets.evaluate), so the case is skipped then. Every other gate
    # case fails on its error rate (5xx, or every request failed or timed out) or is an error
    # (no load, or nothing measured), which saturation cannot change: it is never skipped.
    latency: bool = False

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.scenario}" + (f"-{self.variant}" if self.variant else "")


DRIP = {"drip_interval": DRIP_INTERVAL, "drip_limit": DRIP_LIMIT}
# headers a byte every 0.5 s (issue 10); cut by the server after DRIP_LIMIT: a client bounded
# per read only would then fail with RemoteProtocolError, not ReadTimeout
SLOW_HEADERS = {"drip_interval": 0.5, "drip_limit": DRIP_LIMIT}
ON_LOAD_PATH = {"paths": [LOAD_PATH]}
UNREACHABLE = "unreachable over HTTP, so no load was put on it"

CASES = [
    # -- smoke tests with the http fixture ------------------------------------------------------
    Case("refuse", "smoke", "fail", ("ConnectError",)),
    Case("hang", "smoke", "fail", ("ReadTimeout",)),
    Case("slow", "smoke", "fail", ("ReadTimeout",), {"delay": 2.0}),
    Case("burst5xx", "smoke", "fail", ("HTTP 503",), {"every": 3}),
    Case("reset", "smoke", "fail", ("ReadError",)),
    Case("malformed", "smoke", "fail", ("RemoteProtocolError",)),
    Case("drip", "smoke", "fail", ("ReadTimeout",), DRIP),
    Case("drip", "smoke", "fail", ("ReadTimeout",), DRIP, variant="ahttp"),
    Case("tls_untrusted", "smoke", "fail", ("CERTIFICATE_VERIFY_FAILED",)),
    Case("flapping_ready", "smoke", "fail", ("HTTP 503",)),
    # slow_headers (http and ahttp): test_bounded_waits.py, with the exact timeout message
    Case("huge_body", "smoke", "fail", ("ResponseTooLarge", "max_body of 16MB")),
    # -- the readiness wait ---------------------------------------------------------------------
    Case("refuse", "ready", "error", ("ConnectError",)),
    Case("hang", "ready", "error", ("ReadTimeout",)),
    Case("slow", "ready", "error", ("ReadTimeout",), {"delay": 2.0}),
    # a burst of 503s longer than the wait (every-Kth would be ready at the first 200)
    Case("burst5xx", "ready", "error", ("HTTP 503",), {"every": None, "window": (0.0, 600.0)}),
    Case("reset", "ready", "error", ("ReadError",)),
    Case("malformed", "ready", "error", ("RemoteProtocolError",)),
    Case("drip", "ready", "error", ("ReadTimeout",), DRIP),
    Case("tls_untrusted", "ready", "error", ("CERTIFICATE_VERIFY_FAILED",)),
    Case("flapping_ready", "ready", "pass", (), variant="alternating"),
    Case("flapping_ready", "ready", "pass", (), {"flap_first": 3}, variant="first-3"),
    # slow_headers: test_bounded_waits.py, with a target timeout longer than the wait
    Case("huge_body", "ready", "error", ("ResponseTooLarge",)),
    # -- the load gate --------------------------------------------------------------------------
    Case("refuse", "gate", "error", (UNREACHABLE, "ConnectError")),
    Case("hang", "gate", "error", (UNREACHABLE, "ReadTimeout")),
    Case("slow", "gate", "error", (UNREACHABLE, "ReadTimeout"), {"delay": 2.0}),
    Case("burst5xx", "gate", "fail", (ERRORS,), {"every": 3}),
    Case("reset", "gate", "error", (UNREACHABLE, "ReadError")),
    Case("malformed", "gate", "error", (UNREACHABLE, "RemoteProtocolError")),
    Case("drip", "gate", "error", (UNREACHABLE, "ReadTimeout"), DRIP),
    Case("tls_untrusted", "gate", "error", (UNREACHABLE, "CERTIFICATE_VERIFY_FAILED")),
    Case("flapping_ready", "gate", "fail", (ERRORS,)),
    # slow_headers: test_bounded_waits.py (the probe gives up at the target's timeout)
    Case("huge_body", "gate", "error", (UNREACHABLE, "ResponseTooLarge", "max_body of 16MB")),
    # the probe passes (/ answers), the load itself meets the fault
    # requests time out after 1 s: 3 s leaves room for a few of them, each measured at its wait
    Case("hang", "gate", "fail", (ALL_TIMED_OUT,), ON_LOAD_PATH, "load-path", duration="3s"),
    # a target timeout longer than the load: no request ends, none is measured
    Case(
        "hang",
        "gate",
        "error",
        (MEASURED_NOTHING, "(30 s)", "still waiting for an answer when the load stopped"),
        ON_LOAD_PATH,
        "load-path-outlasting",
        timeout="30s",
    ),
    Case("reset", "gate", "fail", (ALL_FAILED,), ON_LOAD_PATH, "load-path"),
    Case("malformed", "gate", "fail", (ALL_FAILED,), ON_LOAD_PATH, "load-path"),
    # every 5th request 0.7 s: p95 over 500 ms with enough samples (p95 needs 20) in 3 s
    Case(
        "slow",
        "gate",
        "fail",
        ("P95 of total was",),
        {**ON_LOAD_PATH, "delay": 0.7, "slow_every": 5},
        "load-path-p95",
        duration="3s",
        latency=True,
    ),
    Case(
        "drip",
        "gate",
        "fail",
        (ALL_TIMED_OUT,),  # the whole-request deadline cuts each dripping body
        {**ON_LOAD_PATH, **DRIP},
        "load-path",
        duration="3s",
    ),
    Case(
        "slow_headers",
        "gate",
        "fail",
        ("no complete response within",),  # each loaded request cut at the target's timeout
        {**ON_LOAD_PATH, **SLOW_HEADERS},
        "load-path",
        duration="3s",
    ),
    # huge_body on the load path: test_bounded_waits.py (both Locust clients, a set cap; the
    # default cap of 16MB on a declared 10GB body)
]


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


# --- helpers ---------------------------------------------------------------------------------
def config_yaml(url: str, scenario: Scenario, *, duration: str = "2s", timeout: str = "1s") -> str:
    """stagegate.yaml for one case: target timeout 1 s unless the case says, a readiness wait
    for ``ready`` (an empty ``ready:`` means none)."""
    ready = "{path: /healthz, timeout: 2s, interval: 100ms}" if scenario == "ready" else ""
    return textwrap.dedent(
        f"""\
        targets:
          local:
            base_url: {url}
            timeout: {timeout}
            ready: {ready}
        gate:
          min_samples: 5
          load:
            users: 2
            spawn_rate: 2
            duration: {duration}
            wait: 10ms
            requests: [GET {LOAD_PATH}]
            abort: {{grace: 5s}}
          budgets:
            total: {{error_rate: 1%, p95: 500ms}}
        """
    )


@dataclass
class Outcome:
    ret: int
    verdict: dict[str, Any]
    output: str
    seconds: float

    @property
    def reasons(self) -> str:
        return "\n".join(self.verdict["reasons"])


def run_stagegate(pytester: pytest.Pytester, *args: str) -> Outcome:
    """Run pytest in a subprocess with the hang detector; read the verdict it wrote."""
    started = time.monotonic()
    try:
        result = pytester.runpytest_subprocess(*CHILD_ARGS, *args, timeout=HANG_LIMIT)
    except pytester.TimeoutExpired:
        pytest.fail(f"the run hung: still going after {HANG_LIMIT:g} s, killed")
    seconds = time.monotonic() - started
    output = result.stdout.str() + result.stderr.str()
    path = pytester.path / "v.json"
    assert path.exists(), f"no verdict written (exit {result.ret}):\n{output}"
    verdict = json.loads(path.read_text())
    return Outcome(int(result.ret), verdict, output, seconds)


def show(label: str, outcome: Outcome) -> None:
    gate = outcome.verdict.get("gate") or {}
    status = f", gate {gate['status']}" if gate else ""
    # Captured like any output: shown with -s, and next to a failure.
    print(
        f"{label:<34} exit {outcome.ret}, verdict {outcome.verdict['verdict']:<12}"
        f"{status:<18} {outcome.seconds:6.1f} s"
    )


@pytest.fixture
def tls_ok(request: pytest.FixtureRequest) -> None:
    case = request.node.callspec.params.get("case")
    if case is not None and case.mode == "tls_untrusted":
        reason = tls_unavailable()
        if reason:
            pytest.skip(reason)


@pytest.fixture
def fault(request: pytest.FixtureRequest, tls_ok: None) -> Iterator[FaultServer]:
    case: Case = request.node.callspec.params["case"]
    with FaultServer(case.mode, **case.server) as server:
        yield server


# --- the matrix ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault_matrix(
    pytester: pytest.Pytester,
    fault: FaultServer,
    case: Case,
) -> None:
    config = config_yaml(fault.url, case.scenario, duration=case.duration, timeout=case.timeout)
    pytester.makefile(".yaml", stagegate=config)
    if case.scenario == "smoke":
        pytester.makepyfile(ASYNC_SMOKE_TEST if case.variant == "ahttp" else SMOKE_TEST)
        outcome = run_stagegate(pytester)
    elif case.scenario == "ready":
        pytester.makepyfile(NO_REQUEST_TEST)
        outcome = run_stagegate(pytester)
    else:
        pytester.makepyfile(NO_REQUEST_TEST)
        outcome = run_stagegate(pytester, "--gate")
    show(case.id, outcome)

    verdict = outcome.verdict
    generator = (verdict.get("gate") or {}).get("generator") or {}
    if generator.get("saturated"):
        # a saturated generator cannot judge latency (a busy machine, not a bug), but it never
        # turns a broken deployment into a pass
        assert verdict["verdict"] != "pass", (outcome.reasons, outcome.output)
        assert outcome.ret == 1, outcome.output
        if case.latency and verdict["verdict"] == "inconclusive":
            assert "Traceback (most recent call last)" not in outcome.output
            assert "the load generator was saturated" in outcome.reasons
            assert all(text in outcome.reasons for text in case.evidence), outcome.reasons
            pytest.skip(str(generator.get("note")))  # "The load generator was saturated: ..."
    assert verdict["verdict"] == case.verdict, (outcome.reasons, outcome.output)
    assert outcome.ret == (0 if case.verdict == "pass" else 1), outcome.output
    assert "Traceback (most recent call last)" not in outcome.output  # no crash, anywhere
    assert "INTERNALERROR" not in outcome.output
    where = outcome.reasons + (outcome.output if case.scenario == "smoke" else "")
    for text in case.evidence:
        assert any(alt in where for alt in text.split("|")), (
            f"{text!r} not in the reasons:\n{outcome.reasons}"
        )

    if case.scenario == "smoke":
        assert verdict["tests"]["failed"] + verdict["tests"].get("errors", 0) >= 1
        assert "test_smoke" in outcome.reasons
    elif case.scenario == "ready":
        if case.verdict == "pass":
            assert "ready after" in outcome.output
            assert fault.count("/healthz") >= 2  # it did see a 503 and waited past it
        else:
            assert "did not become ready" in outcome.reasons
            assert f"GET {fault.url}/healthz" in outcome.reasons
            assert verdict["tests"]["total"] == 0  # stopped before the tests
    else:
        gate = verdict["gate"]
        if case.verdict == "error" and case.variant.startswith("load-path"):
            assert gate["status"] == "error"
            assert fault.count(LOAD_PATH) > 0  # the load was sent; nothing came back in time
            assert all(e["requests"] == 0 for e in gate["endpoints"]), gate["endpoints"]
        elif case.verdict == "error":
            assert gate["status"] == "error"
            assert f"GET {fault.url}/" in outcome.reasons
            assert fault.count(LOAD_PATH) == 0  # no load on a target that does not answer
        else:
            assert gate["status"] in ("completed", "aborted")
            assert fault.count(LOAD_PATH) > 0
    if case.mode == "tls_untrusted":
        assert fault.tls_rejections > 0  # the client refused the certificate, nothing else
    if case.mode == "drip":
        # the client gave up (its timeout), not the server (it cut the drip after DRIP_LIMIT)
        assert fault.drips_cut == 0, f"{fault.drips_cut} drip(s) outlasted the client"


# --- bounded time ----------------------------------------------------------------------------
def test_bounded_time_ready_and_gate_against_a_hanging_target(pytester: pytest.Pytester) -> None:
    """Every network operation has a timeout: readiness (2 s) over requests that time out
    (1 s) ends the run before the tests, and ``--gate`` does not wait on a dead target."""
    with FaultServer("hang") as server:
        config = config_yaml(server.url, "ready", duration="2s")
        pytester.makefile(".yaml", stagegate=config)
        pytester.makepyfile(SMOKE_TEST)
        outcome = run_stagegate(pytester, "--gate")
    show("hang: ready 2s + --gate", outcome)
    assert outcome.ret == 1
    assert outcome.verdict["verdict"] == "error"
    reasons = outcome.reasons
    assert "did not become ready" in reasons and f"GET {server.url}/healthz" in reasons
    assert "within 2s" in reasons and "ReadTimeout" in reasons
    assert outcome.verdict["tests"]["total"] == 0
    assert server.count(LOAD_PATH) == 0


def test_bounded_time_smoke_and_gate_against_a_hanging_target(pytester: pytest.Pytester) -> None:
    """Without a readiness wait, the smoke test times out after the target timeout and the
    gate's probe says the target does not answer: the verdict gives both reasons."""
    with FaultServer("hang") as server:
        config = config_yaml(server.url, "smoke", duration="2s")
        pytester.makefile(".yaml", stagegate=config)
        pytester.makepyfile(SMOKE_TEST)
        outcome = run_stagegate(pytester, "--gate")
    show("hang: smoke + --gate", outcome)
    assert outcome.ret == 1
    assert outcome.verdict["verdict"] == "fail"  # a failed test outranks the gate's error
    reasons = outcome.reasons
    assert "test_smoke" in reasons and "ReadTimeout" in reasons
    assert outcome.verdict["gate"]["status"] == "error"
    assert "unreachable" in reasons
    assert server.count(LOAD_PATH) == 1  # the smoke test's one request; no load
