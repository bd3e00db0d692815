"""``load.usage``: CPU and loop-lag figures, and the rule that calls a load generator saturated."""

from __future__ import annotations

import pytest

from pytest_stagegate.load.result import ProcessUsage
from pytest_stagegate.load.usage import (
    RecentUsage,
    UsageStats,
    generator_health,
    judge_saturation,
    parse_schedstat,
    wait_percent,
)


def usage(role: str, cpu: list[float], lag: list[float], threshold: float = 90.0) -> ProcessUsage:
    stats = UsageStats()
    for pct in cpu:
        stats.add_cpu(pct, threshold)
    for ms in lag:
        stats.add_lag(ms)
    return stats.usage(role)


def test_usage_sums_up_the_samples() -> None:
    assert usage("worker 1", [10.0, 95.0, 20.04], [1.0, 60.0]) == ProcessUsage(
        role="worker 1",
        cpu_max_percent=95.0,
        cpu_mean_percent=41.7,
        cpu_samples=3,
        hot_samples=1,
        loop_lag_max_ms=60.0,
        loop_lag_samples=2,
        loop_lag_over=1,
    )
    assert usage("local", [], []).cpu_mean_percent == 0.0


def test_saturation_rule_light_load_kept_up() -> None:
    saturated, note = judge_saturation([usage("local", [5.0] * 8, [1.0] * 40)], 90.0)
    assert saturated is False
    assert note.startswith("The load generator kept up: 1 load process, CPU at most 5%")


@pytest.mark.parametrize(
    ("cpu", "lag", "saturated"),
    [
        ([95.0, 95.0] + [10.0] * 6, [1.0] * 40, True),  # 2 of 8 hot: 25%
        ([95.0] + [10.0] * 7, [1.0] * 40, False),  # one hot sample is not enough
        ([10.0] * 8, [60.0] * 3 + [1.0] * 37, True),  # 3 of 40 late: 7.5%
        ([10.0] * 8, [60.0] * 2 + [1.0] * 38, False),
        ([10.0] * 8, [60.0] * 3 + [1.0] * 97, False),  # 3%: under the share
    ],
)
def test_saturation_rule(cpu: list[float], lag: list[float], saturated: bool) -> None:
    assert judge_saturation([usage("local", cpu, lag)], 90.0)[0] is saturated


def test_saturation_rule_ignores_the_master_and_needs_samples() -> None:
    busy_master = usage("master", [99.0] * 8, [90.0] * 40)
    idle_worker = usage("worker 1", [5.0] * 8, [1.0] * 40)
    assert judge_saturation([busy_master, idle_worker], 90.0)[0] is False
    busy_worker = usage("worker 2", [99.0] * 8, [1.0] * 40)
    saturated, note = judge_saturation([busy_master, idle_worker, busy_worker], 90.0)
    assert saturated is True and "the worker 2 process" in note
    assert judge_saturation([], 90.0) == (
        False,
        "The load generator ran too briefly to measure its own CPU.",
    )


def test_recent_usage_forgets_old_samples() -> None:
    recent = RecentUsage(window=3.0, threshold=90.0)
    for t in (0.0, 0.5, 1.0):
        recent.add_cpu(t, 99.0)
    assert judge_saturation([recent.usage("local")], 90.0)[0] is True
    for t in (4.5, 5.0):  # the hot samples are more than 3 s old now
        recent.add_cpu(t, 5.0)
    now = recent.usage("local")
    assert now.cpu_samples == 2 and now.hot_samples == 0
    assert judge_saturation([now], 90.0)[0] is False


def test_generator_health_reports_the_load_processes() -> None:
    master = usage("master", [99.0] * 8, [90.0] * 40)
    workers = [usage("worker 1", [30.0] * 8, [2.0] * 40), usage("worker 2", [50.0] * 8, [4.0])]
    health = generator_health([master, *workers], 90.0)
    assert (health.processes, health.saturated, health.saturation_cpu) == (2, False, 90.0)
    assert (health.cpu_max_percent, health.cpu_mean_percent) == (50.0, 50.0)
    assert health.loop_lag_max_ms == 4.0
    assert health.per_process == (master, *workers)
    assert health.note == judge_saturation([master, *workers], 90.0)[1]
    # a master alone (no worker reported): its own figures, rather than none
    alone = generator_health([master], 90.0)
    assert alone.processes == 1 and alone.cpu_max_percent == 99.0 and alone.saturated is False
    assert generator_health([], 90.0).processes == 0


