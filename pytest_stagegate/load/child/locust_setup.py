"""What the child changes in Locust, and the messages its processes exchange over Locust's RPC.

``install_locust_settings`` must run in every process that records (local, master, worker):
3-digit response-time buckets (``rounding``) and 1 s worker reports.
"""

# Locust's LoadTestShape is untyped; every call to it would need its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

# isort: off
# Locust first: it monkey-patches the standard library with gevent, which must happen before
# anything imports ssl or socket (docs/load-engine.md, "Locust is never imported by pytest").
import locust
import locust.runners
import locust.stats
from locust.shape import LoadTestShape

# isort: on
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..plan import PlannedStage
from .recorder import Recorder
from .rounding import bucket_response_time_3sig
from .shape import ramp_tick

__all__ = [
    "MSG_HELLO",
    "MSG_ROWS_END",
    "MSG_WINDOW",
    "REPORT_KEY",
    "STAGES_HOLD",
    "WORKER_REPORT_INTERVAL",
    "ShapeWatch",
    "StagesShape",
    "UnjudgedErrors",
    "all_errors",
    "ignore_late_errors",
    "install_locust_settings",
    "judge_locust_stats",
    "quiet_locust_stats",
]

WORKER_REPORT_INTERVAL = 1.0  # Locust's 3 s makes early abort and progress lag behind
MSG_HELLO = "stagegate_hello"  # worker -> master: my listeners are in place
MSG_ROWS_END = "stagegate_rows_end"  # master -> workers: the unique rows ran out, take no more
MSG_WINDOW = "stagegate_window"  # master -> workers: when the warm-up ends
REPORT_KEY = "stagegate"  # a worker's measurements in its Locust report
# The gate's own stages hold their last level this long past their end: the gate ends the run
# at its duration, the way every run ends (the shape's own end is only a backstop).
STAGES_HOLD = 5.0


def install_locust_settings() -> None:
    locust.stats.bucket_response_time = bucket_response_time_3sig  # type: ignore[assignment]
    locust.runners.WORKER_REPORT_INTERVAL = WORKER_REPORT_INTERVAL


def _ignore_request(*args: Any, **kwargs: Any) -> None:
    return None


def quiet_locust_stats(stats: locust.stats.RequestStats) -> None:
    """Stop Locust recording requests in ``stats``; failures still reach ``stats.errors``.

    Locust's runner logs each request with ``stats.log_request`` (and a failure with
    ``stats.log_error`` besides): shadowing the one method on this instance leaves the rest,
    the error list and the workers' reports, as they are.
    """
    stats.log_request = _ignore_request  # type: ignore[method-assign]


# --- Locust's statistics count the judged requests only ----------------------------------------
class UnjudgedErrors:
    """The errors of the requests Locust's statistics leave out (``judge_locust_stats``): the
    result's error list covers the whole run, warm-up included (a deployment that fails during
    the warm-up is worth naming), and the early abort names the most frequent one."""

    def __init__(self) -> None:
        self.errors: dict[str, locust.stats.StatsError] = {}

    def log_error(self, method: str, name: str, error: Exception | str | None) -> None:
        key = locust.stats.StatsError.create_key(method, name, error)
        entry = self.errors.get(key)
        if entry is None:
            entry = self.errors[key] = locust.stats.StatsError(method, name, error)
        entry.occurred()

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain, msgpack-safe (a worker's report), then forget it."""
        doc: dict[str, Any] = {k: dict(e.serialize()) for k, e in self.errors.items()}
        self.errors = {}
        return doc

    def absorb(self, doc: Mapping[str, Any]) -> None:
        """A worker's ``drain()``."""
        for key, data in doc.items():
            entry = self.errors.get(key)
            if entry is None:
                entry = self.errors[key] = locust.stats.StatsError(
                    str(data["method"]), str(data["name"]), str(data["error"])
                )
            entry.occurrences += int(data.get("occurrences", 0))


def judge_locust_stats(
    stats: locust.stats.RequestStats, recorder: Recorder, aside: UnjudgedErrors
) -> None:
    """Locust's statistics in ``stats`` (its HTML report's tables, charts and failures, a
    locustfile's reads of ``environment.stats``) count the judged requests only, as the verdict
    does; the errors of the others go to ``aside``.

    Locust's runner logs each request with ``stats.log_request`` and a failure with
    ``stats.log_error`` besides, from its own ``events.request`` listener. The recorder's
    listener was added before the runner existed, so it runs first (Locust fires listeners in
    the order they were added, one request at a time) and leaves its decision for that request
    in ``recorder.last_judged``, which the shadowed methods read. Shadowing them on this
    instance leaves the rest (the workers' reports, ``clear_all`` when the load starts) as it
    is. Call it before the load starts.
    """
    log_request = stats.log_request
    log_error = stats.log_error

    def log_judged_request(method: str, name: str, response_time: int, content_length: int) -> None:
        if recorder.last_judged:
            log_request(method, name, response_time, content_length)

    def log_judged_error(method: str, name: str, error: Exception | str | None) -> None:
        if recorder.last_judged:
            log_error(method, name, error)
        else:
            aside.log_error(method, name, error)

    stats.log_request = log_judged_request  # type: ignore[method-assign]
    stats.log_error = log_judged_error  # type: ignore[method-assign]


def ignore_late_errors(stats: locust.stats.RequestStats) -> None:
    """From now on (the load stopped; the requests still waiting were measured at their waits
    so far) no error reaches the run's error list: an answer that arrives while the users are
    being stopped is not counted as a request (``Recorder.on_request``), so its error must not
    be either."""
    stats.log_error = _ignore_request  # type: ignore[method-assign]


def all_errors(
    stats: locust.stats.RequestStats, aside: UnjudgedErrors
) -> Iterable[locust.stats.StatsError]:
    """Every error of the run: Locust's (the judged requests') and the others'."""
    yield from stats.errors.values()
    yield from aside.errors.values()


# --- load shapes ----------------------------------------------------------------------------------
class StagesShape(LoadTestShape):
    """``gate.load.stages`` with ``users`` as Locust's load shape (``shape.ramp_tick``), timed
    from the controller's load start (``anchor``, epoch seconds) once it is set, so the stages
    sit where the recorder and the result put them."""

    def __init__(self, stages: Sequence[PlannedStage], hold: float = STAGES_HOLD) -> None:
        super().__init__()
        self.stages = list(stages)
        self.hold = hold
        self.anchor: float | None = None

    def reset_time(self) -> None:
        if self.anchor is None:
            super().reset_time()

    def get_run_time(self) -> float:
        if self.anchor is None:
            return float(super().get_run_time())
        return time.time() - self.anchor

    def tick(self) -> tuple[int, float] | None:
        return ramp_tick(self.stages, self.get_run_time(), hold=self.hold)


class ShapeWatch:
    """Whether a load shape ended the load: its ``tick()`` answered None (Locust then stops the
    users itself, which looks like any other stop)."""

    def __init__(self, shape: LoadTestShape) -> None:
        self.shape = shape
        self.name = type(shape).__name__
        self.ended_after: float | None = None  # the shape's run time when it ended
        tick = shape.tick

        def watched() -> Any:
            answer = tick()
            if answer is None and self.ended_after is None:
                self.ended_after = float(shape.get_run_time())
            return answer

        shape.tick = watched  # type: ignore[method-assign]
