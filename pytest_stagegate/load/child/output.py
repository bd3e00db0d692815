"""The child's output: stdout kept for the JSON event stream, everything else (Locust's log, a
locustfile's prints, gevent's tracebacks) to stderr with the plan's secrets redacted."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import IO, Any

from ..._redact import RedactingStream, Redactor

__all__ = ["EventStream", "RedactingFormatter", "setup_io"]


class RedactingFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def setup_io(redact: Redactor) -> IO[str]:
    """Keep the real stdout for JSON lines only; everything else writes to stderr, redacted."""
    events_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # C extensions and anything writing to fd 1 land in stderr
    sys.stderr = RedactingStream(sys.stderr, redact)  # tracebacks gevent's hub prints
    sys.stdout = sys.stderr  # print() from Locust or a locustfile
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # INFO: Locust's own account of the run (ramp-up, stop) is what stagegate-load.log is for.
    root.setLevel(logging.INFO)
    return events_out


class EventStream:
    """JSON lines to the parent: ``started``, then ``progress`` (docs/load-engine.md)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def emit(self, event: str, **fields: Any) -> None:
        try:
            self._out.write(json.dumps({"event": event, **fields}) + "\n")
            self._out.flush()
        except (OSError, ValueError):
            pass  # the parent stopped reading: it is killing us or gone; nothing to tell
