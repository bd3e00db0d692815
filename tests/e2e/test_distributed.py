"""Locust workers on "other machines": `stagegate worker` joins a gated run's master.

The other machine is simulated by a separate process on 127.0.0.1 with its own environment."""

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
    headers:
      X-Token: "${{STAGEGATE_TEST_TOKEN}}"
gate:
  min_samples: 10
  load:
    users: 2
    spawn_rate: 2
    duration: 3s
    wait: 10ms
    requests: [GET /load]
  budgets:
    total: {{error_rate: 1%}}
"""

# the workers' shared secret (tests/e2e/test_worker_token.py proves what it guards)
WORKER_TOKEN = {"STAGEGATE_WORKER_TOKEN": "test-worker-token-0123456789"}


def test_a_remote_worker_generates_the_load_with_its_own_secrets(tmp_path: Path) -> None:
    with HTTPTestServer({"/load": Route(), "/": Route()}) as server:
        (tmp_path / "stagegate.yaml").write_text(CONFIG.format(url=server.url))
        (tmp_path / "test_up.py").write_text(
            "def test_up(http): assert http.get('/').status_code == 200\n"
        )
        port = master_port()
        gate = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--gate", "-p", "no:cacheprovider",
             "--gate-remote-workers", "1", "--gate-master-bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env={**os.environ, **WORKER_TOKEN, "STAGEGATE_TEST_TOKEN": "controller-token"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        elsewhere = tmp_path / "other-machine"
        elsewhere.mkdir()
        (elsewhere / "stagegate.yaml").write_text(CONFIG.format(url=server.url))
        time.sleep(1)  # the worker may start before or after the master: Locust retries
        worker = subprocess.run(
            [sys.executable, "-m", "pytest_stagegate.cli", "worker",
             "--master-host", "127.0.0.1", "--master-port", str(port), "--target", "local"],
            cwd=elsewhere,
            env={**os.environ, **WORKER_TOKEN, "STAGEGATE_TEST_TOKEN": "worker-token"},
            capture_output=True,
            text=True,
            timeout=180,
        )  # fmt: skip
        output, _ = gate.communicate(timeout=180)
        headers = {k.lower(): v for k, v in server.last_headers("/load").items()}
        load_requests = server.count("/load")
        url = server.url
    assert worker.returncode == 0, worker.stderr
    assert gate.returncode == 0, output
    assert "listens on 127.0.0.1:" in output
    assert f"whose base_url must be {url}" in output  # what the master will accept
    assert headers["x-token"] == "worker-token"  # the plan came from the worker's environment
    verdict = json.loads((tmp_path / "stagegate-verdict.json").read_text())
    assert verdict["gate"]["profile"]["remote_workers"] == 1
    assert verdict["gate"]["generator"]["processes"] == 1
    total = next(e for e in verdict["gate"]["endpoints"] if e["name"] == "total")
    assert 0 < total["requests"] <= load_requests


def test_remote_workers_need_a_master_address(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        stagegate=CONFIG.format(url="http://127.0.0.1:1").replace(
            "${STAGEGATE_TEST_TOKEN}", "${STAGEGATE_TEST_TOKEN:-x}"
        ),
    )
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--gate", "--gate-remote-workers", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gate-remote-workers needs --gate-master-bind*"])


def test_a_worker_without_a_master_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_stagegate.load import remote

    monkeypatch.setattr(remote, "MASTER_WAIT", 1.0)
    (tmp_path / "stagegate.yaml").write_text(
        CONFIG.format(url="http://127.0.0.1:1").replace("duration: 3s", "duration: 1s")
    )
    code = remote.run_worker(
        config_path=tmp_path / "stagegate.yaml",
        target_name="local",
        master_host="127.0.0.1",
        master_port=master_port(),
        environ={"STAGEGATE_TEST_TOKEN": "x", **WORKER_TOKEN},
    )
    assert code == 1
