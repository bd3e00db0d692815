"""defaults.py is the one home of every default: no module of the core spells one out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_stagegate import config, defaults

PACKAGE = Path(defaults.__file__).parent
# The core's modules (the load engine and the pytest glue have their own tests).
CORE = sorted(
    p
    for folder in (PACKAGE, PACKAGE / "config", PACKAGE / "verdict", PACKAGE / "target")
    for p in folder.glob("*.py")
    if p.name not in ("defaults.py", "cli.py")
)
NAMES = (defaults.CONFIG_FILE, defaults.VERDICT_FILE, defaults.JUNIT_FILE, defaults.LOAD_LOG_FILE)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of code outside docstrings and comments (a docstring may name a file)."""
    lines: list[tuple[int, str]] = []
    in_doc = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        quotes = stripped.count('"""')
        if in_doc or stripped.startswith('"""'):
            in_doc = in_doc != (quotes % 2 == 1)
            continue
        lines.append((number, line.split("  #", 1)[0]))
    return lines


def test_the_core_is_found() -> None:
    assert {p.name for p in CORE} >= {"budgets.py", "loader.py", "model.py", "readiness.py"}


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_name_or_port_spelt_out(path: Path) -> None:
    for number, line in code_lines(path):
        for name in NAMES:
            assert f'"{name}"' not in line, f"{path.name}:{number} spells out {name}"
        assert not re.search(r"\b5557\b", line), f"{path.name}:{number} spells out port 5557"


def test_config_filename_is_an_alias() -> None:
    assert config.CONFIG_FILENAME is defaults.CONFIG_FILE


# Every module of the package, the load engine and the pytest glue included.
EVERY_MODULE = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "defaults.py")


def test_the_largest_body_is_16_mib_and_every_setting_takes_it() -> None:
    from pytest_stagegate.config import Target
    from pytest_stagegate.load.plan import LoadPlan

    assert defaults.MAX_BODY == 16 * 1024 * 1024
    assert Target("t", "http://x").max_body == defaults.MAX_BODY
    plan = LoadPlan(host="http://x", users=1, spawn_rate=1.0, duration=1.0)
    assert plan.max_body == defaults.MAX_BODY


def test_a_target_without_max_body_gets_the_default(tmp_path: Path) -> None:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text("targets:\n  local: {base_url: 'http://127.0.0.1:9'}\n", encoding="utf-8")
    assert config.load_config(path).resolve_target("local", {}).max_body == defaults.MAX_BODY


def test_the_default_error_budget_is_1_percent_everywhere() -> None:
    import inspect

    from pytest_stagegate import budgets

    assert defaults.ERROR_RATE == 0.01
    assert config.GateSettings().default_error_rate == defaults.ERROR_RATE
    rate = inspect.signature(budgets.default_error_budgets).parameters["rate"].default
    assert rate == defaults.ERROR_RATE
    assert not hasattr(budgets, "DEFAULT_ERROR_RATE")  # one home: no second name to drift


def test_the_signing_key_variable_is_named_once() -> None:
    from pytest_stagegate.plugin import options
    from pytest_stagegate.verdict import files

    assert defaults.SIGNING_KEY_ENV == "STAGEGATE_SIGNING_KEY"
    assert files.SIGNING_KEY_ENV is defaults.SIGNING_KEY_ENV
    assert options.SIGNING_KEY_ENV is defaults.SIGNING_KEY_ENV
    assert files.MAX_VERDICT_BYTES is defaults.MAX_VERDICT_BYTES


@pytest.mark.parametrize("path", EVERY_MODULE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_spells_the_signing_key_variable_or_16_mib(path: Path) -> None:
    for number, line in code_lines(path):
        where = f"{path.relative_to(PACKAGE)}:{number}"
        assert f'"{defaults.SIGNING_KEY_ENV}"' not in line, f"{where} spells the variable"
        assert "16 * 1024 * 1024" not in line, f"{where} spells 16 MiB (defaults.MAX_BODY?)"
