"""The scenario Locust runs: a declarative user built from ``plan.requests`` and
``plan.flows``, or a locustfile's users with the target's headers, timeout and TLS setting; and
the Environment that holds them (docs/load-engine.md, The scenario; Scenarios in the child).

A plain request (no template, query, expectation beyond the status, or capture) keeps the
fast path (``_task``). Anything else runs as a step (``_step``): rendered per request, its body
held when an expectation or capture reads it, checked by ``load.expect``. A declared flow runs
its steps in order in one iteration (``_flow``); a request of ``plan.requests`` that needs a
step is a one-step flow that is not tallied as a flow."""

# Locust's events are untyped; every call to them would need its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

import gevent
import locust
from locust import HttpUser, between, constant
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.shape import LoadTestShape
from locust.user import User

from ...templates import MissingValue, TemplateError, compile_json, compile_template
from ..expect import Checks, compile_checks, needs_checks
from ..plan import LoadPlan, PlannedFlow, PlannedRequest
from .arrivals import Schedule, Slots, Windows
from .body import collect, drain
from .captured import note
from .data import Feeder
from .deadline import RequestTimedOut, within_timeout
from .failure import LoadFailure, last_line
from .lean import LeanRequest, LeanSession, Outcome, Sink, lean_wanted
from .locust_setup import StagesShape
from .recorder import SERVICE_KEY, WINDOW_KEY

__all__ = [
    "adapt_user_class",
    "arrivals_of",
    "build_environment",
    "data_of",
    "declarative_user",
    "iterations_running",
    "load_shape",
    "locustfile_users",
]

log = logging.getLogger("pytest_stagegate.load")


def _task(
    req: PlannedRequest, plan: LoadPlan, *, http: bool, open_model: bool = False, lean: bool = False
) -> Callable[[Any], None]:
    """The request as a task: bounded by the target's timeout, its body drained. In the open
    model the user's ``stagegate_slot`` is the iteration's slot: the request's time runs from
    the slot's due time (Locust's ``response_time``, so its report shows what users saw), and
    its service time from the actual send goes in the request's context (``SERVICE_KEY``)."""
    method = req.method.upper()
    path, name = req.path, req.name
    expect = frozenset(req.expect_status)
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

    def judge(resp: Any, code: int, body: bytes | None, out: Any) -> None:
        if code in expect:
            resp.success()
        else:
            resp.failure(f"HTTP {code}, expected {wanted}")

    if lean:
        return _lean_task(req, plan, open_model, expect, wanted)
    # without expect_status, Locust's rule: a status >= 400 is a failure
    respond = _responder(method, plan.max_body, http, False, judge if expect else None)

    if not open_model:

        def task(user: Any) -> None:
            with user.client.request(method, path, **kwargs) as resp:
                respond(resp, None)

    else:
        timed = _timed_sender(method, name, plan.timeout, respond)

        def task(user: Any) -> None:
            slot = user.stagegate_slot
            timed(user, path, kwargs, slot.due, slot.window, None)

    # the open model: a request still waiting at the stop is measured from its slot's due time
    bounded = within_timeout(
        task, method, name, plan.timeout, _slot_intended if open_model else None
    )
    bounded.__name__ = name
    bounded.__qualname__ = name
    return bounded


def _lean_task(
    req: PlannedRequest, plan: LoadPlan, open_model: bool, expect: frozenset[int], wanted: str
) -> Callable[[Any], None]:
    """``_task`` on the lean path (``lean.LeanRequest``): the same request, status rule and
    times, recorded once without Locust's session."""

    def judge(code: int, headers: Any, body: bytes | None, out: Any) -> str | None:
        return None if code in expect else f"HTTP {code}, expected {wanted}"

    sender = LeanRequest(
        plan,
        req.method.upper(),
        req.name,
        hold=False,
        judge=judge if expect else None,
        path=req.path,
        headers={**plan.headers, **req.headers},
        json_body=req.json,
    )
    send = sender.send

    if not open_model:

        def task(user: Any) -> None:
            send(user, None, None, None, None, None, None)

    else:

        def task(user: Any) -> None:
            slot = user.stagegate_slot
            send(user, None, None, None, slot.due, slot.window, None)

    task.__name__ = req.name
    task.__qualname__ = req.name
    return task


def _slot_intended(user: Any) -> tuple[float | None, Any]:
    """A plain request's intended start and window (the open model): its slot's."""
    slot = user.stagegate_slot
    return slot.due, slot.window


