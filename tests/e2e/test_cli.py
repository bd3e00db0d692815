"""The ``stagegate`` command as CI runs it: a real subprocess, its exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_stagegate.verdict import write_verdict
from pytest_stagegate.verdict.files import check_signature
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer
from tests.unit.test_cli import fresh
from tests.verdict_samples import GOLDEN, SHA, pass_verdict

REPO = Path(__file__).resolve().parents[2]


def stagegate(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_subprocess_verify_accepts_and_refuses(tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, fresh())
    ok = stagegate("verify", path.name, "--target", "staging", "--commit", SHA[:10], cwd=tmp_path)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("OK: stagegate-verdict.json: verdict pass for target 'staging'")

    refused = stagegate("verify", path.name, "--target", "production", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == "REFUSED: the verdict is for target 'staging', not 'production'\n"


def test_subprocess_usage_error_exits_4_without_traceback(tmp_path: Path) -> None:
    done = stagegate("verify", "v.json", "--target", "staging", "--max-age", "soon", cwd=tmp_path)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr
    assert "argument --max-age: expected a duration" in done.stderr


def test_subprocess_missing_file_is_refused(tmp_path: Path) -> None:
    done = stagegate("verify", "nope.json", "--target", "staging", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "REFUSED: nope.json: no such file\n"


def test_subprocess_report_markdown(tmp_path: Path) -> None:
    write_verdict(tmp_path / "v.json", pass_verdict())
    done = stagegate("report", "v.json", "--format", "markdown", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == (GOLDEN / "report-pass.md").read_text(encoding="utf-8")


# -- issue 10: a signed verdict from a real run; a replaced target -----------------------------

KEY = "e2e-Signing-Key-7f3a91c0"


def test_a_real_run_signs_its_verdict_and_keeps_the_key_from_tests(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stagegate(pytester, server.url)
    pytester.makepyfile(
        """
        import os

        def test_env(http):
            assert http.get("/healthz").status_code == 200
            print("KEY SEEN BY THE TEST:", os.environ.get("STAGEGATE_SIGNING_KEY"))
        """
    )
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", KEY)
    result = pytester.runpytest("-s", "--verdict", "v.json", "--verdict-junit", "j.xml")
    assert result.ret == 0
    assert "KEY SEEN BY THE TEST: None" in result.stdout.str()
    text = (pytester.path / "v.json").read_text() + (pytester.path / "j.xml").read_text()
    assert KEY not in text + result.stdout.str() + result.stderr.str()
    data = json.loads((pytester.path / "v.json").read_text())
    assert data["signature"]["alg"] == "HMAC-SHA256"
    assert check_signature(data, KEY.encode()) is None

    argv = ("verify", "v.json", "--target", "local", "--allow-no-gate", "--require-signature")
    ok = stagegate(*argv, "--base-url", server.url, cwd=pytester.path)
    assert (ok.returncode, ok.stderr) == (0, ""), ok.stdout
    assert ok.stdout.rstrip().endswith("; signature verified")
    data["finished_at"] = data["started_at"]  # one edit, anywhere
    (pytester.path / "v.json").write_text(json.dumps(data))
    refused = stagegate(*argv, cwd=pytester.path)
    assert refused.returncode == 1
    assert refused.stdout.startswith("REFUSED: the verdict's signature does not match")
    assert KEY not in refused.stdout + refused.stderr


def test_the_key_leaves_the_environment_before_any_conftest_or_worker_sees_it(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rootdir conftest.py is imported, and other plugins' early hooks run, before the
    plugin's pytest_configure: the key is gone from os.environ already (taken while pytest
    loads the plugin), xdist workers never see it, and the verdict is still signed. Where
    code of the run gets hold of it anyway, it is masked like any secret."""
    write_stagegate(pytester, server.url)
    pytester.makeconftest(
        """
        import os

        import pytest

        AT_IMPORT = "STAGEGATE_SIGNING_KEY" in os.environ


        @pytest.hookimpl(tryfirst=True)
        def pytest_configure(config):
            with open("seen.txt", "a") as f:
                f.write(f"import {AT_IMPORT}\\n")
                f.write(f"configure {'STAGEGATE_SIGNING_KEY' in os.environ}\\n")


        def pytest_stagegate_verdict(config, verdict):
            key = config.pluginmanager.get_plugin("stagegate-run").options.signing_key
            verdict.add_reason("signed with " + key.decode())
            print("signed with " + key.decode())
        """
    )
    pytester.makepyfile(
        """
        import os

        def test_env(http):
            assert http.get("/healthz").status_code == 200
            with open("seen.txt", "a") as f:
                worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
                f.write(f"test {worker} {'STAGEGATE_SIGNING_KEY' in os.environ}\\n")

        def test_other():
            pass
        """
    )
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", KEY)
    result = pytester.runpytest("-s", "-n", "2", "--verdict", "v.json", "--verdict-junit", "j.xml")
    assert result.ret == 0, result.stdout.str()[-3000:]
    seen = (pytester.path / "seen.txt").read_text().splitlines()
    assert "test gw0 False" in seen or "test gw1 False" in seen  # the test ran on a worker
    assert [line for line in seen if line.endswith("True")] == []
    assert seen[:2] == ["import False", "configure False"]  # the controller's conftest
    data = json.loads((pytester.path / "v.json").read_text())
    assert check_signature(data, KEY.encode()) is None
    assert "Signed with ***." in data["reasons"]
    assert "signed with ***" in result.stdout.str()
    text = (pytester.path / "v.json").read_text() + (pytester.path / "j.xml").read_text()
    assert KEY not in text + result.stdout.str() + result.stderr.str()


def test_a_target_replaced_by_a_hook_is_recorded_and_refused(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, "https://staging.invalid", name="staging")
    pytester.makeconftest(
        f"""
        import dataclasses

        def pytest_stagegate_configure_target(config, target):
            return dataclasses.replace(target, base_url={server.url!r})
        """
    )
    pytester.makepyfile("def test_one(http):\n    assert http.get('/healthz').status_code == 200\n")
    result = pytester.runpytest("--target", "staging", "--verdict", "v.json")
    assert result.ret == 0
    data = json.loads((pytester.path / "v.json").read_text())
    assert data["verdict"] == "pass"
    assert data["target"] == {
        "name": "staging",
        "base_url": server.url,
        "replaced": True,
        "configured_base_url": "https://staging.invalid",
    }
    assert any("pytest_stagegate_configure_target hook replaced" in r for r in data["reasons"])
    argv = ("verify", "v.json", "--target", "staging", "--allow-no-gate")
    refused = stagegate(*argv, cwd=pytester.path)
    assert refused.returncode == 1
    assert "a pytest_stagegate_configure_target hook replaced it" in refused.stdout
    assert stagegate(*argv, "--allow-replaced-target", cwd=pytester.path).returncode == 0
    elsewhere = stagegate(
        *argv, "--allow-replaced-target", "--base-url", "https://staging.invalid", cwd=pytester.path
    )
    assert elsewhere.returncode == 1
    assert f"measured at {server.url}, not at https://staging.invalid" in elsewhere.stdout
