"""The early-abort rules: errors in the last seconds, latency far over budget for N seconds in a
row, and "is the load generator saturated right now". Pure: every time and window is the
caller's, so the rules are unit-tested on fixed numbers (docs/load-engine.md, Early abort).
"""

from __future__ import annotations

import collections
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ...budgets import TOTAL
from ...histogram import LogHistogram
from ...metrics import parse_metric
from ...units import format_limit, format_ms_brief
from ..plan import LatencyLimit
from ..result import ProcessUsage
from ..usage import judge_saturation
from .recorder import EndpointTally, merge_histograms

__all__ = [
    "ABORT_START",
    "ERROR_WINDOW",
    "LATENCY_MIN_SAMPLES",
    "RECENT_WINDOW",
    "ErrorBurst",
    "LatencyBreach",
    "LatencyCheck",
    "LatencyRule",
    "RecentTicks",
    "RequestCounts",
    "fmt_seconds",
    "latency_of",
    "saturated_now",
]

ABORT_START = 2.0  # seconds of load before the first abort check
ERROR_WINDOW = 5.0  # the errors rule looks this far back, warm-up included
RECENT_WINDOW = 3.0  # latency and saturation "now"
LATENCY_MIN_SAMPLES = 5  # fewer recent requests say nothing about latency

Tick = Mapping[str, EndpointTally]  # the measured requests of one check, by name


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s"


def latency_of(hist: LogHistogram, metric: str) -> float | None:
    """``metric`` (pNN, avg, max: ``metrics`` grammar) of ``hist`` in ms; None for another."""
    try:
        parsed = parse_metric(metric)
    except ValueError:
        return None
    if parsed.regression or not parsed.is_latency:
        return None
    if parsed.percentile is not None:
        return hist.percentile(float(parsed.percentile))
    return hist.mean_ms if parsed.base == "avg" else hist.max_ms


def saturated_now(processes: Sequence[ProcessUsage], threshold: float) -> bool:
    """The saturation rule (``load.usage``) applied to the last few seconds' samples."""
    return judge_saturation(processes, threshold)[0]


# --- errors ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorBurst:
    """Failed requests over the last ``seconds``: enough to stop the load."""

    requests: int
    failures: int
    seconds: float

    @property
    def share(self) -> float:
        return self.failures / self.requests

    def reason(self, elapsed: float, top_error: str = "") -> str:
        """``top_error``: " (most often ... on ..., N times)" or ""."""
        return (
            f"Stopped the load after {fmt_seconds(elapsed)}: {self.share:.0%} of "
            f"{self.requests:,} requests in the last {fmt_seconds(self.seconds)} "
            f"failed{top_error}."
        )


