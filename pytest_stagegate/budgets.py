"""Performance budgets: parsing and evaluation. Pure functions, no I/O.

A budget is one limit on one metric of one request name (or ``total``, all requests
together), e.g. ``"GET /api/products/{id}": {p99: 500ms}``, of a group of request names or of
a flow (below). Metrics:

    pNN, pNN.N          percentile latency (ms), p0.1 to p99.9   observed <= limit
    avg, max            mean / maximum latency (ms)              observed <= limit
    error_rate          failures / requests                      observed <= limit
    min_rps             requests per second                      observed >= limit
    status_Nxx          status_1xx .. status_5xx: responses of that  observed <= limit
                        status class / requests (a rate, judged like error_rate; the load
                        must have recorded status classes, ``EndpointStats.status_classes``)
    <latency>_regression  change against a baseline verdict, e.g. ``p95_regression: 10%``:
                        observed <= baseline * (1 + limit); ``<latency>`` is pNN, pNN.N, avg
                        or max, and the limit may exceed 100% (up to 1000%)
    service_time_<latency>  service_time_pNN, service_time_avg, service_time_max (ms): the time
                        from the actual send (``EndpointStats.service``); in the closed model,
                        or when the load did not measure it apart, the latency itself

Latency limits need a unit (``300ms``, ``1.5s``): a bare ``300`` would be 300 seconds to
``units.parse_duration`` but 300 ms to anyone used to Locust or k6, so it is refused.
A bare regression limit is a fraction up to 1 (``0.1`` = 10%); above that, write ``150%``,
because ``p95_regression: 10`` almost always means 10%, not 1000%.

Every check needs enough samples: below ``min_samples`` (and, for a percentile pNN, below
``ceil(1 / (1 - NN/100))``, e.g. 100 for p99) the outcome is ``inconclusive``, never
``pass``. It is ``fail`` only when no further samples could rescue it: a ``max`` already over
its limit, an ``error_rate`` over its limit even if every missing sample had succeeded, a
``min_rps`` not reached (a count of requests, not an estimate). A ``*_regression`` check also
needs a baseline with enough samples.

Failed requests (docs: the README's budgets section):

- Every request name and ``total`` have an ``error_rate`` budget of 1% (``defaults.ERROR_RATE``;
  ``gate.default_error_rate`` changes it) unless one is written; ``error_rate: off`` waives it
  (a ``Waiver``), which the verdict reports as a warning.
- A request name whose requests all failed always fails, whatever its budgets say, waived or
  not: "every request to GET /x failed (most often HTTP 500)".
- Latency (percentiles, avg, max) is over the successful responses and the requests that timed
  out, at their full wait (``EndpointStats.latency_samples`` of them); the other failed requests
  are apart (``EndpointStats.failed``), so a target that fails fast never looks fast.
  ``min_rps`` counts successful responses only.

A saturated load generator reports its own queueing as server latency and cannot produce the
load asked for: when ``evaluate`` is told the generator was saturated, a latency or
``min_rps`` check that would fail is ``inconclusive`` instead (a pass stays a pass).

The open model (``gate.load.rate``) starts iterations on a schedule; an iteration that could
not start within the arrival lag is dropped, never measured. When more than
``defaults.MAX_DROPPED`` (1%) of the iterations due were dropped (``Dropped``), the measured
latency leaves out the users who waited longest, so every latency check (pNN, avg, max, not
``service_time_*``, ``error_rate`` or ``min_rps``) that passed is ``inconclusive``; one that
failed stays failed when no dropped iteration could rescue it: a ``max`` (or
``max_regression``; more samples never bring a maximum down), or any latency when the lag is
at least its limit (each dropped iteration would have waited at least the lag, so it could
only have been slower); else it is ``inconclusive`` too.
Exactly 1% is still fine.

Groups and flows (scenarios). A budget key is, first, a request name (or ``total``); else the
name of a flow (``gate.load.flows``): its stats are the flow's iterations (``kind`` "flow":
each iteration's whole duration is one latency sample, an iteration with a failed step is a
failure, so ``error_rate`` is the share of failed iterations; no status classes); else, when
it contains ``*``, ``?`` or ``[``, an fnmatch glob (``is_glob``, case-sensitive) over the
request names: its stats are the covered names' requests merged (``kind`` "group", their
names in ``covers``; histograms merge exactly). The caller passes both as ``evaluate(...,
groups=)``. A glob that covered no request name is ``inconclusive``, saying so. The default
error budgets stay per request name and ``total``; a flow whose iterations all failed always
fails, like a request name (whatever its budgets; a group's names already fail one by one).

Stage budgets (``gate.load.stages[].budgets``) are checked with ``evaluate(..., stage=NAME)``
against that stage's requests: their ``Check.stage`` is the stage's name and every sentence
says "in stage NAME". Names whose requests all failed fail once, on the whole run, not again
per stage.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from . import defaults, units
from .errors import closest
from .metrics import STANDARD_PERCENTILES, Metric, Unit, parse_metric
from .units import format_limit, format_observed

__all__ = [
    "DEFAULT_SOURCE",
    "STANDARD_PERCENTILES",
    "TOTAL",
    "Budget",
    "Check",
    "Dropped",
    "EndpointStats",
    "FailedStats",
    "Outcome",
    "ServiceStats",
    "StatsKind",
    "Waiver",
    "all_failed_sentence",
    "capitalized",
    "covered_names",
    "default_error_budgets",
    "evaluate",
    "is_glob",
    "is_waiver",
    "parse_budget",
    "percentiles_needed",
    "samples_needed",
    "summarize",
]

TOTAL = "total"
Outcome = Literal["pass", "fail", "inconclusive"]
StatsKind = Literal["name", "group", "flow"]

MAX_REGRESSION = 10.0  # 1000%: beyond that a regression budget is no longer a budget
DEFAULT_SOURCE = "default"  # Budget.source of an error budget no one wrote
OFF = "off"  # ``error_rate: off`` waives a name's error budget


@dataclass(frozen=True)
class Budget:
    """One limit. ``limit`` is in ms for latencies, a fraction for rates, req/s for min_rps."""

    endpoint: str  # request name, or TOTAL
    metric: str  # "p95", "p99.9", "avg", "max", "error_rate", "min_rps", "p95_regression", ...
    limit: float
    source: str = ""  # where it was written, "stagegate.yaml:31", for messages
    # the file it was written in (the config's path as loaded) and the line of its metric key,
    # for annotations that point at it; not part of what the budget is (compare=False)
    file: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Waiver:
    """``error_rate: off`` on a request name (or TOTAL): no error budget for it. A name whose
    requests all failed still fails."""

    endpoint: str
    source: str = ""  # "stagegate.yaml:31"
    metric: str = "error_rate"

    def sentence(self) -> str:
        return (
            f"Warning: the error budget of {self.endpoint} is waived ({self.written()}): its "
            "failed requests do not fail the gate unless every one of them failed."
        )

    def written(self) -> str:
        """``error_rate: off at stagegate.yaml:31``"""
        return f"error_rate: off at {self.source}" if self.source else "error_rate: off"


@dataclass(frozen=True)
class FailedStats:
    """The failed requests of a name that did not time out: counted apart, with their own
    latency, so that failing fast never reads as fast."""

    requests: int
    avg_ms: float
    min_ms: float
    max_ms: float
    percentiles: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceStats:
    """The open model's service time of a request name: from the actual send to the end, over
    the same requests as the latency (successes and timeouts)."""

    samples: int
    avg_ms: float
    min_ms: float
    max_ms: float
    percentiles: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Dropped:
    """The open model's iterations: ``due`` in the judged windows, ``dropped`` of them because
    they could not start within ``lag_s`` seconds of their schedule."""

    due: int
    dropped: int
    lag_s: float

    @property
    def share(self) -> float:
        return self.dropped / self.due if self.due else 0.0

    def too_many(self, most: float = defaults.MAX_DROPPED) -> bool:
        """More than ``most`` of the due iterations dropped (exactly ``most`` is fine); exact
        arithmetic, so 30 of 3,000 is 1% and not a float's hair above it."""
        if self.due <= 0 or self.dropped <= 0:
            return False
        return Fraction(self.dropped, self.due) > Fraction(str(most))

    def sentence(self) -> str:
        """``45 of 3,000 iterations (1.5%) could not start within 500ms of their schedule``"""
        noun = "iteration" if self.due == 1 else "iterations"
        return (
            f"{self.dropped:,} of {self.due:,} {noun} ({_percent(self.share)}) could not "
            f"start within {units.format_duration(self.lag_s)} of their schedule"
        )


