"""``load.usage``: CPU and loop-lag figures, and the rule that calls a load generator saturated."""

from __future__ import annotations

import pytest

from pytest_stagegate.load.result import ProcessUsage
from pytest_stagegate.load.usage import RecentUsage, UsageStats, generator_health, judge_saturation


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
