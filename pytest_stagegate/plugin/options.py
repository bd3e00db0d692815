"""Parsers of option values. argparse turns their ArgumentTypeError into a usage error
(exit code 4, one line, no traceback)."""

from __future__ import annotations

import argparse
import os


def parse_workers(value: str) -> int:
    """``--gate-workers``: a whole number >= 0, or ``auto`` for the number of CPUs."""
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of Locust worker processes or 'auto', got {value!r}"
        ) from None
    if workers < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more worker processes, got {workers}")
    return workers


def parse_count(value: str) -> int:
    """A whole number >= 0 (``--gate-remote-workers``)."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {count}")
    return count


def parse_bind(value: str) -> tuple[str, int]:
    """``--gate-master-bind HOST:PORT``, e.g. ``0.0.0.0:5557``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 0.0.0.0:5557, got {value!r}")
    return host.strip("[]"), int(port)
