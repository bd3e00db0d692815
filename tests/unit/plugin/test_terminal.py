"""``plugin.terminal``: the stagegate section of pytest's summary and the load's progress line,
written to a reporter that keeps what it is given. The gate's tables are the ones
``stagegate report`` prints (one renderer, ``verdict.report.gate_table_lines``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_stagegate.load.process import Progress
from pytest_stagegate.plugin.terminal import (
    ProgressLine,
    progress_text,
    write_final_line,
    write_summary,
)
from pytest_stagegate.verdict import TestRecord
from pytest_stagegate.verdict.report import gate_table_lines, render
from tests.verdict_samples import SAMPLES


class Reporter:
    """What pytest's TerminalReporter offers the summary: write_sep, write_line, write."""

    def __init__(self, tty: bool = False) -> None:
        self.tty = tty
        self.lines: list[tuple[str, dict[str, bool]]] = []
        self.raw: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write_sep(self, sep: str, title: str, **markup: bool) -> None:
        self.lines.append((f"{sep * 3} {title} {sep * 3}", markup))

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append((line, markup))

    def write(self, text: str) -> None:
        self.raw.append(text)

    @property
    def text(self) -> list[str]:
        return [line for line, _ in self.lines]


def summary(**overrides: Any) -> Reporter:
    tr = Reporter()
    values: dict[str, Any] = {
        "target_name": "staging",
        "tests": [],
        "elsewhere": [],
        "verdict": None,
        "gate": None,
        "load_errors": (),
        "files": (),
    }
    values.update(overrides)
    write_summary(tr, **values)
    return tr


def test_nothing_to_say_writes_nothing() -> None:
    assert summary(tests=[TestRecord("t.py::test_ok", "passed")]).lines == []


def test_safety_skips_are_loud_and_listed() -> None:
    tests = [
        TestRecord("t.py::test_write", "skipped", safety_skip=True),
        TestRecord("t.py::test_read", "passed"),
    ]
    tr = summary(target_name="production", tests=tests, elsewhere=["t.py::test_qa"])
    assert tr.lines == [
        ("=== stagegate ===", {}),
        (
            "1 destructive test(s) skipped for safety: target 'production' is protected",
            {"yellow": True, "bold": True},
        ),
        ("  SKIPPED (protected target) t.py::test_write", {}),
        ("1 test(s) skipped: marked for other targets than 'production'", {}),
    ]


def test_the_verdict_its_reasons_and_files() -> None:
    verdict = SAMPLES["pass"]()
    files = [("json", Path("v.json")), ("junit", Path("j.xml"))]
    tr = summary(verdict=verdict, files=files)
    assert tr.lines[1] == ("verdict: PASS (promote: yes)", {"green": True, "bold": True})
    assert tr.text[2:] == [
        *(f"  - {reason}" for reason in verdict.reasons),
        "  json: v.json",
        "  junit: j.xml",
    ]
    failing = summary(verdict=SAMPLES["fail"]())
    assert failing.lines[1] == ("verdict: FAIL (promote: no)", {"red": True, "bold": True})
    error = summary(verdict=SAMPLES["error"]())
    assert error.lines[1] == ("verdict: ERROR (promote: no)", {"red": True, "bold": True})


def test_the_last_line_is_the_verdict_red_unless_it_passed() -> None:
    expected = {
        "pass": ("=== stagegate verdict: PASS (promote) ===", {"green": True, "bold": True}),
        "fail": ("=== stagegate verdict: FAIL (do not promote) ===", {"red": True, "bold": True}),
        "error": ("=== stagegate verdict: ERROR (do not promote) ===", {"red": True, "bold": True}),
        "inconclusive": (
            "=== stagegate verdict: INCONCLUSIVE (do not promote) ===",
            {"red": True, "bold": True},
        ),
    }
    for state, line in expected.items():
        tr = Reporter()
        write_final_line(tr, SAMPLES[state]())
        assert tr.lines == [line], state


def test_the_gate_section_shows_the_reports_tables() -> None:
    data = SAMPLES["fail"]().to_dict()
    gate = data["gate"]
    tr = summary(gate=gate, load_errors=["2 x HTTP 500 on GET /boom"])
    assert tr.text[1] == "load gate: ran to the end; 20 users, 30 s, warm-up 5 s, 2 workers"
    table = [(f"  {line}".rstrip(), failed) for line, failed in gate_table_lines(gate)]
    shown = [(line, bool(markup.get("red"))) for line, markup in tr.lines[2 : 2 + len(table)]]
    assert shown == table
    assert tr.text[2 + len(table) :] == [
        "  load error: 2 x HTTP 500 on GET /boom",
        f"  warning: {gate['generator']['note']}",
    ]
    # exactly one row is red: the failed check, as the verdict orders the checks
    red = [line for line, markup in tr.lines if markup.get("red")]
    assert [line.split()[:4] for line in red] == [["p95", "of", "GET", "/api/products"]]
    assert red[0].endswith("FAIL")
    # and `stagegate report` prints the same tables, line for line
    report = render(data, "text").splitlines()
    rows = [line.strip() for line, _ in table if line.strip()]
    assert all(row in (r.strip() for r in report) for row in rows)


