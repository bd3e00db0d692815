"""Every command-line, ini and environment choice of a run, resolved once into ``RunOptions``.

The parsers of option values live here too: argparse turns their ArgumentTypeError into a
usage error (exit code 4, one line, no traceback). Light on purpose: every pytest run in the
environment imports this module through the plugin, most of which never use it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .. import defaults
from ..discovery import find_config

TARGET_ENV = defaults.TARGET_ENV
SIGNING_KEY_ENV = defaults.SIGNING_KEY_ENV  # the verdict's signing key (verdict.files too)
DEFAULT_SOURCE = "the default"  # where a target name came from when nothing named one
# the key read from the environment when the plugin loaded (``take_signing_key``); None: unset
SIGNING_KEY = pytest.StashKey["bytes | None"]()
# pytest's own listings: the plugin stays out of them (and out of a broken stagegate.yaml)
_LISTINGS = ("help", "markers", "showfixtures", "show_fixtures_per_test")


def parse_workers(value: str) -> int:
    """``--gate-workers``: a whole number >= 0, or ``auto`` for the number of CPUs."""
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of Locust worker processes or 'auto', got {value!r}"
        ) from None
    if workers < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more worker processes, got {workers}")
    return workers


def parse_count(value: str) -> int:
    """A whole number >= 0 (``--gate-remote-workers``)."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {count}")
    return count


BIND_EXAMPLE = f"0.0.0.0:{defaults.MASTER_PORT}"


