"""``load.child.shape``: closed-model stages as a load shape's ticks, in-process (the module
imports no locust)."""

from __future__ import annotations

import pytest

from pytest_stagegate.load.child.shape import level_at, ramp_tick, total_duration
from pytest_stagegate.load.plan import PlannedStage


def stages(*levels: tuple[float, int]) -> list[PlannedStage]:
    return [PlannedStage(f"stage {i}", d, users=u) for i, (d, u) in enumerate(levels, 1)]


def test_the_level_ramps_linearly_from_the_previous_stage_as_k6_does() -> None:
    plan = stages((10, 10), (5, 10), (10, 0))  # up from 0, hold, down to 0
    assert total_duration(plan) == 25
    assert [level_at(plan, t) for t in (0, 2.5, 5, 10, 12, 15, 20, 25, 30)] == [
        0,
        2.5,
        5,
        10,
        10,
        10,
        5,
        0,
        0,
    ]


def test_the_first_stage_starts_from_zero_and_a_zero_length_stage_jumps() -> None:
    plan = stages((4, 8), (0, 20), (4, 20))
    assert level_at(plan, 2) == 4
    assert level_at(plan, 4) == 20  # the jump
    assert level_at(plan, 6) == 20


def test_a_tick_asks_for_the_level_one_second_ahead_at_the_rate_that_reaches_it() -> None:
    plan = stages((10, 100))  # 10 users a second
    assert ramp_tick(plan, 0) == (10, 10.0)
    assert ramp_tick(plan, 4.5) == (55, 10.0)
    assert ramp_tick(plan, 9.5) == (100, 5.0)  # the line ends at 10 s: half a second of ramp
    assert ramp_tick(plan, 10) is None


def test_a_slow_ramp_rounds_users_and_spawns_at_least_one_a_second() -> None:
    plan = stages((10, 3))  # 0.3 users a second
    ticks = [ramp_tick(plan, t) for t in range(10)]
    assert [tick[0] for tick in ticks if tick] == [0, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert {tick[1] for tick in ticks if tick} == {1.0}


def test_a_ramp_down_and_a_hold() -> None:
    plan = stages((2, 10), (3, 10), (5, 0))
    assert ramp_tick(plan, 2.5) == (10, 1.0)  # the hold: same answer every tick
    assert ramp_tick(plan, 3.5) == (10, 1.0)
    assert ramp_tick(plan, 6) == (6, 2.0)  # down 2 users a second
    assert ramp_tick(plan, 9.5) == (0, 1.0)


def test_ticks_of_one_stage_repeat_exactly_so_locust_is_not_restarted() -> None:
    # Locust restarts the spawning whenever the answer differs from the last one
    plan = stages((30, 90))
    rates = {ramp_tick(plan, t + 0.123)[1] for t in range(20)}  # type: ignore[index]
    assert rates == {3.0}


def test_hold_keeps_the_last_level_past_the_end_then_ends() -> None:
    plan = stages((2, 4), (2, 6))
    assert ramp_tick(plan, 4, hold=2) == (6, 1.0)
    assert ramp_tick(plan, 5.9, hold=2) == (6, 1.0)
    assert ramp_tick(plan, 6, hold=2) is None
    assert ramp_tick([], 0) is None


def test_a_stage_with_a_rate_is_not_a_closed_model_stage() -> None:
    with pytest.raises(ValueError, match="needs users"):
        level_at([PlannedStage("s", 5, rate=10.0)], 1)
