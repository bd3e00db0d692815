"""``plugin.options``: the option value parsers, config discovery, and ``RunOptions`` resolved
from a real pytest config (``pytester.parseconfig``, in-process)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.plugin.options import (
    BIND_EXAMPLE,
    SIGNING_KEY,
    RunOptions,
    find_config_file,
    parse_bind,
    parse_count,
    parse_workers,
    verdict_files_in_args,
)

# -- parsers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("3", 3), (" 12", 12)])
def test_parse_workers_counts(text: str, expected: int) -> None:
    assert parse_workers(text) == expected


def test_parse_workers_auto_is_the_cpu_count() -> None:
    assert parse_workers("AUTO") == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("many", "expected a whole number of Locust worker processes or 'auto', got 'many'"),
        ("-1", "expected 0 or more worker processes, got -1"),
        ("1.5", "got '1.5'"),
    ],
)
def test_parse_workers_refuses(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace(".", r"\.")):
        parse_workers(text)


def test_parse_count() -> None:
    assert parse_count("4") == 4
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number, got 'x'"):
        parse_count("x")
    with pytest.raises(argparse.ArgumentTypeError, match="expected 0 or more, got -2"):
        parse_count("-2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:5557", ("0.0.0.0", 5557)),
        ("[::1]:8089", ("::1", 8089)),
        ("gate.internal:1", ("gate.internal", 1)),
    ],
)
def test_parse_bind(text: str, expected: tuple[str, int]) -> None:
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["5557", ":5557", "host:", "host:0", "host:65536", "host:p"])
def test_parse_bind_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_bind(text)
    assert str(info.value) == f"expected HOST:PORT such as {BIND_EXAMPLE}, got {text!r}"


def test_the_bind_example_uses_the_default_master_port() -> None:
    assert f"0.0.0.0:{defaults.MASTER_PORT}" == BIND_EXAMPLE


# -- finding stagegate.yaml -------------------------------------------------------------------


def test_find_config_file_prefers_the_rootdir(tmp_path: Path) -> None:
    root, here = tmp_path / "root", tmp_path / "here"
    root.mkdir()
    here.mkdir()
    assert find_config_file(root, here) is None
    (here / defaults.CONFIG_FILE).write_text("targets: {}\n")
    assert find_config_file(root, here) == here / defaults.CONFIG_FILE
    (root / defaults.CONFIG_FILE).write_text("targets: {}\n")
    assert find_config_file(root, here) == root / defaults.CONFIG_FILE


def test_a_folder_named_like_the_config_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / defaults.CONFIG_FILE).mkdir()
    assert find_config_file(tmp_path, tmp_path) is None


# -- RunOptions from a real config --------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_target_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's name from the environment would change every resolution below."""
    monkeypatch.delenv("STAGEGATE_TARGET", raising=False)


def options(pytester: pytest.Pytester, *args: str) -> RunOptions:
    return RunOptions.from_config(pytester.parseconfig(*args))


def test_inert_without_a_config_or_an_option(pytester: pytest.Pytester) -> None:
    resolved = options(pytester)
    assert resolved.active is False
    assert resolved.config_path is None
    assert (resolved.target, resolved.target_source) == (defaults.TARGET, "the default")
    assert resolved.files == ()
    assert resolved.load_log is None
    with pytest.raises(pytest.UsageError) as info:
        resolved.config_file()
    # where it looked (the rootdir is where pytest runs: no ini file), and a command that works
    assert str(info.value).startswith(
        f"pytest-stagegate: no {defaults.CONFIG_FILE} in {pytester.path} or any directory above"
    )
    assert str(info.value).endswith(f"or pass --stagegate-config PATH/TO/{defaults.CONFIG_FILE}.")


def test_a_config_file_at_the_rootdir_makes_it_active(pytester: pytest.Pytester) -> None:
    path = pytester.makefile(".yaml", stagegate="targets: {}\n")
    resolved = options(pytester)
    assert resolved.active is True
    assert (resolved.config_path, resolved.config_source) == (path, "found")
    assert resolved.config_origin == "found at the rootdir"
    assert resolved.config_file() == path


def test_a_config_file_above_the_rootdir_is_found_walking_up(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ini file: the rootdir is where pytest runs (tests/), the project's file is above."""
    path = pytester.makefile(".yaml", stagegate="targets: {}\n")
    tests = pytester.mkdir("tests")
    monkeypatch.chdir(tests)
    resolved = options(pytester)
    assert resolved.rootdir == tests
    assert (resolved.active, resolved.config_path) == (True, path)
    assert resolved.config_origin == f"found walking up from {tests}"


@pytest.mark.parametrize("listing", ["--help", "--markers", "--fixtures"])
def test_pytest_listings_stay_inert(pytester: pytest.Pytester, listing: str) -> None:
    pytester.makefile(".yaml", stagegate="targets: {}\n")
    assert options(pytester, listing, "--target", "x").active is False


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "x"],
        ["--gate"],
        ["--stagegate-config", "elsewhere.yaml"],
        ["--verdict", "v.json"],
        ["--verdict-junit", "j.xml"],
        ["--gate-baseline", "b.json"],
    ],
)
def test_any_stagegate_option_makes_it_active(pytester: pytest.Pytester, args: list[str]) -> None:
    assert options(pytester, *args).active is True


def test_target_precedence_option_env_ini_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert options(pytester).target_source == "the default"
    pytester.makeini("[pytest]\nstagegate_target = c\n")
    assert (options(pytester).target, options(pytester).target_source) == (
        "c",
        "ini stagegate_target",
    )
    monkeypatch.setenv("STAGEGATE_TARGET", "b")
    resolved = options(pytester)
    assert (resolved.target, resolved.target_source) == ("b", "env STAGEGATE_TARGET")
    resolved = options(pytester, "--target", "a")
    assert (resolved.target, resolved.target_source) == ("a", "--target")


