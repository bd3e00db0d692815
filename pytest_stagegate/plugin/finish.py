"""The end of a run: decide the verdict, let hooks see it, write the files, set the exit code."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .._version import __version__
from ..verdict.commit import commit_info
from ..verdict.junit import write_junit
from ..verdict.model import Verdict, write_verdict

if TYPE_CHECKING:
    from .session import StagegateRun


def finish_run(run: StagegateRun, session: pytest.Session) -> None:
    verdict = Verdict(
        target_name=run.target.name,
        base_url=run.target.redact(run.target.base_url),
        commit=commit_info(os.environ, Path(run.config.rootpath)),
        started_at=run.started_at,
        finished_at=datetime.now(timezone.utc),
        tests=run.recorder.records(),
        gate=run.gate_record,
        problems=[(kind, msg) for kind, msg in run.problems],  # type: ignore[misc]
        interrupted=run.interrupted,
        flaky_blocks=run.gate_settings.flaky_blocks,
        gate_requested=run.gate_requested,
        plugin_version=__version__,
    )
    if run.load_errors:
        verdict.add_reason("Most frequent load errors: " + "; ".join(run.load_errors) + ".")
    try:
        run.config.hook.pytest_stagegate_verdict(config=run.config, verdict=verdict)
    except Exception as exc:  # a notifier that fails must not cost the verdict
        verdict.add_problem(
            "error",
            run.target.redact(
                f"A pytest_stagegate_verdict hook failed: {type(exc).__name__}: {exc}"
            ),
        )
    run.verdict = verdict
    _set_exit_status(session, verdict.promote, run.gate_requested)
    data = verdict.to_dict()
    for kind, path in run.files():
        try:
            if kind == "json":
                write_verdict(path, data)
            else:
                write_junit(path, data)
        except (OSError, ValueError) as exc:
            run.write_line(f"stagegate: could not write {path}: {exc}", red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path and run.gate_requested:
        from ..verdict.report import render

        try:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(render(data, "markdown") + "\n")
        except OSError as exc:
            run.write_line(f"stagegate: could not append to $GITHUB_STEP_SUMMARY: {exc}")


def _set_exit_status(session: pytest.Session, promote: bool, gate_requested: bool) -> None:
    """0 only when the verdict promotes; pytest's own codes otherwise stay."""
    status = session.exitstatus
    if status == pytest.ExitCode.OK and not promote:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif status == pytest.ExitCode.NO_TESTS_COLLECTED and gate_requested:
        # The contract's codes are 0, 1, 2 and 4: a gate-only run is judged by its verdict.
        session.exitstatus = pytest.ExitCode.OK if promote else pytest.ExitCode.TESTS_FAILED
