"""Secret canaries: a unique secret in headers, vars and the base URL's password, through
failing, skipped and xfailed tests, -vv, the gate and Locust's HTML report; then every output
is searched for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.conftest import write_stagegate
from tests.e2e.test_leak_matrix import leaked_runs, secret_forms
from tests.servers import HTTPTestServer, Route


def test_a_secret_reaches_the_server_but_no_output(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("STAGEGATE_CANARY", canary)
    server = serve({"/ok": Route(), "/boom": Route(status=500, body=b"internal error")})
    write_stagegate(
        pytester,
        server.url.replace("http://", "http://ci:${STAGEGATE_CANARY}@"),
        target={
            "headers": {
                "X-Api-Key": "${STAGEGATE_CANARY}",
                "Authorization": "Bearer ${STAGEGATE_CANARY}",
            },
            "vars": {"password": "${STAGEGATE_CANARY}"},
        },
        gate={
            "load": {"wait": "20ms", "requests": ["GET /ok", "GET /boom"], "abort": None},
            "budgets": {"total": {"p95": None}},  # error_rate 1% alone
        },
    )
    pytester.makepyfile(
        """
        import logging

        def test_prints_it(http, target, target_vars):
            print(target, dict(http.headers), target_vars)
            logging.getLogger("app").warning("headers %s", dict(http.headers))
            assert http.headers["x-api-key"] == "not it"

        def test_diff(target_vars):
            assert target_vars == {"password": "other"}

        def test_request(http):
            assert http.get("/boom").status_code == 200

        def test_skips_with_it(target_vars):
            import pytest
            pytest.skip(f"not with password {target_vars['password']}")

        def test_xfails_with_it(target_vars):
            import pytest
            pytest.xfail(f"known: {target_vars['password']}")
        """
    )
    result = pytester.runpytest(
        "-vv",
        "-rA",
        "-l",
        "--gate",
        "--gate-report",
        "report.html",
        "--junitxml",
        "pj.xml",
        "-rsx",
    )
    seen = {k.lower(): v for k, v in server.last_headers("/ok").items()}
    assert seen["x-api-key"] == canary  # the load really carried the secret
    assert result.ret == 1
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{
            name: (pytester.path / name).read_text(errors="replace")
            for name in (
                "stagegate-verdict.json",
                "stagegate-junit.xml",
                "stagegate-load.log",
                "report.html",
                "pj.xml",
            )
        },
    }
    assert "***" in outputs["terminal"]
    leaks = [name for name, text in outputs.items() if canary in text]
    assert leaks == []
    # and nothing else the run left behind
    for path in Path(pytester.path).rglob("*"):
        if path.is_file():
            assert canary not in path.read_text(errors="replace"), path


def test_reports_are_redacted_in_place_for_every_plugin(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
) -> None:
    """A plugin that writes its own report from pytest's report objects (pytest-html, a
    report log) gets them redacted, with their structure kept: the crash message, the chain
    of exceptions, the locals; also for a collection error. (The file is the conftest's own:
    the terminal's redaction does not reach it.)"""
    canary = "tok-" + uuid.uuid4().hex + uuid.uuid4().hex
    monkeypatch.setenv("STAGEGATE_CANARY", canary)
    server = serve({"/ok": Route()})
    write_stagegate(pytester, server.url, target={"vars": {"token": "${STAGEGATE_CANARY}"}})
    pytester.makeconftest(
        """
        import pytest

        def _write(report):
            with open("plugin-report.txt", "a") as f:
                crash = getattr(report.longrepr, "reprcrash", None)
                f.write(type(report.longrepr).__name__ + "\\n")
                f.write("crash: " + (crash.message if crash else "-") + "\\n")
                f.write(report.longreprtext + "\\n")
                for title, body in report.sections:
                    f.write(title + ": " + body + "\\n")

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logreport(report):
            if report.failed:
                _write(report)

        @pytest.hookimpl(trylast=True)
        def pytest_collectreport(report):
            if report.failed:
                _write(report)
        """
    )
    pytester.makepyfile(
        test_compares="""
        def test_compares(target_vars):
            token = target_vars["token"]
            print("the token is", token)
            try:
                raise KeyError(token)
            except KeyError as exc:
                raise RuntimeError(f"lookup of {token} failed") from exc
        """,
        test_broken="""
        import os
        raise ImportError("no module for " + os.environ["STAGEGATE_CANARY"])
        """,
    )
    result = pytester.runpytest("-l", "--continue-on-collection-errors")
    assert result.ret == 1
    written = (pytester.path / "plugin-report.txt").read_text()
    assert "ExceptionChainRepr" in written  # the structure is kept, not flattened to text
    assert "crash: RuntimeError: lookup of *** failed" in written
    assert "The above exception was the direct cause" in written
    assert "token      = '***'" in written  # -l locals
    assert "Captured stdout call: the token is ***" in written
    assert "no module for ***" in written  # the collection error
    assert leaked_runs(written, secret_forms(canary)) == []


REPLACING_CONFTEST = """
import dataclasses
import os

import pytest


def pytest_stagegate_configure_target(config, target):
    # a local stand-in without the configured target's credentials
    return dataclasses.replace(target, headers={}, secrets=frozenset())


def pytest_stagegate_load_plan(config, target, plan):
    # a hook's plan that drops the secrets it was given: the run's are masked all the same
    return dataclasses.replace(plan, secrets=[])


def pytest_stagegate_gate_result(config, target, gate):
    raise RuntimeError("could not post the result with " + os.environ["SG_TOKEN"])


def pytest_stagegate_verdict(config, verdict):
    raise RuntimeError("could not notify with " + os.environ["SG_TOKEN"])
"""

REPLACING_LOCUSTFILE = """
import os

from locust import HttpUser, constant, task


class Refused(HttpUser):
    wait_time = constant(0.05)

    @task
    def refused(self):
        with self.client.get("/ok", catch_response=True) as response:
            response.failure("refused with " + os.environ["SG_TOKEN"])
        print("the token is", os.environ["SG_TOKEN"])
"""


def test_the_configured_targets_secrets_stay_hidden_when_a_hook_replaced_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
) -> None:
    """A configure_target hook replaced the target with one without the configured target's
    token; hooks that fail with the token in their message, a load whose errors and prints
    carry it: no form of it in the terminal, the verdict, our JUnit, the load log, the HTML
    report or the step summary (the run's one redactor holds both targets' secrets, and the
    load child is handed them)."""
    token = "tok-" + uuid.uuid4().hex + "&'\\" + uuid.uuid4().hex
    monkeypatch.setenv("SG_TOKEN", token)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    server = serve({"/ok": Route()})
    write_stagegate(
        pytester,
        server.url,
        name="staging",
        target={"headers": {"Authorization": "Bearer ${SG_TOKEN}"}},
        gate={
            "load": {"requests": None, "wait": None, "locustfile": "leak_locustfile.py"},
            "budgets": {"total": {"p95": None}},
        },
    )
    pytester.makeconftest(REPLACING_CONFTEST)
    pytester.makepyfile(
        leak_locustfile=REPLACING_LOCUSTFILE,
        test_it="""
        import os

        def test_compares(http):
            assert http.get("/ok").status_code == 200
            assert os.environ["SG_TOKEN"] == "x"
        """,
    )
    result = pytester.runpytest("--target", "staging", "--gate", "--gate-report", "report.html")
    assert result.ret == 1
    # the hook replaced the target: the load went out without the configured credentials
    assert "authorization" not in {k.lower() for k in server.last_headers("/ok")}
    outputs = {"terminal": result.stdout.str() + "\n" + result.stderr.str()}
    for path in sorted(Path(pytester.path).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py":
            outputs[str(path.relative_to(pytester.path))] = path.read_text(errors="replace")
    for name in (
        "stagegate-verdict.json",
        "stagegate-junit.xml",
        "stagegate-load.log",
        "report.html",
        "summary.md",
    ):
        assert name in outputs, (name, outputs["terminal"][-3000:])
    verdict = outputs["stagegate-verdict.json"]
    # the messages are there, with the token masked
    assert "could not post the result with ***" in verdict
    assert "could not notify with ***" in verdict
    assert "refused with ***" in verdict + outputs["stagegate-load.log"]
    assert "could not post the result with ***" in outputs["summary.md"]
    leaks = {name: leaked_runs(text, secret_forms(token)) for name, text in outputs.items()}
    assert {name: runs for name, runs in leaks.items() if runs} == {}


def test_a_data_files_values_are_masked_on_the_pytest_side_too(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    """The load child masks the data file's secret columns' values (password by its name, user
    listed in data.secret); so does pytest: a smoke test that prints a row (or asserts on it)
    shows ``***`` in the terminal, the verdict and both JUnit files."""
    long_value = f"row-secret-{uuid.uuid4().hex}"  # masked by its runs of 8
    short_value = f"Qz{uuid.uuid4().hex[:4]}"  # 6 characters: masked as a whole token
    server = serve({"/ok": Route()})
    (pytester.path / "users.csv").write_text(f"user,password\n{short_value},{long_value}\n")
    write_stagegate(
        pytester,
        server.url,
        gate={
            "load": {
                "data": {"file": "users.csv", "secret": ["user"]},
                "requests": [{"path": "/ok", "query": {"u": "{row.user}"}}],
            }
        },
    )
    pytester.makepyfile(
        """
        import csv, logging

        def row():
            with open("users.csv", newline="") as fh:
                return next(csv.DictReader(fh))

        def test_prints_a_row():
            r = row()
            print("the row:", r)
            logging.getLogger("app").warning("password %s", r["password"])
            assert r == {"user": "someone", "password": "other"}

        def test_fails_with_the_short_value():
            assert row()["user"] == "x", f"user {row()['user']} refused"
        """
    )
    result = pytester.runpytest("-vv", "-rA", "--gate", "--junitxml", "pj.xml")
    assert result.ret == 1
    assert server.count("/ok") > 0  # the load ran with the data file
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{
            name: (pytester.path / name).read_text(errors="replace")
            for name in ("stagegate-verdict.json", "stagegate-junit.xml", "pj.xml")
        },
    }
    assert "the row: {'user': '***', 'password': '***'}" in outputs["terminal"]
    assert "user *** refused" in outputs["terminal"]
    for name, text in outputs.items():
        assert long_value not in text and short_value not in text, name
        assert leaked_runs(text, secret_forms(long_value)) == [], name


def test_a_worker_token_in_the_environment_is_masked_without_remote_workers(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
) -> None:
    """$STAGEGATE_WORKER_TOKEN set in the job's environment (for another step, or for remote
    workers this run does not use): a smoke test that prints its environment or fails on the
    token shows ``***`` in the terminal and the JUnit file, on the controller and on an xdist
    worker alike, with no --gate-remote-workers and no gate."""
    token = f"wt-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    monkeypatch.setenv("STAGEGATE_WORKER_TOKEN", token)
    server = serve({"/ok": Route()})
    write_stagegate(pytester, server.url)
    pytester.makepyfile(
        """
        import logging, os

        def test_prints_its_environment():
            print(dict(os.environ))
            logging.getLogger("app").warning("token %s", os.environ["STAGEGATE_WORKER_TOKEN"])
            assert os.environ["STAGEGATE_WORKER_TOKEN"] == "not it"
        """
    )
    outputs: dict[str, str] = {}
    for extra in ((), ("-p", "xdist", "-n", "1")):
        label = " ".join(extra) or "no xdist"
        result = pytester.runpytest_subprocess("-vv", "-rA", "--junitxml", "pj.xml", *extra)
        assert result.ret == 1, label
        outputs[f"terminal ({label})"] = result.stdout.str() + result.stderr.str()
        for path in sorted(Path(pytester.path).rglob("*")):  # pj.xml, the cache...
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py":
                outputs[f"{path.relative_to(pytester.path)} ({label})"] = path.read_text(
                    errors="replace"
                )
        assert f"pj.xml ({label})" in outputs
        assert "'STAGEGATE_WORKER_TOKEN': '***'" in outputs[f"terminal ({label})"], label
    leaks = {name: leaked_runs(text, secret_forms(token)) for name, text in outputs.items()}
    assert {name: runs for name, runs in leaks.items() if runs} == {}
