"""Workers only the gate can command: a worker proves $STAGEGATE_WORKER_TOKEN before the master
counts it or sends it anything (pytest_stagegate/load/child/gatekeeper.py).

One real gated run with a remote-worker slot; four processes knock: a plain `locust --worker`
(no handshake at all), a `stagegate worker` with a wrong token, one with the right token whose
stagegate.yaml points at another server (refused: it would measure another deployment), and a
good `stagegate worker`. Each impostor loads its own path or server, so a single request there
would show that it was given the load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import HTTPTestServer, Route, master_port

CONFIG = """\
targets:
  local:
    base_url: {url}
gate:
  min_samples: 5
  load:
    users: 2
    spawn_rate: 2
    duration: 2s
    wait: 10ms
    requests: [GET {path}]
  budgets:
    total: {{error_rate: 1%}}
"""
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Plain(HttpUser):
    wait_time = constant(0.01)

    @task
    def plain(self):
        self.client.get("/plain")
"""
TOKEN = "the-right-worker-token-5f1c2a9e"
WRONG = "a-wrong-worker-token-77c0d41b"


def _wait_for(path: Path, text: str, count: int, bound: float) -> str:
    """The file's text once ``text`` occurs ``count`` times in it (or the bound passed)."""
    deadline = time.monotonic() + bound
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text("utf-8") if path.exists() else ""
        if content.count(text) >= count:
            break
        time.sleep(0.2)
    return content


