"""plugin/gate.py for the load models: the dropped rule's input, stage budgets judged on their
stage's requests, the verdict's account of the model; load/result.py's stage stats. Pure:
hand-made LoadResults, no load runs."""

from __future__ import annotations

import dataclasses
import json

from pytest_stagegate.budgets import TOTAL, Budget
from pytest_stagegate.config.model import StageSpec
from pytest_stagegate.histogram import LogHistogram
from pytest_stagegate.load.plan import LoadPlan, PlannedStage
from pytest_stagegate.load.result import (
    EndpointResult,
    GeneratorHealth,
    LoadResult,
    StageResult,
    TimelinePoint,
)
from pytest_stagegate.plugin.gate import (
    describe_profile,
    dropped_of,
    judge_stages,
    load_model_record,
    stage_dropped,
)
from pytest_stagegate.verdict import GateRecord, Verdict, validate_verdict
from tests.verdict_samples import verdict


def hist(*values: float) -> LogHistogram:
    h = LogHistogram()
    for v in values:
        h.record(v)
    return h


def endpoint(
    name: str, ms: float, n: int, *, service_ms: float | None = None, failures: int = 0
) -> EndpointResult:
    return EndpointResult(
        name=name,
        method="GET" if name != TOTAL else "",
        requests=n,
        failures=failures,
        histogram=hist(*[ms] * (n - failures)),
        service_histogram=None if service_ms is None else hist(*[service_ms] * (n - failures)),
    )


def result(
    *,
    stages: tuple[StageResult, ...] = (),
    model: str = "open",
    due: int = 1000,
    dropped: int = 0,
    status: str = "completed",
    warmup: float = 0.0,
) -> LoadResult:
    return LoadResult(
        status=status,  # type: ignore[arg-type]
        reason="",
        started_at="2025-01-15T10:00:00Z",
        finished_at="2025-01-15T10:00:30Z",
        load_seconds=30.0,
        measured_seconds=30.0 - warmup,
        warmup_seconds=warmup,
        users=60,
        workers=0,
        endpoints=(endpoint("GET /a", 120.0, 1000, service_ms=40.0),),
        total=endpoint(TOTAL, 120.0, 1000, service_ms=40.0),
        errors=(),
        generator=GeneratorHealth.unknown(),
        model=model,  # type: ignore[arg-type]
        rate=50.0 if model == "open" else None,
        iterations_due=due,
        dropped=dropped,
        stages=stages,
        timeline=tuple(
            TimelinePoint(float(t), 50, 0, 120.0, "peak" if t > 10 else "ramp", t > 10)
            for t in range(1, 31)
        ),
    )


RAMP = StageResult("ramp", 0.0, 10.0, False, 0.0, 50.0, "iterations/s")


def peak(ms: float = 400.0, n: int = 500) -> StageResult:
    return StageResult(
        "peak",
        10.0,
        30.0,
        True,
        50.0,
        50.0,
        "iterations/s",
        endpoints=(endpoint("GET /a", ms, n),),
        total=endpoint(TOTAL, ms, n),
    )


PEAK_SPEC = StageSpec("peak", 20.0, rate=50.0, budgets=(Budget(TOTAL, "p95", 300.0),))


def test_the_stage_stats_are_over_the_stage_after_the_warmup() -> None:
    stage = peak(n=500)
    stats = stage.endpoint_stats(["p99.9"], warmup_seconds=15.0)
    assert stats is not None
    assert set(stats) == {"GET /a", TOTAL}
    assert stats[TOTAL].rps == 500 / 15.0  # judged from 15 s to 30 s
    assert set(stats[TOTAL].percentiles) >= {"p50", "p95", "p99", "p99.9"}
    assert RAMP.endpoint_stats([], 0.0) is None  # no budgets: no requests kept apart


def test_the_service_time_reaches_the_stats() -> None:
    stats = result().endpoint_stats(["p95"])
    service = stats[TOTAL].service
    assert service is not None and service.samples == 1000
    assert abs(service.percentiles["p95"] - 40.0) < 0.1
    closed = result(model="closed", stages=()).endpoint_stats()
    assert closed[TOTAL].service is not None  # the hand-made result has one; the child's not


