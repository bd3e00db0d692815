"""``RunState``: what a run learns, kept in ``config.stash[RUN_STATE]``.

Only ``session.StagegateRun`` changes it; the gate, the verdict writer, the terminal summary and
the fixtures read values from it or return values for the session to store. Light: the types
it holds are imported for type checking only, so the fixtures can read the stash without
loading httpx.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .._redact import Redactor  # light: imports nothing of the project

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
    # every secret of the run and its one redactor: set by the session once the target is final
    secrets: RunSecrets = dataclasses.field(default_factory=lambda: RunSecrets())


@dataclasses.dataclass(frozen=True)
class RunSecrets:
    """Every secret a run masks in all it writes, and the one ``Redactor`` that does it: the
    secrets of the target it measures, those of the target stagegate.yaml configured when a
    ``pytest_stagegate_configure_target`` hook replaced it (a hook's message or a load error
    may still carry them), and the verdict's signing key. Never shown (``repr`` holds no
    value).

    ``shared`` are the ones handed to other processes (the load child's plan, xdist workers),
    so they mask them too: all but the signing key, which no process running the project's
    code (tests, hooks, locustfiles) may hold; it stays in this one."""

    shared: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    signing_key: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    # $STAGEGATE_WORKER_TOKEN whenever the environment holds one (remote workers or not): masked
    # here and on xdist workers (from their own environment); the load master and its workers
    # get it by their environment only
    worker_token: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)

    @classmethod
    def of(
        cls, target: Target, configured: Target | None = None, signing_key: bytes | None = None
    ) -> RunSecrets:
        shared = set(target.secrets)
        if configured is not None:
            shared |= configured.secrets
        key: set[str] = set()
        if signing_key:
            # as os.environ holds it; the parts between undecodable bytes, which the URL and
            # JSON forms of a mask cannot encode
            text = signing_key.decode("utf-8", "surrogateescape")
            key.update(part for part in _SURROGATES.split(text) if part)
        return cls(frozenset(shared), frozenset(key))

    @property
    def values(self) -> frozenset[str]:
        """All of them."""
        return self.shared | self.signing_key | self.worker_token

    @functools.cached_property
    def redactor(self) -> Redactor:
        """Built once: it runs on every line of output."""
        return Redactor(self.values)

    def __call__(self, text: str) -> str:
        """``text`` with every form of every secret of the run masked."""
        return self.redactor(text)


_SURROGATES = re.compile("[\udc80-\udcff]+")


RUN_STATE = pytest.StashKey[RunState]()