def test_only_a_worker_that_proves_the_token_is_counted_and_commanded(tmp_path: Path) -> None:
    routes = {"/load": Route(), "/wrong": Route(), "/plain": Route(), "/": Route()}
    with HTTPTestServer(routes) as server, HTTPTestServer({"/load": Route()}) as elsewhere:
        (tmp_path / "stagegate.yaml").write_text(CONFIG.format(url=server.url, path="/load"))
        (tmp_path / "test_up.py").write_text(
            "def test_up(http): assert http.get('/').status_code == 200\n"
        )
        port = master_port()
        gate = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--gate", "-p", "no:cacheprovider",
             "--gate-remote-workers", "1", "--gate-master-bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env={**os.environ, "STAGEGATE_WORKER_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        impostor = tmp_path / "impostor"
        impostor.mkdir()
        (impostor / "stagegate.yaml").write_text(CONFIG.format(url=server.url, path="/wrong"))
        (impostor / "locustfile.py").write_text(LOCUSTFILE)
        plain = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", "locustfile.py", "--worker",
             "--master-host", "127.0.0.1", "--master-port", str(port), "--host", server.url],
            cwd=impostor,
            env={k: v for k, v in os.environ.items() if k != "STAGEGATE_WORKER_TOKEN"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            wrong = subprocess.run(
                [sys.executable, "-m", "pytest_stagegate.cli", "worker",
                 "--master-host", "127.0.0.1", "--master-port", str(port), "--target", "local"],
                cwd=impostor,
                env={**os.environ, "STAGEGATE_WORKER_TOKEN": WRONG},
                capture_output=True,
                text=True,
                timeout=180,
            )  # fmt: skip
            # the plain worker is refused when it asks again without answering (Locust: 5 s)
            log_path = tmp_path / "stagegate-load.log"
            _wait_for(log_path, "Refused load worker", 2, bound=60)
            # the right token, another target (the bundled example's trap: the worker's own
            # stagegate.yaml names a port the gate's app is not on)
            astray_dir = tmp_path / "astray-worker"
            astray_dir.mkdir()
            (astray_dir / "stagegate.yaml").write_text(
                CONFIG.format(url=elsewhere.url, path="/load")
            )
            astray = subprocess.run(
                [sys.executable, "-m", "pytest_stagegate.cli", "worker",
                 "--master-host", "127.0.0.1", "--master-port", str(port), "--target", "local"],
                cwd=astray_dir,
                env={**os.environ, "STAGEGATE_WORKER_TOKEN": TOKEN},
                capture_output=True,
                text=True,
                timeout=180,
            )  # fmt: skip
            good_dir = tmp_path / "good-worker"
            good_dir.mkdir()
            (good_dir / "stagegate.yaml").write_text(CONFIG.format(url=server.url, path="/load"))
            good = subprocess.run(
                [sys.executable, "-m", "pytest_stagegate.cli", "worker",
                 "--master-host", "127.0.0.1", "--master-port", str(port), "--target", "local"],
                cwd=good_dir,
                env={**os.environ, "STAGEGATE_WORKER_TOKEN": TOKEN},
                capture_output=True,
                text=True,
                timeout=180,
            )  # fmt: skip
            output, _ = gate.communicate(timeout=180)
        finally:
            for proc in (gate, plain):
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        counts = server.counts
        elsewhere_counts = elsewhere.counts
        mismatch = f"it loads {elsewhere.url}, the gate's target is {server.url}"
    log = log_path.read_text("utf-8")
    verdict_text = (tmp_path / "stagegate-verdict.json").read_text("utf-8")
    verdict = json.loads(verdict_text)

    # the good worker ran the load, and the gate passed on it alone
    assert good.returncode == 0, good.stderr
    assert gate.returncode == 0, output
    assert counts.get("/load", 0) > 0
    assert verdict["verdict"] == "pass", verdict["gate"]
    assert verdict["gate"]["generator"]["processes"] == 1
    assert "proved $STAGEGATE_WORKER_TOKEN" in log

    # the impostors were refused, named in the log, and given nothing to do
    assert wrong.returncode == 1, wrong.stderr
    assert "refused this worker" in wrong.stderr
    assert "wrong (another token)" in wrong.stderr
    refusals = [line for line in log.splitlines() if "Refused load worker" in line]
    assert len(refusals) == 3, log
    assert any("wrong (another token)" in line for line in refusals), refusals
    assert any("did not answer the token challenge" in line for line in refusals), refusals
    for line in refusals:
        assert "(host " in line and "from 127.0.0.1" in line, line  # id, host, address
    assert counts.get("/wrong", 0) == 0
    # the worker that proved the token but loads another target: refused, both URLs named
    assert astray.returncode == 1, astray.stderr
    assert "refused this worker" in astray.stderr and mismatch in astray.stderr, astray.stderr
    assert any(mismatch in line for line in refusals), refusals
    assert elsewhere_counts.get("/load", 0) == 0
    assert counts.get("/plain", 0) == 0
    assert plain.returncode is not None  # killed above: it never got a spawn to run

    # the token is a secret: in no output
    everything = [output, log, verdict_text, wrong.stderr, astray.stderr, good.stderr]
    for text in everything:
        assert TOKEN not in text
        assert WRONG not in text


def test_remote_workers_without_a_token_are_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", stagegate=CONFIG.format(url="http://127.0.0.1:1", path="/"))
    pytester.makepyfile("def test_x(): pass")
    monkeypatch.delenv("STAGEGATE_WORKER_TOKEN", raising=False)
    result = pytester.runpytest_subprocess(
        "--gate", "--gate-remote-workers", "2", "--gate-master-bind", f"127.0.0.1:{master_port()}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--gate-remote-workers needs the workers' shared secret: $STAGEGATE_WORKER_TOKEN is "
         "not set*"]
    )  # fmt: skip
    assert "Traceback" not in result.stderr.str()
    # too short is refused the same way, and the short token is not echoed
    monkeypatch.setenv("STAGEGATE_WORKER_TOKEN", "short-tok")
    result = pytester.runpytest_subprocess(
        "--gate", "--gate-remote-workers", "1", "--gate-master-bind", f"127.0.0.1:{master_port()}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is shorter than 16 characters (it has 9)*"])
    assert "short-tok" not in result.stderr.str() + result.stdout.str()
