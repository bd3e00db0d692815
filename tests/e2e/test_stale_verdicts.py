"""No early exit leaves a previous verdict behind or writes a pass (issue 10).

Each test puts a previous run's passing verdict (and its JUnit file and load log) where the
next run writes, then runs pytest in a subprocess that stops early: a conftest.py that cannot
be imported, an unknown option, a bad option value, a missing option value, a usage error of the
plugin, ``pytest.exit()`` in a test. Afterwards no passing verdict exists: the files are gone,
or (for ``pytest.exit()``) the new verdict is ``error`` and names the exit's reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.verdict import load_verdict, write_verdict
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer
from tests.verdict_samples import SAMPLES

SPEED = ("-p", "no:hypothesispytest")
DEFAULTS = (defaults.VERDICT_FILE, defaults.JUNIT_FILE, defaults.LOAD_LOG_FILE)


def previous_pass(folder: Path, verdict: str, junit: str) -> list[Path]:
    """A previous run's passing verdict, JUnit file and load log at these names."""
    json_path = folder / verdict
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_verdict(json_path, SAMPLES["pass"]())
    assert load_verdict(json_path)["verdict"] == "pass"
    junit_path = folder / junit
    junit_path.write_text('<testsuites tests="1" failures="0"/>\n')
    log = json_path.with_name(defaults.LOAD_LOG_FILE)
    log.write_text("previous load\n")
    return [json_path, junit_path, log]


@pytest.fixture
def project(pytester: pytest.Pytester, server: HTTPTestServer) -> pytest.Pytester:
    write_stagegate(pytester, server.url)
    pytester.makepyfile(test_shop="def test_one():\n    pass\n")
    return pytester


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--gate", "--no-such-option"], 4, "unrecognized arguments: --no-such-option"),
        (["--gate", "--gate-workers=x"], 4, "argument --gate-workers: expected a whole number"),
        (["--gate", "--gate-workers", "-1"], 4, "expected 0 or more worker processes"),
        (["--gate", "--verdict-junit"], 4, "argument --verdict-junit: expected one argument"),
        (["--gate", "--target", "nosuch"], 4, "nosuch"),
        (["--gate", "--gate-baseline", "missing.json"], 4, "--gate-baseline"),
    ],
    ids=[
        "unknown-option",
        "bad-value",
        "negative-value",
        "missing-value",
        "bad-target",
        "baseline",
    ],
)
def test_an_early_stop_leaves_no_default_verdict(
    project: pytest.Pytester, args: list[str], exit_code: int, message: str
) -> None:
    files = previous_pass(project.path, defaults.VERDICT_FILE, defaults.JUNIT_FILE)
    result = project.runpytest(*SPEED, *args)
    assert result.ret == exit_code
    assert message in result.stderr.str()
    for path in files:
        assert not path.exists(), f"{path.name} of the previous run is still there"


@pytest.mark.parametrize(
    "form",
    [
        ["--verdict", "out/v.json", "--verdict-junit", "out/j.xml"],
        ["--verdict=out/v.json", "--verdict-junit=out/j.xml"],
    ],
    ids=["separate", "equals"],
)
def test_a_broken_conftest_leaves_no_named_verdict(
    project: pytest.Pytester, form: list[str]
) -> None:
    files = previous_pass(project.path, "out/v.json", "out/j.xml")
    project.makeconftest("import no_such_module_anywhere\n")
    result = project.runpytest(*SPEED, *form)
    assert result.ret == 4
    assert "ImportError while loading conftest" in result.stderr.str()
    for path in files:
        assert not path.exists(), f"{path.name} of the previous run is still there"


def test_a_verdict_named_in_addopts_is_forgotten_too(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_files = previous_pass(project.path, "env/v.json", "env/j.xml")
    ini_files = previous_pass(project.path, "ini/v.json", "ini/j.xml")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--verdict env/v.json --verdict-junit env/j.xml")
    result = project.runpytest(*SPEED, "--no-such-option")
    assert result.ret == 4
    for path in env_files:
        assert not path.exists(), path
    monkeypatch.delenv("PYTEST_ADDOPTS")
    project.makeini("[pytest]\naddopts = --verdict ini/v.json --verdict-junit=ini/j.xml\n")
    result = project.runpytest(*SPEED, "--gate-workers=many")
    assert result.ret == 4
    for path in ini_files:
        assert not path.exists(), path


def test_help_and_collect_only_keep_the_verdict(project: pytest.Pytester) -> None:
    files = previous_pass(project.path, defaults.VERDICT_FILE, defaults.JUNIT_FILE)
    assert project.runpytest(*SPEED, "--gate", "--help").ret == 0
    assert project.runpytest(*SPEED, "--gate", "--collect-only").ret == 0
    assert all(path.exists() for path in files)


@pytest.mark.parametrize("returncode", [None, 0], ids=["default", "returncode-0"])
def test_pytest_exit_in_a_test_makes_the_verdict_error_with_its_reason(
    project: pytest.Pytester, returncode: int | None
) -> None:
    previous_pass(project.path, "v.json", "j.xml")
    extra = "" if returncode is None else f", returncode={returncode}"
    project.makepyfile(
        test_shop=f"""
        import pytest

        def test_a_first():
            pass

        def test_b_exits():
            pytest.exit("the deploy window closed"{extra})

        def test_c_never_runs():
            pass
        """
    )
    result = project.runpytest(*SPEED, "--verdict", "v.json", "--verdict-junit", "j.xml")
    assert result.ret != 0
    data = load_verdict(project.path / "v.json")
    assert data["verdict"] == "error"
    assert data["promote"] is False
    assert data["interrupted"] is True
    assert "pytest.exit() stopped the run: the deploy window closed." in data["reasons"]
    assert {
        "kind": "error",
        "reason": "pytest.exit() stopped the run: the deploy window closed.",
    } in (data["problems"])
    outcomes = {r["nodeid"]: r["outcome"] for r in data["tests"]["records"]}
    assert outcomes == {
        "test_shop.py::test_a_first": "passed",
        "test_shop.py::test_b_exits": "error",
    }
    assert data["tests"]["passed"] == 1
    junit = (project.path / "j.xml").read_text()
    assert "test_b_exits" in junit and "pytest.exit() stopped the run" in junit
    assert not (project.path / defaults.LOAD_LOG_FILE).exists()


def test_a_user_exit_that_reads_like_the_plugins_own_is_still_an_error(
    project: pytest.Pytester,
) -> None:
    # the plugin knows its own exits by a flag, not by how their message starts
    project.makepyfile(
        test_shop="""
        import pytest

        def test_exits():
            pytest.exit("pytest-stagegate: all good, stop here", returncode=0)
        """
    )
    project.runpytest(*SPEED, "--verdict", "v.json")
    data = load_verdict(project.path / "v.json")
    assert data["verdict"] == "error" and data["interrupted"] is True
    assert any("pytest-stagegate: all good" in r for r in data["reasons"]), data["reasons"]


def test_pytest_exit_during_collection_makes_the_verdict_error(project: pytest.Pytester) -> None:
    previous_pass(project.path, "v.json", "j.xml")
    project.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            pytest.exit("no tests today", returncode=0)
        """
    )
    result = project.runpytest(*SPEED, "--verdict", "v.json")
    assert result.ret == 1
    data = load_verdict(project.path / "v.json")
    assert data["verdict"] == "error"
    assert "pytest.exit() stopped the run: no tests today." in data["reasons"]
