"""``load.child.deadline``: counting the requests still in flight when the load stops (the
pure part; the watchdog itself runs in the e2e hang tests of test_failures_never_pass.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest

from pytest_stagegate.load.child.deadline import (
    Entry,
    Unanswered,
    in_flight,
    started_since,
    unanswered,
    waiting,
)

# the clocks "now": wall (epoch seconds) and monotonic
WALL, MONO = 10_000.0, 500.0


def entry(
    started_ago: float,
    timeout: float = 1.0,
    *,
    name: str = "GET /a",
    intended: float | None = None,
    window: Any = None,
) -> Entry:
    """A request that started ``started_ago`` seconds before now (``deadline.Entry``)."""
    sent = MONO - started_ago
    return (sent + timeout, 0, timeout, sent, "GET", name, intended, window)


def test_counts_the_requests_that_started_at_or_after_since() -> None:
    entries = [entry(0.2), entry(2.0, timeout=30.0), entry(5.0, timeout=30.0)]
    assert started_since(entries, WALL - 1.0, wall=WALL, mono=MONO) == 1
    assert started_since(entries, WALL - 2.0, wall=WALL, mono=MONO) == 2  # at: counted
    assert started_since(entries, WALL - 2.5, wall=WALL, mono=MONO) == 2
    assert started_since(entries, WALL - 5.0, wall=WALL, mono=MONO) == 3
    assert started_since(entries, WALL + 1.0, wall=WALL, mono=MONO) == 0  # none started later


def test_zero_counts_every_request_in_flight() -> None:
    entries = [entry(0.0), entry(100.0, timeout=200.0)]
    assert started_since(entries, 0.0, wall=WALL, mono=MONO) == 2


def test_an_overdue_request_counts_whenever_it_started() -> None:
    # its deadline is inf once the watch threw RequestTimedOut: its start is gone, and it is
    # unanswered (a hang that began in the warm-up is a hang too)
    overdue = (math.inf, *entry(50.0)[1:])
    assert started_since([overdue], WALL + 1.0, wall=WALL, mono=MONO) == 1
    assert started_since([overdue, entry(3.0, timeout=10.0)], WALL - 1, wall=WALL, mono=MONO) == 1


def test_nothing_in_flight() -> None:
    assert started_since([], 0.0, wall=WALL, mono=MONO) == 0
    assert in_flight(0.0) == 0  # no request was ever bounded in this process
    assert unanswered([], wall=WALL, mono=MONO) == [] and waiting() == []


def test_a_closed_model_request_waits_from_its_send() -> None:
    (item,) = unanswered([entry(1.5, timeout=10.0, name="GET /slow")], wall=WALL, mono=MONO)
    assert item == Unanswered("GET", "GET /slow", pytest.approx(1500.0), None, WALL - 1.5, None)


def test_an_open_model_request_waits_from_its_due_time_and_is_served_from_its_send() -> None:
    # due 2 s ago, sent 0.5 s ago (its user was late): latency 2 s, service time 0.5 s; the
    # slot's window travels with it and its due time dates it
    window = object()
    late = entry(0.5, timeout=10.0, intended=WALL - 2.0, window=window)
    (item,) = unanswered([late], wall=WALL, mono=MONO)
    assert item.latency_ms == pytest.approx(2000.0)
    assert item.service_ms == pytest.approx(500.0)
    assert item.start == WALL - 2.0 and item.window is window
    # never shorter than its service time (a step's intended start after its send: clock jitter)
    (early,) = unanswered([entry(0.5, intended=WALL + 1.0)], wall=WALL, mono=MONO)
    assert early.latency_ms == pytest.approx(500.0) == early.service_ms


def test_an_overdue_request_keeps_its_wait() -> None:
    # the watch marked it (deadline inf): its send is still known, its wait measured from it
    overdue = (math.inf, *entry(3.0, timeout=2.0)[1:])
    (item,) = unanswered([overdue], wall=WALL, mono=MONO)
    assert item.latency_ms == pytest.approx(3000.0)


def test_the_module_imports_without_gevent() -> None:
    # what lets the pytest process test it: gevent is imported where the watchdog runs
    code = (
        "import sys; import pytest_stagegate.load.child.deadline\n"
        "print('gevent' in sys.modules, 'locust' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