def test_stage_budgets_are_judged_on_their_stage() -> None:
    checks, stats = judge_stages([PEAK_SPEC], result(stages=(RAMP, peak(400.0))), min_samples=20)
    assert [(c.stage, c.endpoint, c.metric, c.outcome) for c in checks] == [
        ("peak", TOTAL, "p95", "fail")
    ]
    assert "in stage peak" in checks[0].message
    assert abs((checks[0].observed or 0) - 400.0) < 1
    assert set(stats) == {"peak"}


def test_a_stage_that_did_not_run_is_inconclusive() -> None:
    checks, stats = judge_stages(
        [PEAK_SPEC], result(stages=(RAMP,), status="aborted"), min_samples=20
    )
    assert [(c.stage, c.outcome, c.samples, c.observed) for c in checks] == [
        ("peak", "inconclusive", 0, None)
    ]
    assert checks[0].message == (
        "stage peak did not run (the load stopped after 30s, before it), so the p95 budget of "
        "total in stage peak could not be checked."
    )
    assert stats == {}
    kept_nothing = StageResult("peak", 10.0, 30.0, True, 50.0, 50.0, "iterations/s")
    checks, _ = judge_stages([PEAK_SPEC], result(stages=(kept_nothing,)), min_samples=20)
    assert "were not kept apart" in checks[0].message


def test_stages_without_budgets_are_not_judged_apart() -> None:
    spec = StageSpec("peak", 20.0, rate=50.0)
    assert judge_stages([spec], result(stages=(peak(),)), min_samples=20) == ([], {})


def test_the_dropped_rule_reaches_stage_checks() -> None:
    r = result(stages=(peak(100.0),), due=1000, dropped=20)
    checks, _ = judge_stages([PEAK_SPEC], r, min_samples=20, dropped=dropped_of(r, 0.5))
    assert checks[0].outcome == "inconclusive"
    assert "20 of 1,000 iterations (2%)" in checks[0].message


def test_a_stage_is_judged_on_its_own_dropped_iterations() -> None:
    # 60 of the peak's 2,000 iterations dropped (3%) are 0.75% of the run's 8,000: the peak's
    # p95 cannot pass without its slowest users, whatever the run's share
    broken = dataclasses.replace(peak(100.0), iterations_due=2000, dropped=60)
    r = result(stages=(RAMP, broken), due=8000, dropped=60)
    run = dropped_of(r, 0.5)
    assert run is not None and not run.too_many()
    checks, _ = judge_stages([PEAK_SPEC], r, min_samples=20, dropped=run)
    assert [(c.stage, c.outcome) for c in checks] == [("peak", "inconclusive")]
    assert "60 of 2,000 iterations (3%) could not start within 500ms" in checks[0].message
    # and the other way: a run that dropped 2% elsewhere does not spoil a peak that dropped none
    kept = dataclasses.replace(peak(100.0), iterations_due=2000, dropped=0)
    r = result(stages=(RAMP, kept), due=8000, dropped=160)
    checks, _ = judge_stages([PEAK_SPEC], r, min_samples=20, dropped=dropped_of(r, 0.5))
    assert [(c.stage, c.outcome) for c in checks] == [("peak", "pass")]
    # a result without the stage's counts (an older child) keeps the whole run's rule
    assert stage_dropped(peak(), run) is run and stage_dropped(broken, None) is None
    # the verdict carries the stage's counts where there are some (the open model's judged
    # stages), and validates
    r = result(stages=(RAMP, broken), due=8000, dropped=60)
    checks, stats = judge_stages([PEAK_SPEC], r, min_samples=20, dropped=dropped_of(r, 0.5))
    v: Verdict = verdict(
        gate=GateRecord(
            status="completed",
            endpoints=list(r.endpoint_stats().values()),
            checks=checks,
            load_seconds=30.0,
            load=load_model_record(r, 0.5, stats),
        ),
        gate_requested=True,
    )
    data = json.loads(json.dumps(v.to_dict()))
    validate_verdict(data)
    ramp, pk = data["gate"]["load"]["stages"]
    assert "iterations_due" not in ramp and "dropped" not in ramp
    assert (pk["iterations_due"], pk["dropped"]) == (2000, 60)
    assert StageResult.from_dict(broken.to_dict(), "s") == broken


