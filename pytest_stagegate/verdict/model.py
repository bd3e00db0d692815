"""The verdict: may this deployment be promoted? The model, its JSON form and its schema.

The pytest glue collects what happened (one ``TestRecord`` per test, one ``GateRecord`` for the
load gate, problems such as a crashed xdist worker) into a ``Verdict``; ``write_verdict`` writes
it atomically as ``stagegate-verdict.json``, which ``stagegate verify`` later reads back with
``load_verdict`` (parsed and validated against the JSON Schema shipped in
``pytest_stagegate/schema/verdict-1.schema.json``).

Decision policy, first match wins:

1. ``error``: the run was interrupted (Ctrl-C, ``-x``, a crash of the session). Whatever
   happened before cannot be trusted to be complete.
2. ``fail``: anything shows the deployment is broken:
   - a test failed or errored (a critical one is named as such and listed first);
   - a critical test passed only after reruns (a flaky critical path is not a working one);
   - a non-critical test passed only after reruns, when ``flaky_blocks`` is set;
   - a budget check failed (gate checks and checks added by hooks);
   - the load gate was aborted early (the abort reason is the verdict's reason);
   - a problem of kind ``fail`` was reported (e.g. an xdist worker crashed).
3. ``error``: the machinery could not decide: the gate errored, the gate was refused (a
   protected target without ``allow_load``), or a problem of kind ``error`` was reported.
4. ``inconclusive``: nothing is broken but something was not proven: a check without enough
   samples, a problem of kind ``inconclusive``, a gate that was requested but did not run, a
   gate that ran without a single budget to check, or a run in which no test ran (all skipped
   or none collected), no gate was requested and no hook added a check.
5. ``pass`` otherwise; ``promote`` is true exactly then.

Outcomes: ``xfailed`` is an expected failure and never blocks. ``xpassed`` means a non-strict
XPASS (pytest reports a strict XPASS as ``failed``, and the glue records it so) and does not
block either. Skipped tests neither block nor count as run. A saturated load generator adds a
warning sentence but does not change the state: the measured latencies are then an upper bound,
so a passing gate still passed.

``reasons`` are plain sentences, most important first: for ``pass`` one summary sentence
("All 12 tests passed and all 7 budgets held on staging."), otherwise the sentences that
decided the state, then the other findings, then warnings and sentences added by hooks.

The JSON is deterministic: records, endpoints and checks are sorted, free-form mappings have
sorted keys, floats are rounded, so the same run gives byte-identical files.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from .._atomic import atomic_open
from .._version import __version__
from ..budgets import TOTAL, Check, EndpointStats
from ..errors import StagegateError
from ..units import format_limit, format_observed

__all__ = [
    "SCHEMA_VERSION",
    "CommitInfo",
    "GateRecord",
    "GateStatus",
    "ProblemKind",
    "State",
    "TestOutcome",
    "TestRecord",
    "Verdict",
    "VerdictError",
    "baseline_stats",
    "load_verdict",
    "parse_timestamp",
    "schema",
    "validate_verdict",
    "write_verdict",
]

SCHEMA_VERSION = 1
SCHEMA_RESOURCE = "schema/verdict-1.schema.json"

State = Literal["pass", "fail", "error", "inconclusive"]
ProblemKind = Literal["fail", "error", "inconclusive"]
TestOutcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
GateStatus = Literal["completed", "aborted", "not_run", "refused", "error"]

# Beyond this many, one sentence per test drowns the reasons; the full list is in the JSON.
_MAX_TEST_REASONS = 10
_MAX_REASON_CHARS = 500
_SURROGATES = re.compile("[\ud800-\udfff]")


class VerdictError(StagegateError):
    """A verdict file that cannot be used: missing, not JSON, another schema, or invalid."""


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


@dataclass(frozen=True)
class GateRecord:
    """What the load gate did and measured."""

    status: GateStatus
    reason: str = ""  # a sentence, for aborted / not_run / refused / error
    # users, spawn_rate, duration_s, warmup_s, workers, scenario ("requests" | "locustfile")
    profile: Mapping[str, Any] = field(default_factory=dict)
    endpoints: Sequence[EndpointStats] = ()  # TOTAL included, named "total"
    checks: Sequence[Check] = ()
    # load-generator health: processes, max_cpu_percent, saturated (bool), note
    generator: Mapping[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0


@dataclass(frozen=True)
class CommitInfo:
    """The commit under test and where that knowledge came from."""

    sha: str | None = None
    ref: str | None = None
    run_url: str | None = None
    source: str = "unknown"  # "github" | "gitlab" | "env" | "git" | "unknown"


class Verdict:
    """Everything the promotion decision rests on, and the decision (see the module docstring).

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
    ) -> None:
        self.target_name = target_name
        self.base_url = base_url
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
            self._notes.append(_sentence(reason))

    def add_problem(self, state: ProblemKind, reason: str) -> None:
        """Report something that went wrong outside tests and checks, e.g. a crashed worker."""
        if state not in get_args(ProblemKind):
            raise ValueError(
                f"a problem is one of {', '.join(get_args(ProblemKind))}, got {state!r}"
            )
        self._problems.append((state, _sentence(reason or "An unspecified problem occurred.")))

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
        fails: list[str] = []
        errors: list[str] = []
        unproven: list[str] = []
        notes: list[str] = []
        records = sorted(self.tests, key=lambda r: r.nodeid)
        counts = _count(records)

        broken = [r for r in records if r.outcome in ("failed", "error")]
        flaky = [r for r in records if r.flaky and r.outcome == "passed"]
        fails += _limited(
            [_failure_sentence(r) for r in broken if r.critical], "critical tests failed"
        )
        fails += _limited(
            [_flaky_sentence(r, "Critical test") for r in flaky if r.critical],
            "critical tests passed only after reruns",
        )

        gate = self.gate
        if gate is not None:
            if gate.status == "aborted":
                # The load process's reason is a whole sentence: "Stopped the load after ..."
                stopped = gate.reason.strip().startswith("Stopped the load")
                fails.append(
                    _sentence(gate.reason)
                    if stopped
                    else _joined("The load gate was aborted early", gate.reason)
                )
            elif gate.status == "error":
                errors.append(_joined("The load gate could not run", gate.reason))
            elif gate.status == "refused":
                errors.append(_joined("The load gate was refused", gate.reason))
            elif gate.status == "not_run":
                unproven.append(_joined("The load gate did not run", gate.reason))
            elif not gate.checks:
                unproven.append("The load gate ran, but there was no budget to check it against.")
        elif self.gate_requested:
            unproven.append("The load gate was requested but did not run.")

        all_checks = _sorted_checks([*(gate.checks if gate else ()), *self._checks])
        fails += [_check_sentence(c) for c in all_checks if c.outcome == "fail"]
        unproven += [_check_sentence(c) for c in all_checks if c.outcome == "inconclusive"]

        fails += [reason for kind, reason in self._problems if kind == "fail"]
        errors += [reason for kind, reason in self._problems if kind == "error"]
        unproven += [reason for kind, reason in self._problems if kind == "inconclusive"]

        fails += _limited([_failure_sentence(r) for r in broken if not r.critical], "tests failed")
        if self.flaky_blocks:
            fails += _limited(
                [
                    _flaky_sentence(r, "Test") + " Flaky tests block promotion here."
                    for r in flaky
                    if not r.critical
                ],
                "tests passed only after reruns",
            )
        else:
            notes += _limited(
                [
                    _flaky_sentence(r, "Test") + " Flaky tests do not block promotion."
                    for r in flaky
                    if not r.critical
                ],
                "tests passed only after reruns",
            )

        if counts["ran"] == 0 and not self.gate_requested and not self._checks:
            skipped = counts["skipped"]
            unproven.append(
                "No tests ran"
                + (f" ({_plural(skipped, 'test')} skipped)" if skipped else "")
                + " and the load gate was not requested, so nothing was verified."
            )

        if counts["safety_skipped"]:
            n = counts["safety_skipped"]
            notes.append(
                f"{_plural(n, 'destructive test')} {'was' if n == 1 else 'were'} skipped "
                f"because {self.target_name} is protected."
            )
        if gate is not None and gate.generator.get("saturated"):
            notes.append(_saturation_sentence(gate.generator))
        notes += self._notes

        state: State
        if self.interrupted:
            state = "error"
            decisive = [
                "The run was interrupted before it finished, so its results are incomplete "
                "and cannot support a promotion."
            ]
        elif fails:
            state, decisive = "fail", []
        elif errors:
            state, decisive = "error", []
        elif unproven:
            state, decisive = "inconclusive", []
        else:
            return "pass", [self._summary(counts, gate), *notes]
        return state, [*decisive, *fails, *errors, *unproven, *notes]

    def _summary(self, counts: Mapping[str, int], gate: GateRecord | None) -> str:
        clauses: list[str] = []
        if counts["ran"]:
            passed = counts["passed"]
            clause = (
                f"all {passed} tests passed" if passed > 1 else f"{_plural(passed, 'test')} passed"
            )
            extras = [
                f"{counts[key]} {label}"
                for key, label in (
                    ("skipped", "skipped"),
                    ("xfailed", "xfailed"),
                    ("xpassed", "xpassed"),
                )
                if counts[key]
            ]
            clauses.append(clause + (f" ({', '.join(extras)})" if extras else ""))
        if gate is not None:
            n = len(gate.checks)
            clauses.append(f"all {n} budgets held" if n > 1 else "the 1 budget held")
        if self._checks:
            n = len(self._checks)
            clauses.append(f"all {n} extra checks passed" if n > 1 else "the 1 extra check passed")
        text = ", ".join(clauses[:-1]) + " and " + clauses[-1] if len(clauses) > 1 else clauses[0]
        return f"{text[0].upper()}{text[1:]} on {self.target_name}."

    # -- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The verdict as schema-1 JSON data (see ``schema()``)."""
        state, reasons = self._decide()
        finished = self.finished_at or datetime.now(timezone.utc)
        records = sorted(self.tests, key=lambda r: r.nodeid)
        counts = _count(records)
        order = _failure_order
        data: dict[str, Any] = _scrub(
            {
                "schema": SCHEMA_VERSION,
                "verdict": state,
                "promote": state == "pass",
                "reasons": reasons,
                "target": {"name": self.target_name, "base_url": _public_url(self.base_url)},
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
                        }
                        for r in sorted(records, key=order)
                        if r.flaky and r.outcome == "passed"
                    ],
                    "records": [_record_dict(r) for r in records],
                },
                "gate": self._gate_dict(),
                "checks": [_check_dict(c) for c in _sorted_checks(self._checks)],
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
            "checks": [_check_dict(c) for c in _sorted_checks(gate.checks)],
            "generator": _jsonable(gate.generator),
            "load_seconds": _round(gate.load_seconds, 3) or 0.0,
        }