def test_config_option_is_relative_to_where_pytest_runs(pytester: pytest.Pytester) -> None:
    resolved = options(pytester, "--stagegate-config", "conf/gate.yaml")
    assert resolved.config_source == "--stagegate-config"
    assert resolved.config_origin == "from --stagegate-config"
    assert resolved.config_path == Path.cwd() / "conf" / "gate.yaml"
    with pytest.raises(pytest.UsageError) as info:
        resolved.config_file()
    assert str(info.value) == (
        f"pytest-stagegate: --stagegate-config: no file at {Path.cwd() / 'conf' / 'gate.yaml'}"
    )
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "gate.yaml").write_text("targets: {}\n")
    assert resolved.config_file() == pytester.path / "conf" / "gate.yaml"


def test_config_ini_is_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nstagegate_config = ops/gate.yaml\n")
    resolved = options(pytester)
    assert resolved.active is True
    assert resolved.config_source == "ini stagegate_config"
    assert resolved.config_path == pytester.path / "ops" / "gate.yaml"
    with pytest.raises(pytest.UsageError, match="ini stagegate_config: no file at"):
        resolved.config_file()


def test_gate_options(pytester: pytest.Pytester) -> None:
    resolved = options(
        pytester,
        "--gate",
        "--gate-workers",
        "2",
        "--gate-remote-workers",
        "3",
        "--gate-master-bind",
        "0.0.0.0:6000",
        "--gate-baseline",
        "prod.json",
        "--gate-report",
        "out/report.html",
    )
    assert resolved.gate is True
    assert resolved.verdict_wanted is True
    assert (resolved.workers, resolved.remote_workers) == (2, 3)
    assert resolved.master_bind == ("0.0.0.0", 6000)
    assert resolved.baseline == Path("prod.json")
    assert resolved.html_report == Path("out/report.html")
    assert resolved.files == (
        ("json", Path(defaults.VERDICT_FILE)),
        ("junit", Path(defaults.JUNIT_FILE)),
    )
    assert resolved.load_log == Path(defaults.LOAD_LOG_FILE)
    assert resolved.controls is True


def test_verdict_paths_without_the_gate(pytester: pytest.Pytester) -> None:
    resolved = options(pytester, "--verdict", "out/v.json")
    assert resolved.gate is False
    assert resolved.files == (("json", Path("out/v.json")), ("junit", Path(defaults.JUNIT_FILE)))
    assert resolved.load_log == Path("out") / defaults.LOAD_LOG_FILE
    only_junit = options(pytester, "--verdict-junit", "j.xml")
    assert only_junit.files == (("json", Path(defaults.VERDICT_FILE)), ("junit", Path("j.xml")))


def test_without_a_verdict_there_are_no_files(pytester: pytest.Pytester) -> None:
    resolved = options(pytester, "--target", "x")
    assert resolved.verdict_wanted is False
    assert resolved.files == ()
    assert resolved.load_log is None


def test_collect_only_does_not_control_the_run(pytester: pytest.Pytester) -> None:
    resolved = options(pytester, "--gate", "--collect-only")
    assert resolved.collect_only is True
    assert resolved.controls is False
    assert resolved.is_worker is False


def test_options_are_frozen(pytester: pytest.Pytester) -> None:
    resolved = options(pytester)
    with pytest.raises(AttributeError):
        resolved.gate = True  # type: ignore[misc]


def test_a_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    with pytest.raises(pytest.UsageError, match="--gate-workers: expected a whole number"):
        pytester.parseconfig("--gate-workers", "many")


# -- the verdict files named by the raw arguments (removed before pytest parses them) ----------

V, J, L = defaults.VERDICT_FILE, defaults.JUNIT_FILE, defaults.LOAD_LOG_FILE


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ()),
        (["-x", "tests"], ()),
        (["--gate"], (V, J, L)),
        (["--gate", "--no-such-option", "--gate-workers=x"], (V, J, L)),
        (["--verdict", "out/v.json"], ("out/v.json", J, f"out/{L}")),
        (["--verdict=out/v.json", "--verdict-junit=j.xml"], ("out/v.json", "j.xml", f"out/{L}")),
        (["--verdict-junit", "j.xml"], (V, "j.xml", L)),
        (["--verdict", "a.json", "--verdict", "b.json"], ("b.json", J, L)),
        (["--gate", "--verdict-junit", "--basetemp=x"], (V, J, L)),  # no value: the default
        (["--gate", "--help"], ()),
        (["--gate", "--collect-only"], ()),
        (["--", "--gate"], ()),
    ],
)
def test_verdict_files_in_args(args: list[str], expected: tuple[str, ...]) -> None:
    assert verdict_files_in_args(args) == tuple(Path(p) for p in expected)


def test_the_signing_key_is_read_once_and_never_shown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", "opt-key-5150")
    resolved = options(pytester, "--target", "x")
    assert resolved.signing_key == b"opt-key-5150"
    assert "opt-key-5150" not in repr(resolved) and "signing_key=" not in repr(resolved)
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", "")
    assert options(pytester, "--target", "x").signing_key is None


def test_the_signing_key_leaves_the_environment_when_the_plugin_loads(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken in pytest_addoption, before any conftest.py or other plugin's configure hook,
    whether a stagegate run follows or not (here none: no stagegate.yaml, nothing asked)."""
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", "opt-key-5150")
    config = pytester.parseconfig()
    assert "STAGEGATE_SIGNING_KEY" not in os.environ
    assert config.stash[SIGNING_KEY] == b"opt-key-5150"
    assert RunOptions.from_config(config).signing_key == b"opt-key-5150"
