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
