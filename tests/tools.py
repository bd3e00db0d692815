"""System tools (and optional packages) a test needs: skipped where they are missing, naming
what is missing and why the test needs it, but a failure in CI, where a skip would let the
test vanish unseen (``.ci/run`` installs the tools; the test extra the packages).

    from tests.tools import need_module, need_tool

    chromium = need_tool("chromium", "opens the dashboard headless")  # the path of the binary
    need_module("pytest_html", "pytest-html writes the report")

CI is the environment variable ``CI`` that GitHub Actions, GitLab CI and most runners set
(``CI=true``); empty, ``0`` or ``false`` count as unset. ``required_in_ci=False`` keeps the
skip in CI too, for a tool that cannot exist there (say, on a Python the tool does not
support); the reason still names it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

__all__ = ["in_ci", "need_module", "need_tool"]


def in_ci() -> bool:
    """Whether this run is a CI run (``$CI`` set, and not empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str, why: str, required_in_ci: bool) -> None:
    if required_in_ci and in_ci():
        pytest.fail(
            f"{what} is missing, and CI (the environment variable CI is set) must run this "
            f"test: {why}. Install it in .ci/run or the test extra.",
            pytrace=False,
        )
    pytest.skip(f"{what} is missing: {why}")


def need_tool(
    name: str,
    why: str,
    *,
    alternatives: Iterable[str] = (),
    paths: Iterable[Path | str] = (),
    required_in_ci: bool = True,
) -> str:
    """The path of the executable ``name`` (or of the first of ``alternatives`` found on
    PATH, then of ``paths`` that exist); skip naming ``name`` and ``why`` when there is none,
    or fail in CI."""
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    for path in paths:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return str(path)
    _missing(f"the tool {name!r}", why, required_in_ci)
    raise AssertionError("unreachable")  # pragma: no cover - skip/fail raise


def need_module(name: str, why: str, *, required_in_ci: bool = True) -> None:
    """Skip naming the importable package ``name`` and ``why`` when it is not installed, or
    fail in CI. (It is not imported here: a test imports what it uses.)"""
    if importlib.util.find_spec(name) is None:
        _missing(f"the Python package {name!r}", why, required_in_ci)
