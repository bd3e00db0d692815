"""``plugin.hookspecs``: the hooks teams implement are part of the public contract (a rename
breaks their conftest.py), so their names, arguments and result rules are pinned here."""

from __future__ import annotations

import inspect

import pytest

from pytest_stagegate.plugin import hookspecs

CONTRACT = {
    # name: (arguments, firstresult)
    "pytest_stagegate_configure_target": (["config", "target"], True),
    "pytest_stagegate_prepare": (["config", "target", "client"], False),
    "pytest_stagegate_load_plan": (["config", "target", "plan"], True),
    "pytest_stagegate_gate_result": (["config", "target", "gate"], False),
    "pytest_stagegate_verdict": (["config", "verdict"], False),
}


def specs() -> dict[str, object]:
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if name.startswith("pytest_stagegate_") and callable(value)
    }


def test_the_hooks_are_the_contracts() -> None:
    found = specs()
    assert sorted(found) == sorted(CONTRACT)
    for name, (arguments, firstresult) in CONTRACT.items():
        function = found[name]
        assert list(inspect.signature(function).parameters) == arguments, name  # type: ignore[arg-type]
        options = getattr(function, "pytest_spec", {})
        assert bool(options.get("firstresult")) is firstresult, name
        assert (function.__doc__ or "").strip(), f"{name} has no docstring"


def test_pytest_registers_them(pytestconfig: pytest.Config) -> None:
    # the plugin adds its hookspecs at start-up, active or not: a conftest.py may implement them
    for name in CONTRACT:
        assert hasattr(pytestconfig.hook, name), name
