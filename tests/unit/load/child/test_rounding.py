"""``load.child.rounding``: Locust's response-time buckets at 3 significant digits, in-process
(the module imports no locust)."""

from __future__ import annotations

import math
import random

from pytest_stagegate.load.child.rounding import bucket_response_time_3sig as bucket


def reference(x: float) -> float:
    """Plain ``round`` to 3 significant digits, ints from 100 up: what the shortcuts must equal."""
    if x <= 0:
        return 0
    r = round(x, 2 - math.floor(math.log10(x)))
    return int(r) if r >= 100 else r


def test_bucketing_keeps_three_significant_digits() -> None:
    values = (106.4, 1064.0, 10.64, 1.064, 0.01234, 0, 99.96, 23456.7)
    assert [bucket(x) for x in values] == [106, 1060, 10.6, 1.06, 0.0123, 0, 100, 23500]
    assert [type(bucket(x)) for x in (106.4, 1064.0, 10.64, 23456.7)] == [int, int, float, int]


def test_bucketing_shortcuts_agree_with_plain_rounding() -> None:
    # the usual ranges skip round(x, ndigits); the keys must be the same as with it
    rng = random.Random(7)
    xs: list[float] = [rng.uniform(0.5, 2000.0) for _ in range(100000)]
    xs += [10 ** rng.uniform(-3, 5) for _ in range(100000)]
    xs += [1.0, 9.99, 9.995, 10.0, 99.94, 99.95, 99.96, 100.0, 999.4, 999.5, 999.6]
    # ties and their neighbours, where rounding half up and round() part ways
    xs += [100.5, 1005.0, 1025.0, 10.25, 1.125, 0.1025, 0.10149999999999999, 2.5]
    xs += [9.9949999, 99.9499999, 999.4999, 9994.99, 0.99949, 0.5, 150.0]
    xs += [k / 8 for k in range(1, 80000)]  # exact binary fractions: many ties
    xs += [50, 150, 1005, 2, 0]  # ints, from a custom client
    bad = [
        (x, bucket(x), reference(x))
        for x in xs
        if bucket(x) != reference(x) or type(bucket(x)) is not type(reference(x))
    ]
    assert len(xs) == 280030
    assert bad == []


def test_negative_times_bucket_to_zero() -> None:
    assert bucket(-3.0) == 0
