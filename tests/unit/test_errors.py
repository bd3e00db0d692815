"""``errors``: the exception tree and the one-paragraph messages it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_stagegate.errors import (
    ConfigError,
    LoadError,
    StagegateError,
    TargetNotReady,
    closest,
    did_you_mean,
)


def test_every_error_the_user_can_fix_is_a_stagegate_error() -> None:
    for cls in (ConfigError, TargetNotReady, LoadError):
        assert issubclass(cls, StagegateError)
    assert not issubclass(StagegateError, (ValueError, OSError))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "timeout must be positive"),
        ({"path": "stagegate.yaml"}, "stagegate.yaml: timeout must be positive"),
        ({"path": "stagegate.yaml", "line": 7}, "stagegate.yaml:7: timeout must be positive"),
        (
            {"path": Path("cfg/stagegate.yaml"), "line": 7, "key": "targets.staging.timeout"},
            "cfg/stagegate.yaml:7: targets.staging.timeout: timeout must be positive",
        ),
        ({"key": "gate.load.users"}, "gate.load.users: timeout must be positive"),
    ],
)
def test_config_error_names_file_line_and_key(kwargs: dict[str, object], message: str) -> None:
    error = ConfigError("timeout must be positive", **kwargs)  # type: ignore[arg-type]
    assert str(error) == message
    assert error.problem == "timeout must be positive"
    assert error.line == kwargs.get("line")
    assert error.key == kwargs.get("key")
    assert error.path == (Path(str(kwargs["path"])) if "path" in kwargs else None)


def test_closest_is_case_insensitive_and_keeps_the_candidates_spelling() -> None:
    assert closest("TimeOut", ["timeout", "ready", "vars"]) == "timeout"
    assert closest("base-url", ["base_url", "headers"]) == "base_url"
    assert closest("zzz", ["timeout", "ready"]) is None
    assert closest(42, ["timeout"]) is None  # any value, not only strings


def test_did_you_mean_is_a_clause_or_nothing() -> None:
    assert did_you_mean("timout", ["timeout", "ready"]) == "; did you mean 'timeout'?"
    assert did_you_mean("zzz", ["timeout", "ready"]) == ""
    assert did_you_mean("x", []) == ""
