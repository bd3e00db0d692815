"""The fixtures: ``target``, ``base_url``, ``target_vars``, ``http`` and ``ahttp``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .state import RUN_STATE, RunState

# httpx and the rest load only when a fixture is used: the plugin is imported by every pytest
# run in the environment, most of which never use it.
if TYPE_CHECKING:
    import httpx

    from ..config import Target


def _state(config: pytest.Config) -> RunState:
    state = config.stash.get(RUN_STATE, None)
    if state is None:
        from .options import not_active_message

        pytest.fail(not_active_message(config), pytrace=False)
    return state


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The selected target: name, base_url, headers, vars, protected... (secrets redacted in
    its repr)."""
    return _state(pytestconfig).target


@pytest.fixture(scope="session")
def base_url(target: Target) -> str:
    """The target's base URL. (If pytest-base-url is installed, its fixture of the same name
    is used instead, and pytest-stagegate's ``target.base_url`` is the one to read.)"""
    return target.base_url


@pytest.fixture(scope="session")
def target_vars(target: Target) -> Mapping[str, Any]:
    """The target's free-form ``vars`` from stagegate.yaml."""
    return target.vars


@pytest.fixture(scope="session")
def http(pytestconfig: pytest.Config) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` for the target: base URL, headers, timeout; retries failed
    connections (never a response); closed at the end of the session."""
    from ..target.client import make_client

    state = _state(pytestconfig)
    with make_client(state.target, state.request_log) as client:
        yield client


@pytest.fixture
def ahttp(pytestconfig: pytest.Config) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for the target, one per test. It keeps no idle connection,
    so it is safe with any async test runner (anyio, pytest-asyncio)."""
    from ..target.client import make_async_client

    state = _state(pytestconfig)
    return make_async_client(state.target, state.request_log)
