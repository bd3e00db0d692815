"""The decision policy: from what a run recorded to a state and its reasons. Pure.

First match wins:

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
   A request name whose requests all failed is a failing check (``budgets.evaluate``); a hang
   that left nothing measured is a gate ``error`` whose reason says the target did not answer
   within the timeout.
5. ``pass`` otherwise; ``promote`` is true exactly then.

Outcomes: ``xfailed`` is an expected failure and never blocks. ``xpassed`` means a non-strict
XPASS (pytest reports a strict XPASS as ``failed``, and the glue records it so) and does not
block either. A waived error budget (``error_rate: off``) adds a warning sentence. Skipped
tests neither block nor count as run. A saturated load generator adds a warning sentence but
does not change the state: the measured latencies are then an upper bound, so a passing gate
still passed.

``reasons`` are plain sentences, most important first: for ``pass`` one summary sentence
("All 12 tests passed and all 7 budgets held on staging."), otherwise the sentences that
decided the state, then the other findings, then warnings and sentences added by hooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..budgets import Check, capitalized
from ..units import format_limit, format_observed
from .records import GateRecord, ProblemKind, State, TestRecord

__all__ = ["check_sentence", "count_tests", "decide", "failure_order", "sentence", "sorted_checks"]

# Beyond this many, one sentence per test drowns the reasons; the full list is in the JSON.
_MAX_TEST_REASONS = 10
_MAX_REASON_CHARS = 500


def decide(
    *,
    target_name: str,
    tests: Sequence[TestRecord],
    gate: GateRecord | None,
    gate_requested: bool,
    checks: Sequence[Check],
    problems: Sequence[tuple[ProblemKind, str]],
    notes: Sequence[str],
    interrupted: bool,
    flaky_blocks: bool,
) -> tuple[State, list[str]]:
    """The state and its reasons (see the module docstring). ``checks`` are the ones added by
    hooks (the gate's own are in ``gate.checks``); ``notes`` are sentences added by hooks."""
    fails: list[str] = []
    errors: list[str] = []
    unproven: list[str] = []
    findings: list[str] = []
    records = sorted(tests, key=lambda r: r.nodeid)
    counts = count_tests(records)

    broken = [r for r in records if r.outcome in ("failed", "error")]
    flaky = [r for r in records if r.flaky and r.outcome == "passed"]
    fails += _limited([_failure_sentence(r) for r in broken if r.critical], "critical tests failed")
    fails += _limited(
        [_flaky_sentence(r, "Critical test") for r in flaky if r.critical],
        "critical tests passed only after reruns",
    )

    if gate is not None:
        if gate.status == "aborted":
            # The load process's reason is a whole sentence: "Stopped the load after ..."
            stopped = gate.reason.strip().startswith("Stopped the load")
            fails.append(
                sentence(gate.reason)
                if stopped
                else _joined("The load gate was aborted early", gate.reason)
            )
        elif gate.status == "error":
            # a load that ran but measured nothing (a hang) did run
            head = "The load gate measured nothing" if gate.load_seconds > 0 else None
            errors.append(_joined(head or "The load gate could not run", gate.reason))
        elif gate.status == "refused":
            errors.append(_joined("The load gate was refused", gate.reason))
        elif gate.status == "not_run":
            unproven.append(_joined("The load gate did not run", gate.reason))
        elif not gate.checks:
            unproven.append("The load gate ran, but there was no budget to check it against.")
    elif gate_requested:
        unproven.append("The load gate was requested but did not run.")

    all_checks = sorted_checks([*(gate.checks if gate else ()), *checks])
    fails += [_check_sentence(c) for c in all_checks if c.outcome == "fail"]
    unproven += [_check_sentence(c) for c in all_checks if c.outcome == "inconclusive"]

    fails += [reason for kind, reason in problems if kind == "fail"]
    errors += [reason for kind, reason in problems if kind == "error"]
    unproven += [reason for kind, reason in problems if kind == "inconclusive"]

    fails += _limited([_failure_sentence(r) for r in broken if not r.critical], "tests failed")
    if flaky_blocks:
        fails += _limited(
            [
                _flaky_sentence(r, "Test") + " Flaky tests block promotion here."
                for r in flaky
                if not r.critical
            ],
            "tests passed only after reruns",
        )
    else:
        findings += _limited(
            [
                _flaky_sentence(r, "Test") + " Flaky tests do not block promotion."
                for r in flaky
                if not r.critical
            ],
            "tests passed only after reruns",
        )

    if counts["ran"] == 0 and not gate_requested and not checks:
        skipped = counts["skipped"]
        unproven.append(
            "No tests ran"
            + (f" ({_plural(skipped, 'test')} skipped)" if skipped else "")
            + " and the load gate was not requested, so nothing was verified."
        )

    if counts["safety_skipped"]:
        n = counts["safety_skipped"]
        findings.append(
            f"{_plural(n, 'destructive test')} {'was' if n == 1 else 'were'} skipped "
            f"because {target_name} is protected."
        )
    if gate is not None and gate.generator.get("saturated"):
        findings.append(_saturation_sentence(gate.generator))
    if gate is not None and gate.status not in ("refused", "not_run"):
        findings += [w.sentence() for w in sorted(gate.waivers, key=lambda w: w.endpoint)]
    findings += notes

    state: State
    if interrupted:
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
        summary = _summary(target_name, counts, gate, hook_checks=len(checks))
        return "pass", [summary, *findings]
    return state, [*decisive, *fails, *errors, *unproven, *findings]


def count_tests(records: Sequence[TestRecord]) -> dict[str, int]:
    """The verdict's test counts (``ran`` is what was not skipped)."""

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


def failure_order(record: TestRecord) -> tuple[bool, str]:
    """Critical tests first, then by node id."""
    return (not record.critical, record.nodeid)


def sorted_checks(checks: Sequence[Check]) -> list[Check]:
    """The whole run's checks first, then each stage's (stages in the order their checks
    come, which is the stages' order); within each, in the order they were made, which is
    the budgets' order in stagegate.yaml (then the default error budgets, then the checks
    hooks added): one order in the terminal, the report, JUnit and the verdict's JSON."""
    stages = {stage: i for i, stage in enumerate(dict.fromkeys(c.stage for c in checks if c.stage))}
    return sorted(checks, key=lambda c: -1 if not c.stage else stages[c.stage])


def sentence(text: str) -> str:
    """One line, bounded, starting with a capital and ending with punctuation: what a reason
    must look like, whoever wrote it (a budget, a hook, a problem)."""
    text = capitalized(" ".join(text.split()))
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3].rstrip() + "..."
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _summary(
    target_name: str, counts: Mapping[str, int], gate: GateRecord | None, *, hook_checks: int
) -> str:
    clauses: list[str] = []
    if counts["ran"]:
        passed = counts["passed"]
        clause = f"all {passed} tests passed" if passed > 1 else f"{_plural(passed, 'test')} passed"
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
    if hook_checks:
        n = hook_checks
        clauses.append(f"all {n} extra checks passed" if n > 1 else "the 1 extra check passed")
    text = ", ".join(clauses[:-1]) + " and " + clauses[-1] if len(clauses) > 1 else clauses[0]
    return f"{text[0].upper()}{text[1:]} on {target_name}."


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


