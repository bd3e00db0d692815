"""pytest glue: options, ini keys, markers, and wiring. The work lives in ``session.StagegateRun``.

The plugin stays inert in projects without a stagegate.yaml unless ``--target``, ``--gate`` or
``--stagegate-config`` asks for it, so installing it never changes an unrelated test run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import fixtures as _fixtures
from .options import parse_bind, parse_count, parse_workers

# Fixtures are plain module attributes so pytest finds them in this plugin module.
target = _fixtures.target
base_url = _fixtures.base_url
target_vars = _fixtures.target_vars
http = _fixtures.http
ahttp = _fixtures.ahttp

MARKERS = {
    "smoke": "smoke: part of the smoke suite (counted in the stagegate verdict).",
    "critical": "critical: a failure here always blocks promotion.",
    "destructive": (
        "destructive: writes data; never runs on a protected target (skipped there, with the "
        "reason shown and counted)."
    ),
    "targets": (
        "targets(*names): run only on these stagegate targets; skipped elsewhere, with the "
        "reason shown."
    ),
}

TARGET_HELP = "stagegate target to test, from stagegate.yaml (default: local)"
CONFIG_HELP = "path of stagegate.yaml (default: stagegate.yaml at the rootdir)"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stagegate", "pytest-stagegate: staging gate")
    group.addoption(
        "--target",
        dest="stagegate_target",
        metavar="NAME",
        help=TARGET_HELP + "; env STAGEGATE_TARGET, ini stagegate_target",
    )
    group.addoption("--stagegate-config", dest="stagegate_config", metavar="PATH", help=CONFIG_HELP)
    group.addoption(
        "--gate",
        dest="stagegate_gate",
        action="store_true",
        default=False,
        help="after the tests, run the Locust load gate and decide the verdict",
    )
    group.addoption(
        "--verdict",
        dest="stagegate_verdict",
        metavar="PATH",
        help="write the JSON verdict here (default with --gate: stagegate-verdict.json)",
    )
    group.addoption(
        "--verdict-junit",
        dest="stagegate_verdict_junit",
        metavar="PATH",
        help="write the JUnit XML verdict here (default with --gate: stagegate-junit.xml)",
    )
    group.addoption(
        "--gate-baseline",
        dest="stagegate_baseline",
        metavar="PATH",
        help="an earlier verdict to compare against (for *_regression budgets)",
    )
    group.addoption(
        "--gate-workers",
        dest="stagegate_workers",
        metavar="N",
        type=parse_workers,
        default=0,
        help="run Locust distributed: a master and N worker processes; 'auto' = CPU count",
    )
    group.addoption(
        "--gate-remote-workers",
        dest="stagegate_remote_workers",
        metavar="N",
        type=parse_count,
        default=0,
        help="also wait for N Locust workers from other machines (`stagegate worker`)",
    )
    group.addoption(
        "--gate-master-bind",
        dest="stagegate_master_bind",
        metavar="HOST:PORT",
        type=parse_bind,
        default=None,
        help="where the Locust master listens for remote workers, e.g. 0.0.0.0:5557",
    )
    group.addoption(
        "--gate-report",
        dest="stagegate_report",
        metavar="PATH",
        help="write Locust's HTML report with charts here",
    )
    parser.addini("stagegate_config", CONFIG_HELP)
    parser.addini("stagegate_target", TARGET_HELP)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    if not _wanted(config):
        return
    from .session import StagegateRun, forget_previous_verdict

    forget_previous_verdict(config)
    run = StagegateRun.from_config(config)
    config.pluginmanager.register(run, StagegateRun.PLUGIN_NAME)


def _wanted(config: pytest.Config) -> bool:
    """Active when asked for on the command line or when the project has a stagegate.yaml;
    never for pytest's own listings (--help, --markers, --fixtures)."""
    opt = config.option
    listings = ("help", "markers", "showfixtures", "show_fixtures_per_test")
    if any(getattr(opt, name, False) for name in listings):
        return False
    if opt.stagegate_target or opt.stagegate_gate or opt.stagegate_config:
        return True
    if opt.stagegate_verdict or opt.stagegate_verdict_junit or opt.stagegate_baseline:
        return True
    if config.getini("stagegate_config"):
        return True
    return find_config_file(config) is not None


def find_config_file(config: pytest.Config) -> Path | None:
    """stagegate.yaml at the rootdir, else where pytest was started.

    pytest picks the rootdir before plugin options exist, so the value of an option such as
    ``--gate-baseline ../prod.json`` can move it; the directory pytest runs from is the other
    place a user expects the file.
    """
    for folder in (Path(config.rootpath), config.invocation_params.dir):
        path = folder / CONFIG_FILENAME
        if path.is_file():
            return path
    return None


CONFIG_FILENAME = "stagegate.yaml"  # also config.CONFIG_FILENAME; not imported, to start fast
