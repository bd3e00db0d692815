"""``plugin.records``: pytest's per-phase reports -> one ``TestRecord`` per test."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pytest_stagegate.config import Target
from pytest_stagegate.plugin.records import TestRecorder, skip_reason

TARGET = Target(name="local", base_url="http://127.0.0.1:1")
SECRET_TARGET = Target(
    name="local", base_url="http://127.0.0.1:1", secrets=frozenset({"hunter2-secret"})
)

Phase = Literal["setup", "call", "teardown"]


def report(
    when: Phase,
    outcome: str = "passed",
    *,
    nodeid: str = "t.py::test_x",
    longrepr: Any = None,
    duration: float = 0.25,
    **extra: Any,
) -> pytest.TestReport:
    made = pytest.TestReport(
        nodeid,
        ("t.py", 1, "test_x"),
        {},
        outcome,  # type: ignore[arg-type]  # "rerun" too, as pytest-rerunfailures reports
        longrepr,
        when,
        duration=duration,
    )
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def passing(nodeid: str = "t.py::test_x", **marks: Any) -> list[pytest.TestReport]:
    return [
        report("setup", nodeid=nodeid, stagegate=marks),
        report("call", nodeid=nodeid, stagegate=marks),
        report("teardown", nodeid=nodeid, stagegate=marks),
    ]


def record_of(*reports: pytest.TestReport, target: Target = TARGET) -> Any:
    recorder = TestRecorder()
    for r in reports:
        recorder.add(r, target.redact)
    (record,) = recorder.records()
    return record


def test_a_passing_test() -> None:
    record = record_of(*passing(critical=True, smoke=True))
    assert record.nodeid == "t.py::test_x"
    assert record.outcome == "passed"
    assert record.duration == 0.75  # the three phases
    assert (record.critical, record.smoke, record.flaky, record.reruns) == (True, True, False, 0)
    assert record.message == ""


def test_a_failing_call_keeps_the_error_line() -> None:
    longrepr = "def test_x():\n>       assert 1 == 2\nE       assert 1 == 2\n"
    record = record_of(
        report("setup"), report("call", "failed", longrepr=longrepr), report("teardown")
    )
    assert (record.outcome, record.message) == ("failed", "assert 1 == 2")


def test_a_failing_setup_is_an_error() -> None:
    record = record_of(report("setup", "failed", longrepr="E   fixture broke"), report("teardown"))
    assert (record.outcome, record.message) == ("error", "fixture broke")


def test_a_failing_teardown_turns_a_pass_into_an_error_but_keeps_a_failure() -> None:
    teardown = report("teardown", "failed", longrepr="E   cleanup failed")
    assert record_of(report("setup"), report("call"), teardown).outcome == "error"
    failed = report("call", "failed", longrepr="E   assert 0")
    record = record_of(report("setup"), failed, teardown)
    assert (record.outcome, record.message) == ("failed", "assert 0")


def test_a_skip_keeps_its_reason_without_the_prefix() -> None:
    skipped = report("setup", "skipped", longrepr=("t.py", 3, "Skipped: not today"))
    assert skip_reason(skipped) == "not today"
    record = record_of(skipped, report("teardown"))
    assert (record.outcome, record.message) == ("skipped", "not today")


def test_skip_reason_of_a_report_without_one() -> None:
    assert skip_reason(report("call")) == ""


def test_xfail_and_xpass() -> None:
    xfailed = report("call", "skipped", longrepr=("t.py", 3, "x"), wasxfail="known bug")
    assert record_of(report("setup"), xfailed, report("teardown")).outcome == "xfailed"
    xpassed = report("call", "passed", wasxfail="known bug")
    record = record_of(report("setup"), xpassed, report("teardown"))
    assert (record.outcome, record.message) == ("xpassed", "known bug")


def test_a_rerun_then_a_pass_is_flaky() -> None:
    rerun = report("call", "rerun", longrepr="E   first attempt")  # pytest-rerunfailures
    record = record_of(report("setup"), rerun, *passing())
    assert (record.outcome, record.flaky, record.reruns) == ("passed", True, 1)


def test_a_rerun_then_a_failure_is_not_flaky() -> None:
    rerun = report("call", "rerun", longrepr="E   first attempt")
    failed = report("call", "failed", longrepr="E   second attempt")
    record = record_of(report("setup"), rerun, report("setup"), failed, report("teardown"))
    assert (record.outcome, record.flaky, record.reruns) == ("failed", False, 1)


def test_flags_raised_by_any_phase_stay_raised() -> None:
    recorder = TestRecorder()
    recorder.add(
        report(
            "setup",
            "skipped",
            longrepr=("t.py", 1, "Skipped: stagegate: runs only on staging"),
            stagegate={"elsewhere_skip": True, "safety_skip": False},
        ),
        TARGET.redact,
    )
    recorder.add(report("teardown", stagegate={"elsewhere_skip": False}), TARGET.redact)
    for r in passing("t.py::test_y"):
        recorder.add(r, TARGET.redact)
    assert recorder.flagged("elsewhere_skip") == ["t.py::test_x"]
    assert recorder.flagged("safety_skip") == []


def test_the_call_phase_brings_the_request_summary() -> None:
    summary = {"count": 2.0, "failures": 0.0, "avg_ms": 1.5, "p50_ms": 1.0, "max_ms": 2.0}
    record = record_of(
        report("setup", stagegate={"requests": None}),
        report("call", stagegate={"requests": summary}),
        report("teardown", stagegate={"requests": None}),
    )
    assert record.requests == summary


def test_messages_are_redacted() -> None:
    failed = report("call", "failed", longrepr="E   token hunter2-secret refused")
    record = record_of(report("setup"), failed, target=SECRET_TARGET)
    assert "hunter2-secret" not in record.message
    assert "***" in record.message


def test_a_long_message_is_cut() -> None:
    failed = report("call", "failed", longrepr="E   " + "x" * 400)
    message = record_of(report("setup"), failed).message
    assert len(message) == 300 and message.endswith("...")


def test_records_keep_the_arrival_order() -> None:
    recorder = TestRecorder()
    for nodeid in ("b.py::test_2", "a.py::test_1"):
        for r in passing(nodeid):
            recorder.add(r, TARGET.redact)
    assert [r.nodeid for r in recorder.records()] == ["b.py::test_2", "a.py::test_1"]


def test_the_record_knows_where_the_test_is() -> None:
    """pytest's location (0-based line) becomes the test's file and 1-based line, for the
    annotations; a secret in the path is masked like the node id."""
    record = record_of(*passing())
    assert (record.file, record.line) == ("t.py", 2)
    made = report("call", "failed", nodeid="hunter2-secret/t.py::test_x", longrepr="boom")
    made.location = ("hunter2-secret/t.py", 41, "test_x")
    secret = record_of(made, target=SECRET_TARGET)
    assert (secret.file, secret.line) == ("***/t.py", 42)
    made.location = ("t.py", None, "test_x")  # pytest gives no line for some items
    assert record_of(made).line is None
