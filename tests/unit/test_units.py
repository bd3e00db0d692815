"""Durations and rates as written in stagegate.yaml, and how they are shown back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_stagegate.units import (
    DURATION_HELP,
    RATE_HELP,
    format_duration,
    format_ms,
    format_rate,
    parse_duration,
    parse_rate,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("10s", 10.0),
        (".5s", 0.5),
        ("0", 0.0),
        ("3", 3.0),
        (" 250 ms ", 0.25),
        (5, 5.0),
        (0.1, 0.1),
        (0, 0.0),
        (-0.0, 0.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_never_returns_negative_zero() -> None:
    assert math.copysign(1.0, parse_duration(-0.0)) == 1.0


@pytest.mark.parametrize(
    "value",
    [
        "fast",
        "10 minutes",
        "1d",
        "-1s",
        "1.s",
        "1e3s",
        "",
        "s",
        "1_0s",
        "nan",
        "inf",
        True,
        False,
        None,
        [1],
        {"s": 1},
        -1,
        -0.5,
        math.inf,
        math.nan,
        10**400,
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert DURATION_HELP in str(info.value)


def test_negative_duration_says_so() -> None:
    with pytest.raises(ValueError, match="not negative"):
        parse_duration(-3)


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("1%", 0.01),
        ("0.5%", 0.005),
        (" 50 % ", 0.5),
        ("100%", 1.0),
        ("0%", 0.0),
        ("0.01", 0.01),
        ("1e-2", 0.01),
        (0.01, 0.01),
        (0, 0.0),
    ],
)
def test_parse_rate(value: object, rate: float) -> None:
    assert parse_rate(value) == pytest.approx(rate)


@pytest.mark.parametrize(
    "value",
    [
        "150%",
        "-1%",
        "-0.01",
        "%",
        "",
        "one percent",
        "1_0%",
        "nan",
        "nan%",
        "inf",
        True,
        None,
        [0.1],
        -0.1,
        math.nan,
        math.inf,
        10**400,
    ],
)
def test_parse_rate_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_rate(value)
    assert RATE_HELP in str(info.value)


@pytest.mark.parametrize("value", [1, 1.0, "1", "1.5", 2])
def test_a_bare_rate_of_one_or_more_is_ambiguous(value: object) -> None:
    with pytest.raises(ValueError, match=r"ambiguous: write .*% for .* percent, or 100% for all"):
        parse_rate(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0.0, "0ms"),
        (0.0005, "0.5ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (59.0, "59s"),
        (60.0, "1m"),
        (90.0, "1m30s"),
        (119.9999999, "2m"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (3661.5, "1h1m1.5s"),
        (7200.0, "2h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_format_duration_round_trips_whole_milliseconds(ms: int) -> None:
    seconds = ms / 1000
    text = format_duration(seconds)
    # What is shown must read back as the same duration, through the same parser users use,
    # piece by piece for compound forms such as 1h1m1.5s.
    total = 0.0
    for number, unit in _split(text):
        total += parse_duration(f"{number}{unit}")
    assert total == pytest.approx(seconds, abs=1e-6)


def _split(text: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    number = ""
    i = 0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else text[i]
        parts.append((number, unit))
        number = ""
        i += len(unit)
    return parts


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.42, "0.42 ms"), (9.999, "10.00 ms"), (106.0, "106.0 ms"), (1234.4, "1,234 ms")],
)
def test_format_ms(ms: float, text: str) -> None:
    assert format_ms(ms) == text


@pytest.mark.parametrize(
    ("rate", "text"), [(0.0123, "1.23%"), (0.01, "1%"), (0.5, "50%"), (0.0, "0%"), (1.0, "100%")]
)
def test_format_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1))
def test_rate_round_trip(rate: float) -> None:
    assert parse_rate(f"{rate * 100!r}%") == pytest.approx(rate, rel=1e-9, abs=1e-12)