def check_sentence(check: Check) -> str:
    """What a check says, as a sentence: its own message, or one made from its numbers in the
    budgets' words ("was 412.0 ms, over its budget of 300 ms (600 samples)"). The reasons and
    JUnit's messages use it, so they read alike."""
    return _check_sentence(check)


def _check_sentence(check: Check) -> str:
    if check.message.strip():
        return sentence(check.message)
    observed = "nothing" if check.observed is None else format_observed(check.observed, check.unit)
    where = f"{check.endpoint} in stage {check.stage}" if check.stage else check.endpoint
    if check.outcome == "inconclusive":
        return sentence(
            f"the {check.metric} of {where} could not be judged "
            f"({_plural(check.samples, 'sample')}, observed {observed})"
        )
    return sentence(
        f"the {check.metric} of {where} was {observed}, {_side(check)} "
        f"{format_limit(check.limit, check.unit)} ({_plural(check.samples, 'sample')})"
    )


def _side(check: Check) -> str:
    """The budgets' words for where a value stands against its limit."""
    if check.metric == "min_rps":
        return "at or above its minimum of" if check.outcome == "pass" else "under its minimum of"
    return "within its budget of" if check.outcome == "pass" else "over its budget of"


def _saturation_sentence(generator: Mapping[str, Any]) -> str:
    advice = (
        "so the measured latencies may include its own queueing; use fewer users or more "
        "--gate-workers."
    )
    note = str(generator.get("note") or "").strip().rstrip(".")
    if note:  # the load process's own account: which process, how busy
        return f"Warning: {note[:1].lower()}{note[1:]}, {advice}"
    cpu = generator.get("cpu_max_percent")
    detail = f" (CPU up to {float(cpu):.0f}% of a core)" if isinstance(cpu, (int, float)) else ""
    return f"Warning: the load generator was saturated{detail}, {advice}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _joined(head: str, detail: str) -> str:
    """``The load gate could not run: the load process did not stop in time.``: ``detail``,
    a sentence of its own, goes on after the colon without its capital."""
    detail = _mid_sentence(detail.strip().rstrip("."))
    return sentence(f"{head}: {detail}" if detail else head)


def _mid_sentence(text: str) -> str:
    """``text`` to go on after a colon: its first word loses the capital ``capitalized`` gave
    it (``The`` -> ``the``), not a name's (``HTTP``, ``GET``, ``Locust``, ``stagegate.yaml``)."""
    first = text.split(" ", 1)[0]
    if re.fullmatch(r"[A-Z][a-z]+", first) and first not in _NAMES:
        return text[:1].lower() + text[1:]
    return text


_NAMES = frozenset({"Locust", "Python", "Pytest", "Datasette", "Docker", "Kubernetes"})