class RequestCounts:
    """The run's request and failure counters, sampled at every check, for the last ``window``
    seconds: the errors rule and the progress line's requests per second."""

    def __init__(self, window: float = ERROR_WINDOW) -> None:
        self.window = window
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, now: float, requests: int, failures: int) -> None:
        """The counters at ``now`` (run-wide, warm-up included)."""
        self._samples.append((now, requests, failures))
        # keep the newest sample at or before the window's start: the window is always covered
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def rps(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, r0, _), (t1, r1, _) = self._samples[0], self._samples[-1]
        return (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0

    def burst(self, min_requests: int, error_rate: float) -> ErrorBurst | None:
        """At least ``min_requests`` requests and a failed share of at least ``error_rate``
        within the window, or None."""
        if not self._samples:
            return None
        t0, req0, fail0 = self._samples[0]
        t1, req1, fail1 = self._samples[-1]
        requests, failures = req1 - req0, fail1 - fail0
        if requests < max(1, min_requests):
            return None
        if failures / requests < error_rate:
            return None
        return ErrorBurst(requests, failures, t1 - t0)


# --- latency ---------------------------------------------------------------------------------
class RecentTicks:
    """What the checks of the last ``window`` seconds took from the recorder."""

    def __init__(self, window: float = RECENT_WINDOW) -> None:
        self.window = window
        self._ticks: collections.deque[tuple[float, Tick, Mapping[str, LogHistogram]]] = (
            collections.deque()
        )

    def add(self, now: float, measured: Tick, warmup: Mapping[str, LogHistogram]) -> None:
        self._ticks.append((now, measured, warmup))
        while self._ticks and self._ticks[0][0] < now - self.window:
            self._ticks.popleft()

    def measured(self) -> list[Tick]:
        """The checks that took measured requests (after the warm-up)."""
        return [eps for _, eps, _ in self._ticks if eps]

    def p95(self) -> float:
        """The 95th percentile of every recent request, warm-up included (the progress line)."""
        return merge_histograms(
            [ep.hist for _, eps, _ in self._ticks for ep in eps.values()]
            + [h for _, _, warm in self._ticks for h in warm.values()]
        ).percentile(95)


@dataclass(frozen=True)
class LatencyBreach:
    """A latency limit exceeded ``factor`` times over for ``held_for`` seconds in a row."""

    limit: LatencyLimit
    observed: float
    held_for: float
    factor: float

    def reason(self, elapsed: float) -> str:
        return (
            f"Stopped the load after {fmt_seconds(elapsed)}: {self.limit.metric} of "
            f"{self.limit.endpoint} was {format_ms_brief(self.observed)} for "
            f"{fmt_seconds(self.held_for)}, more than {self.factor:g} times its budget of "
            f"{format_limit(self.limit.limit_ms, 'ms')}."
        )


@dataclass(frozen=True)
class LatencyCheck:
    """One check's outcome: stop for ``breach``; ``held``: the first limit ever found over
    while the generator was saturated (to be said once)."""

    breach: LatencyBreach | None = None
    held: LatencyLimit | None = None


class LatencyRule:
    """For each limit, the metric over the recent measured requests above ``factor`` times
    the limit for ``hold_for`` seconds in a row, while the load generator is not saturated.

    A saturated generator reports its own queueing as latency, which makes latency results
    inconclusive, while an "aborted" run always fails the gate: a check that finds the
    generator saturated does not abort and starts the "in a row" count over.
    """

    def __init__(self, limits: Sequence[LatencyLimit], factor: float, hold_for: float) -> None:
        self.limits = tuple(limits)
        self.factor = factor
        self.hold_for = hold_for
        self._since: dict[int, float] = {}  # limit index: when it was first over, in a row
        self._held_back = False

    def check(
        self, now: float, window: Sequence[Tick], saturated: Callable[[], bool]
    ) -> LatencyCheck:
        """``window``: ``RecentTicks.measured()``; ``saturated()`` is asked at most once, and
        only when a limit is exceeded."""
        if not self.limits or not window:
            return LatencyCheck()
        is_saturated: bool | None = None
        held: LatencyLimit | None = None
        for i, limit in enumerate(self.limits):
            hist = _window_histogram(window, limit)
            if hist.count < LATENCY_MIN_SAMPLES:
                continue
            observed = latency_of(hist, limit.metric)
            if observed is None:
                continue
            if observed <= limit.limit_ms * self.factor:
                self._since.pop(i, None)
                continue
            if is_saturated is None:
                is_saturated = saturated()
            if is_saturated:
                # its own queueing, not the server's latency: inconclusive, never a failure
                self._since.pop(i, None)
                if not self._held_back:
                    self._held_back = True
                    held = limit
                continue
            since = self._since.setdefault(i, now)
            if now - since >= self.hold_for:
                return LatencyCheck(LatencyBreach(limit, observed, now - since, self.factor), held)
        return LatencyCheck(held=held)


def _window_histogram(window: Sequence[Tick], limit: LatencyLimit) -> LogHistogram:
    endpoint = limit.endpoint
    if endpoint == TOTAL:
        return merge_histograms(ep.hist for eps in window for ep in eps.values())
    if limit.glob:  # the names it covers, merged (``budgets.covered_names``)
        return merge_histograms(
            ep.hist
            for eps in window
            for name, ep in eps.items()
            if fnmatch.fnmatchcase(name, endpoint)
        )
    return merge_histograms(eps[endpoint].hist for eps in window if endpoint in eps)
