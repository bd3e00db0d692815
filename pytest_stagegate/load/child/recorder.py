"""Measurement: every request's raw time into a ``LogHistogram`` per request name. Pure: no
locust or gevent import, so it is unit-tested in the pytest process.

Each request is recorded in one histogram only (this runs once per request, inside the load
generator); the periodic checks take the fresh part, keep it for the recent past (early abort,
progress) and fold it into the measured window. In a local or worker process the recorder is
fed by Locust's ``events.request``; on the master, by the workers' reports (``absorb``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ...histogram import LogHistogram
from ..plan import LoadPlan

__all__ = ["EndpointTally", "Recorder", "keeps_locust_stats", "merge_histograms"]


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
    """One request name: its methods, requests, failures and response times."""

    __slots__ = ("failures", "hist", "methods", "requests")

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.requests = 0
        self.failures = 0
        self.hist = LogHistogram()

    def add(self, other: EndpointTally) -> None:
        self.methods.update(other.methods)
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)


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
        failed = exception is not None
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
            if response_time is not None:
                ep.hist.record(response_time)
        elif response_time is not None:
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
                name: [sorted(ep.methods), ep.requests, ep.failures, ep.hist.to_dict()]
                for name, ep in self.fresh.items()
            },
            "w": {name: h.to_dict() for name, h in self.fresh_warmup.items()},
            "rn": self.run_requests,
            "rf": self.run_failures,
        }
        self.fresh, self.fresh_warmup = {}, {}
        self.run_requests = self.run_failures = 0
        return doc

    def absorb(self, doc: Mapping[str, Any]) -> None:
        """A worker's ``drain()``, added to the fresh requests as if recorded here."""
        for name, (methods, requests, failures, hist) in doc.get("m", {}).items():
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = EndpointTally()
            ep.methods.update(methods)
            ep.requests += int(requests)
            ep.failures += int(failures)
            ep.hist.merge(LogHistogram.from_dict(hist))
        for name, hist in doc.get("w", {}).items():
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.merge(LogHistogram.from_dict(hist))
        self.run_requests += int(doc.get("rn", 0))
        self.run_failures += int(doc.get("rf", 0))
