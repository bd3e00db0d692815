"""``RunState``: what a run learns, kept in ``config.stash[RUN_STATE]``.

Only ``session.StagegateRun`` changes it; the gate, the verdict writer, the terminal summary and
the fixtures read values from it or return values for the session to store. Light: the types
it holds are imported for type checking only, so the fixtures can read the stash without
loading httpx.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..budgets import EndpointStats
    from ..config import GateSettings, Target
    from ..target.client import RequestLog
    from ..verdict import GateRecord, Verdict
    from ..verdict.records import ProblemKind
    from .records import TestRecorder

    Problem = tuple[ProblemKind, str]


@dataclasses.dataclass(frozen=True)
class GateOutcome:
    """What the gate returns: its record, Locust's log, the most frequent load errors (as
    phrases) and the problems met on the way (a failing hook)."""

    record: GateRecord
    load_log: Path | None = None
    load_errors: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclasses.dataclass
class RunState:
    """The run's state. Set up in ``pytest_configure``; mutated only by the session."""

    target: Target  # as stagegate.yaml and the pytest_stagegate_configure_target hook made it
    known_targets: tuple[str, ...]  # every name stagegate.yaml defines
    gate_settings: GateSettings
    request_log: RequestLog  # the fixtures' requests, taken per test
    recorder: TestRecorder
    started_at: datetime
    baseline: dict[str, EndpointStats] | None = None  # read from --gate-baseline
    problems: list[Problem] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    # The target as stagegate.yaml configured it, when the configure_target hook replaced it.
    configured_target: Target | None = None
    running: tuple[str, tuple[str, int | None, str]] | None = None  # the test in progress
    gate: GateOutcome | None = None  # once the gate ran
    verdict: Verdict | None = None  # once decided
    verdict_data: dict[str, Any] | None = None  # verdict.to_dict(), as written


RUN_STATE = pytest.StashKey[RunState]()