def _step_intended(user: Any) -> tuple[float | None, Any]:
    """A step's intended start and window (the open model), as ``run`` left them."""
    request = user.stagegate_request
    return request[2], request[3]


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


Judge = Callable[[Any, int, "bytes | None", Any], None]


def _responder(
    method: str, cap: int, http: bool, hold: bool, judge: Judge | None
) -> Callable[[Any, Any], None]:
    """``respond(resp, out)`` for a plain request and a step alike: the body read to its end
    (drained, or held whole when ``hold``: a step whose checks read it), at most ``cap`` bytes,
    its time added to the response's; a body that broke or is over the cap is the request's
    failure, else ``judge(resp, status, body, out)`` decides (no judge: Locust's rule)."""
    head = method == "HEAD"
    if hold:
        collect_body = _collect_requests_body if http else _collect_fast_body
    else:
        read_body = _read_requests_body if http else _read_fast_body

    def respond(resp: Any, out: Any) -> None:
        code = resp.status_code
        if not code:  # no response at all; keep the connection error Locust recorded
            return
        headers_at = time.perf_counter()
        declared = None if head else _declared(resp)
        body: bytes | None = None
        broken: Exception | None = None
        try:
            if hold:
                body, problem = collect_body(resp, cap, declared)
                length = len(body)
            else:
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
        elif judge is not None:
            judge(resp, code, body, out)

    return respond


def _timed_sender(
    method: str, name: str, timeout: float, respond: Callable[[Any, Any], None]
) -> Callable[[Any, str, Mapping[str, Any], float, Any, Any], None]:
    """The open model's send: ``send(user, url, kwargs, intended, window, out)``. The request's
    time runs from ``intended`` (its slot's due time, or the previous step's end): Locust's
    ``response_time``, so its report shows what users saw; its service time from the actual
    send goes in the request's context (``SERVICE_KEY``); a timeout is recorded at the full
    timeout plus the wait before the send."""
    timeout_ms = timeout * 1000
    fire_timeout = _timeout_event(method, name, timeout_ms)

    def send(
        user: Any, url: str, kwargs: Mapping[str, Any], intended: float, window: Any, out: Any
    ) -> None:
        sent = time.time()
        try:
            context = {WINDOW_KEY: window}
            with user.client.request(method, url, context=context, **kwargs) as resp:
                respond(resp, out)
                meta = resp.request_meta
                service = meta["response_time"]
                meta["context"][SERVICE_KEY] = service
                meta["response_time"] = service + max(0.0, meta["start_time"] - intended) * 1000
        except RequestTimedOut as exc:  # at the full timeout, as within_timeout records it
            fire_timeout(user, window, max(0.0, sent - intended) * 1000, sent, exc)

    return send


def _iteration(tasks: list[Callable[[Any], None]], slots: Slots) -> Any:
    """The open model's one task: take this process's next slot, wait for its due time, drop
    it if it is more than ``slots.lag`` seconds late (every user was busy), else run one
    iteration picked by weight: a plain request's task, or a flow (a step of ``requests`` is a
    one-step flow)."""
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


# -- steps: templated and checked requests, flows ---------------------------------------------

_EMPTY: Mapping[str, Any] = {}


class _EveryStatus:
    """Every status code: geventhttpclient's ``valid_response_codes`` for a step."""

    def __contains__(self, code: object) -> bool:
        return True


_EVERY_STATUS = _EveryStatus()
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch  # what quote_plus leaves as it is


def _quoted(value: str) -> str:
    """``quote_plus(value)``, the usual value (letters, digits, ``_.~-``) without its cost."""
    return value if _URL_SAFE(value) else quote_plus(value)


_RUNNING = [0]  # iterations with a data row under way in this process (``iterations_running``)


def iterations_running() -> int:
    """How many iterations that took a row of the data file are under way in this process:
    when the unique rows run out, the load ends once they are over (the controller waits for
    them; a worker reports its count). Iterations without a row keep starting meanwhile and are
    not counted: they end with the load, as at its duration."""
    return _RUNNING[0]


def _template(text: str) -> Any:
    """The compiled template of ``text``; text that is no template (the configuration refuses
    those; a plan built by hand may hold one) is sent as written."""
    try:
        return compile_template(text)
    except TemplateError:
        return compile_template(text.replace("{", "{{").replace("}", "}}"))


def _uses_row(req: PlannedRequest) -> bool:
    texts = [req.path, *req.headers.values(), *req.query.values()]
    names = [p for t in texts for p in _template(t).names]
    if req.json is not None:
        names += list(compile_json(req.json).names)
    return any(p.kind == "row" for p in names)