# -- writing, reading, validating ------------------------------------------------------------


def write_verdict(path: Path, verdict: Verdict | Mapping[str, Any]) -> None:
    """Validate and write ``verdict`` to ``path`` atomically: readers see the old file or the
    complete new one, never a partial write. Raises VerdictError for an invalid verdict."""
    data = verdict.to_dict() if isinstance(verdict, Verdict) else verdict
    validate_verdict(data)
    with atomic_open(path, "w") as fh:
        # Streamed on purpose: a value json cannot encode fails half-way, inside the atomic block.
        json.dump(data, fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")


def load_verdict(path: Path) -> dict[str, Any]:
    """Read and validate a verdict file. Raises VerdictError whose message starts with the path
    and says what is wrong: missing, unreadable, not JSON, another schema version, or the JSON
    path of the first schema violation."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VerdictError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise VerdictError(f"{path}: is a directory, not a verdict file") from None
    except UnicodeDecodeError:
        raise VerdictError(f"{path}: not a verdict: the file is not UTF-8 text") from None
    except OSError as exc:
        raise VerdictError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise VerdictError(
            f"{path}: not a verdict: not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise VerdictError(f"{path}: not a verdict: {exc}") from None
    try:
        validate_verdict(data)
    except VerdictError as exc:
        raise VerdictError(f"{path}: {exc}") from None
    return dict(data)


def validate_verdict(data: Mapping[str, Any]) -> None:
    """Raise VerdictError unless ``data`` is a valid schema-1 verdict."""
    if not isinstance(data, Mapping):
        raise VerdictError(f"not a verdict: expected a JSON object, got {type(data).__name__}")
    if "schema" not in data:
        raise VerdictError('not a verdict: there is no "schema" field')
    version = data["schema"]
    if type(version) is not int:
        raise VerdictError(f'not a verdict: "schema" must be an integer, got {version!r}')
    if version > SCHEMA_VERSION:
        raise VerdictError(
            f"verdict schema {version} is newer than this pytest-stagegate understands "
            f"(schema {SCHEMA_VERSION}); upgrade pytest-stagegate"
        )
    if version != SCHEMA_VERSION:
        raise VerdictError(
            f"verdict schema {version} is not supported; this pytest-stagegate reads schema "
            f"{SCHEMA_VERSION}"
        )
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]

    error = best_match(_validator().iter_errors(_plain(data)))
    if error is not None:
        message = error.message
        if len(message) > 300:
            message = message[:297] + "..."
        raise VerdictError(f"not a valid verdict: at {error.json_path}: {message}")


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the verdict (a fresh copy)."""
    loaded: dict[str, Any] = json.loads(_schema_text())
    return loaded


def baseline_stats(verdict: Mapping[str, Any]) -> dict[str, EndpointStats]:
    """The per-endpoint measurements of a (loaded) verdict, keyed by request name, for use as
    the baseline of ``*_regression`` budgets. Empty if the verdict has no gate measurements."""
    gate = verdict.get("gate") or {}
    stats: dict[str, EndpointStats] = {}
    for entry in gate.get("endpoints", ()):
        stats[entry["name"]] = EndpointStats(
            name=entry["name"],
            requests=int(entry["requests"]),
            failures=int(entry["failures"]),
            rps=float(entry.get("rps") or 0.0),
            avg_ms=float(entry.get("avg_ms") or 0.0),
            min_ms=float(entry.get("min_ms") or 0.0),
            max_ms=float(entry.get("max_ms") or 0.0),
            percentiles={
                key: float(value)
                for key, value in (entry.get("percentiles") or {}).items()
                if value is not None
            },
        )
    return stats


@functools.cache
def _schema_text() -> str:
    return (
        importlib.resources.files("pytest_stagegate")
        .joinpath(SCHEMA_RESOURCE)
        .read_text(encoding="utf-8")
    )


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    return Draft202012Validator(schema())


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins, so an edited file could read differently to
    # different tools; refuse it instead.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, the types jsonschema recognises."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# -- helpers for the decision -----------------------------------------------------------------


def _count(records: Sequence[TestRecord]) -> dict[str, int]:
    def n(outcome: str) -> int:
        return sum(1 for r in records if r.outcome == outcome)

    counts = {
        "total": len(records),
        "passed": n("passed"),
        "failed": n("failed"),
        "errors": n("error"),
        "skipped": n("skipped"),
        "safety_skipped": sum(1 for r in records if r.outcome == "skipped" and r.safety_skip),
        "xfailed": n("xfailed"),
        "xpassed": n("xpassed"),
        "flaky": sum(1 for r in records if r.flaky and r.outcome == "passed"),
        "critical": sum(1 for r in records if r.critical),
        "smoke": sum(1 for r in records if r.smoke),
    }
    counts["ran"] = counts["total"] - counts["skipped"]
    return counts


def _failure_order(record: TestRecord) -> tuple[bool, str]:
    return (not record.critical, record.nodeid)


def _failure_sentence(record: TestRecord) -> str:
    who = "Critical test" if record.critical else "Test"
    what = "failed" if record.outcome == "failed" else "errored"
    return _joined(f"{who} {record.nodeid} {what}", record.message)


def _flaky_sentence(record: TestRecord, who: str) -> str:
    reruns = f"{_plural(record.reruns, 'rerun')}" if record.reruns > 0 else "a rerun"
    return f"{who} {record.nodeid} passed only after {reruns}."


def _limited(sentences: list[str], what: str) -> list[str]:
    if len(sentences) <= _MAX_TEST_REASONS:
        return sentences
    rest = len(sentences) - _MAX_TEST_REASONS + 1
    return [*sentences[: _MAX_TEST_REASONS - 1], f"{rest} more {what} (see the tests section)."]


def _sorted_checks(checks: Sequence[Check]) -> list[Check]:
    return sorted(checks, key=lambda c: (c.endpoint == TOTAL, c.endpoint, _metric_key(c.metric)))


def _metric_key(metric: str) -> tuple[str, float, str]:
    # p95 before p99 before p99.9, and p100 after them, which a string sort gets wrong.
    head, _, tail = metric.partition("_")
    if head[:1] == "p":
        try:
            return ("p", float(head[1:]), tail)
        except ValueError:
            pass
    return (head, 0.0, tail)


def _check_sentence(check: Check) -> str:
    if check.message.strip():
        return _sentence(check.message)
    observed = "nothing" if check.observed is None else format_observed(check.observed, check.unit)
    if check.outcome == "inconclusive":
        return _sentence(
            f"{check.metric} of {check.endpoint} could not be judged "
            f"({_plural(check.samples, 'sample')}, observed {observed})"
        )
    return _sentence(
        f"{check.metric} of {check.endpoint} was {observed}, against a limit of "
        f"{format_limit(check.limit, check.unit)} ({_plural(check.samples, 'sample')})"
    )


def _saturation_sentence(generator: Mapping[str, Any]) -> str:
    advice = (
        "so the measured latencies may include its own queueing; use fewer users or more "
        "--gate-workers."
    )
    note = str(generator.get("note") or "").strip().rstrip(".")
    if note:  # the load process's own account: which process, how busy
        return f"Warning: {note[:1].lower()}{note[1:]}, {advice}"
    cpu = generator.get("cpu_max_percent", generator.get("max_cpu_percent"))
    detail = f" (CPU up to {float(cpu):.0f}% of a core)" if isinstance(cpu, (int, float)) else ""
    return f"Warning: the load generator was saturated{detail}, {advice}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _sentence(text: str) -> str:
    """One line, bounded, ending with punctuation: what a reason must look like."""
    text = " ".join(text.split())
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3].rstrip() + "..."
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _joined(head: str, detail: str) -> str:
    detail = detail.strip()
    return _sentence(f"{head}: {detail}" if detail else head)


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


def _public_url(url: str) -> str:
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
    }


def _percentile_key(name: str) -> tuple[float, str]:
    try:
        return (float(name.lstrip("p")), name)
    except ValueError:
        return (math.inf, name)


def _endpoint_dict(stats: EndpointStats) -> dict[str, Any]:
    return {
        "name": stats.name,
        "requests": stats.requests,
        "failures": stats.failures,
        "error_rate": _round(stats.error_rate, 6),
        "rps": _round(stats.rps, 3),
        "avg_ms": _round(stats.avg_ms, 3),
        "min_ms": _round(stats.min_ms, 3),
        "max_ms": _round(stats.max_ms, 3),
        "percentiles": {
            key: _round(stats.percentiles[key], 3)
            for key in sorted(stats.percentiles, key=_percentile_key)
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
    }
