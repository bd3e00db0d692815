"""Closed-model stages (``gate.load.stages`` with ``users``) as the ticks of a Locust load shape.
Pure: no locust or gevent import, so it is unit-tested in the pytest process; the Locust class
that calls it is ``locust_setup.StagesShape``.

k6's convention: the user count moves linearly from the previous stage's level (0 before the
first stage) to this stage's ``users`` over its ``duration``; a stage that repeats the previous
level holds it. Locust asks its shape for ``(users, spawn_rate)`` about once a second and sends
the users there at that rate. ``ramp_tick`` at run time ``t`` answers with the level of the next
tick, ``t + TICK``, and the rate that gets there in one tick, so the user count follows the line
instead of trailing it by a second; after the last stage it answers None (the load ends).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

__all__ = ["TICK", "Stage", "level_at", "ramp_tick", "total_duration"]

TICK = 1.0  # seconds between Locust's calls to a shape's tick()
MIN_SPAWN_RATE = 1.0  # users per second: a lone user joins within the tick


class Stage(Protocol):
    """What a stage needs here (``load.plan.PlannedStage``)."""

    @property
    def duration(self) -> float: ...
    @property
    def users(self) -> int | None: ...


def _users(stage: Stage) -> int:
    if stage.users is None:
        raise ValueError("a closed-model stage needs users (this one has a rate)")
    return stage.users


def total_duration(stages: Sequence[Stage]) -> float:
    return sum(max(0.0, s.duration) for s in stages)


def level_at(stages: Sequence[Stage], t: float) -> float:
    """The user count the stages ask for at ``t`` seconds from the load start (a fraction on a
    ramp): 0 before the first stage, the last stage's users from its end on."""
    previous = 0.0
    start = 0.0
    for stage in stages:
        users = float(_users(stage))
        duration = max(0.0, stage.duration)
        if t < start + duration:
            if t <= start:
                return previous
            return previous + (users - previous) * (t - start) / duration
        previous = users
        start += duration
    return previous


def ramp_tick(stages: Sequence[Stage], t: float, *, hold: float = 0.0) -> tuple[int, float] | None:
    """Locust's ``(user_count, spawn_rate)`` at run time ``t``, or None once the stages are over.

    ``hold`` seconds past the last stage, the last level is kept instead of ending: the gate
    ends a run at its duration itself, the way every run ends, and the shape's own end is only
    a backstop. ``spawn_rate`` (at least 1 user a second) is the change over the next tick, in
    users a second, rounded to 2 decimals so that Locust, which restarts the spawning whenever
    the answer changes, is not restarted for a rounding difference.
    """
    if not stages:
        return None
    total = total_duration(stages)
    if t >= total + max(0.0, hold):
        return None
    now = level_at(stages, t)
    ahead = level_at(stages, min(t + TICK, total))
    users = max(0, math.floor(ahead + 0.5))
    rate = max(MIN_SPAWN_RATE, abs(ahead - now) / TICK)
    return users, round(rate, 2)
