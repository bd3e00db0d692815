"""The redaction plugin's pieces, in-process: the terminal writer (also under a later tee such
as ``--pastebin=all``), log records, pytest's representation objects, cache values. The
channels end to end are in tests/e2e/test_leak_matrix.py."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from _pytest._io import TerminalWriter

from pytest_stagegate._redact import Redactor
from pytest_stagegate.plugin.redaction import (
    _redact_record,
    _redact_terminal_writer,
    _scrub,
    _scrub_json,
)

SECRET = "tok-6f1d0c2b9a8e7d6c5b4a"
REDACT = Redactor([SECRET])


def test_the_terminal_writer_and_a_tee_wrapped_after_it() -> None:
    out = io.StringIO()
    tw = TerminalWriter(out)
    _redact_terminal_writer(tw, REDACT)
    teed: list[str] = []
    inner = tw.write

    def tee_write(msg: str, **kwargs: bool) -> None:  # what --pastebin=all does
        inner(msg, **kwargs)
        teed.append(msg)

    tw.write = tee_write  # type: ignore[method-assign]
    _redact_terminal_writer(tw, REDACT)  # at session start: outermost again
    tw.line(f"E   assert {SECRET!r} == 'x'")
    tw.write_raw(f"raw {SECRET[:12]}\n")
    tw.sep("=", f"summary {SECRET}")
    assert SECRET[:8] not in out.getvalue()
    assert "E   assert '***' == 'x'" in out.getvalue()
    assert "raw ***" in out.getvalue()
    assert teed and all(SECRET[:8] not in msg for msg in teed)


def test_colour_codes_inside_a_secret_do_not_hide_it() -> None:
    out = io.StringIO()
    tw = TerminalWriter(out)
    _redact_terminal_writer(tw, REDACT)
    tw.write_raw(f"{SECRET[:6]}\x1b[31m{SECRET[6:12]}\x1b[0m\n")  # two parts shorter than a run
    tw.write_raw("\x1b[32mPASSED\x1b[0m\n")
    assert out.getvalue() == "***\n\x1b[32mPASSED\x1b[0m\n"


def test_a_log_record_with_args_and_an_exception() -> None:
    try:
        raise ValueError(f"bad {SECRET}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "got %s", (SECRET,), exc_info)
    _redact_record(record, REDACT)
    text = logging.Formatter().format(record)
    assert record.getMessage() == "got ***"
    assert "ValueError: bad ***" in text
    assert SECRET[:8] not in text


def test_a_log_record_without_a_secret_is_untouched() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "n=%d", (5,), None)
    _redact_record(record, REDACT)
    assert (record.msg, record.args) == ("n=%d", (5,))


def test_pytest_representations_are_scrubbed_in_place() -> None:
    def lookup(token: str) -> None:
        local = token
        try:
            raise KeyError(local)
        except KeyError as exc:
            raise RuntimeError(f"lookup of {local} failed") from exc

    with pytest.raises(RuntimeError) as info:
        lookup(SECRET)
    longrepr = info.getrepr(showlocals=True, funcargs=True, chain=True)
    assert SECRET in str(longrepr)
    same = _scrub(longrepr, REDACT)
    assert same is longrepr
    assert SECRET[:8] not in str(longrepr)
    assert longrepr.reprcrash is not None
    assert longrepr.reprcrash.message == "RuntimeError: lookup of *** failed"
    assert "local      = '***'" in str(longrepr)


def test_cache_values() -> None:
    value = {f"test_a.py::test[{SECRET}]": True, "n": [f"x[{SECRET}]", 3]}
    assert _scrub_json(value, REDACT) == {"test_a.py::test[***]": True, "n": ["x[***]", 3]}
