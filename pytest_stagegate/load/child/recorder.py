"""Measurement: every request's raw time into a ``LogHistogram`` per request name. Pure: no
locust or gevent import, so it is unit-tested in the pytest process.

Each request is classified (``classify``): a success, a timeout or another failure. Successes
and timeouts (at their full wait: the slowest answers must not vanish from p99) go into the
judged latency histogram, other failures into a histogram of their own, so a dead target that
refuses every request at once can never look fast. Each request is recorded in one histogram
only (this runs once per request, inside the load generator); the periodic checks take the
fresh part, keep it for the recent past (early abort, progress) and fold it into the measured
window. In a local or worker process the recorder is fed by Locust's ``events.request``; on the
master, by the workers' reports (``absorb``)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ...histogram import LogHistogram
from ..plan import LoadPlan

__all__ = [
    "FAILED",
    "SUCCESS",
    "TIMEOUT",
    "EndpointTally",
    "Recorder",
    "classify",
    "keeps_locust_stats",
    "merge_histograms",
]

SUCCESS, TIMEOUT, FAILED = "success", "timeout", "failed"
# The timeouts of every client the load can use, by class name (this module imports neither
# gevent nor requests): the whole-request watchdog's RequestTimedOut (``deadline``), gevent's
# Timeout (geventhttpclient's connection and network timeouts), requests' Timeout /
# ConnectTimeout / ReadTimeout, urllib3's timeouts; and the builtin TimeoutError
# (socket.timeout) through isinstance.
_TIMEOUT_CLASSES = frozenset(
    {
        "RequestTimedOut",
        "Timeout",
        "ConnectTimeout",
        "ReadTimeout",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionTimeout",
        "TimeoutError",
    }
)


def classify(exception: BaseException | None) -> str:
    """``SUCCESS`` (no exception), ``TIMEOUT`` (the request waited its whole timeout: the
    watchdog's or a client's connect/read timeout, also when a client wraps it, as requests'
    ConnectionError wraps urllib3's ReadTimeoutError and geventhttpclient's RetriesExceeded a
    socket timeout) or ``FAILED`` (anything else: a status
    the scenario did not expect, a refused or reset connection)."""
    if exception is None:
        return SUCCESS
    pending: list[BaseException] = [exception]
    seen: set[int] = set()
    while pending and len(seen) < 10:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError) or any(
            cls.__name__ in _TIMEOUT_CLASSES for cls in type(current).__mro__
        ):
            return TIMEOUT
        # geventhttpclient's RetriesExceeded keeps the last error as ``original``, urllib3's
        # MaxRetryError as ``reason``
        linked = (
            *current.args,
            getattr(current, "original", None),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        )
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return FAILED


def keeps_locust_stats(plan: LoadPlan) -> bool:
    """Whether Locust's own per-request statistics are read, and so must be kept: by the HTML
    report, and by a locustfile's own code (``environment.stats``). Otherwise the recorder's
    histograms are all the gate reads (docs/load-engine.md, Measurement)."""
    return bool(plan.html_report or plan.locustfile)


def merge_histograms(hists: Iterable[LogHistogram]) -> LogHistogram:
    total = LogHistogram()
    for h in hists:
        total.merge(h)
    return total


class EndpointTally:
    """One request name: its methods, requests, failures (``timeouts`` of them timed out), the
    judged response times (successes and timeouts, ``hist``) and the other failures' times
    (``failed_hist``)."""

    __slots__ = ("failed_hist", "failures", "hist", "methods", "requests", "timeouts")

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.requests = 0
        self.failures = 0
        self.timeouts = 0
        self.hist = LogHistogram()
        self.failed_hist = LogHistogram()

    def add(self, other: EndpointTally) -> None:
        self.methods.update(other.methods)
        self.requests += other.requests
        self.failures += other.failures
        self.timeouts += other.timeouts
        self.hist.merge(other.hist)
        self.failed_hist.merge(other.failed_hist)


class Recorder:
    """Every request of the run: per request name, the measured window's requests since the
    last ``take_fresh`` (and the warm-up's times, for the progress line), the measured window
    so far, and counters for the whole run.

    A request counts in the measured window only if it *started* at or after ``warmup_end``
    (epoch seconds; unknown, so everything is warm-up, until the controller sets it).
    """

    def __init__(self) -> None:
        self.warmup_end = math.inf
        self.measured: dict[str, EndpointTally] = {}  # folded in by take_fresh()
        self.fresh: dict[str, EndpointTally] = {}
        self.fresh_warmup: dict[str, LogHistogram] = {}
        self.run_requests = 0
        self.run_failures = 0
        # requests still waiting for an answer when the load stopped (``unanswered``)
        self.unfinished = 0

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        """An ``events.request`` listener (Locust passes the raw float time in ms)."""
        self.run_requests += 1
        kind = classify(exception)
        failed = kind != SUCCESS
        if failed:
            self.run_failures += 1
        if response_time is not None and not (response_time >= 0 and response_time < math.inf):
            response_time = None  # a custom client's garbage must not poison the histograms
        if start_time is None:
            start_time = time.time() - (response_time or 0.0) / 1000.0
        if start_time >= self.warmup_end:
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = EndpointTally()
            ep.methods.add(request_type)
            ep.requests += 1
            if failed:
                ep.failures += 1
                if kind == TIMEOUT:
                    ep.timeouts += 1
            if response_time is not None:
                (ep.failed_hist if kind == FAILED else ep.hist).record(response_time)
        elif response_time is not None and kind != FAILED:
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.record(response_time)

    def take_fresh(self) -> tuple[dict[str, EndpointTally], dict[str, LogHistogram]]:
        """The measured and warm-up requests since the last call, by name; the measured ones
        are folded into ``measured``."""
        fresh, warm = self.fresh, self.fresh_warmup
        self.fresh, self.fresh_warmup = {}, {}
        for name, ep in fresh.items():
            into = self.measured.get(name)
            if into is None:
                into = self.measured[name] = EndpointTally()
            into.add(ep)
        return fresh, warm

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain, msgpack-safe, then forget it (a worker's report;
        the master ``absorb``s it)."""
        doc = {
            "m": {
                name: [
                    sorted(ep.methods),
                    ep.requests,
                    ep.failures,
                    ep.hist.to_dict(),
                    ep.timeouts,
                    ep.failed_hist.to_dict(),
                ]
                for name, ep in self.fresh.items()
            },
            "w": {name: h.to_dict() for name, h in self.fresh_warmup.items()},
            "rn": self.run_requests,
            "rf": self.run_failures,
            "uf": self.unfinished,
        }
        self.fresh, self.fresh_warmup = {}, {}
        self.run_requests = self.run_failures = self.unfinished = 0
        return doc

    def absorb(self, doc: Mapping[str, Any]) -> None:
        """A worker's ``drain()``, added to the fresh requests as if recorded here."""
        for name, entry in doc.get("m", {}).items():
            methods, requests, failures, hist = entry[:4]
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = EndpointTally()
            ep.methods.update(methods)
            ep.requests += int(requests)
            ep.failures += int(failures)
            ep.hist.merge(LogHistogram.from_dict(hist))
            if len(entry) >= 6:  # a worker of 0.1 sends no timeouts nor failed times
                ep.timeouts += int(entry[4])
                ep.failed_hist.merge(LogHistogram.from_dict(entry[5]))
        for name, hist in doc.get("w", {}).items():
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.merge(LogHistogram.from_dict(hist))
        self.run_requests += int(doc.get("rn", 0))
        self.run_failures += int(doc.get("rf", 0))
        self.unfinished += int(doc.get("uf", 0))