def _is_plain(req: PlannedRequest) -> bool:
    """Whether ``req`` runs on the fast path: nothing rendered, nothing but a status checked."""
    if needs_checks(req) or req.query:
        return False
    texts = [req.path, *req.headers.values()]
    if any(_template(t).constant != t for t in texts):
        return False
    return req.json is None or compile_json(req.json).constant


_Outcome = Outcome  # what a step left for its flow (lean.Outcome)


def _step(
    req: PlannedRequest, plan: LoadPlan, *, http: bool, open_model: bool, lean: bool = False
) -> Callable[[Any, Mapping[str, Any], Mapping[str, Any], float | None], _Outcome]:
    """One templated or checked request: ``run(user, captures, row, intended)`` sends it,
    checks it and returns its ``_Outcome``. ``intended`` (the open model) is when it should
    have started (its slot's due time, or the previous step's end plus the wait): its latency
    runs from then, its service time from the send (as ``_task``'s)."""
    method = req.method.upper()
    name = req.name
    checks: Checks = compile_checks(req)
    needs_body = checks.needs_body
    path_t = _template(req.path)
    header_ts = [(k, _template(v)) for k, v in req.headers.items()]
    # the query, url-encoded as urlencode() does: each key once, each constant value once
    query_ts = [(quote_plus(k) + "=", _template(v)) for k, v in req.query.items()]
    query_parts = [
        (k, None if t.constant is None else quote_plus(t.constant), t) for k, t in query_ts
    ]
    json_t = None if req.json is None else compile_json(req.json)
    variables: Mapping[str, Any] = plan.vars
    base: dict[str, Any] = {"name": name, "catch_response": True, "stream": True}
    if http:
        base["timeout"] = plan.timeout
        base["verify"] = plan.verify_tls
    target_headers = dict(plan.headers)
    if needs_body and not any(
        k.lower() == "accept-encoding" for k in (*plan.headers, *req.headers)
    ):
        # the body is read here, raw: a plain one needs no decoding (collect decodes gzip too)
        target_headers["Accept-Encoding"] = "identity"
    # what every request of this step sends alike, and whether anything is rendered besides
    fixed = dict(base)
    if target_headers:
        fixed["headers"] = target_headers
    if json_t is not None and json_t.constant:
        fixed["json"] = json_t.source
    per_request = bool(header_ts) or (json_t is not None and not json_t.constant)

    def check(code: int, headers: Any, body: bytes | None, out: _Outcome) -> str | None:
        try:
            error, captured, secrets = checks.evaluate(code, headers, body)
        except Exception as exc:  # never a request left unrecorded: the check's own failure
            error, captured, secrets = f"expect: {last_line(exc)}", {}, []
        for value in secrets:  # secrets before any error text quotes them
            note(value)
        if error:
            return error
        out.ok = True
        out.captured = captured
        return None

    def judge(resp: Any, code: int, body: bytes | None, out: _Outcome) -> None:
        error = check(code, resp.headers, body, out)
        if error:
            resp.failure(error)
        else:
            resp.success()

    if lean:
        return _lean_step(
            req,
            plan,
            check,
            needs_body,
            path_t,
            header_ts,
            query_parts,
            json_t,
            target_headers,
            open_model,
        )

    respond = _responder(method, plan.max_body, http, needs_body, judge)
    timed = _timed_sender(method, name, plan.timeout, respond)

    def send(user: Any) -> None:
        out: _Outcome = user.stagegate_outcome
        url, kwargs, intended, window = user.stagegate_request
        if not http:
            # geventhttpclient drops the body of a status it deems invalid (>= 400) before
            # anyone reads it; a step judges the status itself (``Checks``) and may read the
            # body of any answer (an error's JSON), so every status is valid for it
            user.client.client.valid_response_codes = _EVERY_STATUS
        try:
            if not open_model:
                with user.client.request(method, url, **kwargs) as resp:
                    respond(resp, out)
            else:
                timed(user, url, kwargs, intended, window, out)
        finally:
            if not http:
                del user.client.client.valid_response_codes  # the plain tasks' (Locust's)

    bounded = within_timeout(
        send, method, name, plan.timeout, _step_intended if open_model else None
    )

    def run(
        user: Any, captures: Mapping[str, Any], row: Mapping[str, Any], intended: float | None
    ) -> _Outcome:
        out = user.stagegate_outcome = _Outcome()
        path = path_t.render(captures, variables, row)
        if query_parts:
            query = [
                k + (v if v is not None else _quoted(t.render(captures, variables, row)))
                for k, v, t in query_parts
            ]
            path = f"{path}{'&' if '?' in path else '?'}{'&'.join(query)}"
        if per_request:
            kwargs = dict(fixed)
            if header_ts:
                headers = dict(target_headers)
                for key, t in header_ts:
                    headers[key] = t.render(captures, variables, row)
                kwargs["headers"] = headers
            if json_t is not None and not json_t.constant:
                kwargs["json"] = json_t.render(captures, variables, row)
        else:
            kwargs = fixed  # never changed: the client copies what it changes
        slot = getattr(user, "stagegate_slot", None) if open_model else None
        window = slot.window if slot is not None else None
        user.stagegate_request = (path, kwargs, intended, window)
        bounded(user)
        out.end = time.time()
        return out

    return run