@dataclass(frozen=True)
class EndpointStats:
    """What the load measured for one request name (or TOTAL), warm-up excluded.

    ``requests`` and ``failures`` count every request; ``timeouts`` is how many of the failures
    timed out. The latency (``avg_ms``, ``min_ms``, ``max_ms``, ``percentiles``) is over the
    ``latency_samples`` successful or timed-out requests (None: every request, as a 0.1 verdict
    measured it); ``rps`` is successful responses per second; ``failed``: the other failures.
    """

    name: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    min_ms: float
    max_ms: float
    percentiles: Mapping[str, float] = field(default_factory=dict)  # "p95" -> ms
    timeouts: int = 0
    latency_samples: int | None = None
    failed: FailedStats | None = None
    top_error: str = ""  # the most frequent error, a short phrase: "HTTP 500"
    service: ServiceStats | None = None  # the open model's service time; None: the latency
    # responses by status class, {"2xx": n, "5xx": n}; empty when the load recorded none
    status_classes: Mapping[str, int] = field(default_factory=dict)
    # "name": a request name or TOTAL; "group": a glob's names merged (``covers``); "flow": a
    # flow's iterations (requests = iterations, failures = those with a failed step)
    kind: StatsKind = "name"
    covers: tuple[str, ...] = ()  # a group's request names, sorted

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def timed(self) -> int:
        """How many requests the latency is over."""
        return self.requests if self.latency_samples is None else self.latency_samples

    @property
    def all_failed(self) -> bool:
        return self.requests > 0 and self.failures >= self.requests


