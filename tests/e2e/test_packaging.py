"""The sdist: built by the real build backend (setuptools, no network), it carries everything the
tests need to run from the unpacked archive (the tests' helpers, golden files and schemas, the
example suite, the CI recipes, the README they read), with metadata that says what was tested.

Its whole suite is not run here (minutes); CONTRIBUTING.md says how to run it from the archive.
"""

from __future__ import annotations

import ast
import email
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pytest_stagegate._version import __version__

REPO = Path(__file__).resolve().parents[2]
# What the tests read outside the package: the example suite (test_gate), the CI recipes
# (test_ci_recipes), the README (test_readme, test_cli); docs and benchmarks come along.
TREES = ("tests", "example_suites", "ci", "docs", "benchmarks", "pytest_stagegate")
FILES = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "LICENSE", "pyproject.toml", "MANIFEST.in")
# Made by tools, never shipped (a checkout may hold them)
_SKIP = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis")
_SKIP_SUFFIXES = (".pyc", ".pyo")
_LEFT_BY_RUNS = re.compile(r"stagegate-(verdict|junit|report|load)\.")


def shipped(path: Path) -> bool:
    return (
        not any(part in _SKIP for part in path.parts)
        and path.suffix not in _SKIP_SUFFIXES
        and not _LEFT_BY_RUNS.match(path.name)
    )


def source_files() -> set[str]:
    files = set(FILES)
    for tree in TREES:
        files.update(
            p.relative_to(REPO).as_posix()
            for p in (REPO / tree).rglob("*")
            if p.is_file() and shipped(p.relative_to(REPO))
        )
    return files


def imported_test_modules() -> set[str]:
    """Every ``tests.X`` module the test files import (``from tests.servers import ...``,
    ``from tests import faults``), as a path: tests/servers.py."""
    found = set()
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "tests":
                    names = [f"tests.{alias.name}" for alias in node.names]
                elif node.module.startswith("tests."):
                    names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("tests.")]
            found.update(name.replace(".", "/") for name in names)
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tuple[tarfile.TarFile, str]:
    """The sdist built from a copy of the checkout (no build files left in it), and what the
    backend printed."""
    work = tmp_path_factory.mktemp("sdist")
    source = work / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.egg-info", "build", "dist", ".benchmarks", *_SKIP
        ),
    )
    out = work / "dist"
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "import sys, setuptools.build_meta as backend; print(backend.build_sdist(sys.argv[1]))",
            str(out),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip().splitlines()[-1]
    assert name == f"pytest_stagegate-{__version__}.tar.gz"
    return tarfile.open(out / name), done.stdout + done.stderr


def test_the_sdist_carries_what_the_tests_need(sdist: tuple[tarfile.TarFile, str]) -> None:
    archive, _ = sdist
    prefix = f"pytest_stagegate-{__version__}/"
    members = {m.name.removeprefix(prefix) for m in archive.getmembers() if m.isfile()}
    missing = sorted(source_files() - members)
    assert not missing, f"not in the sdist: {missing}"
    for module in sorted(imported_test_modules()):
        assert f"{module}.py" in members or f"{module}/__init__.py" in members, module
    # the helpers every test file leans on, named so that losing one reads plainly
    for helper in ("tests/conftest.py", "tests/servers.py", "tests/faults.py"):
        assert helper in members
    assert not [m for m in members if m.endswith(".pyc") or "__pycache__" in m]


def test_the_metadata_says_what_was_tested(sdist: tuple[tarfile.TarFile, str]) -> None:
    archive, output = sdist
    handle = archive.extractfile(f"pytest_stagegate-{__version__}/PKG-INFO")
    assert handle is not None
    info = email.message_from_bytes(handle.read())
    assert info["Version"] == __version__  # one source: pytest_stagegate/_version.py
    assert info["License-Expression"] == "MIT"
    assert info["License-File"] == "LICENSE"
    assert info["Requires-Python"] == ">=3.10"
    running = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    assert running in info.get_all("Classifier", [])
    assert "License ::" not in " ".join(info.get_all("Classifier", []))  # the expression says it
    # no deprecated metadata form (the license table was one, an error from 2027-02-18)
    assert "Deprecat" not in output, output


def test_the_changelog_has_the_version() -> None:
    """The version is written once, in _version.py; a release of it has its changelog entry."""
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(
        rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )
