"""The gate and the verdict end to end: pytest (through pytester, in a subprocess) runs real
Locust against real servers on 127.0.0.1. Load runs are short (2-3 s) and light."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer, Route, refused_url


@pytest.fixture
def server(serve: Callable[[Mapping[str, Route]], HTTPTestServer]) -> HTTPTestServer:
    """This module's server (in place of conftest's shop): fast, slow, write and failing paths."""
    return serve(
        {
            "/": Route(),
            "/fast": Route(),
            "/slow": Route(latency=0.06),
            "/write": Route(status=201),
            "/boom": Route(status=500, body=b"database unavailable"),
        }
    )


def gate_config(
    base_url: str,
    *,
    target: Mapping[str, Any] | None = None,
    requests: Sequence[Any] = ("GET /fast",),
    budgets: Mapping[str, Any] | None = None,
    duration: str = "2s",
    users: int = 2,
    name: str = "local",
    abort: Mapping[str, Any] | None = None,
) -> str:
    """conftest's stagegate.yaml with this module's gate: at least 10 samples, ``users`` users
    for ``duration`` on ``requests``, ``budgets`` in place of the default ones."""
    text = stagegate_yaml(
        base_url,
        name=name,
        target=target,
        gate={
            "min_samples": 10,
            "load": {
                "users": users,
                "spawn_rate": users,
                "duration": duration,
                "requests": list(requests),
                "abort": None,  # the default abort rules, unless ``abort`` below
            },
        },
    )
    # The budgets and the abort rules replace conftest's instead of merging into them.
    doc = yaml.safe_load(text)
    if abort is not None:
        doc["gate"]["load"]["abort"] = dict(abort)
    doc["gate"]["budgets"] = dict(budgets or {"total": {"p95": "500ms", "error_rate": "1%"}})
    return yaml.safe_dump(doc, sort_keys=False)


READY_60S = {"path": "/healthz", "timeout": "60s"}


def verdict_of(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "stagegate-verdict.json").read_text())  # type: ignore[no-any-return]


def stagegate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_passing_gate_writes_a_verdict_that_verify_accepts(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STAGEGATE_LOAD_PATH", raising=False)
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makepyfile("def test_up(http): assert http.get('/').status_code == 200")
    result = pytester.runpytest("--gate")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*load gate: ran to the end; *; lean request path", "*verdict: PASS (promote: yes)*"]
    )
    assert "stagegate verdict: PASS (promote)" in [ln for ln in result.outlines if ln.strip()][-1]
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "pass" and verdict["promote"] is True
    total = next(e for e in verdict["gate"]["endpoints"] if e["name"] == "total")
    assert total["requests"] > 10
    assert server.count("/fast") >= total["requests"]
    assert {c["metric"] for c in verdict["gate"]["checks"]} == {"p95", "error_rate"}
    assert verdict["gate"]["load"]["engine"] == "lean"  # the path its requests took

    junit = ET.parse(pytester.path / "stagegate-junit.xml").getroot()
    gate_suite = next(s for s in junit.iter("testsuite") if s.get("name") == "stagegate.gate")
    names = [case.get("name") for case in gate_suite.iter("testcase")]
    assert any("p95" in str(n) for n in names) and any("error_rate" in str(n) for n in names)

    accepted = stagegate("verify", "stagegate-verdict.json", "--target", "local", cwd=pytester.path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    refused = stagegate(
        "verify", "stagegate-verdict.json", "--target", "staging", cwd=pytester.path
    )
    assert refused.returncode == 1
    assert "staging" in refused.stdout + refused.stderr


def test_a_slow_endpoint_fails_its_budget_with_a_clear_reason(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(
            server.url,
            requests=["GET /fast", "GET /slow"],
            budgets={"GET /slow": {"p95": "30ms"}},
            duration="3s",
        ),
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate")
    assert result.ret == 1
    # the terminal ends with the verdict, not with pytest's green "1 passed"
    last = [line for line in result.outlines if line.strip()][-1]
    assert "stagegate verdict: FAIL (do not promote)" in last, result.stdout.str()
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "fail"
    # the written budget, and the default error budget of every name and total (issue 10)
    checks = {(c["endpoint"], c["metric"]): c for c in verdict["gate"]["checks"]}
    assert set(checks) == {
        ("GET /slow", "p95"),
        ("GET /slow", "error_rate"),
        ("GET /fast", "error_rate"),
        ("total", "error_rate"),
    }
    check = checks[("GET /slow", "p95")]
    assert check["outcome"] == "fail" and check["observed"] >= 60
    assert all(c["outcome"] == "pass" for c in checks.values() if c["metric"] == "error_rate")
    assert any(
        "P95 of GET /slow was" in r and "over its budget of 30 ms" in r for r in verdict["reasons"]
    ), verdict["reasons"]
    junit = (pytester.path / "stagegate-junit.xml").read_text()
    assert "<failure" in junit and "30 ms" in junit


def test_protected_target_gets_no_load(pytester: pytest.Pytester, server: HTTPTestServer) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(server.url, target={"protected": True}, name="production"),
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.destructive
        def test_write(http):
            http.post("/write")

        def test_read(http):
            assert http.get("/").status_code == 200
        """
    )
    # an earlier passing verdict must not survive the refusal
    (pytester.path / "stagegate-verdict.json").write_text('{"verdict": "pass"}')
    result = pytester.runpytest("--target", "production", "--gate")
    # a usage error before any test: the run could never promote
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--gate: target 'production' is protected and takes no load*allow_load: true*"]
    )
    assert "Traceback" not in result.stderr.str()
    assert server.total == 0  # not a test, not a probe, not a request of the load
    assert not (pytester.path / "stagegate-verdict.json").exists()


