"""A latency histogram for the load gate: small, mergeable, accurate to 0.1%.

Locust stores response times rounded (to 10 ms between 100 ms and 1 s, to 100 ms up to 10 s),
which is up to 5% off just above 100 ms and 1 s: too coarse for a gate that passes or fails a
deployment on a few milliseconds. ``LogHistogram`` is fed the raw float times instead, one per
request name, inside every Locust process; the workers' histograms are merged on the master and
read in the pytest process.

Buckets are logarithmic: bucket ``k`` holds the times in ``[F * r**k, F * r**(k + 1))`` with
``r = 1 + 2 * RELATIVE_ERROR`` and ``F = FLOOR_MS``; a percentile is reported as the geometric
centre of its bucket (clamped to the exact minimum and maximum), so it is within
``RELATIVE_ERROR`` (0.1%) of the exact sample at the same rank. Times at or below ``FLOOR_MS``
share one bucket. Memory depends on the spread of the times, not on how many were recorded:
about 1,150 buckets per factor of ten, so at most about 11,000 for 1 microsecond to 1 hour and
typically a few thousand. Merging adds bucket counts, so the histogram of the parts merged is
the histogram of the whole.

Pure module: no I/O, no locust, no pytest.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

__all__ = [
    "FLOOR_MS",
    "RELATIVE_ERROR",
    "LogHistogram",
    "exact_percentile",
]

RELATIVE_ERROR = 0.001
FLOOR_MS = 0.001  # one microsecond: nothing measured over a network is faster

_FORMAT = 1
_RATIO = 1.0 + 2.0 * RELATIVE_ERROR
_LOG_RATIO = math.log(_RATIO)
_INV_LOG_RATIO = 1.0 / _LOG_RATIO
_SCALE = 1.0 / FLOOR_MS
_ZERO_KEY = -1
# The key of the largest finite float; anything above comes from a corrupt document.
_MAX_KEY = int(math.log(sys.float_info.max * FLOOR_MS) * _INV_LOG_RATIO)
# Module-level aliases: a global lookup is cheaper than ``math.log`` in the hot path.
_log = math.log


def _rank(n: int, p: float) -> int:
    """The 1-based rank of percentile ``p`` among ``n`` samples, as Locust defines it: the
    ``(int(n * p / 100) + 1)``-th smallest, capped at ``n``.

    The product is taken on the decimal that was written (``99.9``), not on its binary
    approximation, so that p99.9 of 1,000 samples is the 1,000th and not the 999th.
    """
    if not 0.0 <= p <= 100.0:  # also rejects NaN
        raise ValueError(f"a percentile goes from 0 to 100, got {p!r}")
    k = math.floor(n * Fraction(repr(float(p))) / 100)
    return min(k + 1, n)


def exact_percentile(samples: Sequence[float], p: float) -> float:
    """Percentile ``p`` (0-100) of ``samples`` with the same rank as ``LogHistogram``; the
    reference the histogram is measured against. 0.0 for no samples."""
    rank = _rank(len(samples), p)
    if not samples:
        return 0.0
    return float(sorted(samples)[rank - 1])


def _centre(key: int) -> float:
    if key == _ZERO_KEY:
        return 0.0
    return FLOOR_MS * math.exp((key + 0.5) * _LOG_RATIO)


class LogHistogram:
    """Counts of latencies in logarithmic buckets, plus the exact count, sum, min and max.

    ``record`` runs once per request in the load generator, so it does one logarithm and one
    dict update. Not thread-safe; Locust's greenlets share one thread.
    """

    __slots__ = ("_count", "_counts", "_max", "_min", "_total")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._count = 0
        self._total = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, ms: float) -> None:
        """Add one response time in milliseconds. Raises ValueError for a negative, NaN or
        infinite time rather than corrupting the sums."""
        if ms > FLOOR_MS:
            try:
                key = int(_log(ms * _SCALE) * _INV_LOG_RATIO)
            except OverflowError:
                raise ValueError(f"a response time must be finite, got {ms!r} ms") from None
        elif ms >= 0.0:
            key = _ZERO_KEY
        else:
            raise ValueError(f"a response time cannot be negative or NaN, got {ms!r} ms")
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        self._count += 1
        self._total += ms
        if ms < self._min:
            self._min = ms
        if ms > self._max:
            self._max = ms

    def merge(self, other: LogHistogram) -> None:
        """Add every sample of ``other`` to this histogram (``other`` is unchanged)."""
        if not isinstance(other, LogHistogram):
            raise TypeError(f"can only merge a LogHistogram, not {type(other).__name__}")
        counts = self._counts
        for key, n in list(other._counts.items()):
            counts[key] = counts.get(key, 0) + n
        self._count += other._count
        self._total += other._total
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    @property
    def count(self) -> int:
        return self._count

    @property
    def total_ms(self) -> float:
        return self._total

    @property
    def min_ms(self) -> float:
        """The exact smallest time; 0.0 when empty."""
        return self._min if self._count else 0.0

    @property
    def max_ms(self) -> float:
        """The exact largest time; 0.0 when empty."""
        return self._max if self._count else 0.0

    @property
    def mean_ms(self) -> float:
        return self._total / self._count if self._count else 0.0

    @property
    def bucket_count(self) -> int:
        """How many buckets hold samples: the memory this histogram uses."""
        return len(self._counts)

    def percentile(self, p: float) -> float:
        """Percentile ``p`` (0-100) in ms, within ``RELATIVE_ERROR`` of the exact value (see
        ``exact_percentile`` for the rank). 0.0 when empty."""
        n = self._count
        rank = _rank(n, p)
        if n == 0:
            return 0.0
        # The extremes are known exactly; no need to approximate them.
        if rank == 1:
            return self._min
        if rank == n:
            return self._max
        seen = 0
        counts = self._counts
        for key in sorted(counts):
            seen += counts[key]
            if seen >= rank:
                return min(max(_centre(key), self._min), self._max)
        raise AssertionError("bucket counts do not add up to count")  # pragma: no cover

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and msgpack-safe document (str keys, ints, floats and lists of ints).

        Bucket keys are delta-encoded (the first key, then the gaps), which keeps the numbers
        small: the histogram rides in every Locust worker report.
        """
        keys = sorted(self._counts)
        deltas = [b - a for a, b in itertools.pairwise(keys)]
        return {
            "format": _FORMAT,
            "relative_error": RELATIVE_ERROR,
            "floor_ms": FLOOR_MS,
            "count": self._count,
            "total_ms": float(self._total),
            "min_ms": float(self.min_ms),
            "max_ms": float(self.max_ms),
            "keys": keys[:1] + deltas,
            "counts": [self._counts[k] for k in keys],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogHistogram:
        """The histogram ``to_dict`` described. Raises ValueError for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a histogram is a mapping, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown histogram format {data.get('format')!r}, expected {_FORMAT}")
        if data.get("relative_error") != RELATIVE_ERROR or data.get("floor_ms") != FLOOR_MS:
            # Buckets of another resolution cannot be merged with ours.
            raise ValueError(
                "histogram resolution differs: relative_error "
                f"{data.get('relative_error')!r} and floor_ms {data.get('floor_ms')!r}, "
                f"expected {RELATIVE_ERROR!r} and {FLOOR_MS!r} (written by another version?)"
            )
        count = _int_field(data, "count")
        total = _float_field(data, "total_ms")
        low = _float_field(data, "min_ms")
        high = _float_field(data, "max_ms")
        keys = _int_list(data, "keys")
        counts = _int_list(data, "counts")
        if len(keys) != len(counts):
            raise ValueError(
                f"histogram has {len(keys)} keys but {len(counts)} counts; they go in pairs"
            )
        if any(n < 1 for n in counts):
            raise ValueError("histogram bucket counts must be at least 1")
        if sum(counts) != count:
            raise ValueError(f"histogram bucket counts add up to {sum(counts)}, not {count}")
        absolute: list[int] = []
        for i, delta in enumerate(keys):
            if i == 0:
                key = delta
                if key < _ZERO_KEY:
                    raise ValueError(f"histogram bucket key {key} is below {_ZERO_KEY}")
            else:
                if delta < 1:
                    raise ValueError("histogram bucket keys must be increasing")
                key = absolute[-1] + delta
            if key > _MAX_KEY:
                raise ValueError(f"histogram bucket key {key} is above {_MAX_KEY}")
            absolute.append(key)
        if count == 0:
            if total or low or high:
                raise ValueError("an empty histogram has total_ms, min_ms and max_ms of 0")
        elif low > high:
            raise ValueError(f"histogram min_ms {low!r} is above max_ms {high!r}")
        hist = cls()
        hist._counts = dict(zip(absolute, counts, strict=True))
        hist._count = count
        hist._total = total
        if count:
            hist._min = low
            hist._max = high
        return hist

    def __repr__(self) -> str:
        return (
            f"LogHistogram(count={self._count}, min_ms={self.min_ms!r}, "
            f"max_ms={self.max_ms!r}, mean_ms={self.mean_ms!r}, buckets={len(self._counts)})"
        )


def _int_field(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"histogram {name} must be an integer >= 0, got {value!r}")
    return value


def _float_field(data: Mapping[str, Any], name: str) -> float:
    value = data.get(name)
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"histogram {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _int_list(data: Mapping[str, Any], name: str) -> list[int]:
    value = data.get(name)
    # msgpack may hand back tuples; a string is a sequence too but never a valid list here.
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"histogram {name} must be a list of integers, got {value!r}")
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool):
            raise ValueError(f"histogram {name} must be a list of integers, got {item!r} in it")
    return list(value)
