"""``load.child.abort``: the early-abort rules on fixed times and numbers."""

from __future__ import annotations

import pytest

from pytest_stagegate.histogram import LogHistogram
from pytest_stagegate.load.child.abort import (
    LATENCY_MIN_SAMPLES,
    ErrorBurst,
    LatencyBreach,
    LatencyRule,
    RecentTicks,
    RequestCounts,
    latency_of,
    saturated_now,
)
from pytest_stagegate.load.child.recorder import EndpointTally, Recorder
from pytest_stagegate.load.plan import LatencyLimit
from pytest_stagegate.load.usage import UsageStats


def tally(*times: float, failures: int = 0) -> EndpointTally:
    ep = EndpointTally()
    ep.methods.add("GET")
    ep.requests = len(times)
    ep.failures = failures
    for t in times:
        ep.hist.record(t)
    return ep


def hist(*times: float) -> LogHistogram:
    return tally(*times).hist


# --- errors ----------------------------------------------------------------------------------
def test_errors_abort_on_the_share_within_the_window() -> None:
    counts = RequestCounts(window=5.0)
    counts.add(0.0, 0, 0)
    counts.add(1.0, 100, 10)
    assert counts.burst(min_requests=20, error_rate=0.9) is None  # 10%
    counts.add(7.0, 200, 105)  # the window is now 1.0 .. 7.0: 100 requests, 95 failed
    burst = counts.burst(min_requests=20, error_rate=0.9)
    assert burst == ErrorBurst(requests=100, failures=95, seconds=6.0)
    assert burst.share == pytest.approx(0.95)


def test_errors_need_enough_requests() -> None:
    counts = RequestCounts()
    counts.add(0.0, 0, 0)
    counts.add(1.0, 19, 19)
    assert counts.burst(min_requests=20, error_rate=0.5) is None
    counts.add(1.5, 20, 20)
    assert counts.burst(min_requests=20, error_rate=0.5) == ErrorBurst(20, 20, 1.5)
    # at least one request, whatever min_requests says
    zero = RequestCounts()
    zero.add(0.0, 0, 0)
    zero.add(1.0, 0, 0)
    assert zero.burst(min_requests=0, error_rate=0.0) is None
    assert RequestCounts().burst(min_requests=0, error_rate=0.0) is None


def test_the_window_keeps_the_newest_sample_at_or_before_its_start() -> None:
    counts = RequestCounts(window=5.0)
    for t in range(11):
        counts.add(float(t), t * 10, 0)
    # oldest kept: t=5 (10 - 5); 50 requests over the last 5 s
    assert counts.rps() == pytest.approx(10.0)
    burst = RequestCounts(window=5.0)
    burst.add(0.0, 0, 0)
    burst.add(100.0, 40, 40)  # a long gap: two samples are always kept
    assert burst.burst(1, 0.5) == ErrorBurst(40, 40, 100.0)


def test_rps_needs_two_samples() -> None:
    counts = RequestCounts()
    assert counts.rps() == 0.0
    counts.add(3.0, 10, 0)
    assert counts.rps() == 0.0
    counts.add(3.0, 20, 0)
    assert counts.rps() == 0.0  # no time passed


def test_error_reason() -> None:
    reason = ErrorBurst(1234, 1234, 5.0).reason(7.25, " (most often X on GET /a, 9 times)")
    assert reason == (
        "Stopped the load after 7.2 s: 100% of 1,234 requests in the last 5.0 s failed "
        "(most often X on GET /a, 9 times)."
    )


# --- latency ---------------------------------------------------------------------------------
def test_latency_of_reads_the_metric_grammar() -> None:
    h = hist(*[float(i) for i in range(1, 101)])
    assert latency_of(h, "max") == 100.0
    assert latency_of(h, "avg") == pytest.approx(50.5)
    assert latency_of(h, "p50") == pytest.approx(h.percentile(50))
    assert latency_of(h, "p99.9") == pytest.approx(h.percentile(99.9))
    for other in ("error_rate", "min_rps", "p95_regression", "p100", "nonsense"):
        assert latency_of(h, other) is None


