"""How the load child gives up: ``LoadFailure`` (the reason for an error result), its exit
codes, and the one-line account of an exception. Pure."""

from __future__ import annotations

import traceback

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_ORPHANED", "LoadFailure", "last_line"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ORPHANED = 70


class LoadFailure(Exception):
    """The run cannot go on; ``str()`` is the reason for the result."""

    def __init__(self, reason: str, exit_code: int = EXIT_OK) -> None:
        super().__init__(reason)
        self.exit_code = exit_code


def last_line(exc: BaseException) -> str:
    """``"ValueError: boom"``; a SyntaxError with its line, never a traceback."""
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"SyntaxError: {exc.msg}{where}"
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__