Step = Callable[[Any, Mapping[str, Any], Mapping[str, Any], float | None], _Outcome]


def _lean_step(
    req: PlannedRequest,
    plan: LoadPlan,
    check: Callable[[int, Any, bytes | None, _Outcome], str | None],
    needs_body: bool,
    path_t: Any,
    header_ts: list[tuple[str, Any]],
    query_parts: list[tuple[str, str | None, Any]],
    json_t: Any,
    target_headers: dict[str, str],
    open_model: bool,
) -> Step:
    """``_step`` on the lean path: rendered as ``_step``'s ``run`` renders, sent and recorded
    by ``lean.LeanRequest`` (every status reaches ``check``, as a step's on Locust's path)."""
    variables: Mapping[str, Any] = plan.vars
    constant_path = path_t.constant if not query_parts else None
    json_fixed = json_t.source if json_t is not None and json_t.constant else None
    json_rendered = json_t is not None and not json_t.constant
    sender = LeanRequest(
        plan,
        req.method.upper(),
        req.name,
        hold=needs_body,
        judge=check,
        path=req.path if constant_path is None else constant_path,
        headers=target_headers,
        json_body=json_fixed,
    )
    send = sender.send

    def run(
        user: Any, captures: Mapping[str, Any], row: Mapping[str, Any], intended: float | None
    ) -> _Outcome:
        out = _Outcome()
        path: str | None
        if constant_path is not None:
            path = None  # the request's own
        else:
            path = path_t.render(captures, variables, row)
            if query_parts:
                query = [
                    k + (v if v is not None else _quoted(t.render(captures, variables, row)))
                    for k, v, t in query_parts
                ]
                path = f"{path}{'&' if '?' in path else '?'}{'&'.join(query)}"
        headers: dict[str, str] | None = None
        if header_ts:
            headers = dict(target_headers)
            for key, t in header_ts:
                headers[key] = t.render(captures, variables, row)
        body = json_t.render(captures, variables, row) if json_rendered else None
        window = None
        if open_model:
            slot = getattr(user, "stagegate_slot", None)
            window = slot.window if slot is not None else None
        send(user, path, headers, body, intended, window, out)
        out.end = time.time()
        return out

    return run


