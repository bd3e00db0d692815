"""The public API is what __all__ says, every name resolves, and nothing else is promised."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_stagegate

EXPECTED = {
    "Budget",
    "Check",
    "Config",
    "ConfigError",
    "EndpointStats",
    "GateRecord",
    "GateSettings",
    "LoadError",
    "LoadPlan",
    "PlannedRequest",
    "ReadyCheck",
    "StagegateError",
    "Target",
    "TargetNotReady",
    "TestRecord",
    "Verdict",
    "VerdictError",
    "VersionCheck",
    "__version__",
    "load_config",
}


def test_all_is_pinned() -> None:
    assert set(pytest_stagegate.__all__) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(pytest_stagegate, name) is not None


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        _ = pytest_stagegate.nothing_here  # type: ignore[attr-defined]


def test_errors_form_one_tree() -> None:
    base = pytest_stagegate.StagegateError
    for name in ("ConfigError", "TargetNotReady", "LoadError", "VerdictError"):
        assert issubclass(getattr(pytest_stagegate, name), base)


def test_version_matches_the_package_metadata() -> None:
    from importlib.metadata import version

    assert pytest_stagegate.__version__ == version("pytest-stagegate")


def test_the_public_api_does_not_import_locust() -> None:
    code = (
        "import sys, pytest_stagegate as p\n"
        "[getattr(p, n) for n in p.__all__]\n"
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
