"""Secrets out of everything pytest writes while a stagegate run is active: one choke point per
channel, all using the run's one ``Redactor`` (``RunState.redactor``: the target's secrets, the
configured target's when a hook replaced it, the signing key; ``_redact.py`` has the rule and
the forms).

- **Reports** (``pytest_runtest_makereport``, ``pytest_make_collect_report``, again in
  ``pytest_runtest_logreport`` for reports replayed from xdist workers): the long
  representation is scrubbed in place, string by string (traceback lines, ``-l`` locals,
  function arguments, the crash message of the short summary, chained exceptions), as are the
  captured sections, skip/xfail reasons and user properties. Everything built from reports
  (the terminal, pytest's ``--junitxml``, our records and verdict) starts from clean text.
- **The terminal**: the terminal reporter's writer goes through the redactor at ``write``
  (outermost, before ``--pastebin=all`` tees it) and ``write_raw``, where every line pytest
  writes passes (headers, progress, summaries, warnings, live logs, ``pytest.exit`` reasons).
  Text with colour codes inside it is also checked with them removed.
- **Logging**: a log record factory redacts each record's message (and formatted exception
  and stack) when it holds a secret, before any handler sees it: live logs, ``--log-file``,
  ``caplog`` and the captured-log sections alike.
- **Warnings**: the warning's message, before pytest stores it for the summary.
- **``pytest.exit`` and internal errors**: the exit reason and the internal error's report.
- **``sys.stdout``/``sys.stderr``** while pytest does not capture them (``-s``, and the
  messages pytest itself writes there), per write.
- **pytest's ``--junitxml``** file is read back after pytest wrote it and redacted in place (a
  parametrize id can carry a secret into a test name).
- **pytest's cache** (``.pytest_cache``): values are redacted before they are stored (node
  ids in ``lastfailed``, ``nodeids``, ``stepwise``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Generator
from typing import Any

import pytest

from .._atomic import atomic_write_text
from .._redact import (
    MIN_SECRET_LENGTH,
    RedactingStream,  # sys.stdout/sys.stderr, per write
    Redactor,
)

__all__ = ["Redaction", "redact_report"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\][^\x1b\x07]*(?:\x07|\x1b\\)")


class Redaction:
    PLUGIN_NAME = "stagegate-redaction"

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._previous_factory: Callable[..., logging.LogRecord] | None = None
        self._factory: Callable[..., logging.LogRecord] | None = None
        self._streams: dict[str, RedactingStream] = {}

    @classmethod
    def install(cls, config: pytest.Config, redactor: Redactor) -> None:
        """Register the plugin for this run with the run's redactor (``RunState.redactor``:
        the secrets of the target, of the configured target a hook replaced, and the signing
        key); nothing to do for a run without secrets."""
        if (redactor or redactor.unmaskable) and not config.pluginmanager.has_plugin(
            cls.PLUGIN_NAME
        ):
            config.pluginmanager.register(cls(redactor), cls.PLUGIN_NAME)

    # -- process-wide: logging records, the standard streams -----------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        if not self.redactor:
            return
        previous = logging.getLogRecordFactory()
        redactor = self.redactor

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            # a bad format string raises here: logging reports it itself when it formats
            with contextlib.suppress(Exception):
                _redact_record(record, redactor)
            return record

        self._previous_factory, self._factory = previous, factory
        logging.setLogRecordFactory(factory)
        for name in ("stdout", "stderr"):
            stream = RedactingStream(getattr(sys, name), redactor)
            self._streams[name] = stream
            setattr(sys, name, stream)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._factory is not None and logging.getLogRecordFactory() is self._factory:
            assert self._previous_factory is not None
            logging.setLogRecordFactory(self._previous_factory)
        self._factory = None
        for name, stream in self._streams.items():
            if getattr(sys, name) is stream:
                setattr(sys, name, stream.wrapped)
        self._streams.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.redactor:
            return
        cache = getattr(session.config, "cache", None)
        if cache is not None:
            _redact_cache(cache, self.redactor)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if isinstance(reporter, pytest.TerminalReporter):
            _redact_terminal_writer(reporter._tw, self.redactor)  # outermost again

    # -- the terminal --------------------------------------------------------------------------

    def pytest_plugin_registered(self, plugin: object) -> None:
        """Historic: called for the plugins registered before this one too."""
        if isinstance(plugin, pytest.TerminalReporter) and self.redactor:
            _redact_terminal_writer(plugin._tw, self.redactor)

    def pytest_report_header(self) -> list[str]:
        count = self.redactor.unmaskable
        if not count:
            return []
        which = "a secret value is" if count == 1 else f"{count} secret values are"
        return [
            f"stagegate: WARNING: {which} shorter than {MIN_SECRET_LENGTH} characters (or made "
            f"of fewer than 3 different ones) and cannot be masked in the output; use a longer "
            f"one"
        ]

    # -- reports -------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        redact_report(report, self.redactor)
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(
        self,
    ) -> Generator[None, pytest.CollectReport | None, pytest.CollectReport | None]:
        report = yield
        if report is not None:
            redact_report(report, self.redactor)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        redact_report(report, self.redactor)  # replayed from an xdist worker

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        redact_report(report, self.redactor)

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        message = warning_message.message
        text = str(message)
        if self.redactor.found_in(text):
            if isinstance(message, Warning):
                message.args = (self.redactor(text),)
            else:
                warning_message.message = self.redactor(text)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """``pytest.exit(reason)``: the reason is shown in the terminal's last line."""
        exc = excinfo.value
        if isinstance(exc, pytest.exit.Exception) and self.redactor.found_in(exc.msg):
            exc.msg = self.redactor(exc.msg)
            exc.args = (exc.msg, *exc.args[1:])

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self, excrepr: object) -> None:
        _scrub(excrepr, self.redactor)

    # -- pytest's own JUnit XML ----------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self._redact_junitxml(session.config)

    def _redact_junitxml(self, config: pytest.Config) -> None:
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - pytest moved it
            return
        xml = config.stash.get(xml_key, None)
        path = getattr(xml, "logfile", None)
        if not path or not self.redactor:
            return
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if self.redactor.found_in(text):
                atomic_write_text(path, self.redactor(text))
        except OSError:
            pass  # pytest already said it could not write it


