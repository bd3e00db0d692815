"""What the child changes in Locust, and the messages its processes exchange over Locust's RPC.

``install_locust_settings`` must run in every process that records (local, master, worker):
3-digit response-time buckets (``rounding``) and 1 s worker reports.
"""

from __future__ import annotations

# isort: off
# Locust first: it monkey-patches the standard library with gevent, which must happen before
# anything imports ssl or socket (docs/load-engine.md, "Locust is never imported by pytest").
import locust
import locust.runners
import locust.stats

# isort: on
from typing import Any

from .rounding import bucket_response_time_3sig

__all__ = [
    "MSG_HELLO",
    "MSG_WINDOW",
    "REPORT_KEY",
    "WORKER_REPORT_INTERVAL",
    "install_locust_settings",
    "quiet_locust_stats",
]

WORKER_REPORT_INTERVAL = 1.0  # Locust's 3 s makes early abort and progress lag behind
MSG_HELLO = "stagegate_hello"  # worker -> master: my listeners are in place
MSG_WINDOW = "stagegate_window"  # master -> workers: when the warm-up ends
REPORT_KEY = "stagegate"  # a worker's measurements in its Locust report


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
