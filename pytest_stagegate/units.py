"""Parsing and formatting of durations and rates as written in stagegate.yaml.

Durations: ``250ms``, ``1.5s``, ``2m``, ``1h`` or a bare number of seconds.
Rates: ``1%``, ``0.5%`` or a fraction such as ``0.01``.
Pure functions; errors are ``ValueError`` with a message that says what would be valid.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = "a duration such as 250ms, 1.5s, 2m or 1h"
RATE_HELP = "a rate such as 1% or 0.01 (between 0 and 100%)"


def parse_duration(value: object) -> float:
    """Return seconds. Accepts ``int``/``float`` (seconds) or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
        seconds = float(match.group(1)) * _FACTORS[match.group(2)]
    else:
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected {DURATION_HELP} that is not negative, got {value!r}")
    return seconds


def parse_rate(value: object) -> float:
    """Return a fraction in [0, 1]. ``1%`` -> 0.01; ``0.01`` -> 0.01."""
    if isinstance(value, bool):
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected {RATE_HELP}, got {value!r}") from None
    else:
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"expected {RATE_HELP}, got {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    """``0.25`` -> ``250ms``; ``90`` -> ``1m30s``; ``1.5`` -> ``1.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:g}s" if rest else f"{int(minutes)}m"


def format_ms(ms: float) -> str:
    """Milliseconds for people: ``106.0 ms``, ``0.42 ms``, ``1,234 ms``."""
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


def format_rate(rate: float) -> str:
    """``0.0123`` -> ``1.23%``."""
    return f"{rate * 100:.3g}%"
