"""What a run shows on pytest's terminal: the load's progress line and the stagegate section of
the summary. Takes values; the gate's tables come from ``verdict.report``, the same renderer as
``stagegate report``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from _pytest.outcomes import Exit  # pytest.exit.Exception, by a name type checkers know

from ..units import format_arrival_rate, format_ms
from ..verdict.decide import sentence

if TYPE_CHECKING:
    from ..load.process import Progress
    from ..verdict import TestRecord, Verdict


class WriteLine(Protocol):
    """A line on the terminal, with pytest's markup (``red=True``, ``bold=True``)."""

    def __call__(self, line: str, **markup: bool) -> None: ...


class StopRun(Exit):
    """What ``pytest.exit`` raises, for this plugin's own stop before the tests (the target not
    ready, the wrong build, a prepare hook failed). pytest ends such a run with
    ``! <exception type>: <reason> !``: the type's printed name is a phrase here, so the user
    reads "pytest-stagegate stopped the run: ...", never ``_pytest.outcomes.Exit``."""


# traceback prints "module.qualname: message", leaving out the module "builtins"
StopRun.__module__ = "builtins"
StopRun.__name__ = StopRun.__qualname__ = "pytest-stagegate stopped the run"


GATE_STATUS = {
    "completed": "ran to the end",
    "aborted": "stopped early",
    "not_run": "did not run",
    "refused": "refused",
    "error": "could not run",
}

# the verdict's gate.load.engine, on the load gate's line
ENGINE = {
    "lean": "lean request path",
    "locust": "Locust's request path",
    "locustfile": "the locustfile's users",
}


def write_summary(
    tr: Any,
    *,
    target_name: str,
    tests: Sequence[TestRecord],
    elsewhere: Sequence[str],
    verdict: Verdict | None,
    gate: Mapping[str, Any] | None,
    load_errors: Sequence[str],
    files: Sequence[tuple[str, Path | str]],
) -> None:
    """The stagegate section: safety skips, tests meant for other targets, the gate (``gate``:
    the verdict's ``gate`` mapping, when the gate ran), the verdict and every file the run
    wrote (``files``: label and path, ``Finished.written``)."""
    safety = [r for r in tests if r.safety_skip]
    if not (safety or elsewhere or gate is not None or verdict is not None):
        return
    tr.write_sep("=", "stagegate")
    if safety:
        tr.write_line(
            f"{len(safety)} destructive test(s) skipped for safety: target "
            f"{target_name!r} is protected",
            yellow=True,
            bold=True,
        )
        for r in safety:
            tr.write_line(f"  SKIPPED (protected target) {r.nodeid}")
    if elsewhere:
        tr.write_line(
            f"{len(elsewhere)} test(s) skipped: marked for other targets than {target_name!r}"
        )
    if gate is not None:
        _write_gate(tr, gate, load_errors)
    if verdict is not None:
        color = "green" if verdict.state == "pass" else "red"  # as the final line says it
        tr.write_line(
            f"verdict: {verdict.state.upper()} (promote: {'yes' if verdict.promote else 'no'})",
            **{color: True, "bold": True},
        )
        for reason in verdict.reasons:
            tr.write_line(f"  - {reason}")
        for kind, path in files:
            tr.write_line(f"  {kind}: {path}")


def _write_gate(tr: Any, gate: Mapping[str, Any], load_errors: Sequence[str]) -> None:
    from ..verdict.report import gate_table_lines, load_model_lines

    profile = gate["profile"]
    status = GATE_STATUS.get(gate["status"], gate["status"])
    engine = ENGINE.get(str((gate.get("load") or {}).get("engine")))
    parts = [*_profile_parts(profile), *([engine] if engine else [])]
    tr.write_line(f"load gate: {'; '.join([status, *parts])}")
    if gate["reason"]:
        tr.write_line(f"  {sentence(gate['reason'])}")
    model = load_model_lines(gate)  # the model, stages, the latency chart; a blank line after
    for line in (*model, "") if model else ():
        tr.write_line(f"  {line}".rstrip())
    for line, failed in gate_table_lines(gate):
        tr.write_line(f"  {line}".rstrip(), **({"red": True} if failed else {}))
    for error in load_errors:
        tr.write_line(f"  load error: {error}")
    generator = gate.get("generator") or {}
    if generator.get("saturated"):
        tr.write_line(f"  warning: {generator.get('note')}", yellow=True)
    for waiver in gate.get("waivers") or ():
        where = f" at {waiver['source']}" if waiver.get("source") else ""
        tr.write_line(
            f"  warning: the error budget of {waiver['endpoint']} is waived (error_rate: off"
            f"{where}): its failed requests do not fail the gate unless every one of them failed",
            yellow=True,
        )


