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
the histogram of the whole. The counts are one array from the smallest key seen to the largest
(8 bytes a bucket, at most ``DENSE_SPAN`` of them; outliers beyond in a dict): a long run's
histogram stops growing once its range is seen. ``FrozenHistogram`` keeps only the buckets
holding samples (2 to 3 bytes each), for histograms kept by the hundred.

Pure module: no I/O, no locust, no pytest.
"""

from __future__ import annotations

import itertools
import math
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

__all__ = [
    "DENSE_SPAN",
    "FLOOR_MS",
    "RELATIVE_ERROR",
    "FrozenHistogram",
    "LogHistogram",
    "exact_percentile",
]

RELATIVE_ERROR = 0.001
FLOOR_MS = 0.001  # one microsecond: nothing measured over a network is faster

# the most buckets one histogram's array spans (8 bytes each: 64 KiB): a factor of 1.002**8192
DENSE_SPAN = 8192
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


def _percentile_of(
    pairs: Iterable[tuple[int, int]], n: int, low: float, high: float, p: float
) -> float:
    """Percentile ``p`` of ``n`` samples given as (bucket key, count) in increasing key order,
    with the exact smallest (``low``) and largest (``high``) sample."""
    rank = _rank(n, p)
    if n == 0:
        return 0.0
    # The extremes are known exactly; no need to approximate them.
    if rank == 1:
        return low
    if rank == n:
        return high
    seen = 0
    for key, count in pairs:
        seen += count
        if seen >= rank:
            return min(max(_centre(key), low), high)
    raise AssertionError("bucket counts do not add up to count")  # pragma: no cover


class LogHistogram:
    """Counts of latencies in logarithmic buckets, plus the exact count, sum, min and max.

    ``record`` runs once per request in the load generator, so it does one logarithm and one
    array update. Not thread-safe; Locust's greenlets share one thread.

    The counts are one array of 8-byte integers over the keys from the smallest to the largest
    seen (``_lo`` to ``_hi``), zeros between: 8 bytes a bucket, where a dict of Python ints
    took about 100 for each bucket holding samples. The array spans at most ``DENSE_SPAN``
    buckets (a factor of about 13 million, 1 microsecond to 13 s or 1 ms to 3.6 hours); a key
    that would stretch it further, an outlier, goes to a small dict (``_far``) instead.
    """

    __slots__ = ("_count", "_counts", "_far", "_hi", "_lo", "_max", "_min", "_total")

    def __init__(self) -> None:
        self._counts = array("q")  # counts of the keys _lo .. _hi - 1
        self._lo = 0
        self._hi = 0
        self._far: dict[int, int] | None = None  # keys outside the array's span
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
        if self._lo <= key < self._hi:
            self._counts[key - self._lo] += 1
        else:
            self._add_outside(key, 1)
        self._count += 1
        self._total += ms
        if ms < self._min:
            self._min = ms
        if ms > self._max:
            self._max = ms

    def _add(self, key: int, n: int) -> None:
        if self._lo <= key < self._hi:
            self._counts[key - self._lo] += n
        else:
            self._add_outside(key, n)

    def _add_outside(self, key: int, n: int) -> None:
        """``n`` samples in bucket ``key``, outside the array: the array grows to take it
        (with some room, so that a slowly growing tail does not copy it every time), unless
        it would then span more than ``DENSE_SPAN`` buckets."""
        lo, hi = self._lo, self._hi
        if lo == hi:  # empty
            self._counts = array("q", [n])
            self._lo, self._hi = key, key + 1
            return
        new_lo, new_hi = min(lo, key), max(hi, key + 1)
        if new_hi - new_lo > DENSE_SPAN:
            far = self._far
            if far is None:
                far = self._far = {}
            far[key] = far.get(key, 0) + n
            return
        room = min((hi - lo) // 8, DENSE_SPAN - (new_hi - new_lo))
        if key < lo:
            new_lo = max(new_lo - room, _ZERO_KEY)
            self._counts = array("q", bytes(8 * (lo - new_lo))) + self._counts
            self._lo = new_lo
        else:
            new_hi = min(new_hi + room, _MAX_KEY + 1)
            self._counts.extend(array("q", bytes(8 * (new_hi - hi))))
            self._hi = new_hi
        self._counts[key - self._lo] += n

    def _pairs(self) -> list[tuple[int, int]]:
        """(key, count) of every bucket holding samples, in increasing key order."""
        lo = self._lo
        pairs = [(lo + i, n) for i, n in enumerate(self._counts) if n]
        if self._far:
            pairs = sorted(pairs + list(self._far.items()))
        return pairs

    def merge(self, other: LogHistogram) -> None:
        """Add every sample of ``other`` to this histogram (``other`` is unchanged)."""
        if not isinstance(other, LogHistogram):
            raise TypeError(f"can only merge a LogHistogram, not {type(other).__name__}")
        if not other._count:
            return
        lo, hi = other._lo, other._hi
        if self._lo <= lo and hi <= self._hi and self is not other:
            mine, start = self._counts, lo - self._lo
            for i, n in enumerate(other._counts):
                if n:
                    mine[start + i] += n
            if other._far:
                for key, n in other._far.items():
                    self._add(key, n)
        else:
            theirs, base = other._counts, other._lo
            held = [i for i, n in enumerate(theirs) if n]
            # the extremes first: the array grows once, to both ends (each bucket of ``other``
            # is read before it is added to, also when ``other`` is this histogram)
            for i in held[:1] + held[-1:] if len(held) > 1 else held:
                self._add(base + i, theirs[i])
            for i in held[1:-1]:
                self._add(base + i, theirs[i])
            if other._far:
                for key, n in list(other._far.items()):
                    self._add(key, n)
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
        """How many buckets hold samples."""
        counts = self._counts
        return len(counts) - counts.count(0) + len(self._far or ())

    @property
    def memory_bytes(self) -> int:
        """About how many bytes the counts take: the array (8 bytes a bucket from the smallest
        key to the largest) and the outliers' dict, if any."""
        size = sys.getsizeof(self._counts)
        if self._far:
            size += sys.getsizeof(self._far) + 64 * len(self._far)
        return size

    def percentile(self, p: float) -> float:
        """Percentile ``p`` (0-100) in ms, within ``RELATIVE_ERROR`` of the exact value (see
        ``exact_percentile`` for the rank). 0.0 when empty."""
        if not self._far:  # no list of the pairs: the array is read in place
            lo = self._lo
            pairs: Iterable[tuple[int, int]] = (
                (lo + i, n) for i, n in enumerate(self._counts) if n
            )
        else:
            pairs = self._pairs()
        return _percentile_of(pairs, self._count, self._min, self._max, p)

    def frozen(self) -> FrozenHistogram:
        """These samples as a ``FrozenHistogram``: read-only, 2 to 3 bytes a bucket holding
        samples, for histograms kept by the hundred (the timeline's points)."""
        return FrozenHistogram.of(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and msgpack-safe document (str keys, ints, floats and lists of ints).

        Bucket keys are delta-encoded (the first key, then the gaps), which keeps the numbers
        small: the histogram rides in every Locust worker report.
        """
        pairs = self._pairs()
        keys = [k for k, _ in pairs]
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
            "counts": [n for _, n in pairs],
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
        if absolute and absolute[-1] - absolute[0] < DENSE_SPAN:
            hist._lo, hist._hi = absolute[0], absolute[-1] + 1
            dense = hist._counts = array("q", bytes(8 * (hist._hi - hist._lo)))
            for key, n in zip(absolute, counts, strict=True):
                dense[key - hist._lo] = n
        else:
            for key, n in zip(absolute, counts, strict=True):
                hist._add(key, n)
        hist._count = count
        hist._total = total
        if count:
            hist._min = low
            hist._max = high
        return hist

    def __repr__(self) -> str:
        return (
            f"LogHistogram(count={self._count}, min_ms={self.min_ms!r}, "
            f"max_ms={self.max_ms!r}, mean_ms={self.mean_ms!r}, buckets={self.bucket_count})"
        )


def _packed(values: list[int]) -> array[int]:
    """``values`` (all >= 0) in an array of the smallest unsigned type that holds them."""
    top = max(values, default=0)
    for code in ("B", "H", "I", "Q"):
        if top < 1 << (8 * array(code).itemsize):
            return array(code, values)
    raise OverflowError(f"a count of {top} does not fit in 64 bits")  # pragma: no cover


class FrozenHistogram:
    """A ``LogHistogram``'s samples, read-only and small: the buckets holding samples as the
    gaps between their keys and their counts, each array of the smallest unsigned type that
    holds its numbers (mostly 1 byte), with the exact count, min and max: 2 to 3 bytes a bucket
    holding samples, whatever the spread. Merging (``merged``) is exact, as
    ``LogHistogram.merge``; the percentiles are the same numbers. For many histograms kept side
    by side: the timeline's points, each a check's requests (``load.child.recorder.Timeline``)."""

    __slots__ = ("_counts", "_first", "_gaps", "count", "max_ms", "min_ms")

    def __init__(self, pairs: Sequence[tuple[int, int]], count: int, low: float, high: float):
        keys = [k for k, _ in pairs]
        self._first = keys[0] if keys else 0
        self._gaps = _packed([b - a for a, b in itertools.pairwise(keys)])
        self._counts = _packed([n for _, n in pairs])
        self.count = count
        self.min_ms = low if count else 0.0
        self.max_ms = high if count else 0.0

    @classmethod
    def of(cls, hist: LogHistogram) -> FrozenHistogram:
        return cls(hist._pairs(), hist.count, hist.min_ms, hist.max_ms)

    def _pairs(self) -> Iterator[tuple[int, int]]:
        """(key, count) of every bucket, in increasing key order."""
        counts = iter(self._counts)
        key = self._first
        for n in counts:  # the first bucket
            yield key, n
            break
        for gap, n in zip(self._gaps, counts, strict=True):
            key += gap
            yield key, n

    def merged(self, other: FrozenHistogram) -> FrozenHistogram:
        """A new histogram of the samples of both."""
        if not other.count:
            return self
        if not self.count:
            return other
        acc = dict(self._pairs())
        for key, n in other._pairs():
            acc[key] = acc.get(key, 0) + n
        return FrozenHistogram(
            sorted(acc.items()),
            self.count + other.count,
            min(self.min_ms, other.min_ms),
            max(self.max_ms, other.max_ms),
        )

    @property
    def bucket_count(self) -> int:
        return len(self._counts)

    @property
    def memory_bytes(self) -> int:
        """About how many bytes the two arrays take."""
        return sys.getsizeof(self._gaps) + sys.getsizeof(self._counts)

    def percentile(self, p: float) -> float:
        """As ``LogHistogram.percentile`` of the same samples."""
        return _percentile_of(self._pairs(), self.count, self.min_ms, self.max_ms, p)


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