def test_a_gate_that_did_not_run_says_why() -> None:
    gate = SAMPLES["error"]().to_dict()["gate"]
    assert summary(gate=gate).text == [
        "=== stagegate ===",
        "load gate: did not run",  # a gate that never started has no profile to show
        "  The load gate was requested but did not run.",
    ]


def test_a_refused_gate_has_no_tables() -> None:
    gate = {
        "status": "refused",
        "reason": "target 'production' is protected",
        "profile": {"users": 2, "duration_s": 2.0, "warmup_s": 0.0, "workers": 0},
        "endpoints": [],
        "checks": [],
        "generator": {},
    }
    assert summary(gate=gate).text == [
        "=== stagegate ===",
        "load gate: refused; 2 users, 2 s, warm-up 0 s",  # as the header writes lengths
        "  Target 'production' is protected.",
    ]


PROGRESS = Progress(
    elapsed=12.4,
    duration=30.0,
    users=10,
    rps=1234.5,
    p95_ms=12.0,
    requests=14000,
    failures=3,
    warmup=True,
)


def test_progress_text() -> None:
    assert progress_text(PROGRESS) == (
        "stagegate load:   12/30 s (warm-up) | 10 users | 1,234.5 req/s | p95 12.0 ms | "
        "3 of 14,000 failed so far (warm-up included)"
    )


def test_progress_in_a_ci_log_is_a_line() -> None:
    tr = Reporter(tty=False)
    line = ProgressLine(tr)
    line.update(PROGRESS)
    line.done()
    assert tr.text == ["", progress_text(PROGRESS)]
    assert tr.raw == []


def test_progress_on_a_terminal_is_redrawn_in_place() -> None:
    tr = Reporter(tty=True)
    line = ProgressLine(tr)
    line.update(PROGRESS)
    assert tr.text == [""]
    assert tr.raw == ["\r" + progress_text(PROGRESS)]
    line.done()
    assert tr.text == ["", ""]  # the line is ended once the load is over


def test_no_progress_without_a_terminal() -> None:
    line = ProgressLine(None)
    line.update(PROGRESS)
    line.done()  # nothing to write to, and no error


def test_done_without_progress_writes_nothing() -> None:
    tr = Reporter(tty=True)
    ProgressLine(tr).done()
    assert tr.lines == [] and tr.raw == []


def test_the_load_model_stages_and_chart_come_before_the_gate_tables() -> None:
    """One renderer: the lines ``stagegate report`` shows (verdict.report.load_model_lines)."""
    from pytest_stagegate.verdict.report import load_model_lines

    verdict = SAMPLES["open"]()
    gate = verdict.to_dict()["gate"]
    text = summary(gate=gate, verdict=verdict).text
    model = load_model_lines(gate)
    start = text.index(f"  {model[0]}")
    assert text[start : start + len(model)] == [f"  {line}".rstrip() for line in model]
    assert text[start + len(model)] == ""  # then a blank line, then the gate tables
    assert text[start + len(model) + 1] == f"  {gate_table_lines(gate)[0][0]}"
    assert any("p95 latency over time" in line for line in text)
    assert not load_model_lines(SAMPLES["pass"]().to_dict()["gate"])  # no load section


def test_the_plugins_own_stop_prints_no_exception_class() -> None:
    """pytest ends a run stopped by pytest.exit with "! <type>: <reason> !" (the exception's
    ``exconly``): for the plugin's own stop that reads as a phrase, not _pytest.outcomes.Exit."""
    import pytest

    from pytest_stagegate.plugin.terminal import StopRun

    assert issubclass(StopRun, pytest.exit.Exception)  # pytest treats it as pytest.exit
    try:
        raise StopRun("Target 'local' runs the wrong build.", returncode=1)
    except StopRun:
        shown = pytest.ExceptionInfo.from_current().exconly()
    assert shown == "pytest-stagegate stopped the run: Target 'local' runs the wrong build."


def test_the_first_progress_line_waits_for_something_to_show() -> None:
    """With --gate-workers the first report can count requests but measure nothing yet: no
    "0.0 req/s | p95 0.00 ms" line; once a line was shown, a stall (0 req/s) is shown too."""
    import dataclasses

    empty = dataclasses.replace(PROGRESS, rps=0.0, p95_ms=0.0, requests=28, failures=0)
    tr = Reporter(tty=False)
    line = ProgressLine(tr)
    line.update(empty)
    assert tr.lines == [] and tr.raw == []
    line.update(PROGRESS)
    line._last = 0.0  # the next report is due (CI_EVERY elapsed), without waiting for it
    line.update(empty)
    line.done()
    assert tr.text == ["", progress_text(PROGRESS), progress_text(empty)]
