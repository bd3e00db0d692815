"""The result of a run, built from what the child measured: the same typed ``LoadResult``
the parent reads (``load.result``). Pure: no locust or gevent import."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone

from ...budgets import TOTAL
from ..plan import LoadPlan
from ..result import (
    EndpointResult,
    ErrorRecord,
    GeneratorHealth,
    LoadResult,
    ProcessUsage,
    StageResult,
    Status,
    TimelinePoint,
    unwrapped_error,
)
from ..usage import generator_health
from .arrivals import stage_bounds
from .recorder import FLOW_METHOD, EndpointTally

__all__ = [
    "assemble_result",
    "error_result",
    "flow_results",
    "iso_time",
    "merge_errors",
    "redact_endpoints",
    "stage_results",
    "unanswered_reason",
]

Redact = Callable[[str], str]


def iso_time(t: float) -> str:
    """Epoch seconds as ISO-8601 UTC, to the millisecond."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def redact_endpoints(
    measured: Mapping[str, EndpointTally], redact: Redact
) -> dict[str, EndpointTally]:
    """The endpoints by redacted name: a request name is whatever the locustfile asked for (a
    URL with a token in it, without ``name=``), so it is redacted like an error; names that
    become equal are merged."""
    merged: dict[str, EndpointTally] = {}
    for raw, ep in measured.items():
        name = redact(raw)
        into = merged.get(name)
        if into is None:
            into = merged[name] = EndpointTally()
        into.methods.update(redact(m) for m in ep.methods)
        into.requests += ep.requests
        into.failures += ep.failures
        into.timeouts += ep.timeouts
        into.hist.merge(ep.hist)
        into.failed_hist.merge(ep.failed_hist)
        into.service_hist.merge(ep.service_hist)
        for k in range(1, 6):
            into.classes[k] += ep.classes[k]
    return merged


def merge_errors(
    errors: Iterable[tuple[str, str, str, int]], redact: Redact
) -> tuple[ErrorRecord, ...]:
    """(name, method, error text, occurrences) as Locust groups them -> redacted records, the
    ones that became equal merged, the most frequent first. A plain exception's text is
    unwrapped to its message (``unwrapped_error``: a failed expectation reads as itself, not as
    ``CatchResponseError('...')``)."""
    merged: dict[tuple[str, str, str], int] = {}
    for name, method, error, occurrences in errors:
        key = (redact(name), redact(method), redact(unwrapped_error(error)))
        merged[key] = merged.get(key, 0) + occurrences
    return tuple(
        ErrorRecord(name=name, method=method, error=error, occurrences=n)
        for (name, method, error), n in sorted(merged.items(), key=lambda kv: -kv[1])
    )


def _endpoint(name: str, method: str, ep: EndpointTally, service: bool) -> EndpointResult:
    return EndpointResult(
        name,
        method,
        ep.requests,
        ep.failures,
        ep.hist,
        timeouts=ep.timeouts,
        failed_histogram=ep.failed_hist,
        service_histogram=ep.service_hist if service else None,
        status_classes=ep.status_classes,
    )


def _endpoints(
    endpoints: Mapping[str, EndpointTally], service: bool
) -> tuple[tuple[EndpointResult, ...], EndpointResult]:
    """Each endpoint, by name, and their total."""
    total = EndpointTally()
    for ep in endpoints.values():
        total.add(ep)
    total.methods.clear()
    return (
        tuple(
            _endpoint(name, ",".join(sorted(ep.methods)), ep, service)
            for name, ep in sorted(endpoints.items())
        ),
        _endpoint(TOTAL, "", total, service),
    )


def stage_results(
    plan: LoadPlan,
    load_seconds: float,
    stage_endpoints: Mapping[int, Mapping[str, EndpointTally]],
    stage_counts: Mapping[int, tuple[int, int]] | None = None,
    stage_slots: Mapping[int, tuple[int, int]] | None = None,
) -> tuple[StageResult, ...]:
    """``plan.stages`` as they ran: planned times cut at the load's end (an aborted run ends
    early), the levels they ramped over, each stage's (requests, failures) (``stage_counts``
    by stage index, ``Recorder.stage_totals``: 0 for a stage that recorded none; None when
    not given), in the open model each judged stage's (iterations due, dropped) in its judged
    window (``stage_slots``, ``Recorder.stage_slot_counts``: 0 for none; None when not given,
    for an unjudged stage and in the closed model), and for a stage with budgets its judged
    requests (``stage_endpoints``: by stage index, already redacted)."""
    out = []
    for k, (st, (start, end, lo, hi)) in enumerate(
        zip(plan.stages, stage_bounds(plan.stages), strict=True)
    ):
        endpoints: tuple[EndpointResult, ...] = ()
        total: EndpointResult | None = None
        if st.measure:
            endpoints, total = _endpoints(stage_endpoints.get(k, {}), plan.open_model)
        counts = None if stage_counts is None else stage_counts.get(k, (0, 0))
        slots = None
        if stage_slots is not None and plan.open_model and st.judge:
            slots = stage_slots.get(k, (0, 0))
        out.append(
            StageResult(
                name=st.name,
                start_s=round(min(start, load_seconds), 3),
                end_s=round(min(end, load_seconds), 3),
                judged=st.judge,
                level_from=lo,
                level_to=hi,
                unit="iterations/s" if st.rate is not None else "users",
                endpoints=endpoints,
                total=total,
                requests=None if counts is None else counts[0],
                failures=None if counts is None else counts[1],
                iterations_due=None if slots is None else slots[0],
                dropped=None if slots is None else slots[1],
            )
        )
    return tuple(out)


