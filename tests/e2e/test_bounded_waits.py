"""Every wait bounded by the clock, not by bytes; every body by ``max_body`` (issue 10).

End to end through pytester, against ``tests.faults`` servers on 127.0.0.1:

- ``slow_headers``: the status line and headers one byte every 0.5 s (each read gets its byte
  in time, the whole response would take minutes). The smoke test fails with the timeout
  message, the readiness wait ends "not ready" (never a pass), the gate's probe says the target
  is unreachable. The server gives up after ``DRIP_LIMIT`` seconds and counts it
  (``drips_cut``): a client not bounded as a whole would then fail late with another error, so
  ``drips_cut == 0`` proves that the client gave up first, at its deadline.
- ``huge_body``: an endless body as fast as it is read. The smoke test fails naming
  ``max_body``; under load every request fails with a reason naming the cap, and the gate fails.

Each run is bounded by ``runpytest_subprocess(timeout=RUN_LIMIT)``: a hang fails the test. No
elapsed time is asserted. The fault matrix (``test_faults.py``) has no rows for what is proved
here (``slow_headers`` in a smoke test, the readiness wait and the probe; ``huge_body`` under
load): each promise is one subprocess run, not two.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_stagegate.plugin.terminal import ENGINE
from tests.conftest import write_stagegate
from tests.faults import FaultServer

RUN_LIMIT = 60  # seconds: a run still going after this is a hang, and fails the test
DRIP_INTERVAL = 0.5  # a header byte every 0.5 s, far below the 1 s read timeout
DRIP_LIMIT = 40.0  # the server stops dripping after this (a whole response would take ~150 s)
LOAD_PATH = "/api/items"
CHILD_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--verdict", "v.json")
SLOW_HEADERS: dict[str, Any] = {"drip_interval": DRIP_INTERVAL, "drip_limit": DRIP_LIMIT}
READY = {"path": "/healthz", "timeout": "2s", "interval": "100ms"}

SMOKE = f"""
def test_smoke(http):
    response = http.get("{LOAD_PATH}")
    assert response.status_code == 200
"""
ASYNC_SMOKE = f"""
import pytest

@pytest.mark.anyio
async def test_smoke(ahttp):
    response = await ahttp.get("{LOAD_PATH}")
    assert response.status_code == 200
"""
NO_REQUEST = """
def test_offline():
    pass
