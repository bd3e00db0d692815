"""pytest-html: a stagegate section in its report (``--html=report.html``).

Registered by ``plugin/__init__.py`` only on the controlling process of an active run whose
command line asked pytest-html for a report; nothing here imports pytest-html.

The section shows the verdict (state, whether to promote, the reasons), the gate's budget
checks (endpoint, metric, limit, observed, samples, outcome), the measured endpoints and a link
to Locust's HTML report when ``--gate-report`` wrote one. It is built from the verdict's JSON
data as written, with every text redacted with the run's secrets and then HTML-escaped.

Order: pytest-html writes its file in its ``pytest_sessionfinish`` (trylast) and calls
``pytest_html_results_summary`` from there; the verdict is decided in the session's own
``pytest_sessionfinish`` (trylast too). Among trylast implementations pluggy calls the one
registered last, last; so at session start the section re-registers pytest-html's report
object after the stagegate run when it was registered before it (``order_after``), and the
section always sees the final verdict.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ..units import format_observed
from ..verdict.report import covers_text, limit_text
from .options import RunOptions
from .state import RUN_STATE

__all__ = ["HtmlSection", "order_after", "section_html"]

PLUGIN_NAME = "stagegate-html"
SECTION_ID = "stagegate"

_STYLE = """<style>
#stagegate { margin: 1em 0; padding: 0.5em 1em; border: 2px solid #999; border-radius: 6px; }
#stagegate.stagegate--pass { border-color: #2a7f2a; }
#stagegate.stagegate--fail, #stagegate.stagegate--error { border-color: #c0392b; }
#stagegate.stagegate--inconclusive { border-color: #d68910; }
#stagegate h2 { margin: 0.3em 0; }
#stagegate h3 { margin: 0.8em 0 0.3em; font-size: 1em; }
#stagegate table { border-collapse: collapse; margin: 0.3em 0; }
#stagegate th, #stagegate td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
#stagegate td.num { text-align: right; }
#stagegate .stagegate-state { font-weight: bold; text-transform: uppercase; }
#stagegate .outcome-pass { color: #2a7f2a; }
#stagegate .outcome-fail, #stagegate .outcome-error { color: #c0392b; font-weight: bold; }
#stagegate .outcome-inconclusive { color: #d68910; font-weight: bold; }
</style>"""


def section_html(
    data: Mapping[str, Any] | None,
    redact: Callable[[str], str],
    *,
    target: str,
    report_link: str | None = None,
) -> str:
    """The stagegate section as one HTML fragment. ``data`` is the verdict's JSON form
    (``Verdict.to_dict()`` as written), None when the run decided no verdict; ``redact`` masks
    the run's secrets (applied to every text before it is escaped); ``report_link`` the href
    of Locust's HTML report, if one was written."""

    def esc(value: object) -> str:
        return html.escape(redact(str(value)), quote=True)

    if data is None:
        return (
            f'{_STYLE}<section id="{SECTION_ID}" class="stagegate">'
            f"<h2>Stagegate</h2><p>Target <code>{esc(target)}</code>: no verdict was decided "
            "(run with <code>--gate</code>, or <code>--verdict</code> for the smoke tests "
            "alone).</p></section>"
        )
    state = str(data.get("verdict", "error"))
    promote = bool(data.get("promote"))
    parts = [
        _STYLE,
        f'<section id="{SECTION_ID}" class="stagegate stagegate--{esc(state)}" '
        f'data-verdict="{esc(state)}">',
        f'<h2>Stagegate verdict: <span class="stagegate-state outcome-{esc(state)}">'
        f"{esc(state)}</span></h2>",
        f"<p>Target <code>{esc((data.get('target') or {}).get('name', target))}</code>; "
        f"promote: <b>{'yes' if promote else 'no'}</b>.</p>",
    ]
    reasons = [str(r) for r in data.get("reasons") or ()]
    if reasons:
        parts.append('<ul class="stagegate-reasons">')
        parts.extend(f"<li>{esc(r)}</li>" for r in reasons)
        parts.append("</ul>")
    gate = data.get("gate")
    if isinstance(gate, Mapping):
        parts.extend(_gate_parts(gate, esc))
    if report_link is not None:
        parts.append(
            f'<p class="stagegate-report">Locust\'s report: <a href="{esc(report_link)}">'
            f"{esc(report_link)}</a></p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _gate_parts(gate: Mapping[str, Any], esc: Callable[[object], str]) -> list[str]:
    parts: list[str] = []
    status = gate.get("status")
    if status and status != "completed":
        reason = gate.get("reason")
        parts.append(
            f'<p class="stagegate-gate">Load gate: {esc(status)}'
            + (f": {esc(reason)}" if reason else "")
            + "</p>"
        )
    checks: Sequence[Mapping[str, Any]] = gate.get("checks") or ()
    if checks:
        parts.append("<h3>Budget checks</h3>")
        parts.append(
            '<table class="stagegate-checks"><thead><tr><th>endpoint</th><th>metric</th>'
            "<th>limit</th><th>observed</th><th>samples</th><th>outcome</th></tr></thead><tbody>"
        )
        for c in checks:
            outcome = str(c.get("outcome", ""))
            endpoint = str(c.get("endpoint", ""))
            if c.get("covers"):
                endpoint += f" {covers_text(c)}"
            if c.get("stage"):
                endpoint += f" in stage {c['stage']}"
            observed = c.get("observed")
            shown = "-" if observed is None else format_observed(observed, str(c.get("unit")))
            parts.append(
                f'<tr class="outcome-{esc(outcome)}"><td><code>{esc(endpoint)}</code></td>'
                f"<td>{esc(c.get('metric', ''))}</td><td>{esc(limit_text(c))}</td>"
                f'<td class="num">{esc(shown)}</td><td class="num">{esc(c.get("samples", ""))}'
                f'</td><td class="outcome-{esc(outcome)}">'
                f"{esc(outcome.upper() if outcome != 'pass' else outcome)}</td></tr>"
            )
        parts.append("</tbody></table>")
    endpoints: Sequence[Mapping[str, Any]] = gate.get("endpoints") or ()
    if endpoints:
        parts.append("<h3>Measured</h3>")
        parts.append(
            '<table class="stagegate-endpoints"><thead><tr><th>endpoint</th><th>requests</th>'
            "<th>failures</th><th>rps</th><th>p50</th><th>p95</th><th>p99</th></tr></thead>"
            "<tbody>"
        )
        for e in endpoints:
            pct = e.get("percentiles") or {}
            cells = [
                str(e.get("requests", "")),
                str(e.get("failures", "")),
                _number(e.get("rps"), "rps"),
                *(_number(pct.get(p), "ms") for p in ("p50", "p95", "p99")),
            ]
            parts.append(
                f"<tr><td><code>{esc(e.get('name', ''))}</code></td>"
                + "".join(f'<td class="num">{esc(cell)}</td>' for cell in cells)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    return parts


def _number(value: object, unit: str) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return format_observed(float(value), unit)


def report_href(report: Path, html_path: Path) -> str:
    """Locust's report as a link from pytest-html's file: relative when both are on one
    drive, else a file URI."""
    try:
        rel = os.path.relpath(report.resolve(), html_path.resolve().parent)
    except ValueError:  # another drive on Windows
        return report.resolve().as_uri()
    return quote(Path(rel).as_posix())


def order_after(pluginmanager: pytest.PytestPluginManager, first: object, later: object) -> bool:
    """Make ``later``'s trylast ``pytest_sessionfinish`` run after ``first``'s by registering
    it again when it was registered before ``first`` (pluggy calls the trylast implementation
    registered last, last). Returns whether it had to."""
    impls = pluginmanager.hook.pytest_sessionfinish.get_hookimpls()  # in reverse call order
    plugins = [impl.plugin for impl in impls]
    if first not in plugins or later not in plugins:
        return False
    if plugins.index(later) < plugins.index(first):
        return False  # already called after it
    name = pluginmanager.get_name(later)
    pluginmanager.unregister(later)
    pluginmanager.register(later, name)
    return True


class HtmlSection:
    """The pytest-html hooks of an active run."""

    def __init__(self, config: pytest.Config, html_path: str, locust_report: Path | None) -> None:
        self.config = config
        # where pytest-html writes it (its own rule: relative to the working directory)
        self.html_path = Path.cwd() / Path(os.path.expandvars(html_path)).expanduser()
        self.locust_report = locust_report

    @classmethod
    def register(cls, config: pytest.Config, options: RunOptions) -> None:
        """Register the section when pytest-html is installed, enabled and asked for a report
        (``--html``), on the controlling process only."""
        html_path = getattr(config.option, "htmlpath", None)
        if (
            not html_path
            or not options.controls
            or not config.pluginmanager.has_plugin("html")
            or config.pluginmanager.has_plugin(PLUGIN_NAME)
        ):
            return
        section = cls(config, str(html_path), options.html_report)
        config.pluginmanager.register(section, PLUGIN_NAME)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from pytest_html.basereport import BaseReport

        pm = self.config.pluginmanager
        run = pm.get_plugin("stagegate-run")
        for plugin in pm.get_plugins():
            if isinstance(plugin, BaseReport):
                order_after(pm, run, plugin)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        state = self.config.stash.get(RUN_STATE, None)
        if state is None:
            return
        link = None
        report = self.locust_report
        if report is not None and state.gate is not None and _written_since(report, state):
            link = report_href(report, self.html_path)
        postfix.append(
            section_html(
                state.verdict_data, state.secrets, target=state.target.name, report_link=link
            )
        )


def _written_since(path: Path, state: Any) -> bool:
    started: datetime = state.started_at
    try:
        return path.stat().st_mtime >= started.timestamp() - 1  # coarse file clocks
    except OSError:
        return False