def _flow(
    name: str | None,
    steps: list[tuple[Step, bool]],
    on_start: list[Step],
    wait: tuple[float, float],
    feeder: Feeder | None,
    slots: Slots | None,
) -> Callable[[Any], None]:
    """One iteration of a flow: a row of the data file (when the flow uses one), ``on_start``
    the first time this user runs the flow (again after it failed), then the steps in order,
    ``wait`` apart. A step whose captures could not be taken (its request failed, or a capture
    found nothing) ends the iteration: the next steps need its values. ``name`` (a declared
    flow) gets the iteration tallied: failed if any step failed, its duration from its start
    (the slot's due time in the open model, the end of ``on_start`` when it ran) to the last
    step's end. ``slots``: the open model's (the slot is the user's ``stagegate_slot``)."""
    key = name if name is not None else id(steps)
    lo, hi = wait
    pause = (lambda: random.uniform(lo, hi)) if hi > 0 else None
    sleep = gevent.sleep
    warned = [False]

    def run_steps(
        user: Any, values: dict[str, Any], row: Mapping[str, Any], intended: float | None
    ) -> tuple[bool, float | None]:
        """Whether every step succeeded, and when ``on_start`` ended if it ran now."""
        began: float | None = None
        if on_start and key not in user.stagegate_started:
            for run in on_start:
                out = run(user, values, row, intended)
                if out.captured is None:
                    return False, None
                values.update(out.captured)
                if intended is not None:
                    intended = out.end
            user.stagegate_started.add(key)
            began = out.end
        ok = True
        for k, (run, captures) in enumerate(steps):
            if k and pause is not None:
                waited = pause()
                sleep(waited)
                if intended is not None:
                    intended += waited
            out = run(user, values, row, intended)
            if out.captured is None:
                ok = False
                if captures:  # the next steps need its values
                    return False, began
            else:
                values.update(out.captured)
            if intended is not None:
                intended = out.end
        return ok, began

    if name is None and not on_start and len(steps) == 1:
        # a request of plan.requests that needs a step: the iteration is that request
        ((only, _),) = steps

        def single(user: Any) -> None:
            row: Mapping[str, Any] = _EMPTY
            if feeder is not None:
                taken = feeder.take()
                if taken is None:  # the unique rows ran out (the controller ends the load)
                    if feeder.ran_out and slots is not None:
                        slots.close(time.time())
                    sleep(0.5 if feeder.ran_out else 0.05)
                    return
                row = taken
                _RUNNING[0] += 1
            try:
                out = only(
                    user,
                    user.stagegate_values,
                    row,
                    user.stagegate_slot.due if slots is not None else None,
                )
                if out.captured:
                    user.stagegate_values.update(out.captured)
            except MissingValue as exc:  # a value no earlier step captured (a hand-built plan)
                if not warned[0]:
                    warned[0] = True
                    log.warning("A request was not sent: %s", exc)
            finally:
                if feeder is not None:
                    _RUNNING[0] -= 1

        return single

    def iteration(user: Any) -> None:
        start = user.stagegate_slot.due if slots is not None else time.time()
        row: Mapping[str, Any] = _EMPTY
        if feeder is not None:
            taken = feeder.take()
            if taken is None:  # the unique rows ran out (the controller ends the load)
                if feeder.ran_out and slots is not None:
                    slots.close(time.time())  # no slot starts any more: none is dropped
                sleep(0.5 if feeder.ran_out else 0.05)
                return
            row = taken
            _RUNNING[0] += 1
        values: dict[str, Any] = user.stagegate_values
        intended: float | None = start if slots is not None else None
        try:
            ok, began = run_steps(user, values, row, intended)
        except MissingValue as exc:  # a value no earlier step captured (a hand-built plan)
            ok, began = False, None
            if not warned[0]:
                warned[0] = True
                log.warning("A step of %s was not sent: %s", name or "a request", exc)
        finally:
            if feeder is not None:
                _RUNNING[0] -= 1
        # (an iteration cut short by the load's stop raises GreenletExit: never tallied)
        if name is not None:
            slot = user.stagegate_slot if slots is not None else None
            user.environment.stagegate_on_flow(
                name,
                (time.time() - (start if began is None else began)) * 1000,
                ok,
                start,
                None if slot is None else slot.window,
            )

    iteration.__name__ = name or "stagegate_step"
    return iteration


def data_of(env: Environment) -> Feeder | None:
    """This process's rows of the data file (the declarative user's), or None."""
    for cls in env.user_classes:
        feeder = getattr(cls, "stagegate_data", None)
        if isinstance(feeder, Feeder):
            return feeder
    return None


def _user_init(user: Any) -> None:
    """Per user: its captured values, the flows whose on_start succeeded."""
    user.stagegate_values = {}
    user.stagegate_started = set()


def arrivals_of(env: Environment) -> Slots | None:
    """The open model's slots of this process (the declarative user's), or None."""
    for cls in env.user_classes:
        slots = getattr(cls, "stagegate_slots", None)
        if isinstance(slots, Slots):
            return slots
    return None


def _declared(resp: Any) -> int | None:
    # "headers is None", not "or {}": geventhttpclient's Headers count their values for bool()
    headers = resp.headers
    if headers is None:
        return None
    try:
        return int(headers.get("content-length", ""))
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


def _encoding(resp: Any) -> str:
    headers = resp.headers
    return "" if headers is None else str(headers.get("content-encoding") or "")


def _collect_fast_body(resp: Any, cap: int, declared: int | None) -> tuple[bytes, str]:
    """geventhttpclient: the whole body held (``collect``), at most ``cap`` bytes."""
    try:
        return collect(resp.read, cap, declared, _encoding(resp))
    finally:
        resp.release()


