"""Waiting for a target to be ready and checking that it runs the expected build.

Both are bounded in time: every request, from connect to the last body byte, has a deadline no
later than the end of the wait (``target.client``: the deadline covers the whole request, not
each read), so a target that accepts connections and never answers, or sends its headers a byte
at a time, cannot stretch it. A body larger than the target's ``max_body`` is an error too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from .. import defaults
from ..config import ReadyCheck, Target, VersionCheck
from ..errors import TargetNotReady
from ..units import format_duration
from .client import make_client

MAX_INTERVAL = defaults.READY_MAX_INTERVAL


def wait_ready(
    target: Target,
    check: ReadyCheck,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll ``check.path`` until it answers 2xx, waiting ``check.interval`` between attempts,
    doubled each time up to ``MAX_INTERVAL``. Returns the seconds waited on ``clock``.

    ``clock`` and ``sleep`` are the time the wait runs on (tests pass a fake one).

    Raises TargetNotReady naming the URL, the last status or error and the time waited.
    """
    url = target.base_url + check.path
    start = clock()
    deadline = start + check.timeout
    interval = check.interval
    attempts = 0
    last = "no attempt was made"
    # No connection retries inside an attempt: this loop is the retry, with its own backoff.
    with make_client(target, retries=0) as client:
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                break
            attempts += 1
            try:
                response = client.get(check.path, timeout=min(target.timeout, remaining))
            except httpx.HTTPError as exc:
                last = _describe_error(exc)
            else:
                if response.is_success:
                    return clock() - start
                last = f"HTTP {response.status_code} {response.reason_phrase}"
            remaining = deadline - clock()
            if remaining <= 0:
                break
            sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_INTERVAL)
    waited = clock() - start
    raise TargetNotReady(
        target.redact(
            f"Target {target.name!r} did not become ready: GET {url} did not answer 2xx within "
            f"{format_duration(check.timeout)} ({attempts} attempts over {waited:.1f} s; "
            f"last: {last}). Check that the deployment finished, or raise "
            f"targets.{target.name}.ready.timeout."
        )
    )


def check_version(target: Target, check: VersionCheck) -> str:
    """Fetch the running version; raise TargetNotReady unless it equals ``check.expect``."""
    url = target.base_url + check.path
    try:
        with make_client(target) as client:
            response = client.get(check.path)
    except httpx.HTTPError as exc:
        raise TargetNotReady(
            target.redact(
                f"Could not read the version of target {target.name!r}: GET {url}: "
                f"{_describe_error(exc)}."
            )
        ) from None
    if not response.is_success:
        raise TargetNotReady(
            target.redact(
                f"Could not read the version of target {target.name!r}: GET {url} answered "
                f"HTTP {response.status_code} {response.reason_phrase}."
            )
        )
    running = _extract(response.text, check.field)
    if running is None:
        raise TargetNotReady(
            target.redact(
                f"Could not read the version of target {target.name!r}: GET {url} has no JSON "
                f"field {check.field!r}."
            )
        )
    if running != check.expect.strip():
        where = f"field {check.field!r} of " if check.field else ""
        raise TargetNotReady(
            target.redact(
                f"Target {target.name!r} runs the wrong build: {where}GET {url} says "
                f"{running!r}, but {check.expect.strip()!r} was expected. Wait for the deployment "
                f"to finish, or check targets.{target.name}.version.expect."
            )
        )
    return running


def _extract(text: str, field: str | None) -> str | None:
    if field is None:
        return text.strip()
    try:
        value: Any = json.loads(text)
    except ValueError:
        return None
    for part in field.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return str(value).strip()


def _describe_error(exc: httpx.HTTPError) -> str:
    detail = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {detail}" if detail != exc.__class__.__name__ else detail
