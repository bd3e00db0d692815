"""``plugin.finish``: the verdict built from values, handed to the hook, written to its files,
and the exit status the run ends with."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Check
from pytest_stagegate.config import Target
from pytest_stagegate.plugin.finish import Finished, exit_status_for, finish_run
from pytest_stagegate.plugin.options import RunOptions
from pytest_stagegate.plugin.state import GateOutcome, RunSecrets
from pytest_stagegate.verdict import GateRecord, TestRecord, Verdict, load_verdict
from pytest_stagegate.verdict.files import check_signature

TARGET = Target(
    name="staging",
    base_url="https://ci:pw-secret@staging.invalid",
    secrets=frozenset({"pw-secret"}),
)
STARTED = datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)
OK = int(pytest.ExitCode.OK)
FAILED = int(pytest.ExitCode.TESTS_FAILED)
NO_TESTS = int(pytest.ExitCode.NO_TESTS_COLLECTED)
PASSED = (TestRecord("t.py::test_ok", "passed"),)


class Lines(list[tuple[str, dict[str, bool]]]):
    """A write_line that keeps what it was given."""

    def __call__(self, line: str, **markup: bool) -> None:
        self.append((line, markup))


def finish(
    tmp_path: Path,
    *,
    tests: Sequence[TestRecord] = PASSED,
    gate: GateOutcome | None = None,
    hook: Callable[[Verdict], None] | None = None,
    exit_status: int = OK,
    environ: Mapping[str, str] | None = None,
    lines: Lines | None = None,
    gated: bool = False,
    html_report: Path | None = None,
    metrics_path: Path | None = None,
) -> Finished:
    opts = RunOptions(
        target="staging",
        target_source="--target",
        config_path=tmp_path / defaults.CONFIG_FILE,
        config_source="found",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        verdict_path=tmp_path / "out" / defaults.VERDICT_FILE,
        junit_path=tmp_path / "out" / defaults.JUNIT_FILE,
        verdict_wanted=True,
    )
    seen: list[Verdict] = []

    def verdict_hook(verdict: Verdict) -> None:
        seen.append(verdict)
        if hook is not None:
            hook(verdict)

    finished = finish_run(
        dataclasses.replace(opts, gate=gated, html_report=html_report, metrics_path=metrics_path),
        target=TARGET,
        tests=tests,
        gate=gate,
        problems=[],
        interrupted=False,
        started_at=STARTED,
        flaky_blocks=False,
        exit_status=exit_status,
        verdict_hook=verdict_hook,
        write_line=lines if lines is not None else Lines(),
        environ=environ or {},
    )
    assert seen == [finished.verdict]  # the hook saw the verdict that was written
    return finished


def test_a_passing_run_writes_both_files(tmp_path: Path) -> None:
    finished = finish(tmp_path)
    assert finished.verdict.state == "pass"
    assert finished.exit_status == OK
    written = load_verdict(tmp_path / "out" / defaults.VERDICT_FILE)
    assert written == finished.data
    assert written["target"] == {"name": "staging", "base_url": "https://***@staging.invalid"}
    assert written["started_at"].startswith("2025-01-15T10:00:00")
    assert written["gate"] is None
    junit = (tmp_path / "out" / defaults.JUNIT_FILE).read_text()
    assert "test_ok" in junit


def test_a_failing_verdict_fails_a_passing_pytest_run(tmp_path: Path) -> None:
    failed = (TestRecord("t.py::test_login", "failed", critical=True, message="boom"),)
    finished = finish(tmp_path, tests=failed)
    assert finished.verdict.state == "fail"
    assert finished.exit_status == FAILED


def test_the_hook_may_add_to_the_verdict(tmp_path: Path) -> None:
    finished = finish(tmp_path, hook=lambda verdict: verdict.add_reason("Notified #releases."))
    assert "Notified #releases." in finished.data["reasons"]
    assert "Notified #releases." in load_verdict(finished_path(tmp_path))["reasons"]


def finished_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / defaults.VERDICT_FILE


def test_a_failing_hook_is_a_problem_not_a_lost_verdict(tmp_path: Path) -> None:
    def hook(verdict: Verdict) -> None:
        raise RuntimeError("chat is down for pw-secret")

    finished = finish(tmp_path, hook=hook)
    assert finished.verdict.state == "error"
    assert finished.exit_status == FAILED
    (reason,) = [r for r in finished.data["reasons"] if "hook failed" in r]
    assert reason.startswith("A pytest_stagegate_verdict hook failed: RuntimeError: chat is down")
    assert "pw-secret" not in json.dumps(finished.data)


def test_a_gate_only_run_is_judged_by_its_verdict(tmp_path: Path) -> None:
    gate = GateOutcome(
        GateRecord(status="error", reason="the load could not start"),
        load_errors=("3 x HTTP 500 on GET /boom", "1 x timeout on GET /"),
    )
    finished = finish(tmp_path, tests=(), gate=gate, exit_status=NO_TESTS, gated=True)
    assert finished.data["gate"]["status"] == "error"
    assert (
        "Most frequent load errors: 3 x HTTP 500 on GET /boom; 1 x timeout on GET /."
        in finished.data["reasons"]
    )
    assert finished.exit_status == FAILED


def test_an_unwritable_file_is_said_and_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / defaults.JUNIT_FILE).mkdir()  # a folder where the file goes
    lines = Lines()
    finished = finish(tmp_path, lines=lines)
    assert finished.verdict.state == "pass"
    assert finished.exit_status == FAILED
    ((line, markup),) = lines
    assert line.startswith(f"stagegate: could not write {tmp_path / 'out' / defaults.JUNIT_FILE}")
    assert markup == {"red": True}
    assert finished_path(tmp_path).is_file()  # the other file is still written


def test_the_step_summary_of_a_gated_run(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    gate = GateOutcome(GateRecord(status="refused", reason="protected"))
    finish(tmp_path, gate=gate, environ={"GITHUB_STEP_SUMMARY": str(summary)}, gated=True)
    text = summary.read_text()
    assert text.startswith("earlier step\n## Stagegate verdict for staging: ")
    assert "### Load gate: refused" in text


def test_every_file_written_is_listed_for_the_summary(tmp_path: Path) -> None:
    """The verdict's files, Locust's HTML report (--gate-report) when the run wrote it, and the
    step summary it appended to: the summary lists them all."""
    summary, report = tmp_path / "summary.md", tmp_path / "report.html"
    report.write_text("<html></html>")  # as the load process writes it
    gate = GateOutcome(GateRecord(status="completed"))
    environ = {"GITHUB_STEP_SUMMARY": str(summary)}
    finished = finish(tmp_path, gate=gate, environ=environ, gated=True, html_report=report)
    out = tmp_path / "out"
    assert finished.written == (
        ("json", str(out / defaults.VERDICT_FILE)),
        ("junit", str(out / defaults.JUNIT_FILE)),
        ("html report", str(report)),
        ("step summary", f"{summary} (appended)"),
    )
    missing = finish(tmp_path, gate=gate, gated=True, html_report=tmp_path / "none.html")
    assert [label for label, _ in missing.written] == ["json", "junit"]  # nothing claimed


def test_no_step_summary_without_the_gate(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    finish(tmp_path, environ={"GITHUB_STEP_SUMMARY": str(summary)})
    assert not summary.exists()


def test_a_step_summary_that_cannot_be_written_is_said(tmp_path: Path) -> None:
    lines = Lines()
    gate = GateOutcome(GateRecord(status="refused", reason="protected"))
    environ = {"GITHUB_STEP_SUMMARY": str(tmp_path)}  # a folder
    finished = finish(tmp_path, gate=gate, environ=environ, lines=lines, gated=True)
    ((line, _),) = lines
    assert line.startswith("stagegate: could not append to $GITHUB_STEP_SUMMARY: ")
    assert finished.exit_status == FAILED  # by the refused gate, not by the summary


@pytest.mark.parametrize(
    ("status", "promote", "gate", "expected"),
    [
        (OK, True, False, OK),
        (OK, False, False, FAILED),
        (FAILED, True, False, FAILED),  # pytest's failure stays
        (int(pytest.ExitCode.INTERRUPTED), False, True, int(pytest.ExitCode.INTERRUPTED)),
        (NO_TESTS, True, True, OK),  # a gate-only run
        (NO_TESTS, False, True, FAILED),
        (NO_TESTS, True, False, NO_TESTS),  # without the gate, pytest's code stays
        (int(pytest.ExitCode.USAGE_ERROR), True, True, int(pytest.ExitCode.USAGE_ERROR)),
    ],
)
def test_exit_status(status: int, promote: bool, gate: bool, expected: int) -> None:
    assert exit_status_for(status, promote, gate) == expected


# -- issue 10: signing, a replaced target -----------------------------------------------------


def finish_with(
    tmp_path: Path, *, key: bytes | None = None, configured: Target | None = None
) -> Finished:
    opts = RunOptions(
        target="staging",
        target_source="--target",
        config_path=tmp_path / defaults.CONFIG_FILE,
        config_source="found",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        verdict_path=tmp_path / "out" / defaults.VERDICT_FILE,
        junit_path=tmp_path / "out" / defaults.JUNIT_FILE,
        verdict_wanted=True,
        signing_key=key,
    )
    return finish_run(
        opts,
        target=TARGET,
        tests=PASSED,
        gate=None,
        problems=[],
        interrupted=False,
        started_at=STARTED,
        flaky_blocks=False,
        exit_status=OK,
        verdict_hook=lambda verdict: None,
        write_line=Lines(),
        environ={},
        configured_target=configured,
    )


def test_with_a_signing_key_the_written_verdict_is_signed(tmp_path: Path) -> None:
    key = b"finish-key-0042"
    finished = finish_with(tmp_path, key=key)
    written = load_verdict(finished_path(tmp_path))
    assert written == finished.data
    assert written["signature"]["alg"] == "HMAC-SHA256"
    assert check_signature(written, key) is None
    assert check_signature(written, b"other") is not None
    text = (
        finished_path(tmp_path).read_text() + (tmp_path / "out" / defaults.JUNIT_FILE).read_text()
    )
    assert "finish-key-0042" not in text
    assert "finish-key" not in repr(dataclasses.replace(RunOptions(
        target="t", target_source="x", config_path=None, config_source="found",
        rootdir=tmp_path, invocation_dir=tmp_path), signing_key=key))  # fmt: skip


def test_without_a_key_there_is_no_signature(tmp_path: Path) -> None:
    assert "signature" not in finish_with(tmp_path).data


def test_a_replaced_target_is_recorded_and_named_in_the_reasons(tmp_path: Path) -> None:
    configured = dataclasses.replace(TARGET, base_url="https://user:pw@staging.example.com")
    local = dataclasses.replace(TARGET, base_url="http://127.0.0.1:8000")
    finished = finish_run(
        dataclasses.replace(
            RunOptions(
                target="staging",
                target_source="--target",
                config_path=None,
                config_source="found",
                rootdir=tmp_path,
                invocation_dir=tmp_path,
            ),
            verdict_wanted=True,
            verdict_path=tmp_path / "v.json",
            junit_path=tmp_path / "j.xml",
        ),
        target=local,
        tests=PASSED,
        gate=None,
        problems=[],
        interrupted=False,
        started_at=STARTED,
        flaky_blocks=False,
        exit_status=OK,
        verdict_hook=lambda verdict: None,
        write_line=Lines(),
        environ={},
        configured_target=configured,
    )
    target = load_verdict(tmp_path / "v.json")["target"]
    assert target == {
        "name": "staging",
        "base_url": "http://127.0.0.1:8000",
        "replaced": True,
        "configured_base_url": "https://***@staging.example.com",
    }
    assert (
        "A pytest_stagegate_configure_target hook replaced the target 'staging': measured at "
        "http://127.0.0.1:8000, not at the configured https://***@staging.example.com; "
        "`stagegate verify` refuses this verdict for a named target unless "
        "--allow-replaced-target."
    ) in finished.data["reasons"]
    assert "pw" not in json.dumps(target)


def test_the_configured_targets_secrets_and_the_key_are_masked_in_every_file(
    tmp_path: Path,
) -> None:
    """A hook replaced the target with one without the configured target's token: a verdict
    hook's message with that token or the signing key is masked in the verdict, the JUnit
    file and the step summary, by the run's secrets."""
    key = b"signing-key-never-shown-77"
    configured = dataclasses.replace(TARGET, secrets=frozenset({"configured-token-0001"}))
    summary = tmp_path / "summary.md"

    def verdict_hook(verdict: Verdict) -> None:
        verdict.add_reason("a reason with configured-token-0001")
        raise RuntimeError("could not notify with configured-token-0001 or " + key.decode())

    opts = RunOptions(
        target="staging",
        target_source="--target",
        config_path=None,
        config_source="found",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        gate=True,
        verdict_path=tmp_path / "v.json",
        junit_path=tmp_path / "j.xml",
        verdict_wanted=True,
        signing_key=key,
    )
    finished = finish_run(
        opts,
        target=TARGET,
        tests=PASSED,
        gate=None,
        problems=[],
        interrupted=False,
        started_at=STARTED,
        flaky_blocks=False,
        exit_status=OK,
        verdict_hook=verdict_hook,
        write_line=Lines(),
        environ={"GITHUB_STEP_SUMMARY": str(summary)},
        configured_target=configured,
        secrets=RunSecrets.of(TARGET, configured, key),
    )
    written = load_verdict(tmp_path / "v.json")
    assert (
        "A pytest_stagegate_verdict hook failed: RuntimeError: could not notify with *** or ***"
        in (json.dumps(written))
    )
    assert "A reason with ***." in written["reasons"]
    assert check_signature(written, key) is None  # signed as written, masks and all
    texts = [(tmp_path / name).read_text() for name in ("v.json", "j.xml", "summary.md")]
    assert "could not notify with ***" in texts[2]
    for text in [*texts, json.dumps(finished.data)]:
        assert "configured-token" not in text and "signing-key" not in text