def test_recent_ticks_forget_old_checks_and_give_the_progress_p95() -> None:
    ticks = RecentTicks(window=3.0)
    ticks.add(0.0, {"/a": tally(500.0)}, {})
    ticks.add(1.0, {}, {"/a": hist(400.0)})
    assert len(ticks.measured()) == 1  # a check without measured requests is left out
    assert ticks.p95() == pytest.approx(500.0, rel=0.01)
    ticks.add(3.5, {"/a": tally(10.0)}, {})  # the 0.0 check is more than 3 s old
    assert [set(t) for t in ticks.measured()] == [{"/a"}]
    assert ticks.p95() == pytest.approx(400.0, rel=0.01)  # warm-up times count for progress


LIMIT = LatencyLimit(endpoint="GET /a", metric="p95", limit_ms=10.0)


def slow_window(ms: float = 100.0, n: int = LATENCY_MIN_SAMPLES) -> list[dict[str, EndpointTally]]:
    return [{"GET /a": tally(*[ms] * n), "GET /b": tally(1.0)}]


def never_saturated() -> bool:
    return False


def test_latency_aborts_after_being_over_for_long_enough() -> None:
    rule = LatencyRule([LIMIT], factor=3.0, hold_for=1.0)
    assert rule.check(10.0, slow_window(), never_saturated).breach is None  # first time over
    assert rule.check(10.5, slow_window(), never_saturated).breach is None
    check = rule.check(11.0, slow_window(), never_saturated)
    assert check.breach is not None and check.held is None
    assert check.breach.held_for == 1.0
    assert check.breach.observed == pytest.approx(100.0, rel=0.01)
    assert check.breach.reason(12.34) == (
        "Stopped the load after 12.3 s: p95 of GET /a was 100 ms for 1.0 s, more than 3 "
        "times its budget of 10 ms."
    )


def test_a_small_budget_is_not_rounded_to_zero_in_the_reason() -> None:
    """``total: {p95: 0.5ms}`` said "6 ms ..., more than 3 times its budget of 0 ms"."""
    small = LatencyLimit(endpoint="GET /a", metric="p95", limit_ms=0.5)
    rule = LatencyRule([small], factor=3.0, hold_for=1.0)
    for t in (10.0, 10.5):
        rule.check(t, slow_window(6.0), never_saturated)
    check = rule.check(11.0, slow_window(6.0), never_saturated)
    assert check.breach is not None
    assert check.breach.reason(5.0) == (
        "Stopped the load after 5.0 s: p95 of GET /a was 6 ms for 1.0 s, more than 3 "
        "times its budget of 0.5 ms."
    )
    assert (
        LatencyBreach(small, 0.42, 1.0, 3.0)
        .reason(5.0)
        .endswith("was 0.42 ms for 1.0 s, more than 3 times its budget of 0.5 ms.")
    )


def test_latency_back_under_the_factor_starts_the_count_over() -> None:
    rule = LatencyRule([LIMIT], factor=3.0, hold_for=1.0)
    rule.check(10.0, slow_window(), never_saturated)
    assert rule.check(10.5, slow_window(ms=30.0), never_saturated).breach is None  # 3x: not over
    assert rule.check(11.0, slow_window(), never_saturated).breach is None
    assert rule.check(11.9, slow_window(), never_saturated).breach is None
    assert rule.check(12.0, slow_window(), never_saturated).breach is not None


def test_latency_needs_samples_and_a_window() -> None:
    rule = LatencyRule([LIMIT], factor=3.0, hold_for=0.0)
    few = slow_window(n=LATENCY_MIN_SAMPLES - 1)
    assert rule.check(10.0, few, never_saturated).breach is None
    assert rule.check(10.0, [], never_saturated).breach is None
    assert LatencyRule([], 3.0, 0.0).check(10.0, slow_window(), never_saturated).breach is None
    assert rule.check(10.0, slow_window(), never_saturated).breach is not None


def test_total_latency_merges_every_endpoint_of_every_check() -> None:
    total = LatencyLimit(endpoint="total", metric="max", limit_ms=10.0)
    rule = LatencyRule([total], factor=3.0, hold_for=0.0)
    window = [{"a": tally(1.0, 1.0, 1.0)}, {"b": tally(1.0, 50.0)}]
    check = rule.check(1.0, window, never_saturated)
    assert check.breach is not None and check.breach.observed == pytest.approx(50.0, rel=0.01)
    # an endpoint absent from the window is never over
    absent = LatencyRule([LatencyLimit("c", "max", 10.0)], 3.0, 0.0)
    assert absent.check(1.0, window, never_saturated).breach is None


