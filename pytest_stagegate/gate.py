"""The load gate, as the pytest process sees it: decide whether to load, build the plan, run
Locust in a child process (``load.process``), and check the budgets (``budgets``).

Never imports locust: the child process does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .budgets import STANDARD_PERCENTILES, evaluate, percentiles_needed
from .config import GateSettings, Target
from .errors import LoadError
from .httpclient import make_client
from .load.plan import LatencyLimit, LoadPlan, PlannedRequest
from .units import format_ms
from .verdict import GateRecord

if TYPE_CHECKING:
    from .load.process import Progress
    from .session import StagegateRun

LATENCY_METRICS = ("avg", "max")
REACHABILITY_TIMEOUT = 10.0
LOAD_LOG = "stagegate-load.log"


def run_gate(run: StagegateRun) -> GateRecord:
    """Run the gate for ``run`` and hand the result to ``pytest_stagegate_gate_result``."""
    record = _run_gate(run)
    run.config.hook.pytest_stagegate_gate_result(config=run.config, target=run.target, gate=record)
    return record


def _run_gate(run: StagegateRun) -> GateRecord:
    target, settings = run.target, run.gate_settings
    workers = int(run.config.option.stagegate_workers or 0)
    plan = build_plan(target, settings, report=run.config.option.stagegate_report)
    profile = describe_profile(plan, workers)
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

    replaced = run.config.hook.pytest_stagegate_load_plan(
        config=run.config, target=target, plan=plan
    )
    if replaced is not None:
        plan = replaced
        profile = describe_profile(plan, workers)
    from .load.process import run_load

    run.load_log = load_log_path(run)
    progress = ProgressLine(run.config)
    try:
        result = run_load(
            plan,
            workers=workers,
            on_progress=progress.update,
            grace=settings.load.abort.grace,
            log_path=run.load_log,
        )
    except LoadError as exc:
        return GateRecord(status="error", reason=target.redact(str(exc)), profile=profile)
    finally:
        progress.done()

    wanted = set(STANDARD_PERCENTILES) | percentiles_needed(settings.budgets)
    stats = result.endpoint_stats(sorted(wanted, key=_percentile_order))
    generator = dict(result.generator)
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


def describe_profile(plan: LoadPlan, workers: int) -> dict[str, Any]:
    """The load profile as it ran (after ``pytest_stagegate_load_plan``), for the verdict."""
    return {
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "duration_s": plan.duration,
        "warmup_s": plan.warmup,
        "workers": workers,
        "scenario": "locustfile" if plan.locustfile else "requests",
        "user_class": plan.user_class,
    }


def build_plan(target: Target, settings: GateSettings, *, report: str | None = None) -> LoadPlan:
    load = settings.load
    abort = load.abort
    return LoadPlan(
        host=target.base_url,
        users=load.users,
        spawn_rate=load.spawn_rate,
        duration=load.duration,
        warmup=load.warmup,
        headers=dict(target.headers),
        timeout=target.timeout,
        verify_tls=target.verify_tls,
        requests=[
            PlannedRequest(
                method=r.method,
                path=r.path,
                name=r.name,
                weight=r.weight,
                headers=dict(r.headers),
                json=r.json,
                expect_status=list(r.expect_status),
            )
            for r in load.requests
        ],
        locustfile=str(load.locustfile) if load.locustfile else None,
        user_class=load.user_class,
        wait=load.wait,
        vars=dict(target.vars),
        target_name=target.name,
        secrets=sorted(target.secrets),
        abort_enabled=abort.enabled,
        abort_error_rate=abort.error_rate,
        abort_min_requests=abort.min_requests,
        abort_latency=[
            LatencyLimit(endpoint=b.endpoint, metric=b.metric, limit_ms=b.limit)
            for b in settings.budgets
            if b.metric in LATENCY_METRICS or _is_percentile(b.metric)
        ],
        abort_latency_factor=abort.latency_factor,
        abort_latency_for=abort.latency_for,
        saturation_cpu=settings.saturation_cpu,
        html_report=str(Path(report).resolve()) if report else None,
    )


def probe(target: Target) -> str | None:
    """None when the target answers HTTP at all; otherwise a sentence saying why not."""
    url = target.base_url + "/"
    try:
        with make_client(target) as client:
            client.get("/", timeout=min(target.timeout, REACHABILITY_TIMEOUT))
    except httpx.HTTPError as exc:
        return target.redact(
            f"target {target.name!r} is unreachable, so no load was put on it: GET {url} "
            f"failed with {type(exc).__name__}: {exc or 'no detail'}"
        )
    return None


def _is_percentile(metric: str) -> bool:
    return metric.startswith("p") and metric[1:].replace(".", "", 1).isdigit()


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
            f"{p.failures:,} of {p.requests:,} failed"
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
