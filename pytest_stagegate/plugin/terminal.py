"""The stagegate section of pytest's terminal summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..units import format_limit, format_ms, format_observed

if TYPE_CHECKING:
    from .session import StagegateRun


GATE_STATUS = {
    "completed": "ran to the end",
    "aborted": "stopped early",
    "not_run": "did not run",
    "refused": "refused",
    "error": "could not run",
}


def write_summary(run: StagegateRun, tr: Any) -> None:
    records = run.recorder.records()
    safety = [r for r in records if r.safety_skip]
    elsewhere = run.recorder.flagged("elsewhere_skip")
    gate = run.gate_record
    if not (safety or elsewhere or gate is not None or run.verdict is not None):
        return
    tr.write_sep("=", "stagegate")
    if safety:
        tr.write_line(
            f"{len(safety)} destructive test(s) skipped for safety: target "
            f"{run.target.name!r} is protected",
            yellow=True,
            bold=True,
        )
        for r in safety:
            tr.write_line(f"  SKIPPED (protected target) {r.nodeid}")
    if elsewhere:
        tr.write_line(
            f"{len(elsewhere)} test(s) skipped: marked for other targets than {run.target.name!r}"
        )
    if gate is not None:
        _write_gate(run, gate, tr)
    verdict = run.verdict
    if verdict is not None:
        color = {"pass": "green", "fail": "red"}.get(verdict.state, "yellow")
        tr.write_line(
            f"verdict: {verdict.state.upper()} (promote: {'yes' if verdict.promote else 'no'})",
            **{color: True, "bold": True},
        )
        for reason in verdict.reasons:
            tr.write_line(f"  - {reason}")
        for kind, path in run.files():
            tr.write_line(f"  {kind}: {path}")


def _write_gate(run: StagegateRun, gate: Any, tr: Any) -> None:
    profile = gate.profile
    tr.write_line(
        f"load gate: {GATE_STATUS.get(gate.status, gate.status)}; {profile.get('users')} users, "
        f"{profile.get('duration_s')} s, warm-up {profile.get('warmup_s')} s"
        + (f", {profile.get('workers')} workers" if profile.get("workers") else "")
    )
    if gate.reason:
        tr.write_line(f"  {gate.reason}")
    if gate.endpoints:
        tr.write_line(
            f"  {'request':<36} {'reqs':>8} {'fails':>6} {'req/s':>8} "
            f"{'p50':>10} {'p95':>10} {'p99':>10}"
        )
        for e in gate.endpoints:
            pct = e.percentiles
            tr.write_line(
                f"  {e.name[:36]:<36} {e.requests:>8,} {e.failures:>6,} {e.rps:>8.1f} "
                f"{format_ms(pct.get('p50', 0.0)):>10} {format_ms(pct.get('p95', 0.0)):>10} "
                f"{format_ms(pct.get('p99', 0.0)):>10}"
            )
    if gate.checks:
        tr.write_line(f"  {'budget':<44} {'observed':>12} {'limit':>12} {'samples':>8}  outcome")
        for c in gate.checks:
            tr.write_line(
                f"  {(c.metric + ' of ' + c.endpoint)[:44]:<44} "
                f"{_observed(c.observed, c.unit):>12} {format_limit(c.limit, c.unit):>12} "
                f"{c.samples:>8,}  {c.outcome.upper()}",
                **({"red": True} if c.outcome == "fail" else {}),
            )
    for error in run.load_errors:
        tr.write_line(f"  load error: {error}")
    generator = gate.generator or {}
    if generator.get("saturated"):
        tr.write_line(f"  warning: {generator.get('note')}", yellow=True)


def _observed(value: float | None, unit: str) -> str:
    return "-" if value is None else format_observed(value, unit)