FAILING_CHECK = Check(
    "total", "p95", 300, 412.0, 600, "fail", "P95 of total was 412 ms, pw-secret."
)


def test_annotations_on_github_point_at_the_budget_from_the_workspace(tmp_path: Path) -> None:
    """Under GITHUB_ACTIONS=true a gated run prints one workflow command per failed budget,
    its file relative to GITHUB_WORKSPACE (the rootdir is a folder of it here); the verdict
    keeps the file relative to the rootdir."""
    check = dataclasses.replace(FAILING_CHECK, file=str(tmp_path / "stagegate.yaml"), line=5)
    gate = GateOutcome(GateRecord(status="completed", checks=[check]))
    lines = Lines()
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path.parent)}
    finished = finish(tmp_path, gate=gate, environ=environ, lines=lines, gated=True)
    assert finished.data["gate"]["checks"][0]["source"] == {"file": "stagegate.yaml", "line": 5}
    commands = [line for line, _ in lines]
    assert len(commands) == 2 and all(c.startswith("::error ") for c in commands)
    assert commands[1] == (
        f"::error file={tmp_path.name}/stagegate.yaml,line=5,"
        "title=stagegate budget failed%3A p95 of total::P95 of total was 412 ms, ***."
    )


def test_no_annotations_off_github_or_without_the_gate(tmp_path: Path) -> None:
    gate = GateOutcome(GateRecord(status="completed", checks=[FAILING_CHECK]))
    for environ, gated in [({}, True), ({"GITHUB_ACTIONS": "false"}, True)]:
        lines = Lines()
        finish(tmp_path, gate=gate, environ=environ, lines=lines, gated=gated)
        assert lines == []
    lines = Lines()
    failing = (TestRecord("t.py::test_x", "failed", critical=True),)
    finish(tmp_path, tests=failing, environ={"GITHUB_ACTIONS": "true"}, lines=lines)
    assert lines == []


def test_the_metrics_file_of_a_gated_run(tmp_path: Path) -> None:
    metrics = tmp_path / "out" / "stagegate-metrics.txt"
    gate = GateOutcome(GateRecord(status="completed", checks=[FAILING_CHECK]))
    finished = finish(tmp_path, gate=gate, gated=True, metrics_path=metrics)
    text = metrics.read_text()
    assert 'stagegate_verdict{target="staging",state="fail"} 1' in text
    assert text.endswith("# EOF\n") and "pw-secret" not in text
    assert ("metrics", str(metrics)) in finished.written
    lines = Lines()
    held = dataclasses.replace(FAILING_CHECK, observed=200.0, outcome="pass", message="Held.")
    passing = GateOutcome(GateRecord(status="completed", checks=[held]))
    broken = finish(tmp_path, gate=passing, gated=True, metrics_path=tmp_path, lines=lines)
    assert broken.verdict.state == "pass"
    ((line, markup),) = lines  # a folder: said in red, and the run fails
    assert line.startswith(f"stagegate: could not write {tmp_path}") and markup == {"red": True}
    assert broken.exit_status == FAILED