def test_dropped_of_only_in_the_open_model() -> None:
    d = dropped_of(result(due=3000, dropped=31), 0.5)
    assert d is not None and (d.due, d.dropped, d.lag_s) == (3000, 31, 0.5) and d.too_many()
    assert dropped_of(result(model="closed"), 0.5) is None


def test_the_load_model_record_and_its_json_validate() -> None:
    r = result(stages=(RAMP, peak()), due=1500, dropped=3)
    checks, stats = judge_stages([PEAK_SPEC], r, min_samples=20)
    record = load_model_record(r, 0.5, stats)
    assert (record.model, record.rate, record.iterations_due, record.dropped) == (
        "open",
        50.0,
        1500,
        3,
    )
    assert [s.name for s in record.stages] == ["ramp", "peak"]
    assert [e.name for e in record.stages[1].endpoints] == ["GET /a", TOTAL]
    assert len(record.timeline) == 30
    v: Verdict = verdict(
        gate=GateRecord(
            status="completed",
            endpoints=list(r.endpoint_stats().values()),
            checks=checks,
            load_seconds=30.0,
            load=record,
        ),
        gate_requested=True,
    )
    data = json.loads(json.dumps(v.to_dict()))
    validate_verdict(data)
    load = data["gate"]["load"]
    assert load["dropped_share"] == 0.002
    assert load["arrival_lag_s"] == 0.5
    assert load["stages"][0]["endpoints"] == []
    assert load["stages"][1]["endpoints"][-1]["name"] == TOTAL
    assert load["timeline"][0] == {
        "t": 1.0,
        "requests": 50,
        "failures": 0,
        "p95_ms": 120.0,
        "stage": "ramp",
        "judged": False,
    }
    assert data["gate"]["checks"][0]["stage"] == "peak"
    total = data["gate"]["endpoints"][-1]
    assert total["name"] == TOTAL
    assert abs(total["service_time"]["percentiles"]["p95"] - 40.0) < 0.1
    assert total["service_time"]["samples"] == 1000


def test_the_closed_model_record_has_no_arrival_lag() -> None:
    record = load_model_record(result(model="closed", due=0), 0.5)
    assert (record.model, record.rate, record.arrival_lag_s) == ("closed", None, None)


def test_the_profile_of_the_open_model() -> None:
    plan = LoadPlan(host="http://127.0.0.1:1", users=60, spawn_rate=60, duration=30.0, rate=50.0)
    profile = describe_profile(plan, workers=0)
    assert (profile["model"], profile["rate"]) == ("open", 50.0)
    staged = LoadPlan(
        host="http://127.0.0.1:1",
        users=60,
        spawn_rate=60,
        duration=30.0,
        stages=[PlannedStage("s", 30.0, rate=50.0)],
    )
    assert describe_profile(staged, workers=0)["rate"] is None
    closed = LoadPlan(host="http://127.0.0.1:1", users=5, spawn_rate=1, duration=30.0)
    assert "model" not in describe_profile(closed, workers=0)


def test_rates_are_over_the_judged_seconds() -> None:
    """A stage with judge: false is neither counted nor timed: 1,000 requests over the 20 s of
    the judged stage (30 s of load, the first 10 s a ramp not judged) are 50/s, not 33/s."""
    r = result(stages=(RAMP, peak()))
    assert r.judged_seconds == 20.0
    assert r.endpoint_stats()[TOTAL].rps == 50.0
    warm = result(stages=(RAMP, peak()), warmup=5.0)  # the warm-up inside the ramp
    assert warm.judged_seconds == 20.0
    assert result(stages=()).judged_seconds == 30.0
