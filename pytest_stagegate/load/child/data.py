"""The data file's rows, one per iteration (``gate.load.data``). Pure: no locust or gevent
import, so it is unit-tested in the pytest process (docs/load-engine.md, Scenarios in the
child).

The rows come in the plan (read at plan time). Each load process has a ``Feeder``; with ``W``
workers, worker ``k`` has the share ``k`` of ``W`` (the master says which, as for the open
model's slots); a local process is 0 of 1.

- ``cycle``: the rows in order, wrapping; each process starts at its share's offset
  (``k * n // W``), so the workers do not all begin with the first row.
- ``random``: uniformly, with replacement (a seeded ``random.Random`` per process).
- ``unique``: each row at most once over every user and worker: worker ``k`` takes the rows
  ``i % W == k``, in order. When its share is used up, ``take`` gives None and ``ran_out`` is
  set: the controller ends the load (``exhausted_reason``), and the verdict judges what ran.

In a worker, ``take`` gives None (and nothing is taken) until the share is known
(``waiting``): a unique row must never be handed out under the wrong share. ``close`` ends the
handing out (the unique rows ran out in another process: the load ends once the iterations
under way here are over).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ..plan import LoadPlan

__all__ = ["Feeder", "exhausted_reason"]

Row = Mapping[str, str]


class Feeder:
    """One process's rows of the data file (see the module docstring)."""

    def __init__(self, rows: Sequence[Row], mode: str, *, seed: int | None = None) -> None:
        if mode not in ("cycle", "random", "unique"):
            raise ValueError(f"unknown data mode {mode!r}")
        self.rows = list(rows)
        self.mode = mode
        self.k, self.workers = 0, 1
        self.waiting = False  # a worker before the master gave it its share
        self.ran_out = False
        self.taken = 0  # rows handed out by this process
        self._reported = 0
        self._next = 0
        self._random = random.Random(seed)

    def share(self, k: int, workers: int) -> None:
        """This process is worker ``k`` of ``workers``; rows are handed out from now on."""
        if not 0 <= k < workers:
            raise ValueError(f"worker {k} of {workers}")
        self.k, self.workers = k, workers
        n = len(self.rows)
        self._next = k if self.mode == "unique" else (k * n // workers if n else 0)
        self.waiting = False

    def take(self) -> Row | None:
        """The next row; None while ``waiting``, or once a unique share is used up."""
        if self.waiting or self.ran_out or not self.rows:
            return None
        if self.mode == "random":
            row = self.rows[self._random.randrange(len(self.rows))]
        elif self.mode == "cycle":
            row = self.rows[self._next]
            self._next = (self._next + 1) % len(self.rows)
        else:
            if self._next >= len(self.rows):
                self.ran_out = True
                return None
            row = self.rows[self._next]
            self._next += self.workers
        self.taken += 1
        return row

    def close(self) -> None:
        """No row is handed out any more, as if this share had run out."""
        self.ran_out = True

    def take_count(self) -> int:
        """Rows handed out since the last call (a worker's report)."""
        fresh = self.taken - self._reported
        self._reported = self.taken
        return fresh


def exhausted_reason(plan: LoadPlan, iterations: int) -> str:
    """Why the load ended early: the unique rows ran out after ``iterations`` iterations."""
    name = plan.data_file or "the data file"
    return (
        f"The data file {name} ran out of unique rows after {iterations:,} "
        f"iteration{'s' if iterations != 1 else ''} (data mode unique: each of its "
        f"{len(plan.data_rows):,} rows is used once at most), before the gate's duration was "
        "over; the verdict judges what ran."
    )
