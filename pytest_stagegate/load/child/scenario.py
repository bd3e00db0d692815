"""The scenario Locust runs: a declarative user built from ``plan.requests``, or a
locustfile's users with the target's headers, timeout and TLS setting; and the Environment
that holds them (docs/load-engine.md, The scenario)."""

# Locust's events are untyped; every call to them would need its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

import gevent
import locust
from locust import HttpUser, between, constant
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.shape import LoadTestShape
from locust.user import User

from ..plan import LoadPlan, PlannedRequest
from .arrivals import Schedule, Slots, Windows
from .body import drain
from .deadline import RequestTimedOut, within_timeout
from .failure import LoadFailure, last_line
from .locust_setup import StagesShape
from .recorder import SERVICE_KEY, WINDOW_KEY

__all__ = [
    "adapt_user_class",
    "arrivals_of",
    "build_environment",
    "declarative_user",
    "load_shape",
    "locustfile_users",
]

log = logging.getLogger("pytest_stagegate.load")


def _task(
    req: PlannedRequest, plan: LoadPlan, *, http: bool, open_model: bool = False
) -> Callable[[Any], None]:
    """The request as a task: bounded by the target's timeout, its body drained. In the open
    model the user's ``stagegate_slot`` is the iteration's slot: the request's time runs from
    the slot's due time (Locust's ``response_time``, so its report shows what users saw), and
    its service time from the actual send goes in the request's context (``SERVICE_KEY``)."""
    method = req.method.upper()
    path, name = req.path, req.name
    expect = frozenset(req.expect_status)
    cap = plan.max_body
    # stream: the body is read here, block by block, never held (drain); a body over max_body
    # is a failed request, and the response time still runs to the body's last byte
    kwargs: dict[str, Any] = {"name": name, "catch_response": True, "stream": True}
    headers = {**plan.headers, **req.headers}
    if headers:  # none: spare the client a merge per request
        kwargs["headers"] = headers
    if req.json is not None:
        kwargs["json"] = req.json
    if http:  # requests has no session-wide timeout or verify; FastHttpUser takes them per class
        kwargs["timeout"] = plan.timeout
        kwargs["verify"] = plan.verify_tls
    wanted = "/".join(str(s) for s in sorted(expect))
    read_body = _read_requests_body if http else _read_fast_body

    def respond(resp: Any) -> None:
        code = resp.status_code
        if not code:  # no response at all; keep the connection error Locust recorded
            return
        headers_at = time.perf_counter()
        declared = None if method == "HEAD" else _declared(resp)
        broken: Exception | None = None
        try:
            length, problem = read_body(resp, cap, declared)
        except RequestTimedOut:
            raise  # within_timeout records it, at the full timeout
        except Exception as exc:  # reset, malformed: what Locust records reading a body
            length, problem, broken = 0, "", exc
        meta = resp.request_meta
        meta["response_time"] += (time.perf_counter() - headers_at) * 1000
        meta["response_length"] = length
        if broken is not None:
            resp.failure(broken)
        elif problem:
            resp.failure(problem)
        elif not expect:
            return  # Locust's rule: a status >= 400 is a failure
        elif code in expect:
            resp.success()
        else:
            resp.failure(f"HTTP {code}, expected {wanted}")

    if not open_model:

        def task(user: Any) -> None:
            with user.client.request(method, path, **kwargs) as resp:
                respond(resp)

    else:
        timeout_ms = plan.timeout * 1000
        fire_timeout = _timeout_event(method, name, timeout_ms)

        def task(user: Any) -> None:
            slot = user.stagegate_slot
            due = slot.due
            sent = time.time()
            try:
                context = {WINDOW_KEY: slot.window}
                with user.client.request(method, path, context=context, **kwargs) as resp:
                    respond(resp)
                    meta = resp.request_meta
                    service = meta["response_time"]
                    meta["context"][SERVICE_KEY] = service
                    meta["response_time"] = service + max(0.0, meta["start_time"] - due) * 1000
            except RequestTimedOut as exc:  # at the full timeout, as within_timeout records it
                fire_timeout(user, slot.window, max(0.0, sent - due) * 1000, sent, exc)

    bounded = within_timeout(task, method, name, plan.timeout)
    bounded.__name__ = name
    bounded.__qualname__ = name
    return bounded


