"""Values the scenario captured at run time (a login's token) are secrets too: the child's
redactor grows with them. Pure: no locust or gevent import.

``note(value)`` (the scenario, per captured JSON string or header value: ``Checks.evaluate``'s
``secrets``; never a number, a boolean, a list or an object) adds a value of at least
``MIN_CAPTURED_LENGTH`` (8) characters to this process's set: a token, a session id. Shorter
captured values (an id, "items", a JSON ``true``) would mask every word equal to them in the
errors, the log and the report, and are no credentials; at most ``MAX_CAPTURED`` of them (a
capture per iteration, an order id, would otherwise grow it without bound; past the cap the
newest are not added, and the log says so once). ``GrowingRedactor`` is a ``Redactor`` of the
plan's secrets (built once: a data file's values may be many) followed by one of the noted
values, rebuilt lazily when it is next used after the set grew (the log, the errors and names
of the result, the HTML report)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..._redact import Redactor

__all__ = ["MAX_CAPTURED", "MIN_CAPTURED_LENGTH", "GrowingRedactor", "note", "noted", "take_new"]

MAX_CAPTURED = 10_000
MIN_CAPTURED_LENGTH = 8  # a captured value shorter than this is no token: never masked

log = logging.getLogger("pytest_stagegate.load")

_noted: set[str] = set()
_unsent: list[str] = []  # noted since the last ``take_new`` (a worker's report)
_full = [False]


def note(value: str) -> None:
    """``value`` is a secret from now on (if it is long enough to be a token)."""
    if len(value) < MIN_CAPTURED_LENGTH or value in _noted:
        return
    if len(_noted) >= MAX_CAPTURED:
        if not _full[0]:
            _full[0] = True
            log.warning(
                "More than %d distinct captured values: the newest are no longer masked "
                "in the log and the report.",
                MAX_CAPTURED,
            )
        return
    _noted.add(value)
    _unsent.append(value)


def take_new() -> list[str]:
    """The values noted since the last call: a worker sends them to its master, whose
    redactor masks the errors the worker's requests reported (``note`` them there)."""
    new = _unsent[:]
    del _unsent[:]
    return new


def noted() -> frozenset[str]:
    return frozenset(_noted)


class GrowingRedactor(Redactor):
    """The plan's secrets and every value ``note``d so far."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(())
        self._base = Redactor(secrets)
        self.unmaskable = self._base.unmaskable
        self._seen = -1
        self._captured = Redactor(())

    def _refresh(self) -> Redactor:
        if len(_noted) != self._seen:
            self._seen = len(_noted)
            self._captured = Redactor(_noted)
        return self._captured

    def __call__(self, text: str) -> str:
        return self._refresh()(self._base(text))

    def __bool__(self) -> bool:
        return bool(self._base) or bool(self._refresh())

    def found_in(self, text: str) -> bool:
        return self._base.found_in(text) or self._refresh().found_in(text)
