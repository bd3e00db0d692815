"""The test suite's own helpers: tests/tools.py (a missing tool skips, naming it, but fails in
CI) and tests/servers.master_port (a port below the kernel's ephemeral range)."""

from __future__ import annotations

import socket
import sys

import pytest

from tests.servers import _ephemeral_range, master_port
from tests.tools import in_ci, need_module, need_tool

MISSING = "stagegate-no-such-tool-7f3a"


@pytest.mark.parametrize("value", ["", "0", "false", "False", "no"])
def test_ci_unset_or_off_skips_naming_the_tool(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match=f"'{MISSING}' is missing: it draws"):
        need_tool(MISSING, "it draws")
    with pytest.raises(pytest.skip.Exception, match=f"package '{MISSING}' is missing"):
        need_module(MISSING, "it parses")


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_in_ci_a_missing_tool_fails_the_test(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match=f"'{MISSING}' is missing, and CI"):
        need_tool(MISSING, "it draws")
    with pytest.raises(pytest.fail.Exception, match=r"Install it in \.ci/run"):
        need_module(MISSING, "it parses")
    # a tool that cannot exist there still skips, named
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        need_tool(MISSING, "not on this Python", required_in_ci=False)


def test_a_present_tool_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert need_tool(MISSING, "why", paths=(sys.executable,)) == sys.executable
    need_module("json", "why")  # no exception


def test_master_port_is_free_and_below_the_ephemeral_range() -> None:
    low, _ = _ephemeral_range()
    for _ in range(20):
        port = master_port()
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free now
