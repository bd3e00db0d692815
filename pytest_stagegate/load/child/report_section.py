"""The gate's section in Locust's HTML report (``--gate-report``): what the report counts, and the
chart of latency over time (``verdict.chart.svg_chart``). Pure: no locust or gevent import, so it
is unit-tested in the pytest process; ``controller.write_html`` puts it in the report, which is
then redacted whole.

Locust's own tables, charts and failures in the report count the judged requests only (the
child's ``locust_setup.judge_locust_stats``), the same requests as the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ...budgets import TOTAL
from ...units import format_duration, format_limit
from ...verdict.chart import budget_line, svg_chart
from ..plan import LatencyLimit, LoadPlan
from ..result import LoadResult

__all__ = ["SECTION_ID", "chart_limit", "report_section", "with_section"]

SECTION_ID = "stagegate"
ROOT = '<div id="root"></div>'  # where Locust's report renders itself


def chart_limit(limits: Sequence[LatencyLimit]) -> LatencyLimit | None:
    """The budget drawn on the chart, chosen as the terminal's (``chart.budget_line``): the
    total p95 budget, else the total's first other latency budget, else none."""
    line = budget_line((lim.endpoint, lim.metric, lim.limit_ms) for lim in limits)
    if line is None:
        return None
    return next(lim for lim in limits if lim.endpoint == TOTAL and lim.limit_ms == line)


def report_section(result: LoadResult, plan: LoadPlan) -> str:
    """A ``<section>`` that says which requests the report counts, with the chart."""
    left_out = []
    if plan.warmup > 0:
        left_out.append(f"the {format_duration(plan.warmup)} warm-up")
    unjudged = [s.name for s in plan.stages if not s.judge]
    if unjudged:
        names = ", ".join(unjudged)
        left_out.append(f"the stage{'s' if len(unjudged) > 1 else ''} {names} (judge: false)")
    counted = f"{result.total.requests:,} request{'' if result.total.requests == 1 else 's'}"
    lines = [
        f'<section id="{SECTION_ID}" style="font-family:sans-serif;margin:16px;'
        'padding:12px 16px;border:1px solid #ccc;border-radius:6px">',
        '<h2 style="margin-top:0">stagegate: latency over time, the judged requests</h2>',
        "<p>Every table, chart and failure of this report counts the requests the gate's "
        f"verdict judges ({escape(counted)})"
        + (
            f"; {escape(' and '.join(left_out))} {'is' if len(left_out) == 1 else 'are'} left out"
            if left_out
            else ""
        )
        + ".</p>",
    ]
    limit = chart_limit(plan.abort_latency)
    chart = svg_chart(result.timeline, result.stages, limit.limit_ms if limit else None)
    if chart:
        if limit is not None:
            budget = f"{TOTAL} {limit.metric} <= {format_limit(limit.limit_ms, 'ms')}"
            lines.append(
                "<p>The p95 latency of each interval of the run; the dashed red line is the "
                f"budget {escape(budget)}; what is not judged is hatched.</p>"
            )
        else:
            lines.append(
                "<p>The p95 latency of each interval of the run; what is not judged is hatched.</p>"
            )
        lines.append(chart)
    lines.append("</section>")
    return "\n".join(lines)


def with_section(html: str, section: str) -> str:
    """``html`` (Locust's report) with ``section`` at the top of its page, above Locust's own
    content; at the end of the body if the page is not laid out as expected."""
    at = html.rfind(ROOT)
    if at < 0:
        at = html.rfind("</body>")
    if at < 0:
        return html + section
    return html[:at] + section + "\n" + html[at:]