def parse_bind(value: str) -> tuple[str, int]:
    """``--gate-master-bind HOST:PORT``, e.g. ``0.0.0.0:5557``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT such as {BIND_EXAMPLE}, got {value!r}"
        )
    return host.strip("[]"), int(port)


def find_config_file(rootdir: Path, invocation_dir: Path) -> Path | None:
    """stagegate.yaml at the rootdir, else the first one walking up from where pytest was
    started (``discovery.find_config``: up to a repository root or the filesystem root).

    pytest picks the rootdir before plugin options exist, and without an ini file it is the
    directory pytest runs from (``tests/`` when run there), so the project's file is found by
    walking up, as pytest finds its own ini files.
    """
    return find_config(invocation_dir, rootdir).path


def not_active_message(config: pytest.Config) -> str:
    """What a test that asks for a stagegate fixture in an inert run is told: where the
    search looked, and what works (a stagegate.yaml there, or --stagegate-config)."""
    search = find_config(Path(config.invocation_params.dir), Path(config.rootpath))
    return (
        f"pytest-stagegate is not active: there is no {defaults.CONFIG_FILE} {search.looked}. "
        f"Create one (a minimal one is in the README's Configuration section), or pass "
        f"--stagegate-config PATH/TO/{defaults.CONFIG_FILE}."
    )


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the command line, the environment and the ini file asked of this run.

    Read once in ``pytest_configure``; nothing else reads ``config.option`` for stagegate.
    """

    target: str  # the target's name
    target_source: str  # "--target", "env STAGEGATE_TARGET", "ini stagegate_target", "the default"
    config_path: Path | None  # as given, or found; None when neither
    config_source: str  # "--stagegate-config", "ini stagegate_config" or "found"
    rootdir: Path
    invocation_dir: Path
    gate: bool = False
    verdict_path: Path = Path(defaults.VERDICT_FILE)
    junit_path: Path = Path(defaults.JUNIT_FILE)
    verdict_wanted: bool = False  # --gate, --verdict or --verdict-junit
    baseline: Path | None = None  # None with baseline_auto: picked from the history later
    baseline_auto: bool = False  # --gate-baseline auto
    history_dir: Path | None = None  # --gate-history / ini stagegate_history
    history_keep: int = defaults.HISTORY_KEEP  # ini stagegate_history_keep
    metrics_path: Path | None = None  # --gate-metrics
    html_report: Path | None = None
    workers: int = 0  # local Locust worker processes
    remote_workers: int = 0
    master_bind: tuple[str, int] | None = None
    collect_only: bool = False
    is_worker: bool = False  # an xdist worker
    active: bool = False  # asked for, or the project has a stagegate.yaml
    # From STAGEGATE_SIGNING_KEY (``take_signing_key``); never shown (not in repr) and never
    # compared.
    signing_key: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    # when found: how ("found walking up from /p/tests", ``ConfigSearch.how``); when not:
    # where the search looked (``ConfigSearch.looked``), for the usage error
    config_found: str = ""
    config_looked: str = ""

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunOptions:
        opt = config.option
        rootdir = Path(config.rootpath)
        invocation_dir = Path(config.invocation_params.dir)
        target, target_source = _target_name(
            opt.stagegate_target, config.getini("stagegate_target")
        )
        option_config, ini_config = opt.stagegate_config, config.getini("stagegate_config")
        config_path: Path | None
        found = looked = ""
        if option_config:
            # normalized: the header shows /p/stagegate.yaml, not /p/tests/../stagegate.yaml
            config_path = Path(os.path.normpath(invocation_dir / str(option_config)))
            config_source = "--stagegate-config"
        elif ini_config:
            config_path = Path(os.path.normpath(rootdir / str(ini_config)))
            config_source = "ini stagegate_config"
        else:
            search = find_config(invocation_dir, rootdir)
            config_path, config_source = search.path, "found"
            found, looked = search.how, search.looked
        verdict_wanted = bool(
            opt.stagegate_gate or opt.stagegate_verdict or opt.stagegate_verdict_junit
        )
        asked = bool(
            opt.stagegate_target
            or opt.stagegate_gate
            or opt.stagegate_config
            or opt.stagegate_verdict
            or opt.stagegate_verdict_junit
            or opt.stagegate_baseline
            or ini_config
        )
        listing = any(getattr(opt, name, False) for name in _LISTINGS)
        baseline_auto = str(opt.stagegate_baseline or "").strip().lower() == "auto"
        return cls(
            target=target,
            target_source=target_source,
            config_path=config_path,
            config_source=config_source,
            rootdir=rootdir,
            invocation_dir=invocation_dir,
            gate=bool(opt.stagegate_gate),
            verdict_path=Path(opt.stagegate_verdict or defaults.VERDICT_FILE),
            junit_path=Path(opt.stagegate_verdict_junit or defaults.JUNIT_FILE),
            verdict_wanted=verdict_wanted,
            baseline=None if baseline_auto else _path(opt.stagegate_baseline),
            baseline_auto=baseline_auto,
            history_dir=_history_dir(
                opt.stagegate_history, config.getini("stagegate_history"), rootdir
            ),
            history_keep=_history_keep(config.getini("stagegate_history_keep")),
            metrics_path=_path(opt.stagegate_metrics),
            html_report=_path(opt.stagegate_report),
            workers=int(opt.stagegate_workers or 0),
            remote_workers=int(opt.stagegate_remote_workers or 0),
            master_bind=opt.stagegate_master_bind,
            collect_only=bool(opt.collectonly),
            is_worker=hasattr(config, "workerinput"),
            active=not listing and (asked or config_path is not None),
            signing_key=config.stash.get(SIGNING_KEY, None),
            config_found=found,
            config_looked=looked,
        )

    @property
    def controls(self) -> bool:
        """The process that waits for the target, runs the gate and writes the verdict: the
        only one without xdist, the controller with it; never for --collect-only."""
        return not self.is_worker and not self.collect_only

    @property
    def files(self) -> tuple[tuple[str, Path], ...]:
        """The verdict files this run writes: (kind, path), kind "json" or "junit"."""
        if not self.verdict_wanted:
            return ()
        return (("json", self.verdict_path), ("junit", self.junit_path))

    @property
    def load_log(self) -> Path | None:
        """Locust's log (redacted), next to the verdict for CI to keep with it."""
        if not self.verdict_wanted or not self.verdict_path.name:
            return None
        return self.verdict_path.with_name(defaults.LOAD_LOG_FILE)

    @property
    def config_origin(self) -> str:
        """Where the stagegate.yaml came from, for the header: ``found at the rootdir``,
        ``found walking up from /p/tests``, ``from --stagegate-config``."""
        if self.config_source == "found":
            return self.config_found or "found"
        return f"from {self.config_source}"

    def config_file(self) -> Path:
        """The stagegate.yaml to read; a usage error when there is none."""
        if self.config_path is not None and self.config_source == "found":
            return self.config_path
        if self.config_path is not None:
            if not self.config_path.is_file():
                raise pytest.UsageError(
                    f"pytest-stagegate: {self.config_source}: no file at {self.config_path}"
                )
            return self.config_path
        looked = self.config_looked or f"at the rootdir {self.rootdir}"
        raise pytest.UsageError(
            f"pytest-stagegate: no {defaults.CONFIG_FILE} {looked}. Create one (a minimal one "
            f"is in the README's Configuration section) or pass --stagegate-config "
            f"PATH/TO/{defaults.CONFIG_FILE}."
        )


