"""The load gate, as the pytest process sees it: decide whether to load, build the plan, run
Locust in a child process (``load.process``), and check the budgets (``budgets``).

Never imports locust: the child process does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..budgets import STANDARD_PERCENTILES, evaluate, percentiles_needed
from ..config import Target
from ..errors import LoadError
from ..load.plan import LoadPlan, plan_for
from ..load.result import ErrorRecord
from ..target.client import make_client
from ..units import format_ms
from ..verdict.model import GateRecord
from .session import LOAD_LOG

if TYPE_CHECKING:
    from ..load.process import Progress
    from .session import StagegateRun

REACHABILITY_TIMEOUT = 10.0


def run_gate(run: StagegateRun) -> GateRecord:
    """Run the gate for ``run`` and hand the result to ``pytest_stagegate_gate_result``."""
    record = _run_gate(run)
    try:
        run.config.hook.pytest_stagegate_gate_result(
            config=run.config, target=run.target, gate=record
        )
    except Exception as exc:
        run.problems.append(("error", _hook_failed("pytest_stagegate_gate_result", exc, run)))
    return record


def _hook_failed(hook: str, exc: Exception, run: StagegateRun) -> str:
    return run.target.redact(f"A {hook} hook failed: {type(exc).__name__}: {exc}")


def _run_gate(run: StagegateRun) -> GateRecord:
    target, settings = run.target, run.gate_settings
    workers = int(run.config.option.stagegate_workers or 0)
    remote = int(run.config.option.stagegate_remote_workers or 0)
    plan = plan_for(target, settings, html_report=run.config.option.stagegate_report)
    profile = describe_profile(plan, workers, remote)
    if target.protected and not target.allow_load:
        return GateRecord(
            status="refused",
            reason=(
                f"target {target.name!r} is protected, so no load was put on it (set "
                f"targets.{target.name}.allow_load: true in stagegate.yaml to allow it)"
            ),
            profile=profile,
        )
    critical = [
        r.nodeid for r in run.recorder.records() if r.critical and r.outcome in ("failed", "error")
    ]
    if critical and not settings.run_after_critical_failure:
        return GateRecord(
            status="not_run",
            reason=(
                f"the critical test {critical[0]} failed, so no load was put on the target "
                f"(set gate.run_after_critical_failure: true to run it anyway)"
            ),
            profile=profile,
        )
    unreachable = probe(target)
    if unreachable:
        return GateRecord(status="error", reason=unreachable, profile=profile)

    try:
        replaced = run.config.hook.pytest_stagegate_load_plan(
            config=run.config, target=target, plan=plan
        )
    except Exception as exc:
        return GateRecord(
            status="error", reason=_hook_failed("pytest_stagegate_load_plan", exc, run),
            profile=profile,
        )  # fmt: skip
    if replaced is not None and not isinstance(replaced, LoadPlan):
        return GateRecord(
            status="error",
            reason=(
                f"a pytest_stagegate_load_plan hook returned {type(replaced).__name__}, not a "
                f"LoadPlan (return dataclasses.replace(plan, ...) or None)"
            ),
            profile=profile,
        )
    if replaced is not None:
        plan = replaced
        profile = describe_profile(plan, workers, remote)
    from ..load.process import run_load

    bind = run.config.option.stagegate_master_bind
    if remote and bind is not None:
        run.write_line(
            f"stagegate: the Locust master listens on {bind[0]}:{bind[1]} for {remote} remote "
            f"worker(s): stagegate worker --master-host HOST --master-port {bind[1]} "
            f"--target {target.name}"
        )
    run.load_log = load_log_path(run)
    progress = ProgressLine(run.config)
    try:
        result = run_load(
            plan,
            workers=workers,
            on_progress=progress.update,
            grace=settings.load.abort.grace,
            log_path=run.load_log,
            remote_workers=remote,
            master_bind=run.config.option.stagegate_master_bind,
        )
    except LoadError as exc:
        return GateRecord(status="error", reason=target.redact(str(exc)), profile=profile)
    finally:
        progress.done()

    run.load_errors = top_errors(result.errors, target)
    wanted = set(STANDARD_PERCENTILES) | percentiles_needed(settings.budgets)
    stats = result.endpoint_stats(sorted(wanted, key=_percentile_order))
    generator = result.generator.to_dict()
    saturated = str(generator.get("note") or "the load generator was saturated")
    checks = evaluate(
        settings.budgets,
        stats,
        min_samples=settings.min_samples,
        baseline=run.baseline,
        saturated=saturated if generator.get("saturated") else None,
    )
    return GateRecord(
        status=result.status,
        reason=target.redact(result.reason),
        profile=profile,
        endpoints=list(stats.values()),
        checks=checks,
        generator=generator,
        load_seconds=result.load_seconds,
    )


def load_log_path(run: StagegateRun) -> Path | None:
    """Locust's log (redacted) goes next to the verdict, for CI to keep with it."""
    for kind, path in run.files():
        if kind == "json":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return None  # the verdict writer reports an unwritable place
            return path.with_name(LOAD_LOG)
    return None


def top_errors(errors: Sequence[ErrorRecord], target: Target, most: int = 3) -> list[str]:
    """The most frequent load errors, as phrases: '2,008 x HTTP 404 on GET /missing'."""
    ranked = sorted(errors, key=lambda e: e.occurrences, reverse=True)[:most]
    return [
        target.redact(f"{e.occurrences:,} x {' '.join(e.error.split())[:200]} on {e.name}")
        for e in ranked
    ]


def describe_profile(plan: LoadPlan, workers: int, remote: int = 0) -> dict[str, Any]:
    """The load profile as it ran (after ``pytest_stagegate_load_plan``), for the verdict."""
    return {
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "duration_s": plan.duration,
        "warmup_s": plan.warmup,
        "workers": workers + remote,
        "remote_workers": remote,
        "scenario": "locustfile" if plan.locustfile else "requests",
        "user_class": plan.user_class,
    }


def probe(target: Target) -> str | None:
    """None when the target answers HTTP at all; otherwise a sentence saying why not."""
    url = target.base_url + "/"
    try:
        with make_client(target, retries=0) as client:
            client.get("/", timeout=min(target.timeout, REACHABILITY_TIMEOUT))
    except httpx.HTTPError as exc:
        return target.redact(
            f"target {target.name!r} is unreachable over HTTP, so no load was put on it: GET {url} "
            f"failed with {type(exc).__name__}: {str(exc) or 'no detail'}"
        )
    return None


def _percentile_order(metric: str) -> float:
    return float(metric[1:])


class ProgressLine:
    """One line of load progress: redrawn at most once a second on a terminal, printed every
    few seconds otherwise (CI logs)."""

    CI_EVERY = 5.0

    def __init__(self, config: Any) -> None:
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._tty = bool(self._reporter is not None and self._reporter.isatty())
        self._last = 0.0
        self._width = 0
        self._started = False

    def update(self, p: Progress) -> None:
        if self._reporter is None:
            return
        now = time.monotonic()
        if now - self._last < (1.0 if self._tty else self.CI_EVERY):
            return
        self._last = now
        phase = " (warm-up)" if p.warmup else ""
        line = (
            f"stagegate load: {p.elapsed:4.0f}/{p.duration:g} s{phase} | {p.users} users | "
            f"{p.rps:,.1f} req/s | p95 {format_ms(p.p95_ms)} | "
            f"{p.failures:,} of {p.requests:,} failed so far (warm-up included)"
        )
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
