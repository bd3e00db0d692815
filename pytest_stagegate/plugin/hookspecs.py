"""Hooks of pytest-stagegate, for teams to extend it from a conftest.py or a plugin.

Implement them like any pytest hook (the name is the contract; ``@pytest.hookimpl`` is optional)::

    # conftest.py
    import dataclasses

    def pytest_stagegate_configure_target(config, target):
        if target.name == "local":
            url = start_my_app()                      # e.g. a subprocess on a free port
            return dataclasses.replace(target, base_url=url)

    def pytest_stagegate_prepare(config, target, client):
        if not target.protected:                      # never write to production
            client.post("/api/test-data/reset")       # seed data once per session

    def pytest_stagegate_verdict(config, verdict):
        if verdict.state == "fail":
            notify_chat(verdict.reasons)

All of them run once per session in the controlling pytest process, also under pytest-xdist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from ..config import Target
    from ..load.plan import LoadPlan
    from ..verdict import GateRecord, Verdict


@pytest.hookspec(firstresult=True)
def pytest_stagegate_configure_target(config: pytest.Config, target: Target) -> Target | None:
    """Adjust the selected target before anything uses it.

    Return a new :class:`~pytest_stagegate.Target` (``dataclasses.replace(target, ...)``) to
    change it, e.g. to start a local app and point ``base_url`` at it; return ``None`` to keep
    it. The first implementation that returns a target wins. Called once, at configure time,
    before the readiness wait.
    """


@pytest.hookspec
def pytest_stagegate_prepare(config: pytest.Config, target: Target, client: httpx.Client) -> None:
    """Prepare the target once per session, after it is ready and before the first test.

    ``client`` is an ``httpx.Client`` for the target (base URL, headers, timeout). Use it to
    seed test data, and check ``target.protected`` first: the plugin keeps destructive tests
    away from a protected target, but what a hook sends is the hook's to decide. Raising an
    exception stops the run with verdict ``error``.
    """


@pytest.hookspec(firstresult=True)
def pytest_stagegate_load_plan(config: pytest.Config, target: Target, plan: LoadPlan) -> Any:
    """Adjust the load plan just before the gate starts Locust.

    Return a new plan (``dataclasses.replace(plan, users=50)``) or ``None`` to keep it.
    """


@pytest.hookspec
def pytest_stagegate_gate_result(config: pytest.Config, target: Target, gate: GateRecord) -> None:
    """Receive the gate's result (load profile, measurements, budget checks) once it is known."""


@pytest.hookspec
def pytest_stagegate_verdict(config: pytest.Config, verdict: Verdict) -> None:
    """Receive the verdict before it is written.

    ``verdict.add_check(check)`` adds a check of your own (a failing one fails the verdict);
    ``verdict.add_reason(text)`` adds a sentence. Read ``verdict.state``, ``verdict.reasons``
    and ``verdict.to_dict()`` to send it elsewhere.
    """
