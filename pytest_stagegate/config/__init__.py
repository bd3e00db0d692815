"""stagegate.yaml -> a frozen model (``model``), read with file:line errors (``loader``).

Each module imports only those above it in this list:

- ``model``: the frozen dataclasses (``Target``, ``GateSettings``, ...) and their defaults.
- ``_yaml``: YAML with line numbers, the messages, the value readers, ``${VAR}`` syntax.
- ``_targets``: ``targets.NAME`` -> ``Target``; substitution and secrets.
- ``_data``: the data file (``gate.load.data``), a CSV with a header row; its secrets.
- ``_gate``: ``gate`` -> ``GateSettings`` per target; overrides and budget names.
- ``loader``: ``load_config(path)`` -> ``Config``, the entry point.
"""

from ..errors import ConfigError
from .loader import CONFIG_FILENAME, Config, load_config
from .model import (
    AbortSettings,
    Capture,
    DataSpec,
    FlowSpec,
    GateSettings,
    JsonExpect,
    LoadSettings,
    ReadyCheck,
    RequestSpec,
    StageSpec,
    Target,
    VersionCheck,
)

__all__ = [
    "CONFIG_FILENAME",
    "AbortSettings",
    "Capture",
    "Config",
    "ConfigError",
    "DataSpec",
    "FlowSpec",
    "GateSettings",
    "JsonExpect",
    "LoadSettings",
    "ReadyCheck",
    "RequestSpec",
    "StageSpec",
    "Target",
    "VersionCheck",
    "load_config",
]
