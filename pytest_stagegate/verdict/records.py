"""What a verdict is made of: one ``TestRecord`` per test, one ``GateRecord`` for the load gate,
the ``CommitInfo`` under test, and the names of states, outcomes and problem kinds.

Plain frozen values; the decision is in ``decide``, the JSON form in ``model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..budgets import Check, EndpointStats, Waiver

__all__ = [
    "SCHEMA_VERSION",
    "CommitInfo",
    "GateRecord",
    "GateStatus",
    "LoadModelRecord",
    "ProblemKind",
    "StageRecord",
    "State",
    "TestOutcome",
    "TestRecord",
    "TimelineRecord",
]

# The version of the verdict's JSON form (pytest_stagegate/schema/verdict-1.schema.json).
SCHEMA_VERSION = 1

State = Literal["pass", "fail", "error", "inconclusive"]
ProblemKind = Literal["fail", "error", "inconclusive"]
TestOutcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
GateStatus = Literal["completed", "aborted", "not_run", "refused", "error"]


@dataclass(frozen=True)
class TestRecord:
    """What happened to one test, as the verdict sees it."""

    __test__ = False  # not a test class, even though pytest would collect the name

    nodeid: str
    outcome: TestOutcome
    duration: float = 0.0
    critical: bool = False
    smoke: bool = False
    flaky: bool = False  # passed only after reruns (pytest-rerunfailures)
    reruns: int = 0
    message: str = ""  # one-line failure or skip reason, already redacted
    safety_skip: bool = False  # destructive test skipped because the target is protected
    # smoke-request latency summary from the http fixture: count, failures, avg_ms, p50_ms, max_ms
    requests: Mapping[str, float] | None = None
    # where the test is: its file relative to the rootdir and the 1-based line of its
    # definition (pytest's item location), for annotations; "" and None when unknown
    file: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StageRecord:
    """One stage of ``gate.load.stages`` as it ran (seconds from the load start); for a stage
    with budgets of its own, its requests' measurements (``endpoints``, total last)."""

    name: str
    start_s: float
    end_s: float
    judged: bool
    level_from: float
    level_to: float
    unit: Literal["users", "iterations/s"]
    endpoints: Sequence[EndpointStats] = ()
    # every stage: its requests and failures as the verdict counts them (a judged stage's
    # judged ones, all of an unjudged one's), by start or due time; None: not counted
    requests: int | None = None
    failures: int | None = None
    # the open model, a judged stage: its judged window's iterations due and dropped (what its
    # budgets' dropped rule is judged on); None otherwise
    iterations_due: int | None = None
    dropped: int | None = None


@dataclass(frozen=True)
class TimelineRecord:
    """One interval of the load (``t``: its end, seconds from the load start): the requests
    that ended in it and the p95 of its successes and timeouts (None: none)."""

    t: float
    requests: int
    failures: int
    p95_ms: float | None
    stage: str = ""
    judged: bool = True


@dataclass(frozen=True)
class LoadModelRecord:
    """How the load was driven: the closed model (users) or the open one (iterations started
    at ``rate`` per second, over all workers); the open model's ``iterations_due`` in the
    judged windows and the ``dropped`` ones among them (not started within ``arrival_lag_s``);
    the stages and the timeline; the requests still waiting when the load stopped
    (``unanswered``) and the judged ones among them, in the latency at their waits so far
    (``unanswered_measured``)."""

    model: Literal["closed", "open"] = "closed"
    rate: float | None = None
    iterations_due: int = 0
    dropped: int = 0
    arrival_lag_s: float | None = None
    stages: Sequence[StageRecord] = ()
    timeline: Sequence[TimelineRecord] = ()
    unanswered: int = 0
    unanswered_measured: int = 0
    # the path the requests took: "lean" (the declarative scenario's own), "locust" (Locust's
    # HttpUser/FastHttpUser: user_class http or $STAGEGATE_LOAD_PATH=locust) or "locustfile";
    # None: not known (the verdict leaves it out)
    engine: str | None = None


@dataclass(frozen=True)
class GateRecord:
    """What the load gate did and measured."""

    status: GateStatus
    reason: str = ""  # a sentence, for aborted / not_run / refused / error
    # users, spawn_rate, duration_s, warmup_s, workers, scenario ("requests" | "locustfile")
    profile: Mapping[str, Any] = field(default_factory=dict)
    endpoints: Sequence[EndpointStats] = ()  # TOTAL included, named "total"
    checks: Sequence[Check] = ()
    # load-generator health: processes, cpu_max_percent, saturated (bool), note
    generator: Mapping[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0
    waivers: Sequence[Waiver] = ()  # error budgets waived (error_rate: off): a warning each
    load: LoadModelRecord | None = None  # the load model, stages and timeline (0.2)
    # each declared flow (gate.load.flows), ``kind`` "flow": iterations, their durations (0.2)
    flows: Sequence[EndpointStats] = ()


@dataclass(frozen=True)
class CommitInfo:
    """The commit under test and where that knowledge came from."""

    sha: str | None = None
    ref: str | None = None
    run_url: str | None = None
    source: str = "unknown"  # "github" | "gitlab" | "env" | "git" | "unknown"