@dataclass(frozen=True)
class Check:
    """The outcome of one budget.

    ``limit`` is the absolute limit in ``unit``; for a ``*_regression`` check that is
    ``baseline * (1 + allowed)`` in ms, or, when there is no usable baseline, the allowed
    increase itself as a fraction (``unit`` "ratio", ``observed`` None).
    """

    endpoint: str
    metric: str
    limit: float
    observed: float | None  # None: not measured (no samples, no baseline)
    samples: int
    outcome: Outcome
    message: str  # a sentence: "p95 of GET /api/products was 412.0 ms, over its budget of 300 ms"
    unit: Unit = "ms"
    baseline: float | None = None  # for *_regression checks
    stage: str = ""  # a stage budget's stage (``gate.load.stages``); "" for the whole run
    covers: tuple[str, ...] = ()  # a group budget's request names (a glob's), sorted
    # where its budget was written (``Budget.file``, ``Budget.line``): empty and None for a
    # default error budget, a rule's check or a hook's; not part of the outcome (compare=False)
    file: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)


# --- metric names -------------------------------------------------------------------------


def percentiles_needed(budgets: Iterable[Budget]) -> set[str]:
    """Every ``pNN`` key the budgets read from ``EndpointStats.percentiles`` (regression
    bases included), so the caller knows what to compute. Add ``STANDARD_PERCENTILES`` for
    what a verdict should record anyway."""
    return {m.base for m in (parse_metric(b.metric) for b in budgets) if m.percentile}


def samples_needed(metric: str, min_samples: int) -> int:
    """The fewest requests a check of ``metric`` can be judged on: ``min_samples``, and for a
    percentile pNN at least ``ceil(1 / (1 - NN/100))`` (below that, pNN is the maximum)."""
    percentile = parse_metric(metric).percentile
    needed = max(1, min_samples)
    if percentile is not None:
        # Exact fractions: in floats, 1 / (1 - 0.99) is 100.00000000000009 and ceil gives 101.
        needed = max(needed, math.ceil(1 / (1 - percentile / 100)))
    return needed


# --- parsing ------------------------------------------------------------------------------

_BARE_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")
# float() alone would also take "1_0", "inf", "nan" and " infinity ".
_NUMBER = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*")
_RPS_HELP = "a positive number of requests per second such as 20 or 0.5"
_REGRESSION_HELP = "an allowed increase such as 10%, 150% or 0.1 (0 to 1000%)"


def _parse_latency(value: object) -> float:
    bare = isinstance(value, (int, float)) and not isinstance(value, bool)
    if bare or (isinstance(value, str) and _BARE_NUMBER.fullmatch(value)):
        raise ValueError(
            f"expected a duration with a unit such as 250ms or 1.5s, got {value!r}: "
            f"a bare number is ambiguous, write {str(value).strip()}ms or {str(value).strip()}s"
        )
    ms = units.parse_duration(value) * 1000.0
    if ms <= 0:
        raise ValueError(f"expected a latency above 0 such as 250ms or 1.5s, got {value!r}")
    return ms