def _timeout_event(
    method: str, name: str, timeout_ms: float
) -> Callable[[Any, Any, float, float, Exception], None]:
    def fire(user: Any, window: Any, waited_ms: float, sent: float, exc: Exception) -> None:
        user.environment.events.request.fire(
            request_type=method,
            name=name,
            response_time=timeout_ms + waited_ms,
            response_length=0,
            response=None,
            context={WINDOW_KEY: window, SERVICE_KEY: timeout_ms},
            exception=exc,
            start_time=sent,
        )

    return fire


def _iteration(tasks: list[Callable[[Any], None]], slots: Slots) -> Any:
    """The open model's one task: take this process's next slot, wait for its due time, drop
    it if it is more than ``slots.lag`` seconds late (every user was busy), else run one
    request picked by weight."""
    choice = random.choice
    now = time.time
    sleep = gevent.sleep

    def iteration(user: Any) -> None:
        while True:
            slot = slots.pull()
            if slot is None:
                # before the load start (the window message), or nothing left to start
                sleep(0.05 if not slots.began else 0.5)
                return
            wait = slot.due - now()
            if wait > 0:
                sleep(wait)
            if slots.closed:
                return  # the load stopped while waiting: after its end, not counted
            if now() - slot.due > slots.lag:
                slots.drop(slot)
                continue
            slots.started(slot)
            user.stagegate_slot = slot
            choice(tasks)(user)
            return

    iteration.__name__ = "stagegate_iteration"
    return iteration


def arrivals_of(env: Environment) -> Slots | None:
    """The open model's slots of this process (the declarative user's), or None."""
    for cls in env.user_classes:
        slots = getattr(cls, "stagegate_slots", None)
        if isinstance(slots, Slots):
            return slots
    return None


def _declared(resp: Any) -> int | None:
    try:
        return int((resp.headers or {}).get("content-length", ""))
    except (TypeError, ValueError):
        return None


def _read_fast_body(resp: Any, cap: int, declared: int | None) -> tuple[int, str]:
    """geventhttpclient: raw (undecoded) blocks; an unfinished body closes the connection."""
    try:
        return drain(resp.read, cap, declared)
    finally:
        resp.release()  # back to the pool when complete, else closed


def _read_requests_body(resp: Any, cap: int, declared: int | None) -> tuple[int, str]:
    """requests: raw (undecoded) blocks from urllib3; an unfinished body closes the connection."""
    raw = resp.raw
    length, problem = drain(lambda n: raw.read(n, decode_content=False), cap, declared)
    if problem:
        raw.close()
    raw.release_conn()
    return length, problem


def declarative_user(plan: LoadPlan) -> type[User]:
    if not plan.requests:
        raise LoadFailure("The load plan has neither requests nor a locustfile: nothing to run.")
    http = plan.user_class == "http"
    base: type[User] = HttpUser if http else FastHttpUser
    attrs: dict[str, Any] = {"host": plan.host, "__module__": __name__}
    if plan.open_model:
        # the users are the most concurrent iterations; the schedule starts them
        slots = Slots(Schedule.of(plan), Windows.of(plan), plan.arrival_lag)
        weighted = [
            _task(r, plan, http=http, open_model=True)
            for r in plan.requests
            for _ in range(max(1, int(r.weight)))
        ]
        attrs.update(
            wait_time=constant(0),
            tasks=[_iteration(weighted, slots)],
            stagegate_slots=slots,
        )
    else:
        attrs.update(
            wait_time=between(*plan.wait),
            tasks={_task(r, plan, http=http): max(1, int(r.weight)) for r in plan.requests},
        )
    if not http:
        attrs.update(
            network_timeout=plan.timeout,
            connection_timeout=plan.timeout,
            insecure=not plan.verify_tls,
        )
    return type("StagegateUser", (base,), attrs)


