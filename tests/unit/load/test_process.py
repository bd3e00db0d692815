"""``load.process``: what the parent gives its children besides the plan (their import path)
and how it reads their progress lines. Runs no load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_stagegate.load import process as load_process
from pytest_stagegate.load.process import Progress

ROOT = Path(__file__).resolve().parents[3]


def test_progress_reads_the_childs_event() -> None:
    event = {
        "event": "progress",
        "elapsed": 1.5,
        "duration": 10,
        "users": 3,
        "rps": 12.5,
        "p95_ms": 4.25,
        "requests": 20,
        "failures": 1,
        "warmup": True,
    }
    assert Progress.from_event(event) == Progress(1.5, 10.0, 3, 12.5, 4.25, 20, 1, True)


def _site_dirs() -> set[str]:
    import site

    return {*site.getsitepackages(), site.getusersitepackages()}


def test_an_importable_package_adds_nothing_to_the_children_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # installed here (editable): found from any directory, so PYTHONPATH stays the user's
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mine"))
    load_process._needs_checkout_on_path.cache_clear()
    env = load_process._child_env(sys.executable)
    assert env["PYTHONPATH"] == str(tmp_path / "mine")
    monkeypatch.delenv("PYTHONPATH")
    assert "PYTHONPATH" not in load_process._child_env(sys.executable)


def test_a_package_the_child_cannot_find_adds_only_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an interpreter without site-packages (-S): it cannot find pytest_stagegate by itself
    python = tmp_path / "python-without-site"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    load_process._needs_checkout_on_path.cache_clear()
    env = load_process._child_env(str(python))
    assert env["PYTHONPATH"] == str(ROOT)
    assert not set(env["PYTHONPATH"].split(os.pathsep)) & _site_dirs()
    # and with it, that interpreter imports this very package (the standard library is still
    # its own: nothing else is on the path)
    code = "import json, pytest_stagegate.load.plan as p\nprint(p.__file__)\nprint(json.__file__)"
    out = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    plan_file, json_file = out.stdout.split()
    assert Path(plan_file).resolve() == ROOT / "pytest_stagegate" / "load" / "plan.py"
    assert not Path(json_file).resolve().is_relative_to(ROOT)
