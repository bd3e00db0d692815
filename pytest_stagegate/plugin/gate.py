"""The load gate, as the pytest process sees it: decide whether to load, build the plan, run
Locust in a child process (``load.process``), and check the budgets (``budgets``).

``run_gate`` takes values and returns a ``GateOutcome``; the session stores it. Never imports
locust: the child process does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .. import defaults
from ..budgets import TOTAL, Budget, Check, Dropped, EndpointStats, evaluate, percentiles_needed
from ..config import GateSettings, StageSpec, Target
from ..errors import LoadError
from ..load.plan import LoadPlan, engine_of, plan_for
from ..load.result import ErrorRecord, LoadResult, StageResult
from ..metrics import parse_metric, sorted_percentiles
from ..target.client import make_client
from ..units import format_duration
from ..verdict import GateRecord, TestRecord
from ..verdict.model import public_url
from ..verdict.records import GateStatus, LoadModelRecord, StageRecord, TimelineRecord
from .options import RunOptions
from .state import GateOutcome, RunSecrets

if TYPE_CHECKING:
    import pytest

    from ..load.process import Progress
    from .state import Problem

REACHABILITY_TIMEOUT = 10.0

WriteLine = Callable[[str], None]


class GateHooks(Protocol):
    """The two hooks the gate calls (``hookspecs``), bound to the run's config."""

    def load_plan(self, target: Target, plan: LoadPlan) -> object: ...

    def gate_result(self, target: Target, gate: GateRecord) -> None: ...


class LoadProgress(Protocol):
    """Where the load's progress goes while it runs (``terminal.ProgressLine``)."""

    def update(self, progress: Progress) -> None: ...

    def done(self) -> None: ...


