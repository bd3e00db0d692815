"""The one grammar of metric names, for budgets, load results, the verdict and the load child.

    pNN, pNN.N      a percentile latency (ms), p0.1 to p99.9; "p95.0" reads as "p95"
    avg, max        mean / maximum latency (ms)
    error_rate      failures / requests (a fraction)
    min_rps         requests per second
    status_Nxx      status_1xx .. status_5xx: responses of that status class / requests (a
                    fraction, a rate like error_rate; no regression form)
    <latency>_regression    pNN, pNN.N, avg or max compared with a baseline verdict
    service_time_<latency>  service_time_pNN, service_time_avg, service_time_max: the time from
                            the actual send (the open model; in the closed model the same as
                            the latency, which there is measured from the send too)

Plain pNN / avg / max are the latency: in the open model (``gate.load.rate``) measured from
the scheduled start of the request, so it includes any wait for the generator to send it;
``service_time_*`` leaves that wait out. Service-time budgets have no regression form.

Pure; errors are ``ValueError`` with a message that says what would be valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .errors import did_you_mean

__all__ = [
    "LATENCY_STATS",
    "REGRESSION",
    "SERVICE_TIME",
    "STANDARD_PERCENTILES",
    "STATUS_CLASSES",
    "Metric",
    "Unit",
    "parse_metric",
    "parse_percentile",
    "sort_key",
    "sorted_percentiles",
]

Unit = Literal["ms", "ratio", "rps"]

# What every verdict records, so that a later run can compare against it.
STANDARD_PERCENTILES = ("p50", "p90", "p95", "p99")
LATENCY_STATS = ("avg", "max")
REGRESSION = "_regression"
SERVICE_TIME = "service_time_"
# status_1xx .. status_5xx: the share of a name's requests answered with a status of that class
STATUS_CLASSES = tuple(f"status_{n}xx" for n in range(1, 6))

_PERCENTILE = re.compile(r"p(\d{1,2})(?:\.(\d))?")
_LOOKS_LIKE_PERCENTILE = re.compile(r"p[\d.]+")
_VALID = (
    "pNN, pNN.N, avg, max, error_rate, min_rps, status_1xx .. status_5xx, "
    "<pNN|avg|max>_regression and service_time_<pNN|avg|max>"
)
_SUGGESTIONS = (
    *STANDARD_PERCENTILES,
    "p99.9",
    *LATENCY_STATS,
    "error_rate",
    "min_rps",
    *STATUS_CLASSES,
    *(f"{m}{REGRESSION}" for m in (*STANDARD_PERCENTILES, *LATENCY_STATS)),
    *(f"{SERVICE_TIME}{m}" for m in (*STANDARD_PERCENTILES, *LATENCY_STATS)),
)


@dataclass(frozen=True)
class Metric:
    """A parsed metric name."""

    base: str  # canonical: "p95", "p99.9", "avg", "max", "error_rate", "min_rps", "status_5xx"
    regression: bool = False
    percentile: Fraction | None = None  # 95 for p95
    service_time: bool = False  # service_time_p95: base "p95", from the actual send

    @property
    def name(self) -> str:
        name = SERVICE_TIME + self.base if self.service_time else self.base
        return name + REGRESSION if self.regression else name

    @property
    def is_latency(self) -> bool:
        """True for what a latency histogram answers: pNN, avg, max (and their regressions),
        and their service-time forms (``service_time`` tells which histogram)."""
        return self.percentile is not None or self.base in LATENCY_STATS

    @property
    def status_class(self) -> str | None:
        """``"5xx"`` for status_5xx; None for every other metric."""
        return self.base.removeprefix("status_") if self.base in STATUS_CLASSES else None

    @property
    def is_rate(self) -> bool:
        """error_rate and status_Nxx: a share of the requests, judged like each other."""
        return self.base == "error_rate" or self.base in STATUS_CLASSES

    @property
    def unit(self) -> Unit:
        if self.is_rate:
            return "ratio"
        if self.base == "min_rps":
            return "rps"
        return "ms"


def _percentile_error(key: str) -> ValueError:
    hint = "; for the slowest request use max" if key.startswith("p100") else ""
    return ValueError(
        f"unknown budget {key!r}: percentiles go from p0.1 to p99.9 (e.g. p95, p99.9){hint}"
    )


def parse_percentile(text: str, key: str | None = None) -> Metric:
    """``p95`` -> Metric("p95", percentile=95); ``p99.9``; ``p95.0`` reads as ``p95``."""
    match = _PERCENTILE.fullmatch(text)
    if not match:
        raise _percentile_error(key or text)
    whole, tenth = match.group(1), match.group(2)
    value = Fraction(int(whole)) + Fraction(int(tenth or 0), 10)
    if not 0 < value < 100:
        raise _percentile_error(key or text)
    # Canonical form, so that "p95.0" and "p95" read the same measured percentile.
    canonical = f"p{int(whole)}" if not tenth or tenth == "0" else f"p{int(whole)}.{tenth}"
    return Metric(canonical, regression=False, percentile=value)


def parse_metric(key: str) -> Metric:
    """Any metric name of the grammar above; ValueError naming the valid ones otherwise."""
    if key in (*LATENCY_STATS, "error_rate", "min_rps", *STATUS_CLASSES):
        return Metric(key)
    if key.startswith(SERVICE_TIME):
        return _parse_service_time(key)
    if key.endswith(REGRESSION):
        base = key[: -len(REGRESSION)]
        if base in LATENCY_STATS:
            return Metric(base, regression=True)
        if _LOOKS_LIKE_PERCENTILE.fullmatch(base):
            metric = parse_percentile(base, key)
            return Metric(metric.base, regression=True, percentile=metric.percentile)
        if base in ("error_rate", "min_rps", *STATUS_CLASSES):
            raise ValueError(
                f"unknown budget {key!r}: only latencies have regression budgets, "
                "<pNN|avg|max>_regression (e.g. p95_regression); use "
                f"{base if base in STATUS_CLASSES else 'error_rate or min_rps'} with a limit"
            )
        raise ValueError(
            f"unknown budget {key!r}: a regression budget is <pNN|avg|max>_regression "
            f"(e.g. p95_regression, avg_regression){did_you_mean(key, _SUGGESTIONS)}"
        )
    if _LOOKS_LIKE_PERCENTILE.fullmatch(key):
        return parse_percentile(key, key)
    if key.startswith("status_"):
        raise ValueError(
            f"unknown budget {key!r}: a status budget is status_1xx, status_2xx, status_3xx, "
            f"status_4xx or status_5xx (e.g. status_5xx: 0.1%){did_you_mean(key, STATUS_CLASSES)}"
        )
    raise ValueError(
        f"unknown budget {key!r}: valid budgets are {_VALID}{did_you_mean(key, _SUGGESTIONS)}"
    )


def _parse_service_time(key: str) -> Metric:
    rest = key[len(SERVICE_TIME) :]
    if rest.endswith(REGRESSION):
        raise ValueError(
            f"unknown budget {key!r}: service-time budgets have no regression form; compare "
            "the latency with a baseline instead (e.g. p95_regression)"
        )
    if rest in LATENCY_STATS:
        return Metric(rest, service_time=True)
    if _LOOKS_LIKE_PERCENTILE.fullmatch(rest):
        metric = parse_percentile(rest, key)
        return Metric(metric.base, percentile=metric.percentile, service_time=True)
    raise ValueError(
        f"unknown budget {key!r}: a service-time budget is service_time_<pNN|avg|max> "
        f"(e.g. service_time_p95, service_time_max){did_you_mean(key, _SUGGESTIONS)}"
    )


def sort_key(name: str) -> tuple[str, float, str]:
    """Metric names in alphabetical order, except that percentiles compare by their number:
    avg < error_rate < max < min_rps < p9 < p50 < p99 < p99.9 < p99.9_regression <
    service_time_avg < service_time_max < service_time_p50 < service_time_p99 (a string sort
    puts p100 before p50 and p99.9 before p99). A name outside the grammar sorts by its text;
    one that starts like a percentile but is none (p100) lands after the percentiles."""
    try:
        metric = parse_metric(name)
    except ValueError:
        return (name, 0.0, "")
    prefix = SERVICE_TIME if metric.service_time else ""
    if metric.percentile is not None:
        return (prefix + "p", float(metric.percentile), name)
    return (name, 0.0, "")


def sorted_percentiles(names: Iterable[str]) -> list[str]:
    """``STANDARD_PERCENTILES`` and ``names``, canonical, without repeats, in numeric order."""
    canonical = {parse_percentile(n).base for n in (*STANDARD_PERCENTILES, *names)}
    return sorted(canonical, key=sort_key)
