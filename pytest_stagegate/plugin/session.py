"""The state of one stagegate run, registered as a plugin only when the plugin is active.

On the controlling process (or the only one, without xdist) it resolves the target, waits for
it, runs the gate after the tests and writes the verdict. On an xdist worker it only applies the
markers, enriches reports and feeds the fixtures; the target comes from the controller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import tempfile
import types
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import CONFIG_FILENAME, GateSettings, Target, load_config
from ..errors import ConfigError, StagegateError, did_you_mean
from ..target.client import RequestLog, make_client, summarize
from ..target.readiness import check_version, wait_ready
from . import find_config_file
from .records import TestRecorder
from .records import skip_reason as _skip_reason

if TYPE_CHECKING:
    from ..verdict.model import GateRecord, Verdict

DEFAULT_VERDICT = "stagegate-verdict.json"
DEFAULT_JUNIT = "stagegate-junit.xml"
LOAD_LOG = "stagegate-load.log"  # Locust's log, next to the verdict
WORKERINPUT_KEY = "stagegate_target"
MARKER_PROBLEM = pytest.StashKey[str]()


@dataclasses.dataclass(frozen=True)
class Setting:
    """A resolved setting and where it came from, for the report header."""

    value: str
    source: str


class StagegateRun:
    PLUGIN_NAME = "stagegate-run"

    def __init__(
        self,
        config: pytest.Config,
        *,
        target: Target,
        target_source: str,
        known_targets: tuple[str, ...],
        config_path: Path,
        gate: GateSettings,
    ) -> None:
        self.config = config
        self.target = target
        self.target_source = target_source
        self.known_targets = known_targets
        self.config_path = config_path
        self.gate_settings = gate
        self.is_worker = hasattr(config, "workerinput")
        self.request_log = RequestLog()
        self.recorder = TestRecorder()
        self.started_at = datetime.now(timezone.utc)
        self.problems: list[tuple[str, str]] = []
        self.interrupted = False
        self.gate_record: GateRecord | None = None  # once the gate ran
        self.load_log: Path | None = None  # Locust's log, once a load ran
        self.load_errors: list[str] = []  # the most frequent load errors, as phrases
        self.verdict: Verdict | None = None  # once decided
        self._previous_sigterm: Any = None
        self.baseline: dict[str, Any] | None = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: pytest.Config) -> StagegateRun:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and WORKERINPUT_KEY in workerinput:
            data = workerinput[WORKERINPUT_KEY]
            return cls(
                config,
                target=_target_from_dict(data["target"]),
                target_source=data["source"],
                known_targets=tuple(data["known"]),
                config_path=Path(data["config_path"]),
                gate=GateSettings(),
            )
        path = _find_config(config)
        name = _target_name(config)
        try:
            parsed = load_config(path)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-stagegate: {exc}") from None
        try:
            target = parsed.resolve_target(name.value, os.environ)
            gate = parsed.gate_settings(name.value)
        except ConfigError as exc:
            # A name from the environment or an ini file surprises: say where it came from.
            chosen = (
                ""
                if name.source in ("--target", "the default")
                else (f" (target {name.value!r} was chosen by {name.source})")
            )
            raise pytest.UsageError(f"pytest-stagegate: {exc}{chosen}") from None
        run = cls(
            config,
            target=target,
            target_source=name.source,
            known_targets=parsed.target_names,
            config_path=path,
            gate=gate,
        )
        if workerinput is None:
            # Cheap checks first: the hook below may start an application.
            run._check_outputs()
            if run.gate_requested:
                run._check_gate_inputs()
            elif config.option.stagegate_baseline or config.option.stagegate_report:
                raise pytest.UsageError(
                    "pytest-stagegate: --gate-baseline and --gate-report only apply to a gated "
                    "run: add --gate."
                )
            replaced = config.hook.pytest_stagegate_configure_target(config=config, target=target)
            if replaced is not None:
                run.target = replaced
        return run

    def _check_outputs(self) -> None:
        """A file that cannot be written is a usage error now, not a traceback at the end."""
        paths = [(f"--verdict{'-junit' if kind == 'junit' else ''}", p) for kind, p in self.files()]
        if self.config.option.stagegate_report:
            paths.append(("--gate-report", Path(self.config.option.stagegate_report)))
        for option, path in paths:
            problem = _unwritable(path)
            if problem:
                raise pytest.UsageError(f"pytest-stagegate: {option} {path}: {problem}")

    def _check_gate_inputs(self) -> None:
        """Errors that would only show after minutes of tests are usage errors now."""
        load = self.gate_settings.load
        if not load.has_scenario:
            where = self.config_path
            raise pytest.UsageError(
                f"pytest-stagegate: {where}: gate.load: --gate needs a scenario: a list of "
                f"requests (gate.load.requests: [GET /]) or gate.load.locustfile."
            )
        opt = self.config.option
        if opt.stagegate_remote_workers and opt.stagegate_master_bind is None:
            raise pytest.UsageError(
                "pytest-stagegate: --gate-remote-workers needs --gate-master-bind HOST:PORT, "
                "the address the remote workers connect to (e.g. 0.0.0.0:5557)."
            )
        baseline = self.config.option.stagegate_baseline
        if baseline:
            from ..verdict.model import baseline_stats, load_verdict

            try:
                self.baseline = baseline_stats(load_verdict(Path(baseline)))
            except StagegateError as exc:
                raise pytest.UsageError(f"pytest-stagegate: --gate-baseline: {exc}") from None

    # -- configuration, header ----------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        if not self.is_worker and _in_main_thread():
            # pytest only handles SIGINT; turning SIGTERM into the same interrupt lets a
            # cancelled CI job still write a verdict and stop the load processes.
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [
            self.target.redact(
                f"stagegate: target {self.target.name!r} ({self.target.base_url}) "
                f"from {self.target_source}; config {self.config_path}"
            ),
        ]
        if self.target.protected:
            allowed = "load allowed" if self.target.allow_load else "no load"
            lines.append(f"stagegate: target is protected: destructive tests skipped, {allowed}")
        if self.gate_requested:
            load = self.gate_settings.load
            lines.append(
                f"stagegate: gate on: {load.users} users for {load.duration:g} s "
                f"(warm-up {load.warmup:g} s), {len(self.gate_settings.budgets)} budgets"
            )
        return lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: hand the controller's resolved target to every worker."""
        node.workerinput[WORKERINPUT_KEY] = {
            "target": _target_to_dict(self.target),
            "source": self.target_source,
            "known": list(self.known_targets),
            "config_path": str(self.config_path),
        }

    @property
    def gate_requested(self) -> bool:
        return bool(self.config.option.stagegate_gate)

    @property
    def verdict_wanted(self) -> bool:
        return _verdict_wanted(self.config.option)

    # -- collection: markers ------------------------------------------------------------------

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("targets")
            if marker is not None:
                names = _marker_names(marker.args)
                problem = self._check_target_names(item, names)
                if problem is not None:
                    if not self.is_worker:
                        self.problems.append(("error", problem))  # the verdict says why
                        raise pytest.UsageError(problem)
                    # Raising on an xdist worker crashes it and hides the message.
                    item.stash[MARKER_PROBLEM] = problem
                    continue
                if self.target.name not in names:
                    item.add_marker(
                        pytest.mark.skip(
                            reason=f"stagegate: runs only on {', '.join(names)}; "
                            f"target is {self.target.name!r}"
                        )
                    )
                    continue
            if self.target.protected and item.get_closest_marker("destructive"):
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"stagegate: destructive test not run: target "
                        f"{self.target.name!r} is protected"
                    )
                )

    def _check_target_names(self, item: pytest.Item, names: list[str]) -> str | None:
        if not names:
            return (
                f"{item.nodeid}: @pytest.mark.targets needs at least one target name, "
                f"e.g. @pytest.mark.targets('staging')"
            )
        unknown = [n for n in names if n not in self.known_targets]
        if unknown:
            hint = did_you_mean(unknown[0], self.known_targets).lstrip("; ")
            return (
                f"{item.nodeid}: @pytest.mark.targets names {', '.join(map(repr, unknown))}, "
                f"which stagegate.yaml does not define ({hint + ' ' if hint else ''}known: "
                f"{', '.join(self.known_targets)})"
            )
        return None

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        problem = item.stash.get(MARKER_PROBLEM, None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)

    # -- running tests: records, redaction ----------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self.request_log.take()  # requests made between tests belong to none of them
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # Plain attributes travel with the report from an xdist worker to the controller.
        report.stagegate = {  # type: ignore[attr-defined]
            "critical": item.get_closest_marker("critical") is not None,
            "smoke": item.get_closest_marker("smoke") is not None,
            "safety_skip": bool(
                report.skipped
                and self.target.protected
                and item.get_closest_marker("destructive") is not None
                and _skip_reason(report).startswith("stagegate: destructive")
            ),
            "elsewhere_skip": bool(
                report.skipped and _skip_reason(report).startswith("stagegate: runs only on")
            ),
            "requests": summarize(self.request_log.take()) if call.when == "call" else None,
        }
        if self.target.secrets:
            _redact_report(report, self.target)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_worker:
            self.recorder.add(report, self.target)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.is_worker:
            self.problems.append(("error", f"Collecting {report.nodeid or 'tests'} failed."))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        if error:
            worker = getattr(getattr(node, "gateway", None), "id", "?")
            self.problems.append(
                ("fail", self.target.redact(f"The pytest-xdist worker {worker} crashed: {error}"))
            )

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if isinstance(excinfo.value, pytest.Session.Interrupted):
            return  # pytest's own stop (collection errors, -x); reported elsewhere
        if isinstance(excinfo.value, KeyboardInterrupt):
            self.interrupted = True

    # -- the run: readiness before the tests, the gate after them -----------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if self.is_worker or session.config.option.collectonly:
            return (yield)
        self._prepare_target()
        result = yield
        if self.gate_requested:
            from .gate import run_gate

            self.gate_record = run_gate(self)
        return result

    def _prepare_target(self) -> None:
        target = self.target
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
            self.problems.append(("error", str(exc)))
            pytest.exit(f"pytest-stagegate: {exc}", returncode=pytest.ExitCode.TESTS_FAILED)
        except Exception as exc:
            message = target.redact(f"pytest_stagegate_prepare failed: {type(exc).__name__}: {exc}")
            self.problems.append(("error", message))
            pytest.exit(f"pytest-stagegate: {message}", returncode=pytest.ExitCode.TESTS_FAILED)

    def write_line(self, line: str, **markup: bool) -> None:
        """A line on pytest's terminal (nothing under -p no:terminal)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.target.redact(line), **markup)

    # -- the verdict --------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or not self.verdict_wanted or session.config.option.collectonly:
            return
        from .finish import finish_run

        finish_run(self, session)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        from .terminal import write_summary

        write_summary(self, terminalreporter)

    def files(self) -> Iterator[tuple[str, Path]]:
        """The verdict files this run writes: (kind, path)."""
        if not self.verdict_wanted:
            return
        json_path, junit_path = _verdict_paths(self.config.option)
        yield "json", json_path
        yield "junit", junit_path


def _verdict_wanted(opt: Any) -> bool:
    return bool(opt.stagegate_gate or opt.stagegate_verdict or opt.stagegate_verdict_junit)


def _verdict_paths(opt: Any) -> tuple[Path, Path]:
    """Where the verdict goes: (JSON, JUnit XML)."""
    return (
        Path(opt.stagegate_verdict or DEFAULT_VERDICT),
        Path(opt.stagegate_verdict_junit or DEFAULT_JUNIT),
    )


def forget_previous_verdict(config: pytest.Config) -> None:
    """Remove the files an earlier run left where this one writes its verdict.

    Done first, before the configuration is even read: a run that stops on a usage error must
    not leave the previous run's passing verdict for `stagegate verify` to accept.
    """
    opt = config.option
    if hasattr(config, "workerinput") or opt.collectonly:
        return
    if not _verdict_wanted(opt):
        return
    verdict, junit = _verdict_paths(opt)
    paths = [verdict, junit]
    if verdict.name:
        paths.append(verdict.with_name(LOAD_LOG))
    for path in paths:
        if path.name and not path.is_dir():  # a directory is reported as a usage error later
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _find_config(config: pytest.Config) -> Path:
    option = config.option.stagegate_config
    ini = config.getini("stagegate_config")
    if option or ini:
        base = config.invocation_params.dir if option else Path(config.rootpath)
        path = base / str(option or ini)
        if not path.is_file():
            where = "--stagegate-config" if option else "ini stagegate_config"
            raise pytest.UsageError(f"pytest-stagegate: {where}: no file at {path}")
        return path
    found = find_config_file(config)
    if found is not None:
        return found
    raise pytest.UsageError(
        f"pytest-stagegate: no {CONFIG_FILENAME} at the rootdir {config.rootpath} or in "
        f"{config.invocation_params.dir}. Create one (see the README's configuration section) "
        f"or pass --stagegate-config PATH."
    )


def _target_name(config: pytest.Config) -> Setting:
    if config.option.stagegate_target:
        return Setting(config.option.stagegate_target, "--target")
    if os.environ.get("STAGEGATE_TARGET"):
        return Setting(os.environ["STAGEGATE_TARGET"], "env STAGEGATE_TARGET")
    ini = config.getini("stagegate_target")
    if ini:
        return Setting(str(ini), "ini stagegate_target")
    return Setting("local", "the default")


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


def _marker_names(args: tuple[object, ...]) -> list[str]:
    """``targets("a", "b")`` and ``targets(["a", "b"])`` alike."""
    names: list[str] = []
    for arg in args:
        if isinstance(arg, (list, tuple, set, frozenset)):
            names.extend(str(a) for a in arg)
        else:
            names.append(str(arg))
    return names


def _redact_report(report: pytest.TestReport, target: Target) -> None:
    """Replace secrets in what pytest shows and stores of a report (-vv diffs, captured output)."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = report.longrepr
        report.longrepr = (path, line, target.redact(reason))
    elif report.longrepr is not None:
        text = str(report.longrepr)
        if target.redactor.found_in(text):
            report.longrepr = target.redact(text)
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = target.redact(report.wasxfail)
    report.sections = [(title, target.redact(body)) for title, body in report.sections]
    report.user_properties = [
        (name, target.redact(value) if isinstance(value, str) else value)
        for name, value in report.user_properties
    ]


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
