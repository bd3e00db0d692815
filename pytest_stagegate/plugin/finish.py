"""The end of a run: decide the verdict, let hooks see it, write the files, choose the exit
code. Takes values and returns a ``Finished`` for the session to store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .._version import __version__
from ..config import Target
from ..verdict import GateRecord, TestRecord, Verdict, public_url, sign_verdict, write_verdict
from ..verdict.commit import commit_info
from ..verdict.junit import write_junit
from .options import RunOptions
from .state import GateOutcome, RunSecrets

if TYPE_CHECKING:
    from .state import Problem
    from .terminal import WriteLine

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
GITHUB_ACTIONS_ENV = "GITHUB_ACTIONS"  # "true" on GitHub's runners: annotations
WORKSPACE_ENV = "GITHUB_WORKSPACE"  # the repository's checkout: where annotation paths start


@dataclasses.dataclass(frozen=True)
class Finished:
    """The decided verdict, its JSON form as written, the exit status the run ends with, and
    every file the run wrote or appended to (label, path), for the summary to list."""

    verdict: Verdict
    data: dict[str, Any]
    exit_status: int
    written: tuple[tuple[str, str], ...] = ()


def finish_run(
    options: RunOptions,
    *,
    target: Target,
    tests: Sequence[TestRecord],
    gate: GateOutcome | None,
    problems: Sequence[Problem],
    interrupted: bool,
    started_at: datetime,
    flaky_blocks: bool,
    exit_status: int,
    verdict_hook: Callable[[Verdict], None],
    write_line: WriteLine,
    environ: Mapping[str, str] = os.environ,
    configured_target: Target | None = None,
    secrets: RunSecrets | None = None,
    baseline: Mapping[str, Any] | None = None,
    baseline_reasons: Sequence[str] = (),
    history_passes: int = 1,
) -> Finished:
    """Decide the verdict, hand it to ``verdict_hook`` (``pytest_stagegate_verdict``), write
    ``options.files`` (the JSON signed with ``options.signing_key``, if any) and, for a gated
    run on GitHub, the step summary. ``configured_target`` is the target as stagegate.yaml
    configured it when a ``pytest_stagegate_configure_target`` hook replaced it with
    ``target``: the verdict then says so. ``secrets`` are the run's (``RunState.secrets``; by
    default those of both targets): what the run writes here is redacted with them.
    ``baseline`` is the verdict's ``baseline`` field (where --gate-baseline's came from),
    ``baseline_reasons`` reasons to add; with ``options.history_dir`` the verdict is kept in
    the history too, whose retention never removes the newest ``history_passes`` passing
    verdicts (a history that cannot be written is said, the verdict stands)."""
    redact = secrets if secrets is not None else RunSecrets.of(target, configured_target)
    verdict = Verdict(
        target_name=target.name,
        base_url=redact(target.base_url),
        configured_base_url=(
            None if configured_target is None else redact(configured_target.base_url)
        ),
        commit=commit_info(environ, options.rootdir),
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        tests=tests,
        gate=None if gate is None else with_relative_sources(gate.record, options.rootdir),
        problems=problems,
        interrupted=interrupted,
        flaky_blocks=flaky_blocks,
        gate_requested=options.gate,
        plugin_version=__version__,
    )
    if configured_target is not None:
        verdict.add_reason(replaced_sentence(target, configured_target, redact))
    if gate is not None and gate.load_errors:
        verdict.add_reason("Most frequent load errors: " + "; ".join(gate.load_errors) + ".")
    for reason in baseline_reasons if options.gate else ():
        verdict.add_reason(redact(reason))
    try:
        verdict_hook(verdict)
    except Exception as exc:  # a notifier that fails must not cost the verdict
        verdict.add_problem(
            "error",
            redact(f"A pytest_stagegate_verdict hook failed: {type(exc).__name__}: {exc}"),
        )
    status = exit_status_for(exit_status, verdict.promote, options.gate)
    # every sentence of the files, whoever wrote it (a verdict hook's reason or check, say)
    data = redact_messages(verdict.to_dict(), redact)
    if baseline is not None and options.gate:
        data["baseline"] = _redact_strings(baseline, redact)
    if options.signing_key:
        data = sign_verdict(data, options.signing_key)
    written: list[tuple[str, str]] = []
    for kind, path in options.files:
        try:
            if kind == "json":
                write_verdict(path, data)
            else:
                write_junit(path, data)
            written.append((kind, str(path)))
        except (OSError, ValueError) as exc:
            write_line(redact(f"stagegate: could not write {path}: {exc}"), red=True)
            status = pytest.ExitCode.TESTS_FAILED
    if options.metrics_path is not None and options.gate:
        from .._atomic import atomic_write_text
        from ..verdict.openmetrics import render as render_metrics

        try:
            atomic_write_text(options.metrics_path, render_metrics(data, redact=redact))
            written.append(("metrics", str(options.metrics_path)))
        except (OSError, ValueError) as exc:
            write_line(
                redact(f"stagegate: could not write {options.metrics_path}: {exc}"), red=True
            )
            status = pytest.ExitCode.TESTS_FAILED
    if options.history_dir is not None and options.gate:
        from ..verdict.history import store

        try:
            kept = store(options.history_dir, data, options.history_keep, history_passes)
            written.append(("history", str(kept)))
        except (OSError, ValueError) as exc:
            write_line(
                redact(
                    f"stagegate: could not keep the verdict in the history "
                    f"{options.history_dir}: {exc}; the verdict stands"
                ),
                red=True,
            )
    report = options.html_report
    # Locust's HTML report is written by the load process: listed when this run wrote it
    if report is not None and gate is not None and _written_since(report, started_at):
        written.append(("html report", str(report)))
    summary_path = environ.get(STEP_SUMMARY_ENV)
    if summary_path and options.gate:
        from ..verdict.report import render

        try:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(redact(render(data, "markdown")) + "\n")
            written.append(("step summary", f"{summary_path} (appended)"))
        except OSError as exc:
            write_line(redact(f"stagegate: could not append to ${STEP_SUMMARY_ENV}: {exc}"))
    if environ.get(GITHUB_ACTIONS_ENV) == "true" and options.gate:
        from ..verdict.annotations import render as render_annotations

        for command in render_annotations(
            data,
            redact=redact,
            config_file=_relative(options.config_path, options.rootdir),
            base=_relative(options.rootdir, environ.get(WORKSPACE_ENV) or options.rootdir),
        ):
            write_line(command)
    return Finished(verdict, data, int(status), tuple(written))


def with_relative_sources(record: GateRecord, rootdir: Path) -> GateRecord:
    """``record`` with its checks' files (``Check.file``, the config's path as loaded)
    relative to ``rootdir``, as the verdict records them."""
    checks = [
        dataclasses.replace(c, file=_relative(c.file, rootdir)) if c.file else c
        for c in record.checks
    ]
    return dataclasses.replace(record, checks=checks)


def _relative(path: os.PathLike[str] | str | None, start: os.PathLike[str] | str) -> str:
    """``path`` relative to ``start``, /-separated ("" for None, "." for ``start`` itself);
    as it is when there is no relative way (another drive)."""
    if path is None:
        return ""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(start))).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _written_since(path: os.PathLike[str] | str, started_at: datetime) -> bool:
    try:
        return os.stat(path).st_mtime >= started_at.timestamp() - 1  # coarse file clocks
    except OSError:
        return False


def replaced_sentence(
    target: Target, configured: Target, redact: Callable[[str], str] | None = None
) -> str:
    """The reason a verdict gives when a hook replaced its target (no credentials; redacted
    with ``redact``, by default with both targets' secrets)."""
    redact = redact if redact is not None else RunSecrets.of(target, configured)

    def shown(url: str) -> str:
        return public_url(redact(url))

    where = (
        f"measured at {shown(target.base_url)}, not at the configured {shown(configured.base_url)}"
        if target.base_url != configured.base_url
        else f"at the configured base URL {shown(configured.base_url)}, with other settings"
    )
    return (
        f"A pytest_stagegate_configure_target hook replaced the target {configured.name!r}: "
        f"{where}; `stagegate verify` refuses this verdict for a named target unless "
        "--allow-replaced-target."
    )


MESSAGE_KEYS = frozenset({"reasons", "reason", "message", "note"})


def redact_messages(value: Any, redact: Callable[[str], str], key: str = "") -> Any:
    """The verdict's data with its sentences (``MESSAGE_KEYS``: reasons, problems, messages of
    tests and checks, the gate's reason) redacted; a new value. Names, node ids, URLs and
    keys are redacted where they are recorded and left as they are here: a run of a secret
    that happens to be in ``configured_base_url`` or a status word must not break the
    verdict's form."""
    if isinstance(value, dict):
        return {k: redact_messages(v, redact, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_messages(item, redact, key) for item in value]
    if isinstance(value, str) and key in MESSAGE_KEYS:
        return redact(value)
    return value


def _redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_strings(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_strings(v, redact) for v in value]
    return redact(value) if isinstance(value, str) else value


def exit_status_for(status: int, promote: bool, gate_requested: bool) -> int:
    """0 only when the verdict promotes; pytest's own codes otherwise stay."""
    if status == pytest.ExitCode.OK and not promote:
        return pytest.ExitCode.TESTS_FAILED
    if status == pytest.ExitCode.NO_TESTS_COLLECTED and gate_requested:
        # The contract's codes are 0, 1, 2 and 4: a gate-only run is judged by its verdict.
        return pytest.ExitCode.OK if promote else pytest.ExitCode.TESTS_FAILED
    return status
