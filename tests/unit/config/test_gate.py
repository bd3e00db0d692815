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


def test_every_written_budget_knows_its_file_and_the_line_of_its_metric(tmp_path: Path) -> None:
    """What annotations point at: the line of ``p95: 300ms`` itself, a target's override at
    its own line, a stage budget at its line; the default error budgets none."""
    settings = load(
        tmp_path,
        """\
        budgets:
          total:
            p95: 300ms
            error_rate: 2%
          "GET /a": {p99: 1s}
        targets:
          prod:
            budgets:
              total:
                p95: 250ms
        """,
    )
    path = str(tmp_path / defaults.CONFIG_FILE)
    lines = (tmp_path / defaults.CONFIG_FILE).read_text().splitlines()
    staging = {(b.endpoint, b.metric): b for b in settings["staging"].budgets}
    prod = {(b.endpoint, b.metric): b for b in settings["prod"].budgets}
    for budget, words in [
        (staging["total", "p95"], "p95: 300ms"),
        (staging["total", "error_rate"], "error_rate: 2%"),
        (staging["GET /a", "p99"], '"GET /a": {p99: 1s}'),
        (prod["total", "p95"], "p95: 250ms"),
        (prod["total", "error_rate"], "error_rate: 2%"),
    ]:
        assert budget.file == path and budget.line is not None
        assert lines[budget.line - 1].strip() == words
        assert budget.source == f"{defaults.CONFIG_FILE}:{budget.line}"


def test_a_stage_budget_knows_its_line(tmp_path: Path) -> None:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(
        textwrap.dedent(
            """\
            targets:
              staging: {base_url: "http://127.0.0.1:9"}
            gate:
              load:
                requests: ["GET /b"]
                stages:
                  - {duration: 5s, rate: 1/s}
                  - duration: 5s
                    rate: 2/s
                    budgets:
                      "GET /b":
                        p95: 1s
            """
        ),
        encoding="utf-8",
    )
    (budget,) = load_config(path).gate_settings("staging").load.stages[1].budgets
    lines = path.read_text().splitlines()
    assert budget.line is not None and lines[budget.line - 1].strip() == "p95: 1s"


@pytest.mark.parametrize(
    ("gate", "key", "word"),
    [
        ('    otel: "true"\n', "gate.load.otel", "true"),
        ("    abort: {enabled: 'false'}\n", "gate.load.abort.enabled", "false"),
        ('flaky_blocks: "True"\n', "gate.flaky_blocks", "true"),
        ('run_after_critical_failure: "no"\n', "gate.run_after_critical_failure", "false"),
    ],
)
def test_a_quoted_boolean_says_to_write_it_without_quotes(
    tmp_path: Path, gate: str, key: str, word: str
) -> None:
    """Every boolean key shares Doc.boolean: a quoted "true" is a string, and the message says
    so and how to write it (not just ``expected true or false, got 'true'``)."""
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(BASE + (gate if gate.startswith("  ") else "  " + gate), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path).gate_settings("staging")
    message = str(info.value)
    assert f"{key}: expected true or false" in message
    assert f"a quoted string: write {word} without quotes" in message
