"""pytest glue: options, ini keys, markers, and wiring. The work lives in ``session.StagegateRun``
(registered only for an active run); the choices are read once into ``options.RunOptions``.

The plugin stays inert in projects without a stagegate.yaml unless ``--target``, ``--gate`` or
``--stagegate-config`` asks for it, so installing it never changes an unrelated test run.
"""

from __future__ import annotations

import pytest

from .. import defaults
from . import fixtures as _fixtures
from .options import (
    BIND_EXAMPLE,
    TARGET_ENV,
    RunOptions,
    forget_verdict_files,
    parse_bind,
    parse_count,
    parse_workers,
    take_signing_key,
)

# Fixtures are plain module attributes so pytest finds them in this plugin module; an active run
# registers the same ones bound to its config over them (fixtures.for_run).
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

TARGET_HELP = f"stagegate target to test, from {defaults.CONFIG_FILE} (default: {defaults.TARGET})"
CONFIG_HELP = (
    f"path of {defaults.CONFIG_FILE} (default: the one at the rootdir, else the first walking up "
    "from the current directory to a repository root)"
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # First, while pytest loads the plugin: a run that stops on an unknown option, a bad
    # option value or a broken conftest.py must not leave the previous verdict behind.
    config = pluginmanager.get_plugin("pytestconfig")
    forget_verdict_files(config)
    # The signing key leaves the environment now, before any conftest.py is imported and any
    # other plugin's hook runs: RunOptions reads it from the config's stash, and no test, hook,
    # xdist worker or Locust child can read it, print it or sign with it.
    take_signing_key(config)
    group = parser.getgroup("stagegate", "pytest-stagegate: staging gate")
    group.addoption(
        "--target",
        dest="stagegate_target",
        metavar="NAME",
        help=TARGET_HELP + f"; env {TARGET_ENV}, ini stagegate_target",
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
        help=f"write the JSON verdict here (default with --gate: {defaults.VERDICT_FILE})",
    )
    group.addoption(
        "--verdict-junit",
        dest="stagegate_verdict_junit",
        metavar="PATH",
        help=f"write the JUnit XML verdict here (default with --gate: {defaults.JUNIT_FILE})",
    )
    group.addoption(
        "--gate-baseline",
        dest="stagegate_baseline",
        metavar="PATH",
        help="an earlier verdict to compare against (for *_regression budgets); 'auto': the "
        "latest passing verdict of this target in --gate-history",
    )
    group.addoption(
        "--gate-history",
        dest="stagegate_history",
        metavar="DIR",
        help="keep every gated verdict in DIR (by target, commit and time); ini stagegate_history",
    )
    group.addoption(
        "--gate-metrics",
        dest="stagegate_metrics",
        metavar="PATH",
        help="write the gate's measurements as an OpenMetrics text file (GitLab metrics report)",
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
        help=f"where the Locust master listens for remote workers, e.g. {BIND_EXAMPLE}",
    )
    group.addoption(
        "--gate-report",
        dest="stagegate_report",
        metavar="PATH",
        help="write Locust's HTML report with charts here",
    )
    parser.addini("stagegate_config", CONFIG_HELP)
    parser.addini("stagegate_target", TARGET_HELP)
    parser.addini("stagegate_history", "keep every gated verdict in this directory")
    parser.addini(
        "stagegate_history_keep",
        f"how many verdicts --gate-history keeps per target (default {defaults.HISTORY_KEEP})",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    options = RunOptions.from_config(config)
    if not options.active:
        return
    from .session import StagegateRun, forget_previous_verdict

    forget_previous_verdict(options)
    run = StagegateRun.start(config, options)
    config.pluginmanager.register(run, StagegateRun.PLUGIN_NAME)
    # the fixtures bound to this run, over the module's: no per-test pytestconfig/request chain
    config.pluginmanager.register(_fixtures.for_run(config), _fixtures.PLUGIN_NAME)
    if getattr(config.option, "htmlpath", None):  # pytest-html's --html: a stagegate section
        from .html_section import HtmlSection

        HtmlSection.register(config, options)
