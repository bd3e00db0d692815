"""Parsing and formatting of durations and rates as written in stagegate.yaml.

Durations: ``250ms``, ``1.5s``, ``2m``, ``1h`` or a bare number of seconds.
Rates: ``1%``, ``0.5%`` or a fraction such as ``0.01``.
Sizes: ``512KB``, ``16MB``, ``1GB`` (powers of 1024) or a bare number of bytes.
Arrival rates (``gate.load.rate``): ``50/s``, ``3000/m``, ``90/h`` or a bare number per second.
Pure functions; errors are ``ValueError`` with a message that says what would be valid.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
# float() alone would also take "1_0", "inf" and "nan".
_RATE = re.compile(r"^\s*((?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(%)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = "a duration such as 250ms, 1.5s, 2m or 1h"
RATE_HELP = "a rate such as 1% or 0.01 (between 0 and 100%)"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
SIZE_HELP = "a size such as 512KB, 16MB or 1GB (or a number of bytes)"
_ARRIVALS = re.compile(
    r"^\s*(-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:/\s*(s|sec|m|min|h))?\s*$"
)
_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}
ARRIVALS_HELP = "a rate such as 50/s, 3000/m or 90/h (iterations started per second, minute, hour)"


def parse_duration(value: object) -> float:
    """Return seconds. Accepts ``int``/``float`` (seconds) or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = _to_float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
        seconds = float(match.group(1)) * _FACTORS[match.group(2)]
    else:
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected {DURATION_HELP} that is not negative, got {value!r}")
    return seconds + 0.0  # -0.0 -> 0.0, which would otherwise print as "-0ms"


def parse_rate(value: object) -> float:
    """Return a fraction in [0, 1]. ``1%`` -> 0.01; ``0.01`` -> 0.01."""
    if isinstance(value, bool):
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = _to_float(value)
        percent = False
    elif isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"expected {RATE_HELP}, got {value!r}")
        percent = bool(match.group(2))
        rate = float(match.group(1)) / 100 if percent else float(match.group(1))
    else:
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    if not percent and rate >= 1 and math.isfinite(rate):
        # "error_rate: 1" means 1% to most readers and 100% to arithmetic: make it explicit.
        raise ValueError(
            f"{value!r} is ambiguous: write {value}% for {value} percent, or 100% for all"
        )
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    return rate + 0.0


def parse_size(value: object) -> int:
    """Return bytes. ``512KB`` -> 524288, ``16MB`` -> 16777216, ``1GB``; a bare number is
    bytes. K, M and G are powers of 1024 (``KiB`` and friends are accepted too)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HELP}, got {value!r}")
    if isinstance(value, int):
        size = _to_float(value)
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"expected {SIZE_HELP}, got {value!r}")
        unit = (match.group(2) or "").lower().replace("ib", "b")
        size = float(match.group(1)) * _SIZE_FACTORS[unit]
    else:
        raise ValueError(f"expected {SIZE_HELP}, got {value!r}")
    if not math.isfinite(size):
        raise ValueError(f"expected {SIZE_HELP}, got {value!r}")
    if size < 1:
        raise ValueError(f"a size must be at least 1 byte, got {value!r}")
    return int(size)


def parse_arrival_rate(value: object, *, zero: bool = False) -> float:
    """Return iterations per second. ``50/s`` -> 50; ``3000/m`` -> 50; ``90/h`` -> 0.025; a
    bare number is per second (as ``min_rps``). Must be above 0 (or 0 with ``zero``: a stage
    that ramps down to nothing)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {ARRIVALS_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = _to_float(value)
    elif isinstance(value, str):
        match = _ARRIVALS.match(value)
        if not match:
            raise ValueError(f"expected {ARRIVALS_HELP}, got {value!r}")
        rate = float(match.group(1)) / _PER[match.group(2)]
    else:
        raise ValueError(f"expected {ARRIVALS_HELP}, got {value!r}")
    if not math.isfinite(rate) or rate < 0 or (rate == 0 and not zero):
        least = "at least 0" if zero else "above 0"
        raise ValueError(f"expected {ARRIVALS_HELP}, {least}, got {value!r}")
    return rate + 0.0


def format_arrival_rate(per_second: float) -> str:
    """``50`` -> ``50/s``; ``0.025`` -> ``1.5/m``; ``2.5e-4`` -> ``0.9/h``: what
    ``parse_arrival_rate`` reads back, in the largest unit that keeps the number >= 1."""
    for factor, unit in ((1.0, "s"), (60.0, "m"), (3600.0, "h")):
        if per_second * factor >= 1 or unit == "h":
            return f"{per_second * factor:.6f}".rstrip("0").rstrip(".") + f"/{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_size(size: int) -> str:
    """``16777216`` -> ``16MB``; ``1536`` -> ``1.5KB``; ``100`` -> ``100B``: always a form
    ``parse_size`` reads back, so a size shown in a message can be pasted into stagegate.yaml."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value >= 1000 else f"{value:.4g}{unit}"
    return f"{size}B"


def _to_float(value: float) -> float:
    # An int beyond float range (YAML has no limit) overflows; callers reject it as not finite.
    try:
        return float(value)
    except OverflowError:
        return math.inf


def format_duration(seconds: float) -> str:
    """``0.25`` -> ``250ms``; ``90`` -> ``1m30s``; ``1.5`` -> ``1.5s``; ``5400`` -> ``1h30m``."""
    # Rounded to the millisecond (a tenth below 1 s): a computed wait (a deadline's time left) would
    # otherwise print as 1.70495s.
    if seconds < 1:
        return f"{round(seconds * 1000, 1):g}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    # Rounded to the millisecond first, so 119.9999999 is "2m" rather than "1m60s".
    minutes, rest = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest:g}s" if rest else "")


def format_ms(ms: float) -> str:
    """Milliseconds for people: ``106.0 ms``, ``0.42 ms``, ``1,234 ms``."""
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


def format_ms_brief(ms: float) -> str:
    """Milliseconds in a sentence, whole from 10 ms up and to two significant digits below, so
    a small value never rounds to zero: ``1,234 ms``, ``106 ms``, ``6 ms``, ``6.2 ms``,
    ``0.5 ms``, ``0.042 ms``."""
    if ms >= 10 or ms == 0 or not math.isfinite(ms):
        return f"{ms:,.0f} ms"
    return f"{ms:.2g} ms"


def format_rate(rate: float) -> str:
    """``0.0123`` -> ``1.23%``."""
    return f"{rate * 100:.3g}%"


def format_observed(value: float, unit: str) -> str:
    """A measured value of a budget's unit ("ms", "ratio", "rps") for people: ``106.0 ms``,
    ``1.23%``, ``19.9 req/s``."""
    if unit == "ms":
        return format_ms(value)
    if unit == "ratio":
        return format_rate(value)
    return f"{value:,.1f} req/s"


def format_limit(value: float, unit: str) -> str:
    """A limit of a budget's unit as it was written: ``300 ms`` (not ``300.0 ms``), ``1%``,
    ``20 req/s``. A limit computed from a baseline (959.084 ms) is shown to the precision of a
    measured value (``959.1 ms``, ``1.64 ms``, ``1,042.5 ms``), never to more digits."""
    if unit == "ms":
        if value == int(value) or value >= 1e5:
            return f"{value:,.0f} ms"
        text = f"{value:,.{2 if value < 10 else 1}f}".rstrip("0").rstrip(".")
        return f"{text if text != '0' else f'{value:.2g}'} ms"
    if unit == "ratio":
        return format_rate(value)
    return f"{value:,g} req/s"
