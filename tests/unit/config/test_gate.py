"""``config._gate``: the error budget's default (``gate.default_error_rate``), per target, and
its explicit waiver (``error_rate: off``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget, Waiver
from pytest_stagegate.config import ConfigError, GateSettings, load_config

BASE = """\
targets:
  staging: {base_url: "http://127.0.0.1:9"}
  prod: {base_url: "http://127.0.0.1:9"}
gate:
  load:
    requests: ["GET /a", "GET /b"]
"""


def load(tmp_path: Path, gate: str) -> dict[str, GateSettings]:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(BASE + textwrap.indent(textwrap.dedent(gate), "  "), encoding="utf-8")
    config = load_config(path)
    return {name: config.gate_settings(name) for name in ("staging", "prod")}


def test_the_default_error_rate_is_1_percent(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert defaults.ERROR_RATE == 0.01
    assert all(s.default_error_rate == 0.01 and s.waivers == () for s in settings.values())


def test_gate_and_a_target_change_the_default(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """\
        default_error_rate: 2%
        targets:
          prod: {default_error_rate: 0.5%}
        """,
    )
    assert settings["staging"].default_error_rate == 0.02
    assert settings["prod"].default_error_rate == 0.005


@pytest.mark.parametrize("off", ["off", "'off'", "OFF", "false"])
def test_error_rate_off_waives_and_remembers_where(tmp_path: Path, off: str) -> None:
    settings = load(
        tmp_path,
        f"""\
        budgets:
          "GET /a": {{p95: 300ms, error_rate: {off}}}
        """,
    )
    staging = settings["staging"]
    name = defaults.CONFIG_FILE
    assert staging.waivers == (Waiver("GET /a", source=f"{name}:8"),)
    assert staging.budgets == (Budget("GET /a", "p95", 300.0, f"{name}:8"),)


def test_a_target_can_waive_or_restore_an_error_budget(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """\
        budgets:
          "GET /a": {error_rate: off}
        targets:
          prod:
            budgets:
              "GET /a": {error_rate: 5%}
              "GET /b": {error_rate: off}
        """,
    )
    staging, prod = settings["staging"], settings["prod"]
    assert [w.endpoint for w in staging.waivers] == ["GET /a"]
    assert [w.endpoint for w in prod.waivers] == ["GET /b"]
    assert [(b.endpoint, b.limit) for b in prod.budgets] == [("GET /a", 0.05)]


@pytest.mark.parametrize(
    ("gate", "words"),
    [
        ("default_error_rate: off\n", "gate.default_error_rate"),
        ("default_error_rate: 2\n", "ambiguous"),
        ('budgets: {"GET /a": {error_rate: on}}\n', "or off to waive this error budget"),
        ('budgets: {"GET /a": {p95: off}}\n', "GET /a"),
        ('budgets: {"GET /c": {error_rate: off}}\n', "no request is named 'GET /c'"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path: Path, gate: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, gate)
    message = str(info.value)
    assert words in message and defaults.CONFIG_FILE in message
