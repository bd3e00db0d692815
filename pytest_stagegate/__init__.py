"""pytest-stagegate: is this deployment safe to promote?

The public API, for conftest.py files, hooks and tools. Names load on first use: the plugin
module is imported by every pytest run in the environment and must stay cheap.

Exceptions::

    StagegateError          anything the user can fix
     +-- ConfigError        stagegate.yaml or an option is wrong (file, line, key)
     +-- TargetNotReady     the readiness wait or version check failed
     +-- LoadError          the load process could not run
     +-- VerdictError       a verdict file is missing, corrupt or of another schema
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = [
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
]

_WHERE = {
    "Budget": "budgets",
    "Check": "budgets",
    "EndpointStats": "budgets",
    "Config": "config",
    "GateSettings": "config",
    "ReadyCheck": "config",
    "Target": "config",
    "VersionCheck": "config",
    "load_config": "config",
    "ConfigError": "errors",
    "LoadError": "errors",
    "StagegateError": "errors",
    "TargetNotReady": "errors",
    "GateRecord": "verdict",
    "TestRecord": "verdict",
    "Verdict": "verdict",
    "VerdictError": "verdict",
    "LoadPlan": "load.plan",
    "PlannedRequest": "load.plan",
}

if TYPE_CHECKING:
    from .budgets import Budget, Check, EndpointStats
    from .config import Config, GateSettings, ReadyCheck, Target, VersionCheck, load_config
    from .errors import ConfigError, LoadError, StagegateError, TargetNotReady
    from .load.plan import LoadPlan, PlannedRequest
    from .verdict import GateRecord, TestRecord, Verdict, VerdictError


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_stagegate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