def _number(value: object) -> tuple[float, bool] | None:
    """``value`` as a finite float, and whether it was written with ``%``; None if it is not a
    plain number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range: YAML integers have no limit
            return None
        percent = False
    elif isinstance(value, str):
        match = _NUMBER.fullmatch(value)
        if not match:
            return None
        number, percent = float(match.group(1)), bool(match.group(2))
    else:
        return None
    return (number, percent) if math.isfinite(number) else None


def _parse_rps(value: object) -> float:
    parsed = _number(value)
    if parsed is None or parsed[1] or parsed[0] <= 0:
        raise ValueError(f"expected {_RPS_HELP}, got {value!r}")
    return parsed[0]


def _parse_regression(value: object) -> float:
    parsed = _number(value)
    if parsed is None:
        raise ValueError(f"expected {_REGRESSION_HELP}, got {value!r}")
    number, percent = parsed
    fraction = number / 100 if percent else number
    if fraction > MAX_REGRESSION:
        raise ValueError(f"expected {_REGRESSION_HELP}, got {value!r}")
    if not percent and fraction > 1:
        raise ValueError(
            f"expected {_REGRESSION_HELP}, got {value!r}: a bare number is a fraction "
            f"(0.1 = 10%), so write {str(value).strip()}% if you meant percent"
        )
    return fraction


def is_waiver(key: str, value: object) -> bool:
    """``error_rate: off`` (YAML reads a bare ``off`` as false): the error budget waived."""
    if key != "error_rate":
        return False
    return value is False or (isinstance(value, str) and value.strip().lower() == OFF)


def parse_budget(endpoint: str, key: str, value: object, *, source: str = "") -> Budget:
    """Parse one ``key: value`` pair of a budget block. Raises ValueError with a message
    that says what would be valid (the config loader adds file, line and key)."""
    metric = parse_metric(key)
    if metric.regression:
        limit = _parse_regression(value)
    elif metric.is_rate:  # error_rate, status_Nxx
        limit = units.parse_rate(value)
    elif metric.base == "min_rps":
        limit = _parse_rps(value)
    else:
        limit = _parse_latency(value)
    return Budget(endpoint=endpoint, metric=metric.name, limit=limit, source=source)


# --- evaluation ---------------------------------------------------------------------------


def _describe(metric: Metric, endpoint: str, stage: str = "") -> str:
    status = metric.status_class
    if status is not None:
        return f"share of {status} responses of {endpoint}" + (
            f" in stage {stage}" if stage else ""
        )
    if metric.service_time:
        what = {"avg": "average service time", "max": "maximum service time"}.get(
            metric.base, f"service-time {metric.base}"
        )
    else:
        what = {
            "avg": "average latency",
            "max": "maximum latency",
            "error_rate": "error rate",
            "min_rps": "throughput",
        }.get(metric.base, metric.base)
    return f"{what} of {endpoint}" + (f" in stage {stage}" if stage else "")


def capitalized(text: str) -> str:
    """``text`` starting with a capital, as every sentence shown to people does. Not
    ``str.capitalize``, which would lowercase the rest (a request name, a path). A first word
    that is a name (``min_rps``, ``tests/test_x.py::test_y``, ``https://...``,
    ``pytest.exit()``) stays as it is; ``p99.9`` is a word."""
    if _CODE.search(text.split(" ", 1)[0]):
        return text
    return text[:1].upper() + text[1:]


_CODE = re.compile(r"[_/:()]|\.[A-Za-z]")  # in a first word: a name from code, not a word


def _requests(n: int, noun: str = "request") -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _measured(n: int, noun: str = "request") -> str:
    return f"only {_requests(n, noun)} {'was' if n == 1 else 'were'} measured"


def _noun(stats: EndpointStats) -> str:
    """What a flow counts is iterations; everything else counts requests."""
    return "iteration" if stats.kind == "flow" else "request"


def _subject(endpoint: str, stats: EndpointStats | None) -> str:
    """How a sentence names what a budget is on: ``GET /a``, ``flow checkout``, ``GET /api/*
    (3 names)``."""
    if stats is None or stats.kind == "name":
        return endpoint
    if stats.kind == "flow":
        return f"flow {endpoint}"
    n = len(stats.covers)
    return f"{endpoint} ({n:,} name{'' if n == 1 else 's'})"


def is_glob(key: str) -> bool:
    """A budget key with ``*``, ``?`` or ``[``: an fnmatch glob over request names."""
    return any(c in key for c in "*?[")


def covered_names(pattern: str, names: Iterable[str]) -> list[str]:
    """The request names (never TOTAL) that glob ``pattern`` matches (``fnmatch.fnmatchcase``:
    case-sensitive, ``*`` crosses ``/``), sorted, without repeats."""
    return sorted({n for n in names if n != TOTAL and fnmatch.fnmatchcase(n, pattern)})


def _percent(fraction: float) -> str:
    return f"{fraction * 100:,.4g}%"


def _observe(stats: EndpointStats, metric: Metric) -> float | None:
    if metric.service_time and stats.service is not None:
        service = stats.service
        if metric.base == "avg":
            return service.avg_ms
        if metric.base == "max":
            return service.max_ms
        return service.percentiles.get(metric.base)
    if metric.base == "avg":
        return stats.avg_ms
    if metric.base == "max":
        return stats.max_ms
    if metric.base == "error_rate":
        return stats.error_rate
    status = metric.status_class
    if status is not None:
        return stats.status_classes.get(status, 0) / stats.requests if stats.requests else 0.0
    if metric.base == "min_rps":
        return stats.rps
    return stats.percentiles.get(metric.base)


def _no_requests(
    endpoint: str, metric: str, stats: Mapping[str, EndpointStats], stage: str = ""
) -> str:
    names = sorted(name for name in stats if name != TOTAL)
    where = f" in stage {stage}" if stage else ""
    of = f"{endpoint} in stage {stage}" if stage else endpoint
    if is_glob(endpoint) and names:
        made = ", ".join(repr(n) for n in names)
        return (
            f"the pattern {endpoint!r} matched no request name{where}, so its {metric} budget "
            f"could not be checked; the requests made were {made}."
        )
    if not names:
        return (
            f"no requests were recorded{where or ' at all'}, so the {metric} budget of {of} "
            "could not be checked."
        )
    if endpoint == TOTAL:
        return (
            f"no statistics for all requests together ({TOTAL!r}) were recorded{where}, so "
            f"its {metric} budget could not be checked."
        )
    made = ", ".join(repr(n) for n in names)
    match = closest(endpoint, [*names, TOTAL])
    hint = f" Did you mean {match!r}?" if match else ""
    return (
        f"no requests named {endpoint!r} were made{where}, so its {metric} budget could not "
        f"be checked; the requests made were {made}.{hint}"
    )


@dataclass(frozen=True)
class _Baseline:
    value: float | None
    problem: str  # why there is no value


def _baseline_value(
    metric: Metric,
    endpoint: str,
    baseline: Mapping[str, EndpointStats] | None,
    needed: int,
) -> _Baseline:
    what = _describe(metric, endpoint)
    if baseline is None:
        return _Baseline(
            None, f"no baseline value for {what}: no baseline verdict was given (--gate-baseline)"
        )
    stats = baseline.get(endpoint)
    if stats is None and is_glob(endpoint):
        return _Baseline(
            None,
            f"no baseline value for {what}: a verdict records request names and flows, not "
            "the merged stats of a pattern",
        )
    if stats is None or stats.requests == 0:
        return _Baseline(
            None, f"no baseline value for {what}: the baseline made no requests named {endpoint!r}"
        )
    if stats.timed < needed:
        return _Baseline(
            None,
            f"no usable baseline value for {what}: the baseline has only "
            f"{_requests(stats.timed)} and at least {needed:,} are needed",
        )
    value = _observe(stats, metric)
    if value is None:
        return _Baseline(
            None, f"no baseline value for {what}: the baseline verdict did not record {metric.base}"
        )
    if value <= 0:
        return _Baseline(None, f"no usable baseline value for {what}: it was {value!r} ms")
    return _Baseline(value, "")


def _certain_failure(metric: Metric, stats: EndpointStats, limit: float, needed: int) -> str | None:
    """Why a check with too few samples fails anyway, or None when more samples could still
    make it pass. A failing deployment that answers few requests (it hangs, it times out)
    must read as a failure, not as "not enough data"."""
    n = stats.requests
    maximum = _observe(stats, metric) if metric.base == "max" else None
    if maximum is not None and maximum > limit:
        return "more requests could not bring the maximum down"
    if metric.base == "error_rate" and not metric.regression:
        best = stats.failures / needed
        if best > limit:
            return (
                f"even if the {needed - n:,} missing ones had all succeeded the error rate "
                f"would be {format_observed(best, 'ratio')}"
            )
    status = metric.status_class
    if status is not None:
        best = stats.status_classes.get(status, 0) / needed
        if best > limit:
            return (
                f"even if the {needed - n:,} missing ones had all been answered otherwise the "
                f"share would be {format_observed(best, 'ratio')}"
            )
    if metric.base == "min_rps" and stats.rps < limit:
        return "a rate this low is a count of what was served, not an estimate"
    return None


def _saturation_note(metric: Metric, saturated: str) -> str:
    cause = saturated.strip().rstrip(".")
    cause = cause[:1].upper() + cause[1:]
    if metric.base == "min_rps":
        return (
            f" {cause}, so it could not produce the load asked for; run again with more "
            "load processes (--gate-workers)."
        )
    return (
        f" {cause}, so this latency may be the load generator's own queueing rather than "
        "the server's; run again with fewer users or more load processes (--gate-workers)."
    )


def _check(
    budget: Budget,
    all_stats: Mapping[str, EndpointStats],
    min_samples: int,
    baseline: Mapping[str, EndpointStats] | None,
    saturated: str | None,
    stage: str = "",
    groups: Mapping[str, EndpointStats] | None = None,
) -> Check:
    metric = parse_metric(budget.metric)
    unit = metric.unit
    needed = samples_needed(metric.name, min_samples)
    # precedence: a request name (or TOTAL), then a flow or a glob (``groups``)
    stats = all_stats.get(budget.endpoint)
    if stats is None and groups:
        stats = groups.get(budget.endpoint)
    desc = _describe(metric, _subject(budget.endpoint, stats), stage)
    noun = "request" if stats is None else _noun(stats)

    limit = budget.limit
    base: _Baseline | None = None
    if metric.regression:
        base = _baseline_value(metric, budget.endpoint, baseline, needed)
        if base.value is None:
            unit = "ratio"  # the limit stays the allowed increase: there is nothing to scale
        else:
            limit = base.value * (1 + budget.limit)

    def done(outcome: Outcome, message: str, observed: float | None, samples: int) -> Check:
        return Check(
            endpoint=budget.endpoint,
            metric=budget.metric,
            limit=limit,
            observed=observed,
            samples=samples,
            outcome=outcome,
            message=capitalized(message),  # a sentence, as the verdict's reasons are
            unit=unit,
            baseline=base.value if base is not None else None,
            stage=stage,
            covers=() if stats is None else stats.covers,
            file=budget.file,
            line=budget.line,
        )

    if stats is None:
        return done(
            "inconclusive",
            _no_requests(budget.endpoint, budget.metric, all_stats, stage),
            None,
            0,
        )
    if metric.base == "error_rate" and not metric.regression and stats.all_failed:
        default = " (the default)" if budget.source == DEFAULT_SOURCE else ""
        return done(
            "fail",
            f"{all_failed_sentence(stats)}: {_requests(stats.requests, noun)}, all failed, against "
            f"an error budget of {format_limit(limit, unit)}{default}.",
            stats.error_rate,
            stats.requests,
        )
    n = stats.timed if metric.is_latency else stats.requests
    if metric.service_time and stats.service is not None:
        n = stats.service.samples
    observed = _observe(stats, metric) if n > 0 else None
    if metric.is_latency and n == 0 and stats.requests > 0:
        return done(
            "inconclusive",
            f"{desc} could not be judged: none of its {_requests(stats.requests, noun)} "
            f"succeeded ({stats.failures:,} failed, none timed out), and latency is measured "
            f"on successful {'iterations' if noun == 'iteration' else 'responses'}.",
            None,
            0,
        )
    status = metric.status_class
    if status is not None and stats.kind == "flow":
        return done(
            "inconclusive",
            f"{desc} could not be judged: a flow's iterations have no status of their own; put "
            f"{metric.name} on its requests' names or on a glob over them.",
            None,
            0,
        )
    if status is not None and sum(stats.status_classes.values()) < stats.requests - stats.failures:
        # every success is a response with a status, yet fewer were classed: the load did not
        # record them (an older result, a locustfile's custom client)
        return done(
            "inconclusive",
            f"{desc} could not be judged: the load did not record the status classes of its "
            f"responses ({_requests(n)}).",
            None,
            n,
        )

    if n < needed:
        if n == 0:
            return done(
                "inconclusive",
                f"{desc} could not be judged: no {noun}s "
                f"{'of' if noun == 'iteration' else 'to'} it were measured, and the "
                f"gate needs at least {needed:,}.",
                None,
                0,
            )
        why, remedy = (
            (f"{metric.base} needs at least {needed:,}", "run the load longer")
            if needed > max(1, min_samples)
            else (
                f"the gate needs at least {needed:,} (min_samples)",
                "run the load longer, or lower gate.min_samples",
            )
        )
        measured = f"{_measured(n, noun)}, fewer than {needed:,}"
        certain = None
        if observed is not None and (base is None or base.value is not None):
            certain = _certain_failure(metric, stats, limit, needed)
        if certain is not None and observed is not None:
            allowed = format_limit(limit, unit)
            if base is not None and base.value is not None:
                allowed = (
                    f"{format_limit(limit, 'ms')} (+{_percent(budget.limit)} on its baseline of "
                    f"{format_observed(base.value, 'ms')})"
                )
            clause = (
                f"{desc} was {format_observed(observed, unit)}, "
                f"{'under its minimum' if metric.base == 'min_rps' else 'over its budget'} "
                f"of {allowed}; {measured}, but {certain}"
            )
            if saturated and metric.unit != "ratio":
                note = _saturation_note(metric, saturated)
                return done("inconclusive", clause + "." + note, observed, n)
            return done("fail", clause + ".", observed, n)
        seen = f"; it was {format_observed(observed, metric.unit)}" if observed is not None else ""
        return done(
            "inconclusive",
            f"{desc} could not be judged: {_measured(n, noun)} and {why}{seen}. "
            f"{capitalized(remedy)}.",
            observed if unit == metric.unit else None,  # no baseline: nothing in ``unit``
            n,
        )

    if observed is None:
        return done(
            "inconclusive",
            f"{desc} could not be judged: the load gate did not compute {metric.base} for it.",
            None,
            n,
        )

    if base is not None:
        if base.value is None:
            return done(
                "inconclusive",
                f"{base.problem}, so the {budget.metric} budget could not be checked "
                f"({desc} was {format_observed(observed, 'ms')}, {_requests(n, noun)}).",
                None,
                n,
            )
        change = observed / base.value - 1
        if abs(change) < 0.0005:
            versus = f"the same as its baseline of {format_observed(base.value, 'ms')}"
        else:
            direction = "above" if change > 0 else "below"
            was = format_observed(base.value, "ms")
            versus = f"{abs(change) * 100:.1f}% {direction} its baseline of {was}"
        passed = observed <= limit
        clause = (
            f"{desc} was {format_observed(observed, 'ms')}, {versus}: "
            f"{'within' if passed else 'over'} its budget of +{_percent(budget.limit)} "
            f"(at most {format_limit(limit, 'ms')}; {_requests(n, noun)})"
        )
    elif metric.base == "min_rps":
        passed = observed >= limit
        clause = (
            f"{desc} was {format_observed(observed, unit)}, "
            f"{'at or above' if passed else 'under'} its minimum of {format_limit(limit, unit)} "
            f"({_requests(n, noun)})"
        )
    else:
        passed = observed <= limit
        if metric.base == "error_rate":
            counted = f"{_requests(n, noun)}, {stats.failures:,} failed"
        elif status is not None:
            counted = f"{stats.status_classes.get(status, 0):,} of {_requests(n, noun)}"
        else:
            counted = _latency_count(stats)
        default = "default " if budget.source == DEFAULT_SOURCE else ""
        clause = (
            f"{desc} was {format_observed(observed, unit)}, "
            f"{'within' if passed else 'over'} its {default}budget of "
            f"{format_limit(limit, unit)} ({counted})"
        )

    if passed:
        return done("pass", clause + ".", observed, n)
    if saturated and metric.unit != "ratio":
        return done("inconclusive", clause + "." + _saturation_note(metric, saturated), observed, n)
    return done("fail", clause + ".", observed, n)


def _with_dropped(check: Check, dropped: Dropped | None) -> Check:
    """The dropped-iterations rule (module docstring) applied to a finished check."""
    if dropped is None or not dropped.too_many() or check.outcome == "inconclusive":
        return check
    try:
        metric = parse_metric(check.metric)
    except ValueError:
        return check
    if not metric.is_latency or metric.service_time:
        return check
    lag_ms = dropped.lag_s * 1000.0
    why = (
        f"{dropped.sentence()} (more than {_percent(defaults.MAX_DROPPED)}): the load could not "
        "keep to its schedule, because every user was busy or the load generator was"
    )
    if check.outcome == "fail" and metric.base == "max":
        # like ``_certain_failure``: more samples can never bring a maximum down
        note = (
            f" Also, {why[:1].lower()}{why[1:]}; more requests could not bring the maximum "
            "down, so the failure stands."
        )
        return dataclasses.replace(check, message=check.message.rstrip() + note)
    if check.outcome == "fail" and check.unit == "ms" and lag_ms >= check.limit:
        note = (
            f" Also, {why[:1].lower()}{why[1:]}; each of those would have waited at least "
            f"{units.format_duration(dropped.lag_s)}, over the limit, so the failure stands."
        )
        return dataclasses.replace(check, message=check.message.rstrip() + note)
    note = (
        f" But {why}, so the latency of the users who waited longest was not measured and "
        "this cannot be judged (raise users, or add --gate-workers)."
    )
    return dataclasses.replace(check, outcome="inconclusive", message=check.message.rstrip() + note)


def _latency_count(stats: EndpointStats) -> str:
    """How many requests a latency is over: the successful ones and the timeouts."""
    n, noun = stats.timed, _noun(stats)
    others = stats.requests - n if stats.latency_samples is not None else 0
    if others <= 0:
        if stats.timeouts:
            return f"{_requests(n, noun)}, {stats.timeouts:,} of them timed out"
        return _requests(n, noun)
    timed_out = f", {stats.timeouts:,} timed out" if stats.timeouts else ""
    return f"{_requests(n, noun)}{timed_out}; {others:,} other failed not counted"


def all_failed_sentence(stats: EndpointStats) -> str:
    """``every request to GET /x failed (most often HTTP 500)``; when every one timed out, that
    the target did not answer within the timeout."""
    if stats.kind == "flow":
        often = f" (most often {stats.top_error})" if stats.top_error else ""
        return f"Every iteration of flow {stats.name} failed{often}"
    who = (
        "every request"
        if stats.name == TOTAL
        else f"every request to {_subject(stats.name, stats)}"
    )
    if stats.timeouts >= stats.failures > 0:
        cause = f" ({stats.top_error})" if stats.top_error else ""
        return f"The target did not answer within the timeout: {who} timed out{cause}"
    often = f" (most often {stats.top_error})" if stats.top_error else ""
    return f"{who[:1].upper()}{who[1:]} failed{often}"


def default_error_budgets(
    budgets: Sequence[Budget],
    names: Iterable[str],
    *,
    rate: float = defaults.ERROR_RATE,
    waivers: Sequence[Waiver] = (),
    once_per_user: Iterable[str] = (),
) -> list[Budget]:
    """``budgets`` and, for each of ``names`` and TOTAL that has no ``error_rate`` budget and
    no waiver, an error budget of ``rate`` (source ``DEFAULT_SOURCE``). ``once_per_user``:
    the names that run only in a flow's ``on_start`` (a login) get none: they run once per
    user, too few times to judge a rate (the default would be inconclusive on every run);
    their failures still count in TOTAL and fail their flow's iteration, and a name whose
    requests all failed still fails."""
    have = {b.endpoint for b in budgets if b.metric == "error_rate"}
    have.update(w.endpoint for w in waivers)
    have.update(once_per_user)
    added: list[Budget] = []
    for name in dict.fromkeys([*names, TOTAL]):
        if name not in have:
            added.append(Budget(name, "error_rate", rate, source=DEFAULT_SOURCE))
    return [*budgets, *added]


def evaluate(
    budgets: Sequence[Budget],
    stats: Mapping[str, EndpointStats],
    *,
    min_samples: int,
    baseline: Mapping[str, EndpointStats] | None = None,
    saturated: str | None = None,
    default_error_rate: float | None = None,
    waivers: Sequence[Waiver] = (),
    dropped: Dropped | None = None,
    stage: str = "",
    groups: Mapping[str, EndpointStats] | None = None,
    once_per_user: Iterable[str] = (),
) -> list[Check]:
    """Check every budget against ``stats`` (keyed by request name, TOTAL included).

    ``baseline``: the stats of an earlier verdict, for ``*_regression`` budgets.
    ``saturated``: when the load generator was saturated, a clause saying so (e.g. "the load
    generator was saturated (CPU 98% of a core)"); failing latency and min_rps checks then
    become inconclusive. ``default_error_rate``: every name of ``stats`` and TOTAL without an
    error_rate budget or a waiver gets one (``default_error_budgets``; not the
    ``once_per_user`` names, which run only in a flow's on_start); None adds none.
    Whatever the budgets, a name whose requests all failed fails: its error_rate check does,
    or, when it has none (waived), an ``error_rate`` check added for it (not for a stage: the
    whole run's checks say it once). ``dropped``: the open model's dropped iterations; more
    than ``defaults.MAX_DROPPED`` of them make the latency checks inconclusive (module
    docstring). ``stage``: the stage whose requests ``stats`` are (stage budgets).
    ``groups``: by budget key, what a key that is no request name judges (module docstring):
    every flow that ran (``kind`` "flow", with budgets or not: one whose iterations all failed
    fails like a request name) and each glob's merged stats (``kind`` "group", ``covers``);
    never given default error budgets.
    Raises ValueError for a budget whose metric is unknown.
    """
    if default_error_rate is not None:
        budgets = default_error_budgets(
            budgets,
            stats,
            rate=default_error_rate,
            waivers=waivers,
            once_per_user=once_per_user,
        )
    checks = [
        _with_dropped(_check(b, stats, min_samples, baseline, saturated, stage, groups), dropped)
        for b in budgets
    ]
    if stage:
        return checks
    judged = {b.endpoint for b in budgets if b.metric == "error_rate"}
    waived = {w.endpoint: w for w in waivers}
    flows = {k: s for k, s in (groups or {}).items() if s.kind == "flow" and k not in stats}
    for name, s in [*stats.items(), *flows.items()]:
        if s.all_failed and name not in judged:
            waiver = waived.get(name)
            why = (
                f"its error budget is waived ({waiver.written()}), but"
                if waiver is not None
                else "it has no error budget, but"
            )
            checks.append(
                Check(
                    endpoint=name,
                    metric="error_rate",
                    limit=1.0,
                    observed=1.0,
                    samples=s.requests,
                    outcome="fail",
                    message=capitalized(
                        f"{all_failed_sentence(s)}: {_requests(s.requests, _noun(s))}, all "
                        f"failed; {why} "
                        + (
                            "a flow whose iterations all failed always fails the gate."
                            if s.kind == "flow"
                            else "a request name whose requests all failed always fails the gate."
                        )
                    ),
                    unit="ratio",
                )
            )
    return checks


def summarize(checks: Iterable[Check]) -> Outcome:
    """``fail`` if any check failed, else ``inconclusive`` if any was, else ``pass`` (also
    for no checks at all)."""
    outcomes = {c.outcome for c in checks}
    if "fail" in outcomes:
        return "fail"
    if "inconclusive" in outcomes:
        return "inconclusive"
    return "pass"