def assemble_result(
    plan: LoadPlan,
    *,
    status: Status,
    reason: str,
    load_start: float,
    warmup_end: float,
    stop_time: float,
    finished: float,
    workers: int,
    run_requests: int,
    run_failures: int,
    endpoints: Mapping[str, EndpointTally],
    errors: Sequence[ErrorRecord],
    processes: Sequence[ProcessUsage],
    html_report: str | None,
    unanswered: int = 0,
    unanswered_measured: int = 0,
    iterations_due: int = 0,
    dropped: int = 0,
    stage_endpoints: Mapping[int, Mapping[str, EndpointTally]] | None = None,
    stage_counts: Mapping[int, tuple[int, int]] | None = None,
    stage_slots: Mapping[int, tuple[int, int]] | None = None,
    timeline: Sequence[TimelinePoint] = (),
    flows: Mapping[str, EndpointTally] | None = None,
) -> LoadResult:
    """A finished run (completed or aborted). Times are epoch seconds; ``endpoints`` are the
    measured window's, already redacted (``redact_endpoints``); ``unanswered``: the requests
    still waiting for an answer when the load stopped, ``unanswered_measured`` of them judged
    (in ``endpoints``' latency at their waits so far, ``Recorder.on_unanswered``).

    A run that completed having sent requests but measured none (every one still waiting when
    the load stopped: a hang) is status "error" with ``unanswered_reason``: nothing could be
    judged, whoever reads the result; the waits of the unanswered ones are left out too.

    The open model (``plan.open_model``) adds each endpoint's service times, ``iterations_due``
    and ``dropped`` (the judged windows' slots); ``stage_endpoints`` are the judged requests
    of the stages with budgets, by stage index (redacted), ``stage_counts`` every stage's
    (requests, failures) (``Recorder.stage_totals``), ``stage_slots`` every stage's (iterations
    due, dropped) (``Recorder.stage_slot_counts``); ``timeline`` the run's points;
    ``flows`` the judged iterations of the declared flows by name (``Recorder.flows_measured``):
    every flow of ``plan.flows`` is in the result, in the plan's order, with none if it ran
    none."""
    open_model = plan.open_model
    measured, total = _endpoints(endpoints, open_model)
    if status == "completed" and total.requests == 0 and unanswered:
        # a hang: requests were sent, none was answered before the load stopped. Nothing is
        # judged, not even the waits of the unanswered ones: an error, whose reason says how
        # many were waiting (the hang rule)
        status, reason = "error", unanswered_reason(unanswered, plan)
        measured, total = _endpoints({}, open_model)
        stage_endpoints, unanswered_measured = {}, 0
    load_seconds = round(stop_time - load_start, 3)
    return LoadResult(
        status=status,
        reason=reason,
        started_at=iso_time(load_start),
        finished_at=iso_time(finished),
        load_seconds=load_seconds,
        measured_seconds=round(max(0.0, stop_time - warmup_end), 3),
        warmup_seconds=float(plan.warmup),
        users=plan.users,
        workers=workers,
        requests_including_warmup=run_requests,
        failures_including_warmup=run_failures,
        endpoints=measured,
        total=total,
        errors=tuple(errors),
        generator=generator_health(processes, plan.saturation_cpu),
        html_report=html_report,
        unanswered=unanswered,
        unanswered_measured=unanswered_measured,
        model="open" if open_model else "closed",
        rate=plan.rate,
        iterations_due=iterations_due if open_model else 0,
        dropped=dropped if open_model else 0,
        stages=stage_results(plan, load_seconds, stage_endpoints or {}, stage_counts, stage_slots),
        timeline=tuple(timeline),
        flows=flow_results(plan, flows or {}),
    )


def flow_results(plan: LoadPlan, flows: Mapping[str, EndpointTally]) -> tuple[EndpointResult, ...]:
    """Each declared flow as an endpoint of method ``FLOW``: its iterations, the failed ones
    (a failed step), the succeeded ones' whole durations (``histogram``) and the failed ones'
    (``failed_histogram``). Flow names are the configuration's, never data: not redacted."""
    return tuple(
        dataclasses.replace(
            _endpoint(f.name, FLOW_METHOD, flows.get(f.name) or EndpointTally(), False),
            status_classes={},  # an iteration has no status of its own
        )
        for f in plan.flows
    )


def unanswered_reason(unanswered: int, plan: LoadPlan) -> str:
    """Why a run that sent requests measured none: the target did not answer in time."""
    waiting = f"{unanswered:,} request{'s were' if unanswered != 1 else ' was'}"
    return (
        f"the target did not answer within the timeout ({plan.timeout:g} s): {waiting} still "
        f"waiting for an answer when the load stopped after {plan.duration:g} s, and none was "
        "answered, so nothing could be measured"
    )


def error_result(plan: LoadPlan | None, reason: str, workers: int, now: float) -> LoadResult:
    """Status "error": the plan could not be read, or the run failed before or during the
    load; nothing measured."""
    at = iso_time(now)
    return LoadResult.failed(
        reason,
        users=plan.users if plan else 0,
        workers=workers,
        started_at=at,
        finished_at=at,
        warmup_seconds=float(plan.warmup) if plan else 0.0,
        generator=GeneratorHealth.unknown(
            "No load was generated.", saturation_cpu=plan.saturation_cpu if plan else 0.0
        ),
    )
