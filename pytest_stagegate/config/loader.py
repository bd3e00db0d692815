"""stagegate.yaml -> frozen dataclasses, with file:line errors.

``load_config(path)`` parses and validates the whole file once (structure, types, durations,
rates, budgets) but resolves no ``${VAR}``: a missing variable is an error only for the target
that is selected, in ``Config.resolve_target(name, environ)``. A value that came from an
environment variable into a header or ``vars`` (and a password in the base URL) is a secret;
``Target.secrets`` holds them so they can be redacted everywhere.

Every error is a ``ConfigError`` that names the file, the line and the dotted key, says what is
wrong and what would be valid. Nothing here imports pytest or locust.

The package's modules are listed in ``config/__init__.py``; this one is the entry point.

The rules the contract leaves open are written down in the module that decides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from .._redact import Redactor
from ..errors import ConfigError, did_you_mean
from ..units import format_size
from ._gate import parse_gate
from ._targets import TargetReader
from ._yaml import Doc, KeyPath, got, parse_yaml
from .model import (
    GateSettings,
    Target,
)

__all__ = ["CONFIG_FILENAME", "Config", "load_config"]

CONFIG_FILENAME = defaults.CONFIG_FILE


@dataclass(frozen=True)
class Config:
    """A parsed stagegate.yaml. Targets stay unresolved until one is selected."""

    path: Path
    # Each target as written (validated, ``${VAR}`` still in place); resolved on demand.
    _raw_targets: Mapping[str, Any] = field(repr=False, default_factory=dict)
    _gate: Mapping[str, GateSettings] = field(repr=False, default_factory=dict)
    # Line of every key path, so errors found at resolve time can still point into the file.
    _lines: Mapping[KeyPath, int] = field(repr=False, compare=False, default_factory=dict)

    @property
    def target_names(self) -> tuple[str, ...]:
        """The targets' names, in the order of the file."""
        return tuple(self._raw_targets)

    def resolve_target(self, name: str, environ: Mapping[str, str]) -> Target:
        """The target ``name`` with ``${VAR}``/``${VAR:-default}`` substituted.

        Raises ConfigError for an unknown name (listing the known ones) or a missing variable
        (naming the variable, the target, the file and line).
        """
        self._check_known(name)
        reader = TargetReader(self._doc(), name, self._raw_targets[name], environ)
        try:
            return reader.read()
        except ConfigError as error:
            if not reader.secrets:
                raise
            # A value from the environment may be quoted back in "got ..."; never show it.
            raise ConfigError(
                Redactor(reader.secrets)(error.problem),
                path=error.path,
                line=error.line,
                key=error.key,
            ) from None
        except RecursionError:
            raise self._doc().error((), _TOO_DEEP) from None

    def gate_settings(self, name: str) -> GateSettings:
        """The gate settings for target ``name``: ``gate`` merged with ``gate.targets.<name>``."""
        self._check_known(name)
        return self._gate.get(name, GateSettings())

    def _doc(self) -> Doc:
        return Doc(self.path, self._lines)

    def _check_known(self, name: str) -> None:
        if name in self._raw_targets:
            return
        known = ", ".join(self.target_names) or "(none)"
        hint = did_you_mean(name, self.target_names)
        raise ConfigError(
            f"unknown target {name!r}{hint or '.'} Known targets: {known}. "
            f"Define it under 'targets:' in {self.path.name}.",
            path=self.path,
        )


def load_config(path: Path | str) -> Config:
    """Read and validate ``path``. Raises ConfigError naming file, line and key."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            # read one byte past the cap: a huge file is refused without parsing it
            raw = fh.read(defaults.MAX_CONFIG_BYTES + 1)
        if len(raw) > defaults.MAX_CONFIG_BYTES:
            raise ConfigError(
                f"the file is larger than {format_size(defaults.MAX_CONFIG_BYTES)}, far more "
                f"than any configuration needs; is it the right file?",
                path=path,
            )
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"cannot read the file: it is not UTF-8 text (byte {error.start})", path=path
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}", path=path) from None
    try:
        data, lines = parse_yaml(text, path)
        return _build_config(path, data, lines)
    except RecursionError:
        raise ConfigError(_TOO_DEEP, path=path) from None


# --- messages ----------------------------------------------------------------------------------

_MINIMAL = (
    f"a minimal {CONFIG_FILENAME} is:\n\n"
    "    targets:\n"
    "      local:\n"
    "        base_url: http://127.0.0.1:8000\n"
)
_TOO_DEEP = "the document is nested too deeply to be a stagegate configuration"


# --- the whole file ----------------------------------------------------------------------------

_TOP_KEYS = ("version", "targets", "gate")


def _build_config(path: Path, data: Any, lines: dict[KeyPath, int]) -> Config:
    doc = Doc(path, lines)
    if data is None:
        raise ConfigError(f"the file is empty; {_MINIMAL}", path=path, line=1)
    if not isinstance(data, dict):
        raise doc.error(
            (),
            f"the top level must be a mapping with a 'targets' key, got {got(data)}; {_MINIMAL}",
        )
    doc.known_keys(data, (), _TOP_KEYS)
    version = data.get("version")
    # type() rather than isinstance(): true and 1.0 are not the version number 1.
    if version is not None and (type(version) is not int or version != 1):
        raise doc.error(
            ("version",),
            f"this version of pytest-stagegate reads version: 1, got {got(data['version'])}",
        )

    targets = data.get("targets")
    if not targets:
        raise doc.error(("targets",), f"no targets are defined; {_MINIMAL}")
    targets = doc.mapping(targets, ("targets",), "a mapping of target name: settings")
    for name in targets:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise doc.error(
                ("targets", name),
                f"a target name must be a word such as staging, got {got(name)}"
                + (" (put it in quotes)" if not isinstance(name, str) else ""),
            )
        TargetReader(doc, name, targets[name], None).read()
    settings = parse_gate(doc, data.get("gate"), targets)
    return Config(
        path=path,
        _raw_targets=targets,
        _gate=settings,
        _lines=lines,
    )
