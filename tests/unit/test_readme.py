"""The README's Guarantees table: every promise names tests, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# `tests/e2e/test_gate.py::test_x`, or `::test_y` continuing the file named before it
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def guarantee_rows(readme: str) -> list[tuple[str, str]]:
    """(promise, proved by) of each row of the table under "## Guarantees"."""
    section = readme.split("\n## Guarantees", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("promise", "---"):
            rows.append((cells[0], cells[1]))
    return rows


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def test_every_guarantee_names_tests_that_exist() -> None:
    rows = guarantee_rows((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(rows) >= 10, "the Guarantees table was not found or lost rows"
    missing = []
    for promise, proof in rows:
        current: Path | None = None
        named = 0
        for file, function in _REFERENCE.findall(proof):
            if file:
                current = REPO / file
                named += 1
                if not current.is_file():
                    missing.append(f"{promise[:40]}...: no file {file}")
                    continue
            if function:
                if current is None or not current.is_file():
                    missing.append(f"{promise[:40]}...: ::{function} without a file before it")
                elif function not in functions_in(current):
                    missing.append(f"{promise[:40]}...: no {function} in {current.name}")
        if not named:
            missing.append(f"{promise[:40]}...: names no test file")
    assert not missing, "\n".join(missing)


def test_the_reference_reader_sees_files_and_functions() -> None:
    # the reader itself: a row with a missing function must be caught
    assert _REFERENCE.findall("`tests/a.py::test_x`, `::test_y`, `tests/b.py`") == [
        ("tests/a.py", "test_x"),
        ("", "test_y"),
        ("tests/b.py", ""),
    ]
