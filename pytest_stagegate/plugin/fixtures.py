"""The fixtures: ``target``, ``base_url``, ``target_vars``, ``http`` and ``ahttp``.

Two sets. The module's own, which read the run from ``pytestconfig``: what pytest finds when
the plugin is not active (they fail the test with the reason). And, for an active run,
``for_run(config)``: the same fixtures (but ``base_url``) bound to that run's config, taking no
argument, registered over the first ones. A fixture's arguments are resolved again for every
test that uses it, cached or not, down to ``request``, for which pytest builds a new FixtureDef
each time: ``http(pytestconfig)`` cost a trivial smoke test ~10% more than a bare client did
(``benchmarks/bench_smoke.py``).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
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


PLUGIN_NAME = "stagegate-run-fixtures"


def for_run(config: pytest.Config) -> types.ModuleType:
    """The fixtures of the active run of ``config``, as a plugin module to register: ``target``,
    ``target_vars``, ``http`` and ``ahttp`` with no argument (``base_url`` stays the module's,
    so that pytest-base-url's, when installed, still wins as documented; it takes ``target``,
    which is cheap now)."""

    def run_target() -> Target:
        return _state(config).target

    def run_target_vars() -> Mapping[str, Any]:
        return _state(config).target.vars

    def run_http() -> Iterator[httpx.Client]:
        from ..target.client import make_client

        state = _state(config)
        with make_client(state.target, state.request_log) as client:
            yield client

    def run_ahttp() -> httpx.AsyncClient:
        from ..target.client import make_async_client

        state = _state(config)
        return make_async_client(state.target, state.request_log)

    module = types.ModuleType(f"{__name__}.run")
    module.__file__ = __file__  # where `pytest --fixtures` says they come from
    made: list[tuple[str, Callable[..., Any], Callable[..., Any], str]] = [
        ("target", run_target, target, "session"),
        ("target_vars", run_target_vars, target_vars, "session"),
        ("http", run_http, http, "session"),
        ("ahttp", run_ahttp, ahttp, "function"),
    ]
    for name, func, public, scope in made:
        func.__doc__ = public.__doc__
        setattr(module, name, pytest.fixture(scope=scope, name=name)(func))  # type: ignore[call-overload]
    return module