def _overrides(cls: type, attr: str, base: type) -> bool:
    """Whether ``cls`` sets ``attr`` itself somewhere below ``base``."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if attr in vars(klass):
            return True
    return False


def adapt_user_class(cls: type[User], plan: LoadPlan) -> type[User]:
    """``cls`` with the target's headers (and timeout, TLS) where it does not set its own."""
    attrs: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if issubclass(cls, FastHttpUser):
        if plan.headers and getattr(cls, "default_headers", None) is None:
            attrs["default_headers"] = dict(plan.headers)
        for attr in ("network_timeout", "connection_timeout"):
            if not _overrides(cls, attr, FastHttpUser):
                attrs[attr] = plan.timeout
        if not _overrides(cls, "insecure", FastHttpUser):
            attrs["insecure"] = not plan.verify_tls
    elif issubclass(cls, HttpUser) and plan.headers:
        headers = dict(plan.headers)

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            cls.__init__(self, *args, **kwargs)
            self.client.headers.update(headers)

        attrs["__init__"] = __init__
    if len(attrs) == 2:
        return cls
    return type(cls.__name__, (cls,), attrs)


def locustfile_users(plan: LoadPlan) -> tuple[list[type[User]], LoadTestShape | None]:
    """The locustfile's User classes, adapted to the target, and its load shape (the first, as
    under the ``locust`` command), or None."""
    from locust.util.load_locustfile import load_locustfile

    path = plan.locustfile or ""
    if not os.path.isfile(path):
        raise LoadFailure(f"The locustfile {path} does not exist.")
    try:
        user_classes, shapes = load_locustfile(os.path.abspath(path))
    except BaseException as e:  # SystemExit too: a locustfile may call sys.exit()
        raise LoadFailure(f"Could not import the locustfile {path}: {last_line(e)}") from None
    if not user_classes:
        raise LoadFailure(
            f"The locustfile {path} defines no User class: it needs a subclass of "
            "locust.HttpUser, locust.FastHttpUser or locust.User with tasks (not abstract)."
        )
    shape = shapes[0] if shapes else None
    if len(shapes) > 1:
        log.warning(
            "The locustfile defines %d load shapes; the gate uses the first, %s, as Locust does.",
            len(shapes),
            type(shape).__name__,
        )
    return [adapt_user_class(cls, plan) for cls in user_classes.values()], shape


def load_shape(plan: LoadPlan, locustfile_shape: LoadTestShape | None) -> LoadTestShape | None:
    """What sets the users over time: the gate's closed-model stages (``gate.load.stages`` with
    ``users``), else the locustfile's load shape, else nothing (``plan.users`` throughout, or
    the open model's arrivals)."""
    if plan.stages and not plan.open_model:
        if locustfile_shape is not None:
            log.warning(
                "The locustfile's load shape %s is not used: gate.load.stages set the users.",
                type(locustfile_shape).__name__,
            )
        return StagesShape(plan.stages)
    if locustfile_shape is not None and plan.open_model:
        log.warning(
            "The locustfile's load shape %s is not used: the open model (gate.load.rate) "
            "starts the iterations.",
            type(locustfile_shape).__name__,
        )
        return None
    return locustfile_shape


def build_environment(plan: LoadPlan) -> Environment:
    shape: LoadTestShape | None = None
    if plan.locustfile:
        users, shape = locustfile_users(plan)
    else:
        users = [declarative_user(plan)]
    env = Environment(
        user_classes=users,
        shape_class=load_shape(plan, shape),
        host=plan.host,
        events=locust.events,  # the locustfile's ``from locust import events`` listeners
        locustfile=os.path.basename(plan.locustfile) if plan.locustfile else "stagegate",
        stop_timeout=0.0,
    )
    env.stagegate_target = {  # type: ignore[attr-defined]
        "name": plan.target_name,
        "base_url": plan.host,
        "headers": dict(plan.headers),
        "vars": dict(plan.vars),
    }
    return env