def test_a_glob_limit_merges_the_names_it_covers() -> None:
    """``GET /api/*``: the window's requests of every name it matches, merged (as the verdict
    judges the group); the names it does not match stay out."""
    window = [
        {"GET /api/a": tally(1.0, 1.0, 1.0)},
        {"GET /api/b": tally(1.0, 50.0), "POST /login": tally(900.0)},
    ]
    rule = LatencyRule([LatencyLimit("GET /api/*", "max", 10.0, glob=True)], 3.0, 0.0)
    check = rule.check(1.0, window, never_saturated)
    assert check.breach is not None and check.breach.observed == pytest.approx(50.0, rel=0.01)
    assert "max of GET /api/* was 50 ms" in check.breach.reason(1.0)
    fine = LatencyRule([LatencyLimit("GET /api/*", "max", 100.0, glob=True)], 3.0, 0.0)
    assert fine.check(1.0, window, never_saturated).breach is None  # POST /login left out
    # not a glob (a request's exact name with glob characters): that name only
    exact = LatencyRule([LatencyLimit("GET /api/[ab]", "max", 10.0)], 3.0, 0.0)
    assert exact.check(1.0, window, never_saturated).breach is None


def test_a_saturated_generator_holds_the_latency_abort_back() -> None:
    asked: list[float] = []

    def saturated() -> bool:
        asked.append(1.0)
        return True

    rule = LatencyRule([LIMIT, LatencyLimit("GET /a", "max", 10.0)], factor=3.0, hold_for=0.0)
    check = rule.check(10.0, slow_window(), saturated)
    assert check.breach is None and check.held == LIMIT  # said once, for the first limit
    assert len(asked) == 1  # asked once per check
    check = rule.check(11.0, slow_window(), saturated)
    assert check.breach is None and check.held is None
    # not saturated any more: the count starts over from this check
    rule_for = LatencyRule([LIMIT], factor=3.0, hold_for=1.0)
    rule_for.check(10.0, slow_window(), never_saturated)
    rule_for.check(10.5, slow_window(), saturated)
    assert rule_for.check(11.0, slow_window(), never_saturated).breach is None
    assert rule_for.check(12.0, slow_window(), never_saturated).breach is not None


def test_saturation_is_not_asked_while_latency_is_within_its_limit() -> None:
    def boom() -> bool:
        raise AssertionError("asked")

    rule = LatencyRule([LIMIT], factor=3.0, hold_for=0.0)
    assert rule.check(1.0, slow_window(ms=5.0), boom).breach is None


def test_saturated_now_applies_the_saturation_rule_without_the_master() -> None:
    hot, cold = UsageStats(), UsageStats()
    for _ in range(4):
        hot.add_cpu(99.0, 90.0)
        cold.add_cpu(5.0, 90.0)
    assert saturated_now([hot.usage("local")], 90.0) is True
    assert saturated_now([cold.usage("local")], 90.0) is False
    assert saturated_now([hot.usage("master"), cold.usage("worker 1")], 90.0) is False
    assert saturated_now([], 90.0) is False


def test_latency_abort_reads_the_judged_latency_of_the_recorder() -> None:
    # the recorder's own tallies: fast refusals are apart, timeouts count at their full wait
    def window(exception: BaseException) -> list[dict[str, EndpointTally]]:
        rec = Recorder()
        rec.warmup_end = 0.0
        for _ in range(LATENCY_MIN_SAMPLES):
            rec.on_request("GET", "GET /a", 1.0, start_time=1.0)
            rec.on_request("GET", "GET /a", 2000.0, exception=exception, start_time=1.0)
        return [rec.take_fresh()[0]]

    rule = LatencyRule([LatencyLimit("GET /a", "max", 10.0)], factor=3.0, hold_for=0.0)
    refused = window(ConnectionRefusedError())  # failed, not timed out: not in the latency
    assert rule.check(10.0, refused, never_saturated).breach is None
    check = rule.check(10.0, window(TimeoutError()), never_saturated)
    assert check.breach is not None and check.breach.observed == pytest.approx(2000.0, rel=0.01)
