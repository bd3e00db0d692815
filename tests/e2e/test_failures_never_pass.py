"""Failed requests never pass (issue 10): pytest through pytester runs real Locust against real
servers on 127.0.0.1, and the verdict, the JUnit file, the terminal and ``stagegate verify`` are
read as CI reads them.

- an endpoint no budget names that answers 404 (or 500) fails the gate by its default error
  budget, and ``verify`` refuses the verdict;
- a target whose every request fails has no passing latency or min_rps check;
- a hang longer than the load is ``error``, saying the target did not answer within the timeout;
- a waived error budget is a warning, and a waived name whose requests all failed still fails;
- a slow endpoint that answers is measured as before;
- a server that turns slow fails on the requests still waiting at the stop (closed and open
  model), and a healthy one with requests in flight at the stop still passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer, Route


@pytest.fixture
def server(serve: Callable[[Mapping[str, Route]], HTTPTestServer]) -> HTTPTestServer:
    return serve(
        {
            "/": Route(),
            "/fast": Route(),
            "/slow": Route(latency=0.06),
            "/missing": Route(status=404, body=b"no such thing"),
            "/boom": Route(status=500, body=b"database unavailable"),
            "/dead": Route(reset=True),
            "/hang": Route(hang=True),
        }
    )


def config(
    url: str,
    requests: Sequence[Any],
    budgets: Mapping[str, Any],
    *,
    duration: str = "3s",
    timeout: str | None = None,
    warmup: str | None = None,
) -> str:
    """conftest's stagegate.yaml with ``requests`` and exactly ``budgets`` (no error budget
    unless written: the defaults are what is under test)."""
    target = {"timeout": timeout} if timeout else None
    text = stagegate_yaml(
        url,
        target=target,
        gate={
            "min_samples": 10,
            "load": {"users": 2, "spawn_rate": 2, "duration": duration, "requests": list(requests)},
        },
    )
    doc = yaml.safe_load(text)
    doc["gate"]["budgets"] = dict(budgets)
    if warmup:
        doc["gate"]["load"]["warmup"] = warmup
    return yaml.safe_dump(doc, sort_keys=False)


def run_gate(pytester: pytest.Pytester, text: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makefile(".yaml", stagegate=text)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate")
    verdict = json.loads((pytester.path / "stagegate-verdict.json").read_text())
    return result, verdict


def checks_of(verdict: Mapping[str, Any], endpoint: str) -> dict[str, Mapping[str, Any]]:
    return {c["metric"]: c for c in verdict["gate"]["checks"] if c["endpoint"] == endpoint}


def endpoint_of(verdict: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return next(e for e in verdict["gate"]["endpoints"] if e["name"] == name)


TARGET = ("--target", "local")


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", "verify", "stagegate-verdict.json", *TARGET],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path / "stagegate-junit.xml").getroot()
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "stagegate.gate")
    return {str(case.get("name")): case for case in suite.iter("testcase")}


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/boom", 500)])
def test_an_unbudgeted_failing_endpoint_fails_the_gate_and_verify_refuses_it(
    pytester: pytest.Pytester, server: HTTPTestServer, path: str, status: int
) -> None:
    name = f"GET {path}"
    # a quarter of the requests fail (the case: 27%), far below the abort rule's 90%;
    # the only budget written is a latency budget on the endpoint that works
    requests = [{"method": "GET", "path": "/fast", "weight": 3}, f"GET {path}"]
    result, verdict = run_gate(
        pytester, config(server.url, requests, {"GET /fast": {"p95": "500ms"}})
    )
    assert result.ret == 1, result.stdout.str()
    assert verdict["verdict"] == "fail" and verdict["promote"] is False
    assert verdict["gate"]["status"] == "completed"
    assert server.count(path) > 0
    failing = checks_of(verdict, name)["error_rate"]
    assert failing["outcome"] == "fail" and failing["limit"] == 0.01
    assert failing["observed"] == 1.0
    reason = f"Every request to {name} failed (most often HTTP {status})"
    assert any(r.startswith(reason) for r in verdict["reasons"]), verdict["reasons"]
    # total's default error budget fails too; the working endpoint's holds
    assert checks_of(verdict, "total")["error_rate"]["outcome"] == "fail"
    assert checks_of(verdict, "GET /fast")["error_rate"]["outcome"] == "pass"
    # the failed requests are counted apart: the latency is over the successful ones only
    entry = endpoint_of(verdict, name)
    assert entry["failures"] == entry["requests"] and entry["timeouts"] == 0
    assert entry["failed"]["requests"] == entry["requests"] and entry["percentiles"]["p95"] is None
    # one JUnit case per check, the unbudgeted name's default error budget included
    case = junit_cases(pytester.path)[f"error_rate of {name} <= 1%"]
    assert case.find("failure") is not None
    refused = verify(pytester.path)
    assert refused.returncode == 1, refused.stdout + refused.stderr


def test_a_target_whose_every_request_fails_never_looks_fast(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    # every load request has its connection reset: a dead target that answers at once
    budgets = {"total": {"p95": "500ms", "avg": "500ms", "max": "2s", "min_rps": 1}}
    result, verdict = run_gate(pytester, config(server.url, ["GET /dead"], budgets))
    assert result.ret == 1, result.stdout.str()
    assert verdict["verdict"] == "fail"
    assert server.count("/dead") > 0
    checks = verdict["gate"]["checks"]
    latency = [c for c in checks if c["metric"] in ("p95", "avg", "max", "min_rps")]
    assert len(latency) == 4
    assert not [c for c in latency if c["outcome"] == "pass"], latency
    assert checks_of(verdict, "total")["min_rps"]["outcome"] == "fail"
    assert checks_of(verdict, "total")["min_rps"]["observed"] == 0.0
    assert checks_of(verdict, "total")["p95"]["observed"] is None
    assert checks_of(verdict, "GET /dead")["error_rate"]["outcome"] == "fail"
    assert any(r.startswith("Every request to GET /dead failed") for r in verdict["reasons"])
    total = endpoint_of(verdict, "total")
    assert total["rps"] == 0.0 and total["avg_ms"] is None and total["failed"]["requests"] > 0


@pytest.mark.parametrize("warmup", [None, "1s"])
def test_a_hang_longer_than_the_load_is_an_error_that_says_so(
    pytester: pytest.Pytester, server: HTTPTestServer, warmup: str | None
) -> None:
    # the target's timeout outlasts the load: no request ends, none is measured (with a
    # warm-up, the hanging requests began in it)
    text = config(
        server.url,
        ["GET /hang"],
        {"total": {"p95": "500ms"}},
        duration="3s",
        timeout="30s",
        warmup=warmup,
    )
    result, verdict = run_gate(pytester, text)
    assert result.ret == 1, result.stdout.str()
    assert server.count("/hang") > 0  # the server did receive the load's requests
    assert verdict["verdict"] == "error", verdict["reasons"]
    assert verdict["gate"]["status"] == "error"
    assert "the target did not answer within the timeout (30 s)" in verdict["gate"]["reason"]
    assert verdict["reasons"][0].startswith(
        "The load gate measured nothing: the target did not answer within the timeout (30 s): "
    ), verdict["reasons"]
    assert "no requests measured" not in json.dumps(verdict)


def test_a_hang_shorter_than_the_load_times_out_in_the_latency_and_fails(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    # each request waits its whole 1 s timeout: counted in the latency at that wait, and a
    # name whose every request timed out fails with the plain reason
    result, verdict = run_gate(
        pytester,
        config(server.url, ["GET /hang"], {"total": {"p95": "500ms"}}, duration="4s", timeout="1s"),
    )
    assert result.ret == 1, result.stdout.str()
    assert verdict["verdict"] == "fail", verdict["reasons"]
    entry = endpoint_of(verdict, "GET /hang")
    assert entry["timeouts"] == entry["failures"] == entry["requests"] > 0
    assert entry["percentiles"]["p95"] >= 1000.0  # the full wait, never vanished
    assert checks_of(verdict, "total")["p95"]["outcome"] != "pass"
    assert any(
        r.startswith(
            "The target did not answer within the timeout: every request to GET /hang timed out"
        )
        for r in verdict["reasons"]
    ), verdict["reasons"]


def test_a_waived_error_budget_is_a_warning_and_all_failed_still_fails(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    budgets = {
        "GET /fast": {"p95": "500ms", "error_rate": "off"},
        "GET /boom": {"error_rate": "off"},
        "total": {"error_rate": "off"},
    }
    requests = [{"method": "GET", "path": "/fast", "weight": 3}, "GET /boom"]
    result, verdict = run_gate(pytester, config(server.url, requests, budgets))
    out = result.stdout.str()
    assert result.ret == 1, out
    for name in ("GET /fast", "GET /boom", "total"):
        assert f"warning: the error budget of {name} is waived (error_rate: off at " in out
        assert any(
            r.startswith(f"Warning: the error budget of {name} is waived")
            for r in verdict["reasons"]
        ), verdict["reasons"]
    assert [w["endpoint"] for w in verdict["gate"]["waivers"]] == [
        "GET /boom",
        "GET /fast",
        "total",
    ]
    # waived, but every request to it failed: it fails all the same
    assert verdict["verdict"] == "fail"
    boom = checks_of(verdict, "GET /boom")["error_rate"]
    assert boom["outcome"] == "fail"
    assert boom["message"].startswith("Every request to GET /boom failed (most often HTTP 500)")
    assert "its error budget is waived (error_rate: off at stagegate.yaml:" in boom["message"]
    assert "error_rate" not in checks_of(verdict, "GET /fast")
    cases = junit_cases(pytester.path)
    assert cases["error_rate of GET /fast waived"].find("skipped") is not None


def test_a_slow_endpoint_that_answers_is_measured_normally(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    result, verdict = run_gate(
        pytester, config(server.url, ["GET /slow"], {"GET /slow": {"p95": "500ms"}}, timeout="5s")
    )
    assert result.ret == 0, result.stdout.str()
    assert verdict["verdict"] == "pass"
    entry = endpoint_of(verdict, "GET /slow")
    assert entry["requests"] > 10 and entry["failures"] == entry["timeouts"] == 0
    assert entry["failed"] is None
    assert entry["percentiles"]["p95"] >= 60.0 and entry["rps"] > 0
    assert {(c["endpoint"], c["metric"]) for c in verdict["gate"]["checks"]} == {
        ("GET /slow", "p95"),
        ("GET /slow", "error_rate"),
        ("total", "error_rate"),
    }
    assert all(c["outcome"] == "pass" for c in verdict["gate"]["checks"])
    accepted = verify(pytester.path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


# -- requests still waiting when the load stops (measured at their waits so far) -------------

FAST = 20  # the slow server's first answers come at once, every later one after 5 s


def waiting_config(url: str, load: Mapping[str, Any], p95: str) -> str:
    """One request, GET /work, under ``load`` (None removes a key of the small default gate)
    for 2 s with a 10 s timeout (longer than the load: nothing times out) and a p95 budget."""
    text = stagegate_yaml(
        url,
        target={"timeout": "10s"},
        gate={"min_samples": 10, "load": {"duration": "2s", "requests": ["GET /work"], **load}},
    )
    doc = yaml.safe_load(text)
    doc["gate"]["budgets"] = {"total": {"p95": p95, "error_rate": "1%"}}
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize(
    "load",
    [
        pytest.param({"users": 10, "spawn_rate": 100}, id="closed"),
        pytest.param({"rate": "20/s", "users": 100, "spawn_rate": None, "wait": None}, id="open"),
    ],
)
def test_a_server_that_turns_slow_fails_on_the_requests_still_waiting_at_the_stop(
    pytester: pytest.Pytester,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    load: Mapping[str, Any],
) -> None:
    # its first answers are fast, every later one takes 5 s, longer than the 2 s load: those
    # are still waiting when the load stops. Judged only on the answers, p95 would pass.
    slow = serve({"/work": Route(latency=lambda i, _elapsed: 0.0 if i < FAST else 5.0)})
    result, verdict = run_gate(pytester, waiting_config(slow.url, load, "100ms"))
    out = result.stdout.str()
    assert result.ret == 1, out
    assert verdict["verdict"] == "fail", verdict["reasons"]
    total = endpoint_of(verdict, "total")
    waiting = verdict["gate"]["load"]
    # every request the server received beyond the answered ones was still waiting, and judged
    assert slow.count("/work") - total["requests"] <= waiting["unanswered_measured"]
    assert waiting["unanswered_measured"] == waiting["unanswered"] >= 1  # no warm-up
    # not failures: the error budget and the answered count are as before
    assert total["requests"] <= FAST and total["failures"] == 0
    checks = checks_of(verdict, "total")
    assert checks["error_rate"]["outcome"] == "pass"
    assert checks["p95"]["outcome"] == "fail", checks["p95"]["message"]
    assert checks["p95"]["samples"] == total["requests"] + waiting["unanswered_measured"]
    assert "judged requests were still waiting for an answer when the load stopped" in out


def test_a_healthy_server_passes_with_requests_in_flight_at_the_stop(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    # 10 users, each waiting 200 ms for every answer: some are waiting when the load stops,
    # and their waits so far are shorter than their answers would have been
    steady = serve({"/work": Route(latency=0.2)})
    load = {"users": 10, "spawn_rate": 100}
    result, verdict = run_gate(pytester, waiting_config(steady.url, load, "1s"))
    assert result.ret == 0, result.stdout.str()
    assert verdict["verdict"] == "pass", verdict["reasons"]
    waiting = verdict["gate"]["load"]
    assert waiting["unanswered_measured"] >= 1
    total = endpoint_of(verdict, "total")
    assert total["failures"] == 0 and total["rps"] > 0
    assert all(c["outcome"] == "pass" for c in verdict["gate"]["checks"])
