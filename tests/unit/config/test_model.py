"""config/model.py: the frozen settings, their defaults (all from defaults.py), and a Target
that never shows its secrets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.config import (
    AbortSettings,
    GateSettings,
    LoadSettings,
    ReadyCheck,
    RequestSpec,
    Target,
)


def test_defaults_are_the_ones_in_defaults_py() -> None:
    load, abort, gate = LoadSettings(), AbortSettings(), GateSettings()
    assert (load.users, load.spawn_rate, load.duration) == (
        defaults.USERS,
        defaults.SPAWN_RATE,
        defaults.DURATION,
    )
    assert (abort.error_rate, abort.min_requests, abort.latency_factor, abort.latency_for) == (
        defaults.ABORT_ERROR_RATE,
        defaults.ABORT_MIN_REQUESTS,
        defaults.ABORT_LATENCY_FACTOR,
        defaults.ABORT_LATENCY_FOR,
    )
    assert abort.grace == defaults.STOP_GRACE
    assert (gate.min_samples, gate.saturation_cpu, gate.default_error_rate) == (
        defaults.MIN_SAMPLES,
        defaults.SATURATION_CPU,
        defaults.ERROR_RATE,
    )
    target = Target("t", "http://x")
    assert (target.timeout, target.max_body) == (defaults.REQUEST_TIMEOUT, defaults.MAX_BODY)
    ready = ReadyCheck("/healthz")
    assert (ready.timeout, ready.interval) == (defaults.READY_TIMEOUT, defaults.READY_INTERVAL)


def test_settings_are_frozen() -> None:
    for value in (LoadSettings(), AbortSettings(), GateSettings(), Target("t", "http://x")):
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)


def test_has_scenario() -> None:
    assert not LoadSettings().has_scenario
    assert LoadSettings(requests=(RequestSpec("GET", "/", "GET /"),)).has_scenario
    assert LoadSettings(locustfile=Path("perf/locustfile.py")).has_scenario


def test_a_target_never_shows_its_secrets() -> None:
    target = Target(
        "staging",
        "https://user:pw-1234@shop.example.com",
        headers={"Authorization": "Bearer tok-5678", "X-Team": "qa"},
        secrets=frozenset({"pw-1234", "tok-5678"}),
    )
    for text in (repr(target), str(target), repr(target.public_headers())):
        assert "pw-1234" not in text
        assert "tok-5678" not in text
    assert target.public_headers() == {"Authorization": "Bearer ***", "X-Team": "qa"}
    assert target.redact("pw-1234 and tok-5678") == "*** and ***"
    assert target.redactor is target.redactor  # built once
