"""The whole-request deadline: a request, body included, is bounded by the target's timeout.

Locust's timeouts (geventhttpclient's, requests') apply to each socket read: a body that drips
a byte a second never times out, and a request still running when the load stops is never
counted, so a dripping deployment would measure nothing at all. ``within_timeout`` registers
each request; one ``deadline_watch`` greenlet per load process throws ``RequestTimedOut`` into
every overdue one (within 0.1 s of its deadline): a Timeout object per request would cost more
than the watch. ``in_flight`` counts the requests still waiting (a hang longer than the load
leaves nothing else behind) and ``waiting`` lists them with their waits so far, which the
recorder measures when the load stops (``Recorder.on_unanswered``: a request still waiting is
judged at a lower bound of its latency, never dropped); ``started_since`` and ``unanswered``,
the pure parts, are unit-tested, which is why gevent is imported where it is used and not at
the top.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

__all__ = [
    "RequestTimedOut",
    "Unanswered",
    "deadline_watch",
    "enter",
    "in_flight",
    "leave",
    "started_since",
    "unanswered",
    "waiting",
    "within_timeout",
]

# One request in flight: (deadline, token, timeout, sent, method, name, intended, window): the
# deadline and the send on the monotonic clock (an overdue request's deadline is inf: its
# RequestTimedOut is thrown once); in the open model the epoch time it was meant to start (its
# slot's due time, or the previous step's end) and its slot's window, else None and None.
Entry = tuple[float, int, float, float, str, str, "float | None", Any]
# The open model's (intended start, window) of the request about to be sent, read from the user
Intended = Callable[[Any], tuple["float | None", Any]]

# The requests in flight, per user greenlet.
_IN_FLIGHT: dict[Any, Entry] = {}
_WATCH_INTERVAL = 0.1
_tokens = itertools.count()


class RequestTimedOut(Exception):
    """A request, body included, took longer than the target's timeout."""


class Unanswered(NamedTuple):
    """A request still waiting for its answer: ``latency_ms`` its wait so far from its intended
    start (the open model; the send in the closed one), ``service_ms`` from its send (the open
    model only, else None), ``start`` (epoch seconds) the time that decides its window when
    ``window`` (the open model's slot's) is None."""

    method: str
    name: str
    latency_ms: float
    service_ms: float | None
    start: float
    window: Any


def within_timeout(
    task: Callable[[Any], None],
    method: str,
    name: str,
    timeout: float,
    intended: Intended | None = None,
) -> Callable[[Any], None]:
    """``task`` bounded by ``timeout``. Locust's clients record ``RequestTimedOut`` as the
    request's failure; a client that lets it through is caught here and recorded once.
    ``intended`` (the open model) reads the request's intended start and window from the user,
    for ``waiting``."""
    from gevent import getcurrent

    def bounded(user: Any) -> None:
        me = getcurrent()
        sent = time.monotonic()
        due, window = (None, None) if intended is None else intended(user)
        _IN_FLIGHT[me] = (sent + timeout, next(_tokens), timeout, sent, method, name, due, window)
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


def enter(
    me: Any,
    sent: float,
    timeout: float,
    method: str,
    name: str,
    intended: float | None,
    window: Any,
) -> None:
    """The lean path's ``within_timeout`` (``lean.LeanRequest.send``): greenlet ``me`` sent a
    request at ``sent`` (``time.monotonic()``); it records a ``RequestTimedOut`` itself."""
    _IN_FLIGHT[me] = (sent + timeout, next(_tokens), timeout, sent, method, name, intended, window)


def leave(me: Any) -> None:
    """Greenlet ``me``'s request is over (``enter``)."""
    _IN_FLIGHT.pop(me, None)


def deadline_watch() -> None:
    """Throw ``RequestTimedOut`` into every request past its deadline (a greenlet, forever)."""
    import gevent

    hub = gevent.get_hub()
    while True:
        gevent.sleep(_WATCH_INTERVAL)
        now = time.monotonic()
        for glet, entry in list(_IN_FLIGHT.items()):
            deadline, token, timeout = entry[:3]
            if now > deadline:
                _IN_FLIGHT[glet] = (math.inf, *entry[1:])  # throw once
                hub.loop.run_callback(_expire, glet, token, timeout)


def in_flight(since: float) -> int:
    """How many requests bounded by ``within_timeout`` are still waiting for an answer now,
    of those that started at or after ``since`` (epoch seconds; 0 for all of them). An overdue
    one counts whenever it started: its ``RequestTimedOut`` is on its way."""
    return started_since(list(_IN_FLIGHT.values()), since, wall=time.time(), mono=time.monotonic())


def started_since(entries: Iterable[Entry], since: float, *, wall: float, mono: float) -> int:
    """How many of ``entries`` (``Entry``: the deadline and the send on the monotonic clock)
    started at or after ``since`` (epoch seconds), or are overdue (deadline inf), when the
    wall clock reads ``wall`` and the monotonic one ``mono``. Pure."""
    count = 0
    for entry in entries:
        if math.isinf(entry[0]) or wall - (mono - entry[3]) >= since:
            count += 1
    return count


def waiting() -> list[Unanswered]:
    """The requests bounded by ``within_timeout`` still waiting for an answer now, with their
    waits so far (``unanswered``)."""
    return unanswered(list(_IN_FLIGHT.values()), wall=time.time(), mono=time.monotonic())


def unanswered(entries: Iterable[Entry], *, wall: float, mono: float) -> list[Unanswered]:
    """``entries`` as ``Unanswered`` requests when the wall clock reads ``wall`` and the
    monotonic one ``mono``: the wait from the send, and in the open model (an intended start)
    from that start too, never negative. Pure."""
    out = []
    for _deadline, _token, _timeout, sent, method, name, intended, window in entries:
        sent_wall = wall - (mono - sent)
        service = max(0.0, mono - sent) * 1000
        if intended is None:
            out.append(Unanswered(method, name, service, None, sent_wall, window))
        else:
            latency = max(service, (wall - intended) * 1000)
            out.append(Unanswered(method, name, latency, service, intended, window))
    return out


def _expire(glet: Any, token: int, timeout: float) -> None:
    entry = _IN_FLIGHT.get(glet)
    if entry is not None and entry[1] == token and not glet.dead:  # still in that request
        glet.throw(RequestTimedOut(f"no complete response within {timeout:g} s"))
