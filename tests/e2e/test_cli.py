"""The ``stagegate`` command as CI runs it: a real subprocess, its exit codes and output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_stagegate.verdict import write_verdict
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