def _profile_parts(profile: Mapping[str, Any]) -> list[str]:
    """``10 users, 3 s, warm-up 1 s, 2 workers``: lengths as the header and the progress line
    write them (not ``3.0 s``), and only what the profile says (a gate that never started has
    none of it)."""
    parts = []
    stages = profile.get("stages") or []
    in_stages = f" in {len(stages)} stage{'' if len(stages) == 1 else 's'}" if stages else ""
    if profile.get("model") == "open":  # as the header says it
        rates = [float(st.get("rate") or 0) for st in stages] or [float(profile.get("rate") or 0)]
        up_to = "up to " if stages else ""
        parts.append(f"open model, rate {up_to}{format_arrival_rate(max(rates))}{in_stages}")
        if profile.get("users") is not None:
            parts.append(f"at most {profile['users']} concurrent iterations")
    elif profile.get("users") is not None:
        parts.append(f"{'up to ' if stages else ''}{profile['users']} users{in_stages}")
    for key, label in (("duration_s", ""), ("warmup_s", "warm-up ")):
        if isinstance(profile.get(key), (int, float)):
            parts.append(f"{label}{profile[key]:g} s")
    if profile.get("workers"):
        parts.append(f"{profile['workers']} workers")
    return [", ".join(parts)] if parts else []


class ProgressLine:
    """One line of load progress: redrawn at most once a second on a terminal, printed every
    few seconds otherwise (CI logs). ``reporter``: pytest's terminal reporter, or None."""

    CI_EVERY = 5.0

    def __init__(self, reporter: Any) -> None:
        self._reporter = reporter
        self._tty = bool(reporter is not None and reporter.isatty())
        self._last = 0.0
        self._width = 0
        self._started = False

    def update(self, p: Progress) -> None:
        if self._reporter is None:
            return
        if not self._started and p.rps <= 0 and p.p95_ms <= 0:
            # Nothing measured yet (with --gate-workers the workers' first reports are still on
            # their way): the first line waits rather than read "0.0 req/s | p95 0.00 ms".
            return
        now = time.monotonic()
        if now - self._last < (1.0 if self._tty else self.CI_EVERY):
            return
        self._last = now
        self._write(progress_text(p))

    def _write(self, line: str) -> None:
        if not self._started:
            self._reporter.write_line("")
            self._started = True
        if self._tty:
            self._reporter.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._reporter.write_line(line)

    def done(self) -> None:
        if self._reporter is not None and self._tty and self._started:
            self._reporter.write_line("")


def progress_text(p: Progress) -> str:
    """``stagegate load:   12/30 s | 10 users | 95.0 req/s | p95 12.0 ms | 0 of 1,140 failed
    so far (warm-up included)``; in the open model the rate now and the iterations dropped so
    far in place of the users: ``| rate 100/s, 0 dropped |``."""
    phase = " (warm-up)" if p.warmup else ""
    load = f"{p.users} users"
    if p.rate is not None:
        rate = format_arrival_rate(p.rate) if p.rate > 0 else "0/s"  # a ramp down's end
        load = f"rate {rate}, {p.dropped or 0:,} dropped"
    return (
        f"stagegate load: {p.elapsed:4.0f}/{p.duration:g} s{phase} | {load} | "
        f"{p.rps:,.1f} req/s | p95 {format_ms(p.p95_ms)} | "
        f"{p.failures:,} of {p.requests:,} failed so far (warm-up included)"
    )


def write_final_line(tr: Any, verdict: Verdict) -> None:
    """The terminal's last line: the verdict, after pytest's own "8 passed" line, which is
    green whenever the tests passed, even when the gate failed."""
    promote = "promote" if verdict.promote else "do not promote"
    color = "green" if verdict.state == "pass" else "red"
    title = f"stagegate verdict: {verdict.state.upper()} ({promote})"
    tr.write_sep("=", title, **{color: True, "bold": True})