class ConfigHooks:
    """``GateHooks`` through pytest's hook caller."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def load_plan(self, target: Target, plan: LoadPlan) -> object:
        return self._config.hook.pytest_stagegate_load_plan(
            config=self._config, target=target, plan=plan
        )

    def gate_result(self, target: Target, gate: GateRecord) -> None:
        self._config.hook.pytest_stagegate_gate_result(
            config=self._config, target=target, gate=gate
        )


class _NoProgress:
    def update(self, progress: Progress) -> None:
        pass

    def done(self) -> None:
        pass


def run_gate(
    options: RunOptions,
    target: Target,
    settings: GateSettings,
    tests: Sequence[TestRecord],
    *,
    baseline: dict[str, EndpointStats] | None,
    hooks: GateHooks,
    write_line: WriteLine,
    progress: LoadProgress | None = None,
    secrets: RunSecrets | None = None,
) -> GateOutcome:
    """Run the gate and hand its record to ``pytest_stagegate_gate_result``. ``secrets`` are
    the run's (``RunState.secrets``; by default the target's): every message the gate makes
    is redacted with them, and the load child masks them in its log and report."""
    secrets = secrets if secrets is not None else RunSecrets.of(target)
    outcome = _run_gate(
        options,
        target,
        settings,
        tests,
        baseline,
        hooks,
        write_line,
        progress or _NoProgress(),
        secrets,
    )
    try:
        hooks.gate_result(target, outcome.record)
    except Exception as exc:
        problem: Problem = ("error", _hook_failed("pytest_stagegate_gate_result", exc, secrets))
        return GateOutcome(
            outcome.record, outcome.load_log, outcome.load_errors, (*outcome.problems, problem)
        )
    return outcome


def _warn_otel_missing(settings: GateSettings, write_line: WriteLine) -> None:
    """Live metrics asked for without OpenTelemetry installed: one line, and the gate runs
    (the verdict judges the deployment, not the observability; the load log says it too)."""
    from ..load.plan import otel_missing

    missing = otel_missing()
    if missing is None:
        return
    why = "gate.load.otel: true" if settings.load.otel else f"{defaults.OTEL_ENDPOINT_ENV} is set"
    write_line(
        f"stagegate: warning: live metrics were asked for ({why}), but OpenTelemetry is not "
        f"installed ({missing} is missing): pip install 'pytest-stagegate[otel]'. The gate "
        f"runs without them."
    )


def _hook_failed(hook: str, exc: Exception, redact: RunSecrets) -> str:
    return redact(f"A {hook} hook failed: {type(exc).__name__}: {exc}")


def _run_gate(
    options: RunOptions,
    target: Target,
    settings: GateSettings,
    tests: Sequence[TestRecord],
    baseline: dict[str, EndpointStats] | None,
    hooks: GateHooks,
    write_line: WriteLine,
    progress: LoadProgress,
    secrets: RunSecrets,
) -> GateOutcome:
    workers, remote = options.workers, options.remote_workers
    html_report = str(options.html_report) if options.html_report is not None else None
    # the child masks the run's secrets too (never sent the signing key: nothing to mask there)
    plan = plan_for(target, settings, html_report=html_report, secrets=secrets.shared)
    profile = describe_profile(plan, workers, remote)

    def stopped(status: GateStatus, reason: str) -> GateOutcome:
        return GateOutcome(GateRecord(status=status, reason=reason, profile=profile))

    # The session refuses this as a usage error before any test; the guard stays for any other
    # caller of run_gate, because no load may ever reach a protected target by mistake.
    if target.protected and not target.allow_load:
        return stopped(
            "refused",
            f"target {target.name!r} is protected, so no load was put on it (set "
            f"targets.{target.name}.allow_load: true in {defaults.CONFIG_FILE} to allow it)",
        )
    critical = [r.nodeid for r in tests if r.critical and r.outcome in ("failed", "error")]
    if critical and not settings.run_after_critical_failure:
        return stopped(
            "not_run",
            f"the critical test {critical[0]} failed, so no load was put on the target "
            f"(set gate.run_after_critical_failure: true to run it anyway)",
        )
    unreachable = probe(target, secrets)
    if unreachable:
        return stopped("error", unreachable)

    try:
        replaced = hooks.load_plan(target, plan)
    except Exception as exc:
        return stopped("error", _hook_failed("pytest_stagegate_load_plan", exc, secrets))
    if replaced is not None and not isinstance(replaced, LoadPlan):
        return stopped(
            "error",
            f"a pytest_stagegate_load_plan hook returned {type(replaced).__name__}, not a "
            f"LoadPlan (return dataclasses.replace(plan, ...) or None)",
        )
    if replaced is not None:
        # a hook's plan masks the run's secrets too, whatever it kept of plan.secrets
        plan = dataclasses.replace(replaced, secrets=sorted(secrets.shared.union(replaced.secrets)))
        profile = describe_profile(plan, workers, remote)
    from ..load.process import run_load

    if plan.otel:
        _warn_otel_missing(settings, write_line)
    bind = options.master_bind
    if remote and bind is not None:
        write_line(
            f"stagegate: the Locust master listens on {bind[0]}:{bind[1]} for {remote} remote "
            f"worker(s): stagegate worker --master-host HOST --master-port {bind[1]} "
            f"--target {target.name}, whose base_url must be {public_url(plan.host)} "
            f"(a worker loading another URL is refused)"
        )
    load_log = load_log_path(options)
    try:
        result = run_load(
            plan,
            workers=workers,
            on_progress=progress.update,
            grace=settings.load.abort.grace,
            log_path=load_log,
            remote_workers=remote,
            master_bind=bind,
            # what the remote workers prove (checked before any test); local ones get their own
            worker_token=os.environ.get(defaults.WORKER_TOKEN_ENV) if remote else None,
        )
    except LoadError as exc:
        return GateOutcome(
            GateRecord(status="error", reason=secrets(str(exc)), profile=profile),
            load_log=load_log,
        )
    finally:
        progress.done()

    wanted = sorted_percentiles(percentiles_needed(settings.budgets))
    stats = result.endpoint_stats(wanted)
    # flows (every one that ran) and the globs of group budgets: a budget key that is no
    # request name judges these (budgets: name, then flow, then glob)
    groups = result.group_stats([b.endpoint for b in settings.budgets], wanted)
    generator = result.generator.to_dict()
    saturated = str(generator.get("note") or "the load generator was saturated")
    dropped = dropped_of(result, plan.arrival_lag)
    checks = evaluate(
        settings.budgets,
        stats,
        min_samples=settings.min_samples,
        baseline=baseline,
        saturated=saturated if generator.get("saturated") else None,
        default_error_rate=settings.default_error_rate,
        waivers=settings.waivers,
        dropped=dropped,
        groups=groups,
        once_per_user=settings.load.once_per_user,
    )
    stage_checks, stage_stats = judge_stages(
        settings.load.stages,
        result,
        min_samples=settings.min_samples,
        saturated=saturated if generator.get("saturated") else None,
        dropped=dropped,
        flows=[f.name for f in settings.load.flows],
    )
    checks = [*checks, *stage_checks]
    total = stats.get(TOTAL)
    note = warmup_note(
        result.requests_including_warmup,
        result.failures_including_warmup,
        total.requests if total is not None else 0,
        result.warmup_seconds,
    )
    record = GateRecord(
        status=result.status,
        reason=" ".join(part for part in (secrets(result.reason), note) if part),
        profile=profile,
        endpoints=list(stats.values()),
        checks=checks,
        generator=generator,
        load_seconds=result.load_seconds,
        waivers=settings.waivers,
        load=load_model_record(
            result, plan.arrival_lag, stage_stats, engine=engine_of(plan, os.environ)
        ),
        flows=[s for s in groups.values() if s.kind == "flow"],
    )
    problems: tuple[Problem, ...] = ()
    if plan.html_report and not result.html_report:
        # asked for and lost (a full disk, say): the run must not pass as if it had been written
        problems = (
            (
                "error",
                f"The HTML report asked for with --gate-report could not be "
                f"written to {plan.html_report} (the load log says why).",
            ),
        )
    return GateOutcome(record, load_log, tuple(top_errors(result.errors, secrets)), problems)


def warmup_note(requests: int, failures: int, measured: int, warmup_seconds: float) -> str:
    """A sentence when every request the load made fell in the warm-up (the load stopped before
    it ended), so the tables, which leave the warm-up out, count none of them; else ""."""
    if requests <= 0 or measured > 0 or warmup_seconds <= 0:
        return ""
    failed = f", {failures} of them failed" if failures else ""
    return (
        f"All {requests} requests of the load were made in the warm-up (its first "
        f"{format_duration(warmup_seconds)}{failed}), which the gate does not judge: the load "
        f"stopped before the warm-up ended, so the tables count none of them."
    )


def dropped_of(result: LoadResult, arrival_lag: float) -> Dropped | None:
    """The open model's dropped iterations, for the budgets' dropped rule; None in the closed
    model."""
    if result.model != "open":
        return None
    return Dropped(due=result.iterations_due, dropped=result.dropped, lag_s=arrival_lag)


def stage_dropped(stage: StageResult | None, run: Dropped | None) -> Dropped | None:
    """The dropped rule of a stage's budgets: its own judged window's iterations due and
    dropped (a peak that dropped 3% of its iterations is not judged on the whole run's 0.75%);
    the whole run's from a result without the stage's counts; None in the closed model."""
    if run is None or stage is None or stage.iterations_due is None:
        return run
    return Dropped(due=stage.iterations_due, dropped=stage.dropped or 0, lag_s=run.lag_s)


def judge_stages(
    stages: Sequence[StageSpec],
    result: LoadResult,
    *,
    min_samples: int,
    saturated: str | None = None,
    dropped: Dropped | None = None,
    flows: Sequence[str] = (),
) -> tuple[list[Check], dict[str, dict[str, EndpointStats]]]:
    """The stage budgets (``gate.load.stages[].budgets``), each stage's against its own
    requests (``StageResult``; a glob's covered names merged); a stage with budgets that did
    not run (the load stopped before it) or kept no requests apart has each of its budgets
    inconclusive, saying so, and so has a budget on one of the ``flows`` (by name: a stage
    keeps no flow apart). ``dropped``: the whole run's; each stage's latency budgets are
    judged on the stage's own dropped iterations when the result has them
    (``stage_dropped``). Returns the checks and, by stage name, the stats they were judged
    on."""
    checks: list[Check] = []
    measured: dict[str, dict[str, EndpointStats]] = {}
    ran = {s.name: s for s in result.stages}
    for spec in stages:
        if not spec.budgets:
            continue
        stage = ran.get(spec.name)
        wanted = sorted_percentiles(percentiles_needed(spec.budgets))
        stats = None if stage is None else stage.endpoint_stats(wanted, result.warmup_seconds)
        if stats is None:
            if stage is None:
                when = (
                    f"the load stopped after {format_duration(result.load_seconds)}, before it"
                    if result.status != "completed"
                    else "it was not in the load that ran"
                )
                why = f"stage {spec.name} did not run ({when})"
            else:
                why = f"the requests of stage {spec.name} were not kept apart"
            checks += [_unjudged(b, spec.name, why) for b in spec.budgets]
            continue
        measured[spec.name] = stats
        on_flows = [b for b in spec.budgets if b.endpoint in flows and b.endpoint not in stats]
        checks += evaluate(
            [b for b in spec.budgets if b not in on_flows],
            stats,
            min_samples=min_samples,
            saturated=saturated,
            dropped=stage_dropped(stage, dropped),
            stage=spec.name,
            groups=None
            if stage is None
            else stage.group_stats(
                [b.endpoint for b in spec.budgets], wanted, result.warmup_seconds
            ),
        )
        checks += [
            _unjudged(
                b,
                spec.name,
                f"flows are judged over the whole run: stage {spec.name} kept no iterations of "
                f"flow {b.endpoint} apart",
            )
            for b in on_flows
        ]
    return checks, measured


def _unjudged(budget: Budget, stage: str, why: str) -> Check:
    """A stage budget that could not be checked, saying ``why``."""
    return Check(
        endpoint=budget.endpoint,
        metric=budget.metric,
        limit=budget.limit,
        observed=None,
        samples=0,
        outcome="inconclusive",
        message=f"{why}, so the {budget.metric} budget of {budget.endpoint} in stage {stage} "
        "could not be checked.",
        unit=parse_metric(budget.metric).unit,
        stage=stage,
    )


def load_model_record(
    result: LoadResult,
    arrival_lag: float | None,
    stage_stats: dict[str, dict[str, EndpointStats]] | None = None,
    engine: str | None = None,
) -> LoadModelRecord:
    """The verdict's account of the load model: open or closed, the dropped iterations, the
    stages (with the stats of those judged on their own) and the timeline."""
    stage_stats = stage_stats or {}
    return LoadModelRecord(
        model=result.model,
        rate=result.rate,
        iterations_due=result.iterations_due,
        dropped=result.dropped,
        arrival_lag_s=arrival_lag if result.model == "open" else None,
        unanswered=result.unanswered,
        unanswered_measured=result.unanswered_measured,
        engine=engine,
        stages=tuple(
            StageRecord(
                name=s.name,
                start_s=s.start_s,
                end_s=s.end_s,
                judged=s.judged,
                level_from=s.level_from,
                level_to=s.level_to,
                unit=s.unit,
                endpoints=tuple(stage_stats.get(s.name, {}).values()),
                requests=s.requests,
                failures=s.failures,
                iterations_due=s.iterations_due,
                dropped=s.dropped,
            )
            for s in result.stages
        ),
        timeline=tuple(
            TimelineRecord(
                t=p.t,
                requests=p.requests,
                failures=p.failures,
                p95_ms=p.p95_ms,
                stage=p.stage,
                judged=p.judged,
            )
            for p in result.timeline
        ),
    )


def load_log_path(options: RunOptions) -> Path | None:
    """Locust's log (redacted) goes next to the verdict, for CI to keep with it."""
    path = options.load_log
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # the verdict writer reports an unwritable place
    return path


def top_errors(
    errors: Sequence[ErrorRecord], redact: Callable[[str], str], most: int = 3
) -> list[str]:
    """The most frequent load errors, as phrases: '2,008 x HTTP 404 on GET /missing', each
    passed through ``redact`` (the run's secrets)."""
    ranked = sorted(errors, key=lambda e: e.occurrences, reverse=True)[:most]
    return [
        redact(f"{e.occurrences:,} x {' '.join(e.error.split())[:200]} on {e.name}") for e in ranked
    ]


def describe_profile(plan: LoadPlan, workers: int, remote: int = 0) -> dict[str, Any]:
    """The load profile as it ran (after ``pytest_stagegate_load_plan``), for the verdict. In
    the open model also ``model`` "open", ``rate`` (None with stages: they say the rates) and
    ``arrival_lag_s`` (how late an iteration may start before it is dropped); with stages, the
    ``stages`` as planned (``name``, ``duration_s``, ``rate`` or ``users``, ``judge``). No
    ``spawn_rate`` where it says nothing: the open model starts all its users at once, stages
    ramp their own."""
    model: dict[str, Any] = {}
    if plan.open_model:
        model = {"model": "open", "rate": plan.rate, "arrival_lag_s": plan.arrival_lag}
    if plan.stages:
        model["stages"] = [
            {
                "name": st.name,
                "duration_s": st.duration,
                **({"rate": st.rate} if st.rate is not None else {"users": st.users}),
                "judge": st.judge,
            }
            for st in plan.stages
        ]
    spawn = {} if plan.open_model or plan.stages else {"spawn_rate": plan.spawn_rate}
    return {
        **model,
        "users": plan.users,
        **spawn,
        "duration_s": plan.duration,
        "warmup_s": plan.warmup,
        "workers": workers + remote,
        "remote_workers": remote,
        # "flows" when the scenario has flows (its requests, if any, run beside them)
        "scenario": "locustfile" if plan.locustfile else "flows" if plan.flows else "requests",
        **({"flows": [f.name for f in plan.flows]} if plan.flows else {}),
        "user_class": plan.user_class,
    }


def probe(target: Target, redact: Callable[[str], str] | None = None) -> str | None:
    """None when the target answers HTTP at all; otherwise a sentence saying why not.

    The whole answer, from the connect to the last body byte, must arrive within the target's
    timeout (at most ``REACHABILITY_TIMEOUT``) whatever pace the server sends it at, and its body
    be no larger than the target's ``max_body`` (``target.client``). The sentence is redacted
    with ``redact`` (the run's secrets; the target's by default)."""
    url = target.base_url + "/"
    try:
        with make_client(target, retries=0) as client:
            client.get("/", timeout=min(target.timeout, REACHABILITY_TIMEOUT))
    except httpx.HTTPError as exc:
        return (redact or target.redact)(
            f"target {target.name!r} is unreachable over HTTP, so no load was put on it: GET {url} "
            f"failed with {type(exc).__name__}: {str(exc) or 'no detail'}"
        )
    return None
