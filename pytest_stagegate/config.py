"""stagegate.yaml -> frozen dataclasses, with file:line errors.

``load_config(path)`` parses and validates the whole file once (structure, types, durations,
rates, budgets) but resolves no ``${VAR}``: a missing variable is an error only for the target
that is selected, in ``Config.resolve_target(name, environ)``. Every value that came from an
environment variable is a secret; ``Target.secrets`` holds them so they can be redacted.

Nothing here imports pytest or locust.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .budgets import Budget
from .errors import ConfigError

__all__ = [
    "CONFIG_FILENAME",
    "AbortSettings",
    "Config",
    "ConfigError",
    "GateSettings",
    "LoadSettings",
    "ReadyCheck",
    "RequestSpec",
    "Target",
    "VersionCheck",
    "load_config",
]

CONFIG_FILENAME = "stagegate.yaml"


@dataclass(frozen=True)
class ReadyCheck:
    """Poll ``path`` until it answers 2xx, for at most ``timeout`` seconds."""

    path: str
    timeout: float = 60.0
    interval: float = 0.25  # first poll interval; doubles up to 5 s


@dataclass(frozen=True)
class VersionCheck:
    """Fetch ``path`` and compare its text (or JSON ``field``, dotted) with ``expect``."""

    path: str
    expect: str
    field: str | None = None


@dataclass(frozen=True, repr=False)
class Target:
    """One environment, resolved: every ``${VAR}`` substituted."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    ready: ReadyCheck | None = None
    version: VersionCheck | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = False
    allow_load: bool = True
    verify_tls: bool = True
    secrets: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def public_headers(self) -> dict[str, str]:
        """Headers safe to show: a value holding a secret is ``***``-redacted."""
        return {k: self.redact(v) for k, v in self.headers.items()}

    def __repr__(self) -> str:
        return self.redact(
            f"Target(name={self.name!r}, base_url={self.base_url!r}, "
            f"headers={self.public_headers()!r}, timeout={self.timeout!r}, "
            f"protected={self.protected!r}, allow_load={self.allow_load!r}, "
            f"vars={dict(self.vars)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class RequestSpec:
    """One line of the declarative scenario ``gate.load.requests``."""

    method: str
    path: str
    name: str  # the request name budgets refer to; default "METHOD path"
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    expect_status: tuple[int, ...] = ()  # empty: any status < 400 is a success


@dataclass(frozen=True)
class AbortSettings:
    """When to stop the load early because the deployment is clearly broken."""

    enabled: bool = True
    error_rate: float = 0.9  # fail fast when at least this share of requests fail ...
    min_requests: int = 20  # ... over at least this many requests
    latency_factor: float = 3.0  # or a latency budget is exceeded this many times over ...
    latency_for: float = 5.0  # ... for this many seconds in a row
    grace: float = 15.0  # extra seconds the load process may take to stop before it is killed


@dataclass(frozen=True)
class LoadSettings:
    """``gate.load`` after per-target overrides."""

    users: int = 10
    spawn_rate: float = 10.0
    duration: float = 30.0
    warmup: float = 0.0
    requests: tuple[RequestSpec, ...] = ()
    locustfile: Path | None = None
    user_class: Literal["fast", "http"] = "fast"
    wait: tuple[float, float] = (0.0, 0.0)  # between(min, max) seconds, Locust's default is 0
    abort: AbortSettings = AbortSettings()


@dataclass(frozen=True)
class GateSettings:
    """``gate`` for one target: load plan, budgets and policy, overrides applied."""

    load: LoadSettings = LoadSettings()
    budgets: tuple[Budget, ...] = ()
    min_samples: int = 100
    saturation_cpu: float = 90.0  # percent of one core, per load process
    run_after_critical_failure: bool = False
    flaky_blocks: bool = False  # a flaky (passed on rerun) non-critical test blocks promotion


@dataclass(frozen=True)
class Config:
    """A parsed stagegate.yaml. Targets stay unresolved until one is selected."""

    path: Path | None
    target_names: tuple[str, ...]
    _raw_targets: Mapping[str, Any] = field(repr=False, default_factory=dict)
    _gate: Mapping[str, GateSettings] = field(repr=False, default_factory=dict)

    def resolve_target(self, name: str, environ: Mapping[str, str]) -> Target:
        """The target ``name`` with ``${VAR}``/``${VAR:-default}`` substituted.

        Raises ConfigError for an unknown name (listing the known ones) or a missing variable
        (naming the variable, the target, the file and line).
        """
        raise NotImplementedError

    def gate_settings(self, name: str) -> GateSettings:
        """The gate settings for target ``name``: ``gate`` merged with ``gate.targets.<name>``."""
        raise NotImplementedError


def load_config(path: Path) -> Config:
    """Read and validate ``path``. Raises ConfigError naming file, line and key."""
    raise NotImplementedError


def default_config() -> Config:
    """The configuration used when there is no stagegate.yaml: a ``local`` target only."""
    raise NotImplementedError


_ = ConfigError  # re-exported