def verdict_files_in_args(args: Sequence[str]) -> tuple[Path, ...]:
    """The verdict files (JSON, JUnit, load log) a run with these raw command-line arguments
    writes, read from the arguments alone, before pytest has parsed them: ``--verdict PATH``,
    ``--verdict=PATH``, the same for ``--verdict-junit``, the defaults when ``--gate`` (or one
    of them) is there. Empty for ``--help``, ``--version`` and ``--collect-only``, which write
    no verdict. It may name a file too many (an option's value that looks like ``--gate``),
    never one too few of the plain forms; ``RunOptions.files`` is the parsed truth."""
    gate = False
    verdict: str | None = None
    junit: str | None = None
    words = list(args)
    i = 0
    while i < len(words):
        word = str(words[i])
        i += 1
        if word == "--":
            break
        if word in ("-h", "--help", "--version", "--co", "--collect-only"):
            return ()
        if word == "--gate":
            gate = True
        for name in ("--verdict", "--verdict-junit"):
            value: str | None = None
            if word == name and i < len(words) and not str(words[i]).startswith("-"):
                value, i = str(words[i]), i + 1  # argparse takes "-x" for an option, not a value
            elif word.startswith(name + "="):
                value = word[len(name) + 1 :]
            if value is not None:
                if name == "--verdict":
                    verdict = value
                else:
                    junit = value
    if not (gate or verdict or junit):
        return ()
    json_path = Path(verdict or defaults.VERDICT_FILE)
    paths = [json_path, Path(junit or defaults.JUNIT_FILE)]
    if json_path.name:
        paths.append(json_path.with_name(defaults.LOAD_LOG_FILE))
    return tuple(paths)


def forget_verdict_files(config: pytest.Config | None) -> None:
    """Remove the verdict files the raw arguments of this pytest run name (see
    ``verdict_files_in_args``): the command line, ``PYTEST_ADDOPTS`` and the ini's
    ``addopts``. Called while pytest loads the plugin (``pytest_addoption``), the earliest
    moment plugin code runs with the arguments at hand: before pytest rejects an unknown
    option or a bad option value, and before it imports any conftest.py, so a run that stops
    there cannot leave a previous passing verdict behind. Never raises."""
    # An xdist worker does this too: it starts after its controller removed the same files and
    # ends before the controller writes them. PYTEST_XDIST_WORKER is no sign of a worker here:
    # a pytest run started from inside an xdist worker's test inherits it.
    if config is None:
        return
    args: list[str] = []
    with contextlib.suppress(Exception):  # malformed addopts: pytest reports it itself
        args += [str(a) for a in config.getini("addopts")]
    with contextlib.suppress(ValueError):
        args += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += [str(a) for a in config.invocation_params.args]
    remove_files(verdict_files_in_args(args))


def remove_files(paths: Iterable[Path]) -> None:
    """Remove each file that exists; never raises (a directory or an unwritable place is
    reported as a usage error later, by the output checks)."""
    for path in paths:
        if path.name and not path.is_dir():
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def take_signing_key(config: pytest.Config | None) -> None:
    """Move the verdict's signing key from ``STAGEGATE_SIGNING_KEY`` into ``config.stash``
    (``RunOptions.signing_key`` reads it there). Called while pytest loads the plugin
    (``pytest_addoption``): before any conftest.py is imported and any other plugin's
    configure hook runs, and before xdist starts its workers, which inherit the environment.
    Whether a stagegate run follows or not, the key is out of the environment of this process
    and of all it starts."""
    value = os.environ.pop(SIGNING_KEY_ENV, "")
    if config is not None:
        config.stash[SIGNING_KEY] = value.encode("utf-8", "surrogateescape") if value else None


def _target_name(option: str | None, ini: Any) -> tuple[str, str]:
    """The target's name and where it came from: option, then environment, then ini."""
    if option:
        return option, "--target"
    if os.environ.get(TARGET_ENV):
        return os.environ[TARGET_ENV], f"env {TARGET_ENV}"
    if ini:
        return str(ini), "ini stagegate_target"
    return defaults.TARGET, DEFAULT_SOURCE


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _history_dir(option: str | None, ini: str, rootdir: Path) -> Path | None:
    """--gate-history DIR (from where pytest runs), else ini stagegate_history (from the
    rootdir); None when neither."""
    if option:
        return Path(option)
    if ini:
        return rootdir / str(ini)
    return None


def _history_keep(ini: str) -> int:
    """ini stagegate_history_keep: a whole number >= 1; a bad value is a usage error."""
    if not str(ini).strip():
        return defaults.HISTORY_KEEP
    try:
        keep = int(str(ini).strip())
    except ValueError:
        keep = 0
    if keep < 1:
        raise pytest.UsageError(
            f"pytest-stagegate: ini stagegate_history_keep: expected a whole number of "
            f"verdicts to keep per target (1 or more), got {ini!r}"
        )
    return keep