def test_allow_load_is_the_way_to_load_a_protected_target(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(
            server.url, target={"protected": True, "allow_load": True}, name="production"
        ),
    )
    pytester.makepyfile("def test_read(http): assert http.get('/').status_code == 200")
    result = pytester.runpytest("--target", "production", "--gate")
    assert result.ret == 0, result.stdout.str()
    assert server.count("/fast") > 0


def test_unreachable_target_is_an_error_not_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(refused_url()))
    pytester.makepyfile("def test_offline(): pass")
    result = pytester.runpytest("--gate")
    assert result.ret == 1
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "error"
    assert verdict["gate"]["status"] == "error"
    assert any("unreachable" in r for r in verdict["reasons"]), verdict["reasons"]


def test_no_load_after_a_critical_failure(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.critical
        def test_login():
            assert False, "login is broken"
        """
    )
    result = pytester.runpytest("--gate")
    assert result.ret == 1
    assert server.count("/fast") == 0
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "fail"
    assert verdict["gate"]["status"] == "not_run"
    assert any("Critical test" in r and "test_login" in r for r in verdict["reasons"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_no_pytest_process_imports_locust_or_gevent(
    pytester: pytest.Pytester, server: HTTPTestServer, xdist: list[str]
) -> None:
    # gevent's monkey-patching would break pytest, xdist and httpx: Locust runs only in the
    # load's child processes, even with every installed plugin (Locust's own among them) loaded
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makeconftest(
        """
        import json, os, sys

        def pytest_unconfigure(config):
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("locust", "gevent"))
            with open(f"modules-{os.getpid()}.json", "w") as f:
                json.dump(heavy, f)
        """
    )
    pytester.makepyfile("def test_up(http): assert http.get('/').status_code == 200")
    result = pytester.runpytest(*xdist, "--gate")
    assert result.ret == 0, result.stdout.str()
    assert verdict_of(pytester)["gate"]["endpoints"]  # the load really ran
    seen = {f.name: json.loads(f.read_text()) for f in pytester.path.glob("modules-*.json")}
    assert len(seen) == (3 if xdist else 1)  # the controller and each xdist worker
    assert all(heavy == [] for heavy in seen.values()), seen


def test_xdist_and_locust_workers_together(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url, duration="3s"))
    pytester.makepyfile(
        "\n".join(f"def test_{i}(http): assert http.get('/').status_code == 200" for i in range(4))
    )
    result = pytester.runpytest("-n", "2", "--gate", "--gate-workers", "2")
    assert result.ret == 0, result.stdout.str()
    verdict = verdict_of(pytester)
    assert verdict["tests"]["passed"] == 4
    assert verdict["gate"]["profile"]["workers"] == 2
    assert verdict["gate"]["generator"]["processes"] == 2


def test_xdist_verdict_has_the_same_tests_as_a_plain_run(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.smoke
        @pytest.mark.parametrize("i", range(5))
        def test_ok(http, i):
            assert http.get("/").status_code == 200

        @pytest.mark.critical
        def test_broken():
            assert 1 == 2

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known")
        def test_known():
            assert False
        """
    )

    def tests_part(*args: str) -> dict[str, Any]:
        pytester.runpytest("--verdict", "stagegate-verdict.json", *args)
        tests = verdict_of(pytester)["tests"]
        for record in tests["records"]:
            record.pop("duration")
            if record.get("requests"):
                record["requests"] = {"count": record["requests"]["count"]}
        return tests  # type: ignore[no-any-return]

    plain = tests_part()
    parallel = tests_part("-n", "2")
    assert plain["total"] == 8
    assert parallel == plain


