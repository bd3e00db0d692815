"""Turning pytest's per-phase reports into one record per test, for the verdict.

Works the same on reports made here and reports replayed from xdist workers: it reads only
report fields that xdist serialises, plus the ``stagegate`` attribute our makereport wrapper
adds on the process that ran the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..verdict import TestRecord


@dataclass
class _Partial:
    outcome: str = "passed"
    duration: float = 0.0
    message: str = ""
    reruns: int = 0
    marks: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, float] | None = None
    name: str = ""  # the node id as shown: a parametrize id may carry a secret
    file: str = ""  # pytest's location: the file relative to the rootdir
    line: int | None = None  # 1-based; pytest's location counts from 0


class TestRecorder:
    """Collects reports in arrival order; ``records()`` gives one TestRecord per test."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self._tests: dict[str, _Partial] = {}

    def add(self, report: pytest.TestReport, redact: Callable[[str], str]) -> None:
        """Take one phase's report; ``redact`` masks the run's secrets in names and messages."""
        partial = self._tests.get(report.nodeid)
        if partial is None:
            partial = self._tests[report.nodeid] = _Partial(name=redact(report.nodeid))
            partial.file, partial.line = _location(report, redact)
        marks = getattr(report, "stagegate", None) or {}
        if marks:
            # a flag raised by any phase stays raised (the skip is in setup, not teardown)
            partial.marks.update({k: v for k, v in marks.items() if k != "requests" and v})
            if marks.get("requests"):
                partial.requests = marks["requests"]
        partial.duration += report.duration
        outcome_name: str = report.outcome  # pytest-rerunfailures adds "rerun" to pytest's three
        if outcome_name == "rerun":  # this attempt failed, another follows
            partial.reruns += 1
            partial.outcome = "passed"
            return
        if report.when == "setup":
            partial.outcome = "passed"
            partial.message = ""
        outcome, message = _classify(report, redact)
        if outcome is None:
            return
        if report.when == "teardown":
            if outcome in ("failed", "error") and partial.outcome not in ("failed", "error"):
                partial.outcome, partial.message = "error", redact(message)
            return
        partial.outcome, partial.message = outcome, redact(message)

    def flagged(self, flag: str) -> list[str]:
        """Node ids of the tests whose reports raised ``flag`` (e.g. "elsewhere_skip")."""
        return [nodeid for nodeid, p in self._tests.items() if p.marks.get(flag)]

    def records(self) -> list[TestRecord]:
        result = []
        for p in self._tests.values():
            result.append(
                TestRecord(
                    nodeid=p.name,
                    outcome=p.outcome,  # type: ignore[arg-type]
                    duration=round(p.duration, 6),
                    critical=bool(p.marks.get("critical")),
                    smoke=bool(p.marks.get("smoke")),
                    flaky=p.outcome == "passed" and p.reruns > 0,
                    reruns=p.reruns,
                    message=p.message,
                    safety_skip=bool(p.marks.get("safety_skip")),
                    requests=p.requests,
                    file=p.file,
                    line=p.line,
                )
            )
        return result


def _location(report: pytest.TestReport, redact: Callable[[str], str]) -> tuple[str, int | None]:
    """The test's file (relative to the rootdir, redacted like its node id) and 1-based line,
    from the report's ``location`` (xdist carries it); ("", None) when pytest has none."""
    location = getattr(report, "location", None)
    if not location or not location[0]:
        return "", None
    lineno = location[1]
    return redact(str(location[0])), lineno + 1 if isinstance(lineno, int) else None


def _classify(report: pytest.TestReport, redact: Callable[[str], str]) -> tuple[str | None, str]:
    """(outcome, one-line message) of one phase; outcome None when the phase says nothing new."""
    wasxfail = getattr(report, "wasxfail", None)
    if report.skipped:
        if wasxfail is not None:
            return "xfailed", str(wasxfail)
        return "skipped", skip_reason(report)
    if report.failed:
        message = _failure_line(report, redact)
        if report.when == "call":
            return "failed", message
        return "error", message
    if report.when == "call":
        if wasxfail is not None:
            return "xpassed", str(wasxfail)
        return "passed", ""
    return None, ""


def skip_reason(report: pytest.TestReport) -> str:
    """The reason a skipped report gives, without pytest's "Skipped: " prefix."""
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return ""


def _failure_line(report: pytest.TestReport, redact: Callable[[str], str]) -> str:
    """The first line that says what failed, redacted before it is cut to 300 characters (a
    secret cut first could leave a part too short to be recognised)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = str(crash.message)
    else:
        text = str(report.longrepr or "")
    text = redact(text)  # whole: a multi-line secret spans lines
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if crash is not None or not errors:
        line = lines[0] if lines else "failed"
    else:
        line = errors[0]
    return line if len(line) <= 300 else line[:297] + "..."
