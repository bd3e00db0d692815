"""Starts the demo shop for the `local` target, through pytest-stagegate's hook."""

from __future__ import annotations

import dataclasses
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_app: subprocess.Popen[str] | None = None


def pytest_stagegate_configure_target(config, target):
    """For `local`, start app.py on a free 127.0.0.1 port and point the target at it.

    With SHOP_APP_RUNNING=1 the app already runs at the configured base_url (started with
    `python app.py --port 8000`): nothing is started or replaced, so remote workers, which
    read the same stagegate.yaml, load the same app as the gate."""
    global _app
    if target.name != "local" or os.environ.get("SHOP_APP_RUNNING") == "1":
        return None
    _app = subprocess.Popen(
        [sys.executable, str(HERE / "app.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([_app.stdout], [], [], 15)
    port = _app.stdout.readline().strip() if ready else ""
    if not port.isdigit():
        _app.kill()
        raise pytest.UsageError("example shop: app.py did not start (no port printed)")
    return dataclasses.replace(target, base_url=f"http://127.0.0.1:{port}")


def pytest_unconfigure(config):
    if _app is not None and _app.poll() is None:
        _app.terminate()
        try:
            _app.wait(5)
        except subprocess.TimeoutExpired:
            _app.kill()