def test_a_crashed_xdist_worker_fails_the_verdict(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makepyfile(
        """
        import os

        def test_crash():
            os._exit(3)

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest("-n", "2", "--verdict", "stagegate-verdict.json")
    assert result.ret == 1
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "fail"
    assert any("crash" in r.lower() for r in verdict["reasons"]), verdict["reasons"]


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def interrupt_when(
    pytester: pytest.Pytester, ready: Callable[[str], bool], sig: signal.Signals
) -> tuple[int, str, list[int]]:
    """Run `pytest --gate`, send ``sig`` once a line of its output satisfies ``ready``; return
    the exit code, the output and the process ids of every child it had at that moment."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--gate", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        moment = next((line for line in proc.stdout if ready(line)), None)
        assert moment is not None, "the run ended before the moment to interrupt it"
        children = _descendants(proc.pid)
        proc.send_signal(sig)
        output = proc.stdout.read()
        return proc.wait(timeout=60), output, children
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupt_during_the_load_leaves_a_verdict_and_no_process(
    pytester: pytest.Pytester, server: HTTPTestServer, sig: signal.Signals
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url, duration="60s"))
    pytester.makepyfile("def test_up(http): assert http.get('/').status_code == 200")
    code, output, children = interrupt_when(pytester, lambda line: "stagegate load:" in line, sig)
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert children, "the load process should have been running"
    deadline = time.monotonic() + 10  # reaping may lag the parent's exit by a moment
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(children) == []
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "error"
    assert verdict["interrupted"] is True
    assert "interrupted" in verdict["reasons"][0]
    # it says what really ran: the gate started, it was not "requested but did not run"
    assert not any("did not run" in r for r in verdict["reasons"]), verdict["reasons"]
    assert verdict["gate"]["status"] == "error"
    assert "started but was interrupted" in verdict["gate"]["reason"]


def test_interrupt_during_the_readiness_wait(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(
            refused_url(), target={"ready": {"path": "/healthz", "timeout": "60s"}}
        ),
    )
    pytester.makepyfile("def test_never(): pass")
    # "collected" is printed just before the readiness wait, which lasts up to 60 s
    code, output, _ = interrupt_when(
        pytester, lambda line: line.startswith("collected"), signal.SIGTERM
    )
    assert code == pytest.ExitCode.INTERRUPTED, output
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "error" and verdict["interrupted"] is True


def run_example(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """The bundled example with --gate, as a user runs it; returns the run and its verdict."""
    example = Path(__file__).parents[2] / "example_suites" / "shop"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(example), "--target=local", "--gate",
         "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, **env},
    )  # fmt: skip
    return result, json.loads((tmp_path / "stagegate-verdict.json").read_text())


def test_example_suite_passes_out_of_the_box(tmp_path: Path) -> None:
    result, verdict = run_example(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict["verdict"] == "pass"
    assert verdict["tests"]["passed"] == 8


def test_example_suite_slow_switch_fails_naming_the_budget(tmp_path: Path) -> None:
    result, verdict = run_example(tmp_path, SHOP_MODE="slow")
    assert result.returncode == 1
    assert verdict["verdict"] == "fail"
    assert any(
        "of GET /api/products/{id} was" in r and "over its budget of" in r
        for r in verdict["reasons"]
    ), verdict["reasons"]


def test_flaky_tests_are_listed_and_a_flaky_critical_one_blocks(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makepyfile(
        """
        import pytest
        from pathlib import Path

        def flaky(name):
            marker = Path(name)
            if not marker.exists():
                marker.write_text("failed once")
                raise AssertionError("first attempt fails")

        def test_flaky():
            flaky("plain.marker")

        @pytest.mark.critical
        def test_flaky_critical():
            flaky("critical.marker")
        """
    )
    result = pytester.runpytest("--reruns", "2", "--verdict", "stagegate-verdict.json")
    assert result.ret == 1  # pytest passed, but a flaky critical test blocks promotion
    tests = verdict_of(pytester)["tests"]
    assert tests["flaky"] == 2
    assert {t["nodeid"].split("::")[1] for t in tests["flaky_tests"]} == {
        "test_flaky",
        "test_flaky_critical",
    }
    reasons = verdict_of(pytester)["reasons"]
    assert any("test_flaky_critical" in r and "rerun" in r for r in reasons), reasons


def test_baseline_regression_budget_and_step_summary(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(
            server.url,
            requests=["GET /slow"],
            budgets={"GET /slow": {"p95_regression": "10%"}},
            duration="3s",
        ),
    )
    pytester.makepyfile("def test_nothing(): pass")
    baseline = json.loads((Path(__file__).parents[1] / "golden" / "verdict-pass.json").read_text())
    baseline["gate"]["endpoints"] = [
        {
            "name": "GET /slow",
            "requests": 500,
            "failures": 0,
            "error_rate": 0.0,
            "rps": 50.0,
            "avg_ms": 10.0,
            "min_ms": 5.0,
            "max_ms": 20.0,
            "percentiles": {"p50": 10.0, "p90": 12.0, "p95": 15.0, "p99": 18.0},
        }
    ]
    (pytester.path / "production.json").write_text(json.dumps(baseline))
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--gate", "--gate-baseline", "production.json")
    assert result.ret == 1, result.stdout.str()
    checks = verdict_of(pytester)["gate"]["checks"]
    # the written budget, and the default error budgets of GET /slow and total (issue 10)
    assert sorted((c["endpoint"], c["metric"]) for c in checks) == [
        ("GET /slow", "error_rate"),
        ("GET /slow", "p95_regression"),
        ("total", "error_rate"),
    ]
    (check,) = [c for c in checks if c["metric"] == "p95_regression"]
    assert check["metric"] == "p95_regression"
    assert check["baseline"] == 15.0
    assert check["outcome"] == "fail"
    assert "GET /slow" in summary.read_text()


def test_hooks_see_the_plan_the_result_and_the_verdict(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(".yaml", stagegate=gate_config(server.url, users=5))
    pytester.makeconftest(
        """
        import dataclasses, json
        from pytest_stagegate.budgets import Check

        def pytest_stagegate_load_plan(config, target, plan):
            return dataclasses.replace(plan, users=1, spawn_rate=1)

        def pytest_stagegate_gate_result(config, target, gate):
            with open("gate.json", "w") as fh:
                json.dump({"status": gate.status, "users": gate.profile["users"]}, fh)

        def pytest_stagegate_verdict(config, verdict):
            verdict.add_check(Check(endpoint="search index", metric="freshness", limit=60.0,
                                    observed=600.0, samples=1, outcome="fail",
                                    message="The search index is 10 minutes old.", unit="ms"))
            verdict.add_reason("Notified #releases.")
        """
    )
    pytester.makepyfile("def test_up(http): assert http.get('/').status_code == 200")
    result = pytester.runpytest("--gate")
    assert result.ret == 1
    gate = json.loads((pytester.path / "gate.json").read_text())
    assert gate == {"status": "completed", "users": 1}  # the plan as the hook changed it
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "fail"
    assert "The search index is 10 minutes old." in verdict["reasons"]
    assert "Notified #releases." in verdict["reasons"]
    assert verdict["gate"]["generator"]["processes"] == 1
    junit = (pytester.path / "stagegate-junit.xml").read_text()
    assert "search index" in junit


def test_a_failing_error_budget_names_the_errors(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=gate_config(
            server.url,
            requests=["GET /fast", {"method": "GET", "path": "/boom", "weight": 1}],
            budgets={"total": {"error_rate": "1%"}},
            duration="2s",
            abort={"enabled": False},
        ),
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*load error: * x *500* on GET /boom*"])
    reasons = verdict_of(pytester)["reasons"]
    assert any(r.startswith("Error rate of total was") for r in reasons), reasons
    assert any("Most frequent load errors:" in r and "GET /boom" in r for r in reasons), reasons


def test_a_report_that_could_not_be_written_fails_the_run(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    # The start checks that --gate-report can be written; here the place is lost afterwards
    # (the plan hook points it where nothing can be written, as a full disk would).
    pytester.makefile(".yaml", stagegate=gate_config(server.url))
    pytester.makeconftest(
        """
        import dataclasses

        def pytest_stagegate_load_plan(config, target, plan):
            return dataclasses.replace(plan, html_report="/proc/stagegate-nowhere/report.html")
        """
    )
    pytester.makepyfile("def test_up(http): assert http.get('/').status_code == 200")
    result = pytester.runpytest("--gate", "--gate-report", "report.html")
    assert result.ret == 1, result.stdout.str()
    verdict = verdict_of(pytester)
    assert verdict["verdict"] == "error"
    assert any("could not be written" in r for r in verdict["reasons"]), verdict["reasons"]
