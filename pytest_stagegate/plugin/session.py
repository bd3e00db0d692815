"""``StagegateRun``: the hook adapter of an active run, and the only code that changes its
``RunState`` (kept in ``config.stash[RUN_STATE]``).

On the controlling process (or the only one, without xdist) it resolves the target, waits for
it, runs the gate after the tests and writes the verdict. On an xdist worker it only applies the
markers, enriches reports and feeds the fixtures; the target comes from the controller.
The work itself is done by ``markers``, ``records``, ``gate``, ``finish`` and ``terminal``,
which take values and return values.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import types
from collections.abc import Generator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import GateSettings, LoadSettings, Target, load_config
from ..errors import ConfigError, StagegateError
from ..load.plan import load_path_problem
from ..load.worker_token import ENV as WORKER_TOKEN_ENV
from ..load.worker_token import missing_token_paragraph
from ..target.client import RequestLog, make_client, summarize
from ..target.readiness import check_version, wait_ready
from ..units import format_arrival_rate
from . import markers
from .options import BIND_EXAMPLE, DEFAULT_SOURCE, RunOptions, remove_files
from .records import TestRecorder, skip_reason
from .state import RUN_STATE, GateOutcome, RunSecrets, RunState

if TYPE_CHECKING:
    from ..budgets import EndpointStats

WORKERINPUT_KEY = "stagegate_target"
_REASON_NAMED = 10  # passed-over baseline verdicts named in the verdict's reason
MARKER_PROBLEM = pytest.StashKey[str]()


class StagegateRun:
    PLUGIN_NAME = "stagegate-run"

    def __init__(
        self, config: pytest.Config, options: RunOptions, state: RunState, config_path: Path
    ) -> None:
        self.config = config
        self.options = options
        self.state = state
        self.config_path = config_path
        self._previous_sigterm: Any = None
        # set just before this plugin's own pytest.exit(): a user's exit message may read alike
        self._stopped_by_us = False
        self._written: tuple[tuple[str, str], ...] = ()  # what the run wrote, for the summary
        # --gate-baseline: where the baseline came from (the verdict's baseline field), and the
        # reasons of --gate-baseline auto (a first run's warning, passed-over verdicts, none
        # usable)
        self._baseline_record: dict[str, Any] | None = None
        self._baseline_reasons: list[str] = []

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def start(cls, config: pytest.Config, options: RunOptions) -> StagegateRun:
        """Read stagegate.yaml (or, on an xdist worker, the controller's target), check the
        inputs, and put the run's state in ``config.stash``."""
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and WORKERINPUT_KEY in workerinput:
            data = workerinput[WORKERINPUT_KEY]
            options = dataclasses.replace(options, target_source=data["source"])
            state = _new_state(
                _target_from_dict(data["target"]), tuple(data["known"]), GateSettings()
            )
            # the controller's secrets but its signing key, which no worker may see
            state.secrets = _with_worker_token(RunSecrets(frozenset(data.get("secrets", ()))))
            config.stash[RUN_STATE] = state
            return cls(config, options, state, Path(data["config_path"]))
        path = options.config_file()
        try:
            parsed = load_config(path)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-stagegate: {exc}") from None
        try:
            target = parsed.resolve_target(options.target, os.environ)
            gate = parsed.gate_settings(options.target)
        except ConfigError as exc:
            # A name from the environment or an ini file surprises: say where it came from.
            chosen = (
                ""
                if options.target_source in ("--target", DEFAULT_SOURCE)
                else (f" (target {options.target!r} was chosen by {options.target_source})")
            )
            raise pytest.UsageError(f"pytest-stagegate: {exc}{chosen}") from None
        state = _new_state(target, parsed.target_names, gate)
        run = cls(config, options, state, path)
        if workerinput is None:
            # Cheap checks first: the hook below may start an application.
            run._check_outputs()
            if options.gate:
                state.baseline = run._check_gate_inputs()
            elif options.baseline or options.baseline_auto or options.html_report:
                raise pytest.UsageError(
                    "pytest-stagegate: --gate-baseline and --gate-report only apply to a gated "
                    "run: add --gate."
                )
            run._check_load_allowed(target)
            replaced = config.hook.pytest_stagegate_configure_target(config=config, target=target)
            if replaced is not None:
                state.target = replaced
                if replaced != target:  # the verdict says where it really measured
                    state.configured_target = target
                run._check_load_allowed(replaced)
        state.secrets = RunSecrets.of(state.target, state.configured_target, options.signing_key)
        state.secrets = _with_worker_token(state.secrets)
        if gate.load.data is not None:
            # the data file's values: a smoke test may print a row (and xdist workers get them)
            state.secrets = dataclasses.replace(
                state.secrets, shared=state.secrets.shared | _data_secrets(gate.load)
            )
        config.stash[RUN_STATE] = state
        return run

    def _check_load_allowed(self, target: Target) -> None:
        """``--gate`` on a protected target that takes no load is a usage error before any
        test runs: the run could never promote, and minutes of smoke tests would hide that."""
        if self.options.gate and target.protected and not target.allow_load:
            raise pytest.UsageError(
                f"pytest-stagegate: --gate: target {target.name!r} is protected and takes no "
                f"load (set targets.{target.name}.allow_load: true in {self.config_path} to "
                f"allow it), so no test was run. Run without --gate for the smoke tests alone."
            )

    def _check_outputs(self) -> None:
        """A file that cannot be written is a usage error now, not a traceback at the end."""
        paths = [
            (f"--verdict{'-junit' if kind == 'junit' else ''}", p) for kind, p in self.options.files
        ]
        if self.options.html_report is not None:
            paths.append(("--gate-report", self.options.html_report))
        if self.options.metrics_path is not None:
            if not self.options.gate:
                raise pytest.UsageError(
                    "pytest-stagegate: --gate-metrics only applies to a gated run: add --gate."
                )
            paths.append(("--gate-metrics", self.options.metrics_path))
        if not self.options.gate and self.config.getoption("stagegate_history"):
            # the ini key is a project setting, quiet on an ungated run; the option is asked
            raise pytest.UsageError(
                "pytest-stagegate: --gate-history only applies to a gated run: add --gate."
            )
        for option, path in paths:
            problem = _unwritable(path)
            if problem:
                raise pytest.UsageError(f"pytest-stagegate: {option} {path}: {problem}")

    def _check_gate_inputs(self) -> dict[str, EndpointStats] | None:
        """Errors that would only show after minutes of tests are usage errors now. Returns
        the baseline's measurements, if one was given."""
        if not self.state.gate_settings.load.has_scenario:
            raise pytest.UsageError(
                f"pytest-stagegate: {self.config_path}: gate.load: --gate needs a scenario: a "
                f"list of requests (gate.load.requests: [GET /]), journeys (gate.load.flows) or "
                f"gate.load.locustfile."
            )
        load_path = load_path_problem(os.environ)
        if load_path is not None:
            raise pytest.UsageError(load_path)
        if self.options.remote_workers and self.options.master_bind is None:
            raise pytest.UsageError(
                "pytest-stagegate: --gate-remote-workers needs --gate-master-bind HOST:PORT, "
                f"the address the remote workers connect to (e.g. {BIND_EXAMPLE})."
            )
        if self.options.remote_workers:
            missing = missing_token_paragraph("pytest-stagegate: --gate-remote-workers")
            if missing is not None:
                raise pytest.UsageError(missing)
        self._check_history()
        if self.options.baseline_auto:
            return self._auto_baseline()
        if self.options.baseline is None:
            return None
        from ..verdict import baseline_stats, load_verdict
        from ..verdict.history import file_record

        try:
            data = load_verdict(self.options.baseline)
        except StagegateError as exc:
            raise pytest.UsageError(f"pytest-stagegate: --gate-baseline: {exc}") from None
        self._baseline_record = file_record(self.options.baseline, data)
        return baseline_stats(data)

    def _check_history(self) -> None:
        """--gate-history DIR must be a folder this run can write; --gate-baseline auto needs
        one."""
        history = self.options.history_dir
        if history is None:
            if self.options.baseline_auto:
                raise pytest.UsageError(
                    "pytest-stagegate: --gate-baseline auto takes the latest passing verdict of "
                    "this target from the history of verdicts, and this run keeps none: add "
                    "--gate-history DIR (or the ini key stagegate_history), the folder where "
                    "the earlier gated runs kept theirs."
                )
            return
        setting = (
            "--gate-history"
            if self.config.getoption("stagegate_history")
            else "ini stagegate_history"
        )
        if history.exists() and not history.is_dir():
            raise pytest.UsageError(
                f"pytest-stagegate: {setting} {history}: is not a directory; give the "
                "folder that keeps the verdicts (it is made if missing)."
            )
        problem = _unwritable(history / "probe")
        if problem:
            raise pytest.UsageError(f"pytest-stagegate: {setting} {history}: {problem}")

    def _auto_baseline(self) -> dict[str, EndpointStats] | None:
        """--gate-baseline auto: the latest passing verdict(s) of this target (and this
        deployment: its base URL) in the history. Passing verdicts passed over are a reason of
        the verdict. None found: on a first run (no passing verdict kept at all) the regression
        budgets are not judged (a warning says so), so the first passing run can become the
        baseline; when the history holds passing verdicts and none can be used, they stay and
        are inconclusive, with a reason saying why."""
        from ..metrics import parse_metric
        from ..verdict.history import baseline, folder_name
        from ..verdict.model import public_url

        history = self.options.history_dir
        assert history is not None
        settings = self.state.gate_settings
        name = self.state.target.name
        found = baseline(
            history,
            name,
            settings.baseline_median_of,
            self.options.signing_key,
            base_url=public_url(self.state.secrets(self.state.target.base_url)),
        )
        self._baseline_record = found.to_dict(history)
        if found.skipped:
            self._baseline_reasons.append(
                f"--gate-baseline auto {found.passed_over(_REASON_NAMED)}."
            )
        if found.stats is not None:
            return found.stats
        regression = [b for b in settings.budgets if parse_metric(b.metric).regression]
        if not regression:
            return None
        listed = ", ".join(f"{b.metric} of {b.endpoint}" for b in regression)
        budgets = f"regression budget{'' if len(regression) == 1 else 's'} ({listed})"
        if not found.first_run:
            self._baseline_reasons.append(
                f"--gate-baseline auto found no usable passing verdict of target {name!r} "
                f"among the {found.verdicts} in the history {history} ({found.counts()}), so "
                f"its {budgets} {'is' if len(regression) == 1 else 'are'} inconclusive on this "
                "run. To start a new baseline on purpose (a new signing key, another "
                f"deployment), move {history / folder_name(name)} away."
            )
            return None
        self.state.gate_settings = dataclasses.replace(
            settings, budgets=tuple(b for b in settings.budgets if b not in regression)
        )
        self._baseline_reasons.append(
            f"Warning: --gate-baseline auto found no passing verdict of target {name!r} in "
            f"the history {history} yet, so its {budgets} "
            f"{'was' if len(regression) == 1 else 'were'} not judged on this run; the "
            "first passing run becomes the baseline (if this is not the target's first gated "
            "run, check the history's path)"
        )
        return None

    # -- configuration, header ----------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        from .redaction import Redaction

        # secrets out of everything pytest writes (reports, terminal, logs, --junitxml)
        Redaction.install(config, self.state.secrets.redactor)
        if not self.options.is_worker and _in_main_thread():
            # pytest only handles SIGINT; turning SIGTERM into the same interrupt lets a
            # cancelled CI job still write a verdict and stop the load processes.
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        reporter = self._reporter()
        if self.state.verdict is not None and reporter is not None:
            from .terminal import write_final_line

            write_final_line(reporter, self.state.verdict)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        target = self.state.target
        lines = [
            self.state.secrets(
                f"stagegate: target {target.name!r} ({target.base_url}) "
                f"from {self.options.target_source}"
            ),
            f"stagegate: config {self.config_path} ({self.options.config_origin})",
        ]
        if target.protected:
            allowed = "load allowed" if target.allow_load else "no load"
            lines.append(f"stagegate: target is protected: destructive tests skipped, {allowed}")
        if self.options.gate:
            settings = self.state.gate_settings
            load = settings.load
            lines.append(
                f"stagegate: gate on: {describe_load(load)} for {load.duration:g} s "
                f"(warm-up {load.warmup:g} s), {len(settings.budgets)} budgets"
            )
            if self._baseline_record is not None:
                lines.append(
                    self.state.secrets(f"stagegate: baseline: {self._baseline_record['note']}")
                )
            if self.options.history_dir is not None:
                lines.append(
                    self.state.secrets(
                        f"stagegate: history: {self.options.history_dir} (keeps "
                        f"{self.options.history_keep} verdicts per target)"
                    )
                )
        return lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: hand the controller's resolved target to every worker."""
        node.workerinput[WORKERINPUT_KEY] = {
            "target": _target_to_dict(self.state.target),
            "source": self.options.target_source,
            "known": list(self.state.known_targets),
            "config_path": str(self.config_path),
            "secrets": sorted(self.state.secrets.shared),  # never the signing key
        }

    # -- collection: markers ------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after conftest hooks that add marks of their own
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        skipping = self.config.pluginmanager.has_plugin("skipping")
        for item in items:
            problem, reason = self._marker_decision(item)
            if problem is not None:
                if not self.options.is_worker:
                    self.state.problems.append(("error", problem))  # the verdict says why
                    raise pytest.UsageError(problem)
                # Raising on an xdist worker crashes it and hides the message.
                item.stash[MARKER_PROBLEM] = problem
            elif reason is not None and skipping:
                # The mark shows in --collect-only and -rs; the skip itself is ours (below).
                item.add_marker(pytest.mark.skip(reason=reason))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Decided again from the marks the test has now, whoever added them and whichever
        # plugins are disabled (-p no:skipping), before any fixture of the test is set up.
        problem, reason = self._marker_decision(item)
        problem = item.stash.get(MARKER_PROBLEM, problem)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        if reason is not None:
            pytest.skip(reason)

    def _marker_decision(self, item: pytest.Item) -> tuple[str | None, str | None]:
        """(what is wrong with its targets(...) marker, why it does not run here)."""
        target = self.state.target
        marker = item.get_closest_marker("targets")
        names = markers.target_names(marker.args) if marker is not None else None
        if names is not None:
            problem = markers.targets_problem(item.nodeid, names, self.state.known_targets)
            if problem is not None:
                return problem, None
        reason = markers.skip_reason(
            target.name,
            protected=target.protected,
            names=names,
            destructive=item.get_closest_marker("destructive") is not None,
        )
        return None, reason

    # -- running tests: records, redaction ----------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self.state.request_log.take()  # requests made between tests belong to none of them
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        target = self.state.target
        reason = skip_reason(report)
        # Plain attributes travel with the report from an xdist worker to the controller.
        report.stagegate = {  # type: ignore[attr-defined]
            "critical": item.get_closest_marker("critical") is not None,
            "smoke": item.get_closest_marker("smoke") is not None,
            "safety_skip": markers.is_safety_skip(
                skipped=report.skipped,
                reason=reason,
                protected=target.protected,
                destructive=item.get_closest_marker("destructive") is not None,
            ),
            "elsewhere_skip": markers.is_elsewhere_skip(skipped=report.skipped, reason=reason),
            "requests": (summarize(self.state.request_log.take()) if call.when == "call" else None),
        }
        return report  # redacted by the redaction plugin (plugin/redaction.py)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.options.is_worker:
            self.state.recorder.add(report, self.state.secrets)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.options.is_worker:
            self.state.problems.append(("error", f"Collecting {report.nodeid or 'tests'} failed."))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        if error:
            worker = getattr(getattr(node, "gateway", None), "id", "?")
            message = f"The pytest-xdist worker {worker} crashed: {error}"
            self.state.problems.append(("fail", self.state.secrets(message)))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.state.running = (nodeid, location)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.state.running = None

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        exc = excinfo.value
        if isinstance(exc, pytest.Session.Interrupted):
            return  # pytest's own stop (collection errors, -x); reported elsewhere
        if isinstance(exc, pytest.exit.Exception):
            if self._stopped_by_us:
                return  # our own stop (readiness, prepare): its problem is recorded already
            # pytest.exit() from a test, a fixture, a conftest or a plugin: whatever its
            # return code, the run did not finish and cannot pass.
            self.state.interrupted = True
            reason = self.state.secrets(
                f"pytest.exit() stopped the run: {exc.msg or 'no reason given'}"
            )
            self.state.problems.append(("error", reason))
        elif isinstance(exc, KeyboardInterrupt):
            self.state.interrupted = True
            reason = "interrupted (Ctrl-C or SIGTERM)"
        else:
            return
        if self.state.running is not None and not self.options.is_worker:
            # The test in progress never finished: not passed, whatever its setup said.
            nodeid, location = self.state.running
            report = pytest.TestReport(
                nodeid, location, {}, "failed", f"Stopped before it finished: {reason}", "setup"
            )
            self.state.recorder.add(report, self.state.secrets)

    # -- the run: readiness before the tests, the gate after them -----------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if not self.options.controls:
            return (yield)
        self._prepare_target()
        result = yield
        if self.options.gate:
            from .gate import ConfigHooks, run_gate
            from .terminal import ProgressLine

            try:
                outcome = run_gate(
                    self.options,
                    self.state.target,
                    self.state.gate_settings,
                    self.state.recorder.records(),
                    baseline=self.state.baseline,
                    hooks=ConfigHooks(self.config),
                    write_line=self.write_line,
                    progress=ProgressLine(self._reporter()),
                    secrets=self.state.secrets,
                )
            except KeyboardInterrupt:
                # The verdict must say what really ran: the gate started and was cut short.
                self.state.gate = _interrupted_gate(self.options)
                raise
            self.state.gate = outcome
            self.state.problems.extend(outcome.problems)
        return result

    def _prepare_target(self) -> None:
        from .terminal import StopRun

        target = self.state.target
        try:
            if target.ready is not None:
                waited = wait_ready(target, target.ready)
                self.write_line(f"stagegate: target {target.name!r} ready after {waited:.1f} s")
            if target.version is not None:
                running = check_version(target, target.version)
                self.write_line(f"stagegate: target {target.name!r} runs build {running!r}")
            with make_client(target) as client:
                self.config.hook.pytest_stagegate_prepare(
                    config=self.config, target=target, client=client
                )
        except StagegateError as exc:
            message = self.state.secrets(str(exc))
            self.state.problems.append(("error", message))
            self._stopped_by_us = True  # its problem is recorded above
            raise StopRun(message, returncode=pytest.ExitCode.TESTS_FAILED) from None
        except Exception as exc:
            message = self.state.secrets(
                f"pytest_stagegate_prepare failed: {type(exc).__name__}: {exc}"
            )
            self.state.problems.append(("error", message))
            self._stopped_by_us = True  # its problem is recorded above
            raise StopRun(message, returncode=pytest.ExitCode.TESTS_FAILED) from None

    def _reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def write_line(self, line: str, **markup: bool) -> None:
        """A line on pytest's terminal (nothing under -p no:terminal), secrets redacted."""
        reporter = self._reporter()
        if reporter is not None:
            reporter.write_line(self.state.secrets(line), **markup)

    # -- the verdict --------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.options.controls or not self.options.verdict_wanted:
            return
        from .finish import finish_run

        state = self.state

        def verdict_hook(verdict: Any) -> None:
            self.config.hook.pytest_stagegate_verdict(config=self.config, verdict=verdict)

        finished = finish_run(
            self.options,
            target=state.target,
            tests=state.recorder.records(),
            gate=state.gate,
            problems=state.problems,
            interrupted=state.interrupted,
            started_at=state.started_at,
            flaky_blocks=state.gate_settings.flaky_blocks,
            exit_status=session.exitstatus,
            verdict_hook=verdict_hook,
            write_line=self.write_line,
            configured_target=state.configured_target,
            secrets=state.secrets,
            baseline=self._baseline_record,
            baseline_reasons=self._baseline_reasons,
            history_passes=state.gate_settings.baseline_median_of,
        )
        state.verdict, state.verdict_data = finished.verdict, finished.data
        self._written = finished.written
        session.exitstatus = finished.exit_status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.options.is_worker:
            return
        from .terminal import write_summary

        state = self.state
        # The gate's tables are rendered from the verdict's data, as `stagegate report` does.
        ran = state.gate is not None and state.verdict_data is not None
        write_summary(
            terminalreporter,
            target_name=state.target.name,
            tests=state.recorder.records(),
            elsewhere=state.recorder.flagged("elsewhere_skip"),
            verdict=state.verdict,
            gate=state.verdict_data["gate"] if ran and state.verdict_data is not None else None,
            load_errors=state.gate.load_errors if state.gate is not None else (),
            files=self._written,
        )


def describe_load(load: LoadSettings) -> str:
    """How the load is driven, for the header: ``10 users``; ``open model, rate 100/s (at most
    100 concurrent iterations)``; with stages, their peak and number: ``open model, rate up to
    100/s in 3 stages (...)``, ``up to 20 users in 2 stages``."""
    stages = len(load.stages)
    in_stages = f" in {stages} stage{'' if stages == 1 else 's'}" if stages else ""
    if load.open_model:
        peak = load.rate if load.rate is not None else max(st.rate or 0.0 for st in load.stages)
        rate = f"rate {'up to ' if stages else ''}{format_arrival_rate(peak)}{in_stages}"
        concurrent = f"at most {load.users:,} concurrent iteration{'' if load.users == 1 else 's'}"
        return f"open model, {rate} ({concurrent})"
    users = f"{load.users:,} user{'' if load.users == 1 else 's'}"
    return f"up to {users}{in_stages}" if stages else users


def _new_state(target: Target, known: tuple[str, ...], gate: GateSettings) -> RunState:
    return RunState(
        target=target,
        known_targets=known,
        gate_settings=gate,
        request_log=RequestLog(),
        recorder=TestRecorder(),
        started_at=datetime.now(timezone.utc),
    )


def forget_previous_verdict(options: RunOptions) -> None:
    """Remove the files an earlier run left where this one writes its verdict.

    Done first, before the configuration is even read: a run that stops on a usage error must
    not leave the previous run's passing verdict for `stagegate verify` to accept.
    """
    if not options.controls:
        return
    paths = [path for _, path in options.files]
    if options.load_log is not None:
        paths.append(options.load_log)
    remove_files(paths)


def _target_to_dict(target: Target) -> dict[str, Any]:
    data = dataclasses.asdict(target)
    data["headers"] = dict(target.headers)
    data["vars"] = dict(target.vars)
    data["secrets"] = sorted(target.secrets)
    return data


def _target_from_dict(data: Mapping[str, Any]) -> Target:
    from ..config import ReadyCheck, VersionCheck

    fields = dict(data)
    fields["ready"] = ReadyCheck(**fields["ready"]) if fields.get("ready") else None
    fields["version"] = VersionCheck(**fields["version"]) if fields.get("version") else None
    fields["secrets"] = frozenset(fields.get("secrets", ()))
    return Target(**fields)


def _interrupted_gate(options: RunOptions) -> GateOutcome:
    from ..verdict import GateRecord

    reason = (
        "the load gate started but was interrupted (Ctrl-C or SIGTERM) before it finished, "
        "so nothing it measured was judged"
    )
    return GateOutcome(GateRecord(status="error", reason=reason), load_log=options.load_log)


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written, or None. Creates its folder, as the writer would."""
    if path.is_dir():
        return "is a directory; give a file name"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".stagegate-probe-"):
            pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    return None


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


def _with_worker_token(secrets: RunSecrets) -> RunSecrets:
    """``secrets`` and ``$STAGEGATE_WORKER_TOKEN`` when the environment holds one, whatever
    workers this run uses: a job may set it for another step, or for remote workers this run
    does not start, and a smoke test that prints its environment must not show it. Read from
    this process's own environment (an xdist worker inherits it; it never travels in
    ``workerinput``)."""
    token = os.environ.get(WORKER_TOKEN_ENV)
    if not token:
        return secrets
    return dataclasses.replace(secrets, worker_token=frozenset({token}))


def _data_secrets(load: LoadSettings) -> frozenset[str]:
    """The values of ``load``'s data file that are secrets; a usage error if the file became
    unusable since stagegate.yaml was read."""
    from ..load.plan import data_secrets

    try:
        return data_secrets(load)
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-stagegate: {exc}") from None