# --- the wait for a CPU (issue 15, item 4) --------------------------------------------------
def test_schedstat_is_parsed_and_garbage_is_none() -> None:
    assert parse_schedstat("213119301 553669806 232\n") == (213119301, 553669806)
    assert parse_schedstat("") is None
    assert parse_schedstat("1") is None
    assert parse_schedstat("a b c") is None
    assert parse_schedstat("-1 5 3") is None


def test_wait_percent_is_the_share_of_wall_time_runnable_but_waiting() -> None:
    assert wait_percent(1_000_000_000, 1_400_000_000, 1.0) == pytest.approx(40.0)
    assert wait_percent(0, 250_000_000, 0.5) == pytest.approx(50.0)
    assert wait_percent(0, 2_000_000_000, 1.0) == 100.0  # capped: clocks read apart
    assert wait_percent(5, 4, 1.0) is None  # went backwards
    assert wait_percent(0, 1, 0.0) is None


def starved(cpu: list[float], wait: list[float | None], threshold: float = 90.0) -> ProcessUsage:
    stats = UsageStats()
    for pct, w in zip(cpu, wait, strict=True):
        stats.add_cpu(pct, threshold, w)
    return stats.usage("local")


def test_a_starved_process_is_hot_on_cpu_plus_wait() -> None:
    # 30% of a core, waiting for one 65% of the time: busy 95%; CPU alone would say kept up
    p = starved([30.0, 30.0, 20.0, 31.0], [65.0, 65.0, 10.0, 60.0])
    assert (p.hot_samples, p.busy_max_percent) == (3, 95.0)
    assert (p.wait_mean_percent, p.wait_max_percent) == (50.0, 65.0)
    saturated, note = judge_saturation([p], 90.0)
    assert saturated is True
    assert note == (
        "The load generator was saturated: the local process was busy (on a CPU or waiting for "
        "one) 90% of the time or more in 3 of 4 samples (max 95%, CPU at most 31% of one core); "
        "it waited for a CPU 50% of the time: the machine is shared or too small."
    )
    assert starved([30.0] * 4, [None] * 4).hot_samples == 0  # the same CPU, wait unknown


def test_a_busy_process_that_did_not_wait_is_not_called_starved() -> None:
    saturated, note = judge_saturation([starved([95.0, 96.0], [1.0, 2.0])], 90.0)
    assert saturated is True
    assert "(max 98%, CPU at most 96% of one core)." in note
    assert "waited" not in note


def test_without_the_wait_the_figures_and_sentences_are_the_cpu_ones() -> None:
    p = starved([95.0, 96.0], [None, None])
    assert (p.wait_mean_percent, p.wait_max_percent, p.busy_max_percent) == (None, None, None)
    assert "wait_mean_percent" not in p.to_dict()
    assert judge_saturation([p], 90.0)[1] == (
        "The load generator was saturated: the local process was at or above 90% of one CPU "
        "core in 2 of 2 samples (max 96%)."
    )
    kept = judge_saturation([starved([10.0, 12.0], [None, None])], 90.0)[1]
    assert "waiting" not in kept


def test_kept_up_names_the_wait_when_measured() -> None:
    saturated, note = judge_saturation([starved([10.0, 12.0], [5.0, 20.0])], 90.0)
    assert saturated is False
    assert note.startswith(
        "The load generator kept up: 1 load process, CPU at most 12% of one core (mean 11%), "
        "waiting for a CPU at most 20% of the time, event loop at most"
    )


def test_usage_with_the_wait_round_trips() -> None:
    p = starved([30.0, 40.0], [60.0, 55.0])
    assert ProcessUsage.from_dict(p.to_dict(), "p") == p
    old = starved([30.0, 40.0], [None, None])  # a verdict of 0.1 has no wait figures
    assert ProcessUsage.from_dict(old.to_dict(), "p") == old
    with pytest.raises(ValueError, match="wait_mean_percent"):
        ProcessUsage.from_dict({**p.to_dict(), "wait_mean_percent": "x"}, "p")


def test_recent_usage_keeps_the_wait() -> None:
    recent = RecentUsage(3.0, 90.0)
    for t in range(4):
        recent.add_cpu(float(t), 25.0, 70.0)
    assert recent.usage("local").hot_samples == 4
    assert judge_saturation([recent.usage("local")], 90.0)[0] is True
