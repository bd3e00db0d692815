"""The exceptions pytest-stagegate raises.

    StagegateError                 anything the user can fix; shown as one paragraph, no traceback
     +-- ConfigError               stagegate.yaml (or an option) is wrong: names file, line and key
     +-- TargetNotReady            the readiness wait or the version check failed
     +-- LoadError                 the load process could not run or crashed

The pytest glue turns ConfigError into ``pytest.UsageError`` (exit code 4); the CLI prints the
message and exits with a non-zero code. Nothing here imports pytest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def closest(word: object, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitive), or None when none is close."""
    folded = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(str(word).lower(), list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """``"; did you mean 'timeout'?"`` for the closest candidate, or ``""``."""
    match = closest(word, candidates)
    return f"; did you mean {match!r}?" if match else ""


class StagegateError(Exception):
    """An error the user can fix; ``str(error)`` is the whole message."""


class ConfigError(StagegateError):
    """A bad setting. The message names where it is: ``file:line: key: problem. fix``."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.key = key
        self.problem = message
        where = ""
        if self.path is not None:
            where = str(self.path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class TargetNotReady(StagegateError):
    """The target did not become ready, or runs another build than expected."""


class LoadError(StagegateError):
    """The load generator could not be started or died."""