def _collect_requests_body(resp: Any, cap: int, declared: int | None) -> tuple[bytes, str]:
    """requests: the whole body held (``collect``), at most ``cap`` bytes."""
    raw = resp.raw
    body, problem = collect(
        lambda n: raw.read(n, decode_content=False), cap, declared, _encoding(resp)
    )
    if problem:
        raw.close()
    raw.release_conn()
    return body, problem


class _LeanUser(User):
    """The declarative user on the lean path: a ``lean.LeanSession`` (``stagegate_http``)
    instead of FastHttpUser's session; Locust runs it as any user."""

    abstract = True
    stagegate_timeout: float = 60.0
    stagegate_insecure: bool = False

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.stagegate_http = LeanSession(
            self.host or "", self.stagegate_timeout, self.stagegate_insecure
        )


def declarative_user(plan: LoadPlan) -> type[User]:
    if not plan.requests and not plan.flows:
        raise LoadFailure("The load plan has neither requests nor a locustfile: nothing to run.")
    http = plan.user_class == "http"
    open_model = plan.open_model
    lean = lean_wanted(plan)
    base: type[User] = _LeanUser if lean else HttpUser if http else FastHttpUser
    log.info(
        "The declarative scenario runs on %s.",
        "the lean request path" if lean else f"Locust's {base.__name__}",
    )
    attrs: dict[str, Any] = {"host": plan.host, "__module__": __name__}
    slots = Slots(Schedule.of(plan), Windows.of(plan), plan.arrival_lag) if open_model else None
    feeder = Feeder(plan.data_rows, plan.data_mode) if plan.data_rows else None
    # what one iteration runs, with its weight: a plain request's fast task, a step as a
    # one-step flow, a declared flow
    iterations: list[tuple[Callable[[Any], None], int]] = []
    for r in plan.requests:
        if _is_plain(r):
            task = _task(r, plan, http=http, open_model=open_model, lean=lean)
        else:
            run = _step(r, plan, http=http, open_model=open_model, lean=lean)
            rows = feeder if feeder is not None and _uses_row(r) else None
            task = _flow(None, [(run, bool(r.capture))], [], (0.0, 0.0), rows, slots)
            task.__name__ = r.name
        iterations.append((task, max(1, int(r.weight))))
    for f in plan.flows:
        flow = _declared_flow(f, plan, http, feeder, slots, lean)
        iterations.append((flow, max(1, int(f.weight))))
    if slots is not None:
        # the users are the most concurrent iterations; the schedule starts them
        weighted = [task for task, weight in iterations for _ in range(weight)]
        attrs.update(
            wait_time=constant(0),
            tasks=[_iteration(weighted, slots)],
            stagegate_slots=slots,
        )
    else:
        tasks: dict[Callable[[Any], None], int] = {}
        for task, weight in iterations:
            tasks[task] = tasks.get(task, 0) + weight
        attrs.update(wait_time=between(*plan.wait), tasks=tasks)
    if feeder is not None:
        attrs["stagegate_data"] = feeder
    if plan.flows or any(not _is_plain(r) for r in plan.requests):
        attrs["on_start"] = _user_init
    if lean:
        attrs.update(stagegate_timeout=plan.timeout, stagegate_insecure=not plan.verify_tls)
    elif not http:
        attrs.update(
            network_timeout=plan.timeout,
            connection_timeout=plan.timeout,
            insecure=not plan.verify_tls,
        )
    return type("StagegateUser", (base,), attrs)


def _declared_flow(
    f: PlannedFlow,
    plan: LoadPlan,
    http: bool,
    feeder: Feeder | None,
    slots: Slots | None,
    lean: bool = False,
) -> Callable[[Any], None]:
    open_model = slots is not None
    steps = [
        (_step(r, plan, http=http, open_model=open_model, lean=lean), bool(r.capture))
        for r in f.steps
    ]
    on_start = [_step(r, plan, http=http, open_model=open_model, lean=lean) for r in f.on_start]
    uses_row = any(_uses_row(r) for r in (*f.steps, *f.on_start))
    return _flow(f.name, steps, on_start, f.wait, feeder if uses_row else None, slots)


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
    # the lean path's requests go to the recorder once a process binds it (``lean.bind``)
    env.stagegate_sink = Sink(env.events.request)  # type: ignore[attr-defined]
    # the recorder's (``Recorder.on_flow``) in a process that records; a master runs no users
    env.stagegate_on_flow = lambda *args: None  # type: ignore[attr-defined]
    env.stagegate_target = {  # type: ignore[attr-defined]
        "name": plan.target_name,
        "base_url": plan.host,
        "headers": dict(plan.headers),
        "vars": dict(plan.vars),
    }
    return env
