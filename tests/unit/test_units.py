"""Durations, rates and sizes as written in stagegate.yaml, and how they are shown back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_stagegate.units import (
    DURATION_HELP,
    RATE_HELP,
    SIZE_HELP,
    format_duration,
    format_ms,
    format_ms_brief,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
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
    ("ms", "text"),
    [
        (0.0, "0 ms"),
        (0.5, "0.5 ms"),  # a small budget is never "0 ms"
        (0.042, "0.042 ms"),
        (6.0, "6 ms"),
        (6.21, "6.2 ms"),
        (106.4, "106 ms"),
        (1234.4, "1,234 ms"),
    ],
)
def test_format_ms_brief(ms: float, text: str) -> None:
    assert format_ms_brief(ms) == text


@pytest.mark.parametrize(
    ("rate", "text"), [(0.0123, "1.23%"), (0.01, "1%"), (0.5, "50%"), (0.0, "0%"), (1.0, "100%")]
)
def test_format_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1))
def test_rate_round_trip(rate: float) -> None:
    assert parse_rate(f"{rate * 100!r}%") == pytest.approx(rate, rel=1e-9, abs=1e-12)


# --- sizes (targets.NAME.max_body) -----------------------------------------------------------
KIB, MIB, GIB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512KB", 512 * KIB),
        ("16MB", 16 * MIB),
        ("1GB", GIB),
        ("1KB", 1024),  # powers of 1024, not 1000
        ("1MB", 1024 * 1024),
        ("1KiB", KIB),
        ("16MiB", 16 * MIB),
        ("2GiB", 2 * GIB),
        ("16mb", 16 * MIB),  # any case
        ("16 MB", 16 * MIB),
        (" 1 kib ", KIB),
        ("1.5KB", 1536),
        ("0.5MB", 512 * KIB),
        (".5KB", 512),
        ("100B", 100),
        ("100", 100),  # a bare number is bytes
        ("1", 1),
        (100, 100),
        (1, 1),
        (16 * MIB, 16 * MIB),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    parsed = parse_size(value)
    assert parsed == size
    assert type(parsed) is int


@pytest.mark.parametrize("value", ["0", 0, "0KB", "0.5", "0.4B", -3])
def test_a_size_is_at_least_one_byte(value: object) -> None:
    with pytest.raises(ValueError, match=r"a size must be at least 1 byte, got ") as info:
        parse_size(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "MB",
        "16 megabytes",
        "1TB",  # no unit above GB
        "1e3",
        "-1",
        "-1KB",
        "16M",  # the B is part of the unit
        "1,024",
        "nan",
        "inf",
        1.5,  # a YAML float: write 1.5KB or a number of bytes
        True,
        False,
        None,
        [16],
        {"MB": 16},
        10**400,  # beyond float range: not finite
    ],
)
def test_parse_size_rejects_naming_what_is_valid(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(value)
    message = str(info.value)
    assert message == f"expected {SIZE_HELP}, got {value!r}"
    assert "512KB, 16MB or 1GB (or a number of bytes)" in message


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (1, "1B"),
        (100, "100B"),
        (1023, "1023B"),
        (KIB, "1KB"),
        (1536, "1.5KB"),
        (512 * KIB, "512KB"),
        (MIB - 1, "1024KB"),  # 4 significant digits
        (16 * MIB, "16MB"),
        (16 * MIB + 1, "16MB"),
        (GIB, "1GB"),
        (3 * GIB // 2, "1.5GB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize("factor", [KIB, MIB, GIB])
@pytest.mark.parametrize("count", [1, 2, 16, 100, 512, 1000])
def test_whole_units_round_trip_exactly(count: int, factor: int) -> None:
    size = count * factor
    assert parse_size(format_size(size)) == size


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=KIB, max_value=9999 * GIB))
def test_size_round_trip(size: int) -> None:
    # shown to 4 significant digits: what is shown reads back within 0.05% of the size (and
    # a byte: a fractional number of bytes is cut to whole bytes)
    assert abs(parse_size(format_size(size)) - size) <= size * 5e-4 + 1


@pytest.mark.parametrize("size", [1, 100, 1023, 10 * 1024**4])
def test_every_size_shown_reads_back(size: int) -> None:
    assert parse_size(format_size(size)) == size


def test_a_computed_duration_prints_rounded() -> None:
    # a deadline's time left, not a value anybody wrote
    assert format_duration(1.70495) == "1.705s"
    assert format_duration(0.123456) == "123.5ms"