def redact_report(report: pytest.TestReport | pytest.CollectReport, redactor: Redactor) -> None:
    """Replace secrets in what pytest shows and stores of a report, in place: the long
    representation (string by string: traceback lines, locals, arguments, the crash message),
    the captured sections, skip and xfail reasons, user properties."""
    if not redactor:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = longrepr
        report.longrepr = (path, line, redactor(reason))
    elif isinstance(longrepr, str):
        report.longrepr = redactor(longrepr)
    elif longrepr is not None:
        try:
            _scrub(longrepr, redactor)
        except Exception:  # an unknown representation: keep its text only
            report.longrepr = redactor(str(longrepr))
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redactor(report.wasxfail)  # type: ignore[union-attr]
    # (twice per phase, three phases per test: a passing test's report has nothing else to
    # redact, and is not copied for nothing)
    if report.sections:
        report.sections = [(title, redactor(body)) for title, body in report.sections]
    if isinstance(report, pytest.TestReport) and report.user_properties:
        report.user_properties = [
            (name, redactor(value) if isinstance(value, str) else value)
            for name, value in report.user_properties
        ]


def _scrub(value: Any, redactor: Redactor, depth: int = 0) -> Any:
    """``value`` with every string in it redacted: lists in place, pytest's representation
    objects (``TerminalRepr``: anything with ``toterminal``) attribute by attribute."""
    if isinstance(value, str):
        return redactor(value)
    if depth > 30:
        return value
    if isinstance(value, list):
        value[:] = [_scrub(item, redactor, depth + 1) for item in value]
    elif type(value) is tuple:
        return tuple(_scrub(item, redactor, depth + 1) for item in value)
    elif hasattr(value, "toterminal") and hasattr(value, "__dict__"):
        for name, item in list(vars(value).items()):
            setattr(value, name, _scrub(item, redactor, depth + 1))
    return value


def _redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    message = record.getMessage()
    if redactor.found_in(message):
        record.msg, record.args = redactor(message), ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if redactor.found_in(text):
            record.exc_text = redactor(text)
    if record.stack_info and redactor.found_in(record.stack_info):
        record.stack_info = redactor(record.stack_info)


def _redact_terminal_writer(tw: Any, redactor: Redactor) -> None:
    """Wrap the writer's ``write`` and ``write_raw``, unless the outermost layer is ours
    already (called again at session start: ``--pastebin=all`` wraps ``write`` in its trylast
    configure to tee it to a web service, and must receive redacted text)."""
    write, write_raw = tw.write, tw.write_raw

    def redacting_write(msg: str, *, flush: bool = False, **markup: bool) -> None:
        write(_terminal_text(msg, redactor), flush=flush, **markup)

    def redacting_write_raw(msg: str, *, flush: bool = False) -> None:
        write_raw(_terminal_text(msg, redactor), flush=flush)

    if not getattr(write, "_stagegate_redacts", False):
        redacting_write._stagegate_redacts = True  # type: ignore[attr-defined]
        tw.write = redacting_write
    if not getattr(write_raw, "_stagegate_redacts", False):
        redacting_write_raw._stagegate_redacts = True  # type: ignore[attr-defined]
        tw.write_raw = redacting_write_raw


def _redact_cache(cache: Any, redactor: Redactor) -> None:
    """pytest's cache (``.pytest_cache``: ``--lf``, ``--nf``, ``--sw``) stores node ids, and a
    parametrize id can hold a secret: such an id is stored redacted (so ``--lf`` cannot pick
    that test again; CI caches and uploads this folder)."""
    set_value = cache.set

    def redacting_set(key: str, value: object) -> None:
        set_value(key, _scrub_json(value, redactor))

    cache.set = redacting_set


def _scrub_json(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {_scrub_json(k, redactor): _scrub_json(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_json(item, redactor) for item in value]
    return value


def _terminal_text(text: str, redactor: Redactor) -> str:
    masked = redactor(text)
    if "\x1b" in text:
        # colour codes inside a value (highlighted source, a diff) split its runs: if the text
        # without them masks more, that is what is shown (without its colours)
        plain = redactor(_ANSI.sub("", text))
        if plain != _ANSI.sub("", masked):
            return plain
    return masked
