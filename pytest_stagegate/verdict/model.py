"""The verdict: everything the promotion decision rests on (``Verdict``) and its JSON form.

The pytest glue collects what happened (one ``TestRecord`` per test, one ``GateRecord`` for the
load gate, problems such as a crashed xdist worker) into a ``Verdict``; its state and reasons
come from the policy in ``decide``; ``files.write_verdict`` writes ``to_dict()`` as
``stagegate-verdict.json``.

The JSON is deterministic: records, endpoints and checks are sorted, free-form mappings have
sorted keys, floats are rounded, so the same run gives byte-identical files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, get_args
from urllib.parse import urlsplit, urlunsplit

from .._version import __version__
from ..budgets import TOTAL, Check, EndpointStats, FailedStats, ServiceStats
from ..metrics import sort_key
from .decide import count_tests, decide, failure_order, sentence, sorted_checks
from .records import (
    SCHEMA_VERSION,
    CommitInfo,
    GateRecord,
    LoadModelRecord,
    ProblemKind,
    State,
    TestRecord,
)

__all__ = ["Verdict", "parse_timestamp", "public_url"]

_SURROGATES = re.compile("[\ud800-\udfff]")


class Verdict:
    """Everything the promotion decision rests on, and the decision (see ``decide``).

    Hooks may add to it before it is written (``add_check``, ``add_reason``, ``add_problem``);
    ``state``, ``promote`` and ``reasons`` are always computed from the current content.
    """

    def __init__(
        self,
        *,
        target_name: str,
        base_url: str,
        commit: CommitInfo,
        started_at: datetime,
        finished_at: datetime | None = None,
        tests: Sequence[TestRecord] = (),
        gate: GateRecord | None = None,
        problems: Sequence[tuple[ProblemKind, str]] = (),
        interrupted: bool = False,
        flaky_blocks: bool = False,
        gate_requested: bool = False,
        plugin_version: str = "",
        checks: Sequence[Check] = (),
        configured_base_url: str | None = None,
    ) -> None:
        self.target_name = target_name
        self.base_url = base_url
        # Set when a pytest_stagegate_configure_target hook replaced the configured target.
        self.configured_base_url = configured_base_url
        self.commit = commit
        self.started_at = started_at
        self.finished_at = finished_at
        self.tests: tuple[TestRecord, ...] = tuple(tests)
        self.gate = gate
        self.interrupted = interrupted
        self.flaky_blocks = flaky_blocks
        self._gate_requested = gate_requested
        self.plugin_version = plugin_version
        self._problems: list[tuple[ProblemKind, str]] = []
        for kind, reason in problems:
            self.add_problem(kind, reason)
        self._checks: list[Check] = list(checks)
        self._notes: list[str] = []

    def __repr__(self) -> str:
        return (
            f"<Verdict {self.state} target={self.target_name!r} tests={len(self.tests)} "
            f"gate={self.gate.status if self.gate else None!r}>"
        )

    # -- additions from hooks ---------------------------------------------------------------

    def add_check(self, check: Check) -> None:
        """Add a check of your own: ``fail`` fails the verdict, ``inconclusive`` makes it
        inconclusive (unless something worse already decided it)."""
        self._checks.append(check)

    def add_reason(self, reason: str) -> None:
        """Add an informational sentence; it does not change the state."""
        if reason.strip():
            self._notes.append(sentence(reason))

    def add_problem(self, state: ProblemKind, reason: str) -> None:
        """Report something that went wrong outside tests and checks, e.g. a crashed worker."""
        if state not in get_args(ProblemKind):
            raise ValueError(
                f"a problem is one of {', '.join(get_args(ProblemKind))}, got {state!r}"
            )
        self._problems.append((state, sentence(reason or "An unspecified problem occurred.")))

    @property
    def gate_requested(self) -> bool:
        """Whether the gate was asked for; a gate record implies it was."""
        return self._gate_requested or self.gate is not None

    @property
    def checks(self) -> tuple[Check, ...]:
        """Checks added by hooks (the gate's own checks are in ``gate.checks``)."""
        return tuple(self._checks)

    @property
    def problems(self) -> tuple[tuple[ProblemKind, str], ...]:
        return tuple(self._problems)

    # -- the decision -----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._decide()[0]

    @property
    def promote(self) -> bool:
        return self.state == "pass"

    @property
    def reasons(self) -> list[str]:
        """Plain sentences, most important first."""
        return self._decide()[1]

    def _decide(self) -> tuple[State, list[str]]:
        return decide(
            target_name=self.target_name,
            tests=self.tests,
            gate=self.gate,
            gate_requested=self.gate_requested,
            checks=self._checks,
            problems=self._problems,
            notes=self._notes,
            interrupted=self.interrupted,
            flaky_blocks=self.flaky_blocks,
        )

    # -- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The verdict as schema-1 JSON data (see ``schema()``)."""
        state, reasons = self._decide()
        finished = self.finished_at or datetime.now(timezone.utc)
        records = sorted(self.tests, key=lambda r: r.nodeid)
        counts = count_tests(records)
        order = failure_order
        data: dict[str, Any] = _scrub(
            {
                "schema": SCHEMA_VERSION,
                "verdict": state,
                "promote": state == "pass",
                "reasons": reasons,
                "target": {
                    "name": self.target_name,
                    "base_url": public_url(self.base_url),
                    **(
                        {}
                        if self.configured_base_url is None
                        else {
                            "replaced": True,
                            "configured_base_url": public_url(self.configured_base_url),
                        }
                    ),
                },
                "commit": {
                    "sha": self.commit.sha,
                    "ref": self.commit.ref,
                    "run_url": self.commit.run_url,
                    "source": self.commit.source,
                },
                "started_at": _timestamp(self.started_at),
                "finished_at": _timestamp(finished),
                "duration_s": max(
                    0.0, round((_utc(finished) - _utc(self.started_at)).total_seconds(), 3)
                ),
                "plugin_version": self.plugin_version or _own_version(),
                "interrupted": self.interrupted,
                "problems": [{"kind": kind, "reason": reason} for kind, reason in self._problems],
                "tests": {
                    **{key: value for key, value in counts.items() if key != "ran"},
                    "failed_tests": [
                        {
                            "nodeid": r.nodeid,
                            "outcome": r.outcome,
                            "critical": r.critical,
                            "message": r.message,
                            **_location(r),
                        }
                        for r in sorted(records, key=order)
                        if r.outcome in ("failed", "error")
                    ],
                    "flaky_tests": [
                        {
                            "nodeid": r.nodeid,
                            "critical": r.critical,
                            "reruns": r.reruns,
                            "message": r.message,
                            **_location(r),
                        }
                        for r in sorted(records, key=order)
                        if r.flaky and r.outcome == "passed"
                    ],
                    "records": [_record_dict(r) for r in records],
                },
                "gate": self._gate_dict(),
                "checks": [_check_dict(c) for c in sorted_checks(self._checks)],
            }
        )
        return data

    def _gate_dict(self) -> dict[str, Any] | None:
        if not self.gate_requested:
            return None
        gate = self.gate or GateRecord(
            status="not_run", reason="The load gate was requested but did not run."
        )
        return {
            "requested": True,
            "status": gate.status,
            "reason": gate.reason,
            "profile": _jsonable(gate.profile),
            "endpoints": [
                _endpoint_dict(e)
                for e in sorted(gate.endpoints, key=lambda e: (e.name == TOTAL, e.name))
            ],
            "checks": [_check_dict(c) for c in sorted_checks(gate.checks)],
            "generator": _jsonable(gate.generator),
            "load_seconds": _round(gate.load_seconds, 3) or 0.0,
            "waivers": [
                {"endpoint": w.endpoint, "metric": w.metric, "source": w.source}
                for w in sorted(gate.waivers, key=lambda w: w.endpoint)
            ],
            **({} if gate.load is None else {"load": _load_dict(gate.load)}),
            **(
                {"flows": [_endpoint_dict(f) for f in sorted(gate.flows, key=lambda f: f.name)]}
                if gate.flows
                else {}
            ),
        }


# -- helpers for the JSON ---------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken to be UTC: the glue uses datetime.now(timezone.utc) anyway.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _timestamp(moment: datetime) -> str:
    moment = _utc(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def parse_timestamp(text: str) -> datetime:
    """A verdict timestamp (``2025-01-15T10:00:00Z``) as an aware UTC datetime."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _utc(datetime.fromisoformat(text))


def public_url(url: str) -> str:
    """``url`` without credentials: the verdict is an artifact anyone in CI may read."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _own_version() -> str:
    return __version__


def _round(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def _number(value: float) -> float | int | None:
    # Counts stay integers in the JSON; measurements are rounded like the rest.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _round(value, 3)


def _scrub(value: Any) -> Any:
    """Lone surrogates (from bytes decoded with surrogateescape) replaced: UTF-8 cannot hold
    them, and the verdict must be writable whatever a test printed."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def _jsonable(value: Any) -> Any:
    """Free-form data (profile, generator) as deterministic JSON data."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _round(value, 6)
    return str(value)  # Path, Enum, ...: their text is what a reader wants to see


def _record_dict(record: TestRecord) -> dict[str, Any]:
    return {
        "nodeid": record.nodeid,
        "outcome": record.outcome,
        "duration": _round(record.duration, 3) or 0.0,
        "critical": record.critical,
        "smoke": record.smoke,
        "flaky": record.flaky,
        "reruns": record.reruns,
        "message": record.message,
        "safety_skip": record.safety_skip,
        "requests": None
        if record.requests is None
        else {key: _number(record.requests[key]) for key in sorted(record.requests)},
        **_location(record),
    }


def _location(record: TestRecord) -> dict[str, Any]:
    return {"source": _source(record.file, record.line)} if record.file else {}


def _endpoint_dict(stats: EndpointStats) -> dict[str, Any]:
    # requests, none of them successful or timed out: no latency at all, not 0 ms
    timed = stats.latency_samples != 0 or stats.requests == 0
    return {
        "name": stats.name,
        "requests": stats.requests,
        "failures": stats.failures,
        "error_rate": _round(stats.error_rate, 6),
        "rps": _round(stats.rps, 3),
        "avg_ms": _round(stats.avg_ms if timed else None, 3),
        "min_ms": _round(stats.min_ms if timed else None, 3),
        "max_ms": _round(stats.max_ms if timed else None, 3),
        "percentiles": {
            key: _round(stats.percentiles[key] if timed else None, 3)
            for key in sorted(stats.percentiles, key=sort_key)
        },
        "timeouts": stats.timeouts,
        "failed": _failed_dict(stats.failed),
        **({} if stats.service is None else {"service_time": _service_dict(stats.service)}),
        **(
            {"status_classes": {k: stats.status_classes[k] for k in sorted(stats.status_classes)}}
            if stats.status_classes
            else {}
        ),
    }


def _load_dict(load: LoadModelRecord) -> dict[str, Any]:
    return {
        "model": load.model,
        "rate": _round(load.rate, 6),
        "iterations_due": load.iterations_due,
        "dropped": load.dropped,
        "dropped_share": _round(load.dropped / load.iterations_due, 6)
        if load.iterations_due
        else 0.0,
        "unanswered": load.unanswered,
        "unanswered_measured": load.unanswered_measured,
        **({} if load.engine is None else {"engine": load.engine}),
        "arrival_lag_s": _round(load.arrival_lag_s, 3),
        "stages": [
            {
                "name": s.name,
                "start_s": _round(s.start_s, 3) or 0.0,
                "end_s": _round(s.end_s, 3) or 0.0,
                "judged": s.judged,
                "level_from": _round(s.level_from, 6) or 0.0,
                "level_to": _round(s.level_to, 6) or 0.0,
                "unit": s.unit,
                "requests": s.requests,
                "failures": s.failures,
                # the open model's judged stages only (absent elsewhere, as in older verdicts)
                **(
                    {"iterations_due": s.iterations_due, "dropped": s.dropped}
                    if s.iterations_due is not None
                    else {}
                ),
                "endpoints": [
                    _endpoint_dict(e)
                    for e in sorted(s.endpoints, key=lambda e: (e.name == TOTAL, e.name))
                ],
            }
            for s in load.stages
        ],
        "timeline": [
            {
                "t": _round(p.t, 3) or 0.0,
                "requests": p.requests,
                "failures": p.failures,
                "p95_ms": _round(p.p95_ms, 3),
                "stage": p.stage,
                "judged": p.judged,
            }
            for p in sorted(load.timeline, key=lambda p: p.t)
        ],
    }


def _service_dict(service: ServiceStats) -> dict[str, Any]:
    return {
        "samples": service.samples,
        "avg_ms": _round(service.avg_ms, 3),
        "min_ms": _round(service.min_ms, 3),
        "max_ms": _round(service.max_ms, 3),
        "percentiles": {
            key: _round(service.percentiles[key], 3)
            for key in sorted(service.percentiles, key=sort_key)
        },
    }


def _failed_dict(failed: FailedStats | None) -> dict[str, Any] | None:
    if failed is None:
        return None
    return {
        "requests": failed.requests,
        "avg_ms": _round(failed.avg_ms, 3),
        "min_ms": _round(failed.min_ms, 3),
        "max_ms": _round(failed.max_ms, 3),
        "percentiles": {
            key: _round(failed.percentiles[key], 3)
            for key in sorted(failed.percentiles, key=sort_key)
        },
    }


def _check_dict(check: Check) -> dict[str, Any]:
    return {
        "endpoint": check.endpoint,
        "metric": check.metric,
        "observed": _round(check.observed, 6),
        "limit": _round(check.limit, 6),
        "unit": check.unit,
        "samples": check.samples,
        "outcome": check.outcome,
        "message": check.message,
        "baseline": _round(check.baseline, 6),
        **({"stage": check.stage} if check.stage else {}),
        **({"covers": list(check.covers)} if check.covers else {}),
        **({"source": _source(check.file, check.line)} if check.file else {}),
    }


def _source(file: str, line: int | None) -> dict[str, Any]:
    """Where a budget or a test is written: the file relative to the rootdir and its line
    (absent when unknown)."""
    return {"file": file, **({} if line is None else {"line": line})}
