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
