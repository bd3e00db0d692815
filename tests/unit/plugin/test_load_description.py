"""Where a run describes its load, the load model shows: the header (``session.describe_load``,
from a parsed stagegate.yaml), the verdict's profile (``gate.describe_profile``, from the plan
the config makes) and the summary's "load gate:" line made from it (``terminal._profile_parts``),
and the progress line (``terminal.progress_text``, from the child's event as
``Progress.from_event`` reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.config import GateSettings, LoadSettings, Target, load_config
from pytest_stagegate.load.plan import plan_for
from pytest_stagegate.load.process import Progress
from pytest_stagegate.plugin.gate import describe_profile
from pytest_stagegate.plugin.session import describe_load
from pytest_stagegate.plugin.terminal import _profile_parts, progress_text

HOST = "http://127.0.0.1:1"
RAMP = """
    stages:
      - {name: ramp-up, duration: 3s, rate: 100/s, judge: false}
      - {name: peak, duration: 10s, rate: 100/s}
      - {name: ramp-down, duration: 2s, rate: 0, judge: false}
"""
USERS_RAMP = """
    stages:
      - {duration: 5s, users: 20, judge: false}
      - {duration: 25s, users: 20}
"""


def load_of(tmp_path: Path, model: str) -> LoadSettings:
    """``gate.load`` of a stagegate.yaml whose load model is ``model`` (YAML under gate.load)."""
    (tmp_path / "stagegate.yaml").write_text(
        f"targets:\n  local:\n    base_url: {HOST}\n"
        f"gate:\n  load:\n{model.strip(chr(10))}\n    warmup: 2s\n    requests: [GET /]\n"
    )
    return load_config(tmp_path / "stagegate.yaml").gate_settings("local").load


def profile_of(load: LoadSettings) -> dict[str, Any]:
    plan = plan_for(Target(name="local", base_url=HOST), GateSettings(load=load))
    return describe_profile(plan, workers=0)


def test_the_closed_model_is_described_by_its_users(tmp_path: Path) -> None:
    load = load_of(tmp_path, "    users: 10\n    spawn_rate: 5\n    duration: 10s")
    assert describe_load(load) == "10 users"
    profile = profile_of(load)
    assert "model" not in profile and "stages" not in profile
    assert (profile["users"], profile["spawn_rate"]) == (10, 5.0)
    assert _profile_parts(profile) == ["10 users, 10 s, warm-up 2 s"]


def test_the_open_model_is_described_by_its_rate_and_concurrency(tmp_path: Path) -> None:
    load = load_of(tmp_path, "    rate: 6000/m\n    duration: 10s")
    assert describe_load(load) == "open model, rate 100/s (at most 50 concurrent iterations)"
    profile = profile_of(load)
    assert (profile["model"], profile["rate"], profile["users"]) == ("open", 100.0, 50)
    assert profile["arrival_lag_s"] == 0.5
    assert "spawn_rate" not in profile  # all its users start at once: a spawn rate says nothing
    assert "stages" not in profile
    assert _profile_parts(profile) == [
        "open model, rate 100/s, at most 50 concurrent iterations, 10 s, warm-up 2 s"
    ]


def test_open_model_stages_are_described_by_their_peak_and_number(tmp_path: Path) -> None:
    load = load_of(tmp_path, RAMP)
    assert describe_load(load) == (
        "open model, rate up to 100/s in 3 stages (at most 50 concurrent iterations)"
    )
    profile = profile_of(load)
    assert (profile["model"], profile["rate"], profile["duration_s"]) == ("open", None, 15.0)
    assert profile["stages"] == [
        {"name": "ramp-up", "duration_s": 3.0, "rate": 100.0, "judge": False},
        {"name": "peak", "duration_s": 10.0, "rate": 100.0, "judge": True},
        {"name": "ramp-down", "duration_s": 2.0, "rate": 0.0, "judge": False},
    ]
    assert "spawn_rate" not in profile
    assert _profile_parts(profile) == [
        "open model, rate up to 100/s in 3 stages, at most 50 concurrent iterations, 15 s, "
        "warm-up 2 s"
    ]


def test_closed_model_stages_are_described_by_their_peak_users(tmp_path: Path) -> None:
    load = load_of(tmp_path, USERS_RAMP)
    assert describe_load(load) == "up to 20 users in 2 stages"
    profile = profile_of(load)
    assert "model" not in profile and "spawn_rate" not in profile  # the stages ramp the users
    assert profile["stages"] == [
        {"name": "stage 1", "duration_s": 5.0, "users": 20, "judge": False},
        {"name": "stage 2", "duration_s": 25.0, "users": 20, "judge": True},
    ]
    assert _profile_parts(profile) == ["up to 20 users in 2 stages, 30 s, warm-up 2 s"]


def test_a_slow_rate_is_described_in_its_own_unit(tmp_path: Path) -> None:
    load = load_of(tmp_path, "    rate: 30/m\n    users: 1\n    duration: 10s")
    assert describe_load(load) == "open model, rate 30/m (at most 1 concurrent iteration)"


EVENT = {
    "elapsed": 12.4,
    "duration": 30.0,
    "users": 100,
    "rps": 98.5,
    "p95_ms": 12.0,
    "requests": 1400,
    "failures": 3,
    "warmup": False,
}


def test_the_closed_models_progress_shows_its_users() -> None:
    progress = Progress.from_event(dict(EVENT))
    assert (progress.rate, progress.dropped) == (None, None)
    assert progress_text(progress) == (
        "stagegate load:   12/30 s | 100 users | 98.5 req/s | p95 12.0 ms | "
        "3 of 1,400 failed so far (warm-up included)"
    )


@pytest.mark.parametrize(
    ("rate", "dropped", "shown"),
    [
        (100.0, 0, "rate 100/s, 0 dropped"),
        (33.3, 1234, "rate 33.3/s, 1,234 dropped"),
        (0.5, 0, "rate 30/m, 0 dropped"),
        (0.0, 2, "rate 0/s, 2 dropped"),  # the end of a ramp down
    ],
)
def test_the_open_models_progress_shows_its_rate_and_dropped_iterations(
    rate: float, dropped: int, shown: str
) -> None:
    progress = Progress.from_event({**EVENT, "rate": rate, "dropped": dropped})
    assert (progress.rate, progress.dropped) == (rate, dropped)
    assert progress_text(progress) == (
        f"stagegate load:   12/30 s | {shown} | 98.5 req/s | p95 12.0 ms | "
        "3 of 1,400 failed so far (warm-up included)"
    )
