"""Performance budgets: parsing and evaluation. Pure functions, no I/O.

A budget is one limit on one metric of one request name (or ``total``, all requests
together), e.g. ``"GET /api/products/{id}": {p99: 500ms}``. Metrics:

    pNN, pNN.N          percentile latency (ms)            observed <= limit
    avg, max            mean / maximum latency (ms)        observed <= limit
    error_rate          failures / requests                observed <= limit
    min_rps             requests per second                observed >= limit
    <latency>_regression  change against a baseline verdict, e.g. ``p95_regression: 10%``:
                        observed <= baseline * (1 + limit)

Every check needs enough samples: below ``min_samples`` (and, for a percentile pNN, below
``ceil(1 / (1 - NN/100))``) the outcome is ``inconclusive``, never ``pass``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "TOTAL",
    "Budget",
    "Check",
    "EndpointStats",
    "evaluate",
    "parse_budget",
]

TOTAL = "total"
Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Budget:
    """One limit. ``limit`` is in ms for latencies, a fraction for rates, req/s for min_rps."""

    endpoint: str  # request name, or TOTAL
    metric: str  # "p95", "p99.9", "avg", "max", "error_rate", "min_rps", "p95_regression", ...
    limit: float
    source: str = ""  # where it was written, "stagegate.yaml:31", for messages


@dataclass(frozen=True)
class EndpointStats:
    """What the load measured for one request name (or TOTAL), warm-up excluded."""

    name: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    min_ms: float
    max_ms: float
    percentiles: Mapping[str, float] = field(default_factory=dict)  # "p95" -> ms

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Check:
    """The outcome of one budget."""

    endpoint: str
    metric: str
    limit: float
    observed: float | None  # None: not measured (no samples, no baseline)
    samples: int
    outcome: Outcome
    message: str  # a sentence: "p95 of GET /api/products was 412.0 ms, over its budget of 300 ms"
    unit: Literal["ms", "ratio", "rps"] = "ms"
    baseline: float | None = None  # for *_regression checks


def parse_budget(endpoint: str, key: str, value: object) -> Budget:
    """Parse one ``key: value`` pair of a budget block. Raises ValueError with a message
    that says what would be valid (the config loader adds file, line and key)."""
    raise NotImplementedError


def evaluate(
    budgets: Sequence[Budget],
    stats: Mapping[str, EndpointStats],
    *,
    min_samples: int,
    baseline: Mapping[str, EndpointStats] | None = None,
) -> list[Check]:
    """Check every budget against ``stats`` (keyed by request name, TOTAL included)."""
    raise NotImplementedError
