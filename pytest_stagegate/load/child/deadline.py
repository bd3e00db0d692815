"""The whole-request deadline: a request, body included, is bounded by the target's timeout.

Locust's timeouts (geventhttpclient's, requests') apply to each socket read: a body that drips
a byte a second never times out, and a request still running when the load stops is never
counted, so a dripping deployment would measure nothing at all. ``within_timeout`` registers
each request; one ``deadline_watch`` greenlet per load process throws ``RequestTimedOut`` into
every overdue one (within 0.1 s of its deadline): a Timeout object per request would cost more
than the watch. ``in_flight`` counts the requests still waiting (a hang longer than the load
leaves nothing else behind); ``started_since``, the pure part of it, is unit-tested, which is
why gevent is imported where it is used and not at the top.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["RequestTimedOut", "deadline_watch", "in_flight", "started_since", "within_timeout"]

# One request in flight: (deadline, token, timeout), the deadline on the monotonic clock; an
# overdue request's deadline is inf (its RequestTimedOut is thrown once).
Entry = tuple[float, int, float]

# The requests in flight, per user greenlet.
_IN_FLIGHT: dict[Any, Entry] = {}
_WATCH_INTERVAL = 0.1
_tokens = itertools.count()


class RequestTimedOut(Exception):
    """A request, body included, took longer than the target's timeout."""


def within_timeout(
    task: Callable[[Any], None], method: str, name: str, timeout: float
) -> Callable[[Any], None]:
    """``task`` bounded by ``timeout``. Locust's clients record ``RequestTimedOut`` as the
    request's failure; a client that lets it through is caught here and recorded once."""
    from gevent import getcurrent

    def bounded(user: Any) -> None:
        me = getcurrent()
        _IN_FLIGHT[me] = (time.monotonic() + timeout, next(_tokens), timeout)
        try:
            task(user)
        except RequestTimedOut as exc:
            user.environment.events.request.fire(
                request_type=method,
                name=name,
                response_time=timeout * 1000,
                response_length=0,
                response=None,
                context={},
                exception=exc,
            )
        finally:
            _IN_FLIGHT.pop(me, None)

    return bounded


def deadline_watch() -> None:
    """Throw ``RequestTimedOut`` into every request past its deadline (a greenlet, forever)."""
    import gevent

    hub = gevent.get_hub()
    while True:
        gevent.sleep(_WATCH_INTERVAL)
        now = time.monotonic()
        for glet, (deadline, token, timeout) in list(_IN_FLIGHT.items()):
            if now > deadline:
                _IN_FLIGHT[glet] = (math.inf, token, timeout)  # throw once
                hub.loop.run_callback(_expire, glet, token, timeout)


def in_flight(since: float) -> int:
    """How many requests bounded by ``within_timeout`` are still waiting for an answer now,
    of those that started at or after ``since`` (epoch seconds; 0 for all of them). An overdue
    one counts whenever it started: its ``RequestTimedOut`` is on its way."""
    return started_since(list(_IN_FLIGHT.values()), since, wall=time.time(), mono=time.monotonic())


def started_since(entries: Iterable[Entry], since: float, *, wall: float, mono: float) -> int:
    """How many of ``entries`` (deadline on the monotonic clock, token, timeout) started at or
    after ``since`` (epoch seconds), or are overdue (deadline inf), when the wall clock reads
    ``wall`` and the monotonic one ``mono``. Pure."""
    count = 0
    for deadline_at, _token, timeout in entries:
        if math.isinf(deadline_at) or wall - (mono - (deadline_at - timeout)) >= since:
            count += 1
    return count


def _expire(glet: Any, token: int, timeout: float) -> None:
    entry = _IN_FLIGHT.get(glet)
    if entry is not None and entry[1] == token and not glet.dead:  # still in that request
        glet.throw(RequestTimedOut(f"no complete response within {timeout:g} s"))