"""


def write_config(
    pytester: pytest.Pytester,
    url: str,
    *,
    timeout: str = "1s",
    ready: dict[str, str] | None = None,
    max_body: str | None = None,
    user_class: str = "fast",
) -> None:
    """conftest's stagegate.yaml (the small gate, 2 s) with the load on ``LOAD_PATH`` and an
    error budget alone; ``ready`` and ``max_body`` only when given."""
    target = {"timeout": timeout, "ready": ready, "max_body": max_body}  # None: no such key
    load = {"requests": [f"GET {LOAD_PATH}"], "user_class": user_class}
    gate = {"load": load, "budgets": {"total": {"p95": None}}}
    write_stagegate(pytester, url, target=target, gate=gate)


def run(pytester: pytest.Pytester, *args: str) -> tuple[int, dict[str, Any], str]:
    try:
        result = pytester.runpytest_subprocess(*CHILD_ARGS, *args, timeout=RUN_LIMIT)
    except pytester.TimeoutExpired:
        pytest.fail(f"the run hung: still going after {RUN_LIMIT} s, killed")
    output = result.stdout.str() + result.stderr.str()
    path = pytester.path / "v.json"
    assert path.exists(), f"no verdict written (exit {result.ret}):\n{output}"
    assert "Traceback (most recent call last)" not in output
    assert "INTERNALERROR" not in output
    return int(result.ret), json.loads(path.read_text()), output


def reasons(verdict: dict[str, Any]) -> str:
    return "\n".join(verdict["reasons"])


# --- slow headers ------------------------------------------------------------------------------
@pytest.mark.parametrize("test", [SMOKE, ASYNC_SMOKE], ids=["http", "ahttp"])
def test_a_smoke_request_whose_headers_drip_fails_at_the_timeout(
    pytester: pytest.Pytester, test: str
) -> None:
    with FaultServer("slow_headers", **SLOW_HEADERS) as server:
        write_config(pytester, server.url)
        pytester.makepyfile(test)
        ret, verdict, output = run(pytester)
        assert server.drips_cut == 0, "the server outlasted the client"
    assert ret == 1
    assert verdict["verdict"] == "fail" and "test_smoke" in reasons(verdict)
    assert verdict["tests"]["failed"] + verdict["tests"].get("errors", 0) >= 1
    assert "ReadTimeout" in output
    assert "no complete response within the request's timeout of 1s" in output


def test_a_readiness_wait_on_dripping_headers_is_not_ready(pytester: pytest.Pytester) -> None:
    """The target's timeout (30 s) is longer than the wait (2 s): the wait still ends at its
    own timeout, not ready; it never passes, and no test runs."""
    with FaultServer("slow_headers", **SLOW_HEADERS) as server:
        write_config(pytester, server.url, timeout="30s", ready=READY)
        pytester.makepyfile(SMOKE)
        ret, verdict, _ = run(pytester)
        assert server.drips_cut == 0, "the server outlasted the readiness wait"
        assert server.count(LOAD_PATH) == 0
    assert ret == 1
    assert verdict["verdict"] == "error"
    text = reasons(verdict)
    assert "did not become ready" in text and f"GET {server.url}/healthz" in text
    assert "within 2s" in text and "ReadTimeout" in text
    assert verdict["tests"]["total"] == 0


def test_the_gate_probe_on_dripping_headers_says_unreachable(pytester: pytest.Pytester) -> None:
    with FaultServer("slow_headers", **SLOW_HEADERS) as server:
        write_config(pytester, server.url)
        pytester.makepyfile(NO_REQUEST)
        ret, verdict, _ = run(pytester, "--gate")
        assert server.drips_cut == 0, "the server outlasted the probe"
        assert server.count(LOAD_PATH) == 0  # no load on a target that does not answer
    assert ret == 1
    assert verdict["verdict"] == "error" and verdict["gate"]["status"] == "error"
    text = reasons(verdict)
    assert "unreachable over HTTP, so no load was put on it" in text
    assert f"GET {server.url}/" in text
    assert "ReadTimeout" in text and "within the request's timeout of 1s" in text


# --- huge bodies ------------------------------------------------------------------------------
@pytest.mark.parametrize("test", [SMOKE, ASYNC_SMOKE], ids=["http", "ahttp"])
def test_a_smoke_request_with_an_endless_body_fails_naming_max_body(
    pytester: pytest.Pytester, test: str
) -> None:
    with FaultServer("huge_body", paths=[LOAD_PATH]) as server:
        write_config(pytester, server.url, max_body="1MB")
        pytester.makepyfile(test)
        ret, verdict, output = run(pytester)
        assert server.bodies_cut >= 1  # the client hung up; the body never ended by itself
    assert ret == 1
    assert verdict["verdict"] == "fail" and "test_smoke" in reasons(verdict)
    assert "ResponseTooLarge" in output
    assert "larger than the target's max_body of 1MB" in output


@pytest.mark.parametrize("user_class", ["fast", "http"])
def test_a_load_on_an_endless_body_fails_each_request_naming_the_cap(
    pytester: pytest.Pytester, user_class: str
) -> None:
    """The probe (on /) passes; every loaded request meets the endless body and is a failed
    request whose reason names the cap; the gate fails. Both Locust clients."""
    with FaultServer("huge_body", paths=[LOAD_PATH]) as server:
        write_config(pytester, server.url, max_body="256KB", user_class=user_class)
        pytester.makepyfile(NO_REQUEST)
        ret, verdict, output = run(pytester, "--gate")
        assert server.count(LOAD_PATH) > 0
        assert server.bodies_cut >= 1
    assert ret == 1, output
    assert verdict["verdict"] == "fail", reasons(verdict)
    assert verdict["gate"]["status"] in ("completed", "aborted")
    assert "larger than the target's max_body of 256KB" in reasons(verdict)
    # which path the requests took: FastHttpUser's scenario on the lean one, HttpUser Locust's
    engine = {"fast": "lean", "http": "locust"}[user_class]
    assert verdict["gate"]["load"]["engine"] == engine
    assert f"; {ENGINE[engine]}\n" in output


def test_a_load_on_a_declared_10gb_body_fails_without_reading_it(
    pytester: pytest.Pytester,
) -> None:
    with FaultServer("huge_body", paths=[LOAD_PATH], body_size=10 * 1024**3) as server:
        write_config(pytester, server.url)  # the default cap, 16MB
        pytester.makepyfile(NO_REQUEST)
        ret, verdict, _ = run(pytester, "--gate")
        assert server.count(LOAD_PATH) > 0
    assert ret == 1
    assert verdict["verdict"] == "fail", reasons(verdict)
    assert "larger than the target's max_body of 16MB" in reasons(verdict)
