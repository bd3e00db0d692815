"""stagegate.yaml found from a subdirectory: pytest run from ``tests/`` of a project without
pytest.ini (so the rootdir is ``tests/``) walks up to the project's file and says so in its
header; a repository root ends the walk, and then the "not active" message offers a command
that works. Real pytest runs (pytester, subprocess) against a real server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer

SMOKE = """
def test_products(http):
    assert http.get("/api/products").status_code == 200
"""


def project(root: Path, url: str) -> tuple[Path, Path]:
    """root/stagegate.yaml and root/tests/test_smoke.py; no ini file anywhere."""
    config = root / "stagegate.yaml"
    config.write_text(stagegate_yaml(url))
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_smoke.py").write_text(SMOKE)
    return config, tests


def test_run_from_tests_finds_the_project_config_walking_up(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, tests = project(pytester.path, server.url)
    monkeypatch.chdir(tests)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert f"rootdir: {tests}" in result.stdout.str()  # pytest's own, without an ini file
    result.stdout.fnmatch_lines(
        [
            "stagegate: target 'local' (http://127.0.0.1:*) from the default",
            f"stagegate: config {config} (found walking up from {tests})",
        ]
    )
    assert server.count("/api/products") == 1


def test_a_repository_root_ends_the_walk_and_the_advice_works(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stagegate.yaml above the repository is not the repository's: never read
    (pytester.path / "stagegate.yaml").write_text(stagegate_yaml(server.url))
    repo = pytester.path / "repo"
    (repo / ".git").mkdir(parents=True)
    tests = repo / "tests"
    tests.mkdir()
    (tests / "test_smoke.py").write_text(SMOKE)
    monkeypatch.chdir(tests)

    inert = pytester.runpytest()
    inert.assert_outcomes(errors=1)  # the fixture says why
    text = " ".join(inert.stdout.str().split())
    assert (
        f"pytest-stagegate is not active: there is no stagegate.yaml in {tests} or any "
        f"directory above it up to {repo} (the repository root)."
    ) in text
    assert "pass --stagegate-config PATH/TO/stagegate.yaml." in text
    assert server.count("/api/products") == 0

    # What the message offers, with the file it names, works; inside the repository, the
    # file at its root is found walking up.
    (repo / "stagegate.yaml").write_text(stagegate_yaml(server.url))
    given = pytester.runpytest("--stagegate-config", "../stagegate.yaml")
    given.assert_outcomes(passed=1)
    given.stdout.fnmatch_lines(
        [f"stagegate: config {repo / 'stagegate.yaml'} (from --stagegate-config)"]
    )
    found = pytester.runpytest()
    found.assert_outcomes(passed=1)
    found.stdout.fnmatch_lines(
        [f"stagegate: config {repo / 'stagegate.yaml'} (found walking up from {tests})"]
    )
    assert server.count("/api/products") == 2
