"""What every test may use: a stagegate.yaml builder, real HTTP servers, the ``slow`` marker.

- ``stagegate_yaml(url, **overrides)``: the text of a stagegate.yaml for one target on ``url``
  with a small gate (2 users, 2 s, ``GET /``, a p95 and an error-rate budget); ``target=``,
  ``gate=`` and ``targets=`` are merged into it (a value of None removes a key).
- ``write_stagegate(pytester, url, **overrides)``: the same, written into a pytester directory.
- ``serve(routes)``: starts an ``HTTPTestServer`` on 127.0.0.1 for this test, stopped after it.
- ``server``: a small shop: ``/``, ``/healthz``, ``/api/products``, ``/boom`` (500).
- Tests under tests/e2e/ (pytester runs of pytest, real Locust runs) are marked ``slow``:
  ``pytest -m "not slow"`` runs the fast in-process tests alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import HTTPTestServer, Route

E2E = Path(__file__).parent / "e2e"


def shop_routes() -> dict[str, Route]:
    """Fresh routes (a Route counts its requests) for the ``server`` fixture's small shop."""
    return {
        "/": Route(),
        "/healthz": Route(),
        "/api/products": Route(body=b"[1, 2, 3]", content_type="application/json"),
        "/boom": Route(status=500),
    }


DEFAULT_GATE: Mapping[str, Any] = {
    "min_samples": 5,
    "load": {
        "users": 2,
        "spawn_rate": 2,
        "duration": "2s",
        "wait": "10ms",
        "requests": ["GET /"],
        "abort": {"grace": "5s"},
    },
    "budgets": {"total": {"error_rate": "1%", "p95": "500ms"}},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def stagegate_yaml(
    url: str,
    *,
    name: str = "local",
    target: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    targets: Mapping[str, Any] | None = None,
) -> str:
    """A stagegate.yaml: target ``name`` on ``url``, the small default gate, overrides merged."""
    doc: dict[str, Any] = {
        "targets": {name: _merge({"base_url": url}, target or {})},
        "gate": _merge(copy.deepcopy(dict(DEFAULT_GATE)), gate or {}),
    }
    _merge(doc["targets"], targets or {})
    return yaml.safe_dump(doc, sort_keys=False)


def write_stagegate(pytester: pytest.Pytester, url: str, **overrides: Any) -> Path:
    """``stagegate_yaml(url, **overrides)`` written as stagegate.yaml in the pytester dir."""
    return pytester.makefile(".yaml", stagegate=stagegate_yaml(url, **overrides))


@pytest.fixture
def serve() -> Iterator[Callable[[Mapping[str, Route]], HTTPTestServer]]:
    """``serve(routes)`` -> a started server on 127.0.0.1; every one is stopped after the test."""
    started: list[HTTPTestServer] = []

    def start(routes: Mapping[str, Route]) -> HTTPTestServer:
        server = HTTPTestServer(dict(routes))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve: Callable[[Mapping[str, Route]], HTTPTestServer]) -> HTTPTestServer:
    """A small shop on 127.0.0.1: ``/``, ``/healthz``, ``/api/products`` (JSON), ``/boom`` (500)."""
    return serve(shop_routes())
