"""``stagegate history DIR --html PATH``: the history as one self-contained HTML file.

One file that opens offline: no script, no network, no external font, style sheet or image.
The charts are inline SVG, drawn here in the style of ``chart.svg_chart``; a Content Security
Policy (``default-src 'none'``) makes a browser refuse any resource the page might still name.
Every text that comes from a verdict (target, request and test names, commits) is escaped;
the verdicts were redacted when they were written.

Per target: the pass rate over the runs (the share of passing runs so far, each run a dot in
its verdict's colour) against the pass-rate goal; the time from each run's start to its
verdict, on an axis scaled to the runs, against the time goal (a line when the goal is within
about three times the longest run, else a note that it is off the chart); the p95, the p99 and
the error rate of every request name per run; the runs as a table with the critical tests that
failed. The runs are numbered on the x axis (``#1`` the oldest shown), with the start time
under a number when it differs from the one shown before; each axis labels its values in one
format.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

from ..units import format_duration, format_observed
from .history import TargetSummary, percent, to_verdict

__all__ = ["render_html"]

_W, _H = 960, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 180, 30, 40
_STATE_COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "error": "#ef6c00",
    "inconclusive": "#757575",
}
_PALETTE = (
    "#1565c0",
    "#6a1b9a",
    "#00838f",
    "#ad1457",
    "#558b2f",
    "#4e342e",
    "#283593",
    "#f9a825",
    "#37474f",
    "#d84315",
)
_GOAL = "#c62828"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}
.kpis{display:flex;gap:16px;flex-wrap:wrap;margin:8px 0 12px}
.kpi{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:170px}
.kpi b{display:block;font-size:22px}.kpi.bad b{color:#c62828}.kpi.good b{color:#2e7d32}
.kpi span{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5}.pass{color:#2e7d32}.fail{color:#c62828}.error{color:#ef6c00}
.inconclusive{color:#757575}.muted{color:#666;font-size:12px}svg{display:block;margin:6px 0}
"""


@dataclass(frozen=True)
class _Series:
    name: str
    values: Sequence[float | None]
    colour: str
    dots: Sequence[str] | None = None  # a colour per point (the verdicts' states)


def render_html(
    summaries: Sequence[TargetSummary],
    *,
    source: str = "",
    now: datetime | None = None,
    skipped: Sequence[str] = (),
) -> str:
    """The dashboard of ``summaries`` (one section per target) as a complete HTML document.
    ``source`` names the history folder, ``skipped`` the files that could not be read."""
    made = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>stagegate history</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>stagegate history</h1>",
        f'<p class="muted">{escape(source)}{" - " if source else ""}made {made}</p>',
    ]
    if not summaries:
        out.append("<p>No gated verdicts in this history.</p>")
    for s in summaries:
        out += _section(s)
    if skipped:
        out.append('<h2>Files not read</h2><ul class="muted">')
        out += [f"<li>{escape(line)}</li>" for line in skipped]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _section(s: TargetSummary) -> list[str]:
    n = len(s.runs)
    labels = _run_labels([r.started_at for r in s.runs])
    crit = s.critical_failures
    kpis = [
        _kpi(
            f"pass rate {percent(s.pass_rate)}",
            f"{s.passes} of {n} runs passed; goal {percent(s.pass_goal)}",
            s.meets_pass_goal,
        ),
        _kpi(
            f"time to verdict {to_verdict(s.median_seconds)}",
            f"median; {s.over_time_goal} of {n} over the {format_duration(s.time_goal)} goal",
            s.median_seconds <= s.time_goal,
        ),
        _kpi(
            f"critical failures {s.runs_with_critical_failures}",
            f"runs with a failed critical test, of {n}",
            not crit,
        ),
    ]
    out = [
        f"<section><h2>Target {escape(s.target)}</h2>",
        f'<div class="kpis">{"".join(kpis)}</div>',
    ]
    rolling: list[float] = []
    passes = 0
    for i, run in enumerate(s.runs):
        passes += run.passed
        rolling.append(passes / (i + 1))
    dots = [_STATE_COLOURS.get(r.state, "#757575") for r in s.runs]
    out.append(
        _chart(
            f"Pass rate of {s.target} (share of passing runs so far; dots: each run's verdict)",
            labels,
            [_Series("pass rate", rolling, "#1565c0", dots)],
            goal=(s.pass_goal, f"goal {percent(s.pass_goal)}"),
            fmt=percent,
            ymax=1.0,
        )
    )
    seconds = [r.seconds for r in s.runs]
    longest = max(seconds, default=0.0)
    goal_text = f"goal {format_duration(s.time_goal)}"
    on_chart = s.time_goal <= _GOAL_WITHIN * longest
    top = _nice_seconds(max(longest, s.time_goal if on_chart else 0.0) * 1.15)
    out.append(
        _chart(
            f"Time to verdict of {s.target} (run start to verdict)",
            labels,
            [_Series("time to verdict", seconds, "#6a1b9a", dots)],
            goal=(s.time_goal, goal_text) if on_chart else None,
            note="" if on_chart else f"{goal_text}, off the chart",
            fmt=to_verdict,
            axis=_seconds_axis,
            ymax=top,
        )
    )
    # one chart per figure kept for each request name: attribute, title, unit, axis scale
    # and suffix, the least top of the axis
    trends = (
        ("p95", "p95 latency trend", "ms", 1.0, " ms", 0.0),
        ("p99", "p99 latency trend", "ms", 1.0, " ms", 0.0),
        ("error_rate", "Error rate", "ratio", 100.0, "%", 0.01),
    )
    for attr, what, unit, scale, suffix, ymin_top in trends:
        series = [
            _Series(t.name, getattr(t, attr), _PALETTE[i % len(_PALETTE)])
            for i, t in enumerate(s.endpoints)
        ]
        if any(v is not None for se in series for v in se.values):
            out.append(
                _chart(
                    f"{what} per request name of {s.target}",
                    labels,
                    series,
                    fmt=functools.partial(format_observed, unit=unit),
                    axis=functools.partial(_decimal_axis, scale=scale, suffix=suffix),
                    ymin_top=ymin_top,
                )
            )
    out += _runs_table(s)
    if crit:
        out.append("<h3>Critical tests that failed</h3><ul>")
        out += [
            f"<li>{escape(name)}: {k} run{'' if k == 1 else 's'}</li>"
            for name, k in crit.most_common()
        ]
        out.append("</ul>")
    out.append("</section>")
    return out


def _kpi(value: str, note: str, good: bool) -> str:
    return (
        f'<div class="kpi {"good" if good else "bad"}"><b>{escape(value)}</b>'
        f"<span>{escape(note)}</span></div>"
    )


_GOAL_WITHIN = 3.0  # the time goal is drawn when at most this many times the longest run


def _run_labels(started: Sequence[datetime]) -> list[tuple[str, str]]:
    """Per run, its number (``#1`` the oldest shown) and its start (``12-02 07:17``)."""
    return [(f"#{i + 1}", t.strftime("%m-%d %H:%M")) for i, t in enumerate(started)]


def _nice_seconds(value: float) -> float:
    """The axis top for ``value`` seconds: a nice number of seconds, minutes or hours."""
    for unit, below in ((1.0, 120.0), (60.0, 7200.0)):
        if value < below:
            return _nice(value / unit) * unit
    return _nice(value / 3600) * 3600


def _seconds_axis(ticks: Sequence[float]) -> Callable[[float], str]:
    """One format for every tick of a time axis: all in seconds, minutes or hours."""
    top = max(ticks, default=0.0)
    unit, suffix = (1.0, "s") if top < 120 else (60.0, "m") if top < 7200 else (3600.0, "h")
    return _decimal_axis([t / unit for t in ticks], 1.0 / unit, suffix, grouped=False)


def _decimal_axis(
    ticks: Sequence[float], scale: float, suffix: str, *, grouped: bool = True
) -> Callable[[float], str]:
    """One format for every tick: the fewest decimals that show each tick (times ``scale``)
    exactly, the same for all (``0 ms, 250 ms, 500 ms``; ``0.00 ms, 1.25 ms, 2.50 ms``)."""
    scaled = [t * scale for t in ticks] if grouped else list(ticks)
    decimals = next((d for d in range(5) if all(abs(round(v, d) - v) < 1e-9 for v in scaled)), 4)
    comma = "," if grouped else ""

    def fmt(value: float) -> str:
        return f"{value * scale:{comma}.{decimals}f}{suffix}"

    return fmt


def _runs_table(s: TargetSummary) -> list[str]:
    out = [
        "<table><tr><th>run</th><th>started (UTC)</th><th>commit</th><th>verdict</th>"
        "<th>to verdict</th><th>p95 total</th><th>p99 total</th><th>errors total</th>"
        "<th>critical failed</th></tr>"
    ]
    for number, run in reversed(list(enumerate(s.runs, 1))):  # newest first
        total = run.endpoints.get("total")
        cells = [
            f"#{number}",
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.commit or "-",
            run.state,
            to_verdict(run.seconds),
            "-" if total is None or total.p95 is None else format_observed(total.p95, "ms"),
            "-" if total is None or total.p99 is None else format_observed(total.p99, "ms"),
            "-"
            if total is None or total.error_rate is None
            else format_observed(total.error_rate, "ratio"),
            ", ".join(run.critical_failures) or "-",
        ]
        tds = "".join(
            f'<td class="{escape(run.state)}">{escape(c)}</td>'
            if i == 3
            else f"<td>{escape(c)}</td>"
            for i, c in enumerate(cells)
        )
        out.append(f"<tr>{tds}</tr>")
    out.append("</table>")
    return out


def _chart(
    title: str,
    labels: Sequence[tuple[str, str]],
    series: Sequence[_Series],
    *,
    goal: tuple[float, str] | None = None,
    note: str = "",
    fmt: Callable[[float], str],
    axis: Callable[[Sequence[float]], Callable[[float], str]] | None = None,
    ymax: float | None = None,
    ymin_top: float = 0.0,
) -> str:
    """A line chart of ``series`` over the runs (evenly spaced, oldest left; ``labels`` the
    number and start of each), with the goal as a dashed red line (or ``note`` in red at the
    top right) and a legend on the right; one ``<svg>`` element, every text escaped. ``fmt``
    formats a point's value, ``axis`` makes the one formatter of the y axis's ticks."""
    n = len(labels)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    values = [v for se in series for v in se.values if v is not None]
    top = ymax
    if top is None:
        top = _nice(max([*values, goal[0] if goal else 0.0, ymin_top]) * 1.15)

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if n <= 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - min(max(v / top, 0.0), 1.0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
        'font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ddd"/>',
    ]
    ticks = (0.0, top / 2, top)
    tick_fmt = axis(ticks) if axis is not None else fmt
    for v in ticks:
        out.append(
            f'<text x="{_LEFT - 6}" y="{_f(y(v) + 4)}" text-anchor="end" fill="#555">'
            f"{escape(tick_fmt(v))}</text>"
        )
        out.append(
            f'<line x1="{_LEFT}" y1="{_f(y(v))}" x2="{_LEFT + plot_w}" y2="{_f(y(v))}" '
            'stroke="#e5e5e5"/>'
        )
    step = max(1, (n + 7) // 8)  # at most about 8 run labels
    shown = ""
    for i in range(0, n, step):
        number, when = labels[i]
        day, _, clock = when.partition(" ")
        under = "" if when == shown else clock if day == shown.partition(" ")[0] else when
        shown = when
        out.append(
            f'<text x="{_f(x(i))}" y="{_TOP + plot_h + 14}" text-anchor="middle" fill="#555">'
            f"{escape(number)}</text>"
        )
        if under:
            out.append(
                f'<text x="{_f(x(i))}" y="{_TOP + plot_h + 27}" text-anchor="middle" '
                f'fill="#777" font-size="10">{escape(under)}</text>'
            )
    if note:
        out.append(
            f'<text x="{_LEFT + plot_w - 4}" y="{_TOP + 14}" text-anchor="end" '
            f'fill="{_GOAL}" font-weight="bold">{escape(note)}</text>'
        )
    if goal is not None:
        gy = _f(y(goal[0]))
        out.append(
            f'<line x1="{_LEFT}" y1="{gy}" x2="{_LEFT + plot_w}" y2="{gy}" stroke="{_GOAL}" '
            'stroke-width="1.5" stroke-dasharray="6,4"/>'
        )
        out.append(
            f'<text x="{_LEFT + plot_w - 4}" y="{_f(y(goal[0]) - 5)}" text-anchor="end" '
            f'fill="{_GOAL}" font-weight="bold">{escape(goal[1])}</text>'
        )
    for k, se in enumerate(series):
        pts = [(x(i), y(v)) for i, v in enumerate(se.values) if v is not None]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(se.values):  # a gap where a run did not measure it
            if value is None:
                runs.append([])
            else:
                runs[-1].append((x(i), y(value)))
        for part in runs:
            if len(part) > 1:
                d = " ".join(f"{_f(a)},{_f(b)}" for a, b in part)
                out.append(
                    f'<polyline points="{d}" fill="none" stroke="{se.colour}" stroke-width="2"/>'
                )
        for j, (i, v) in enumerate((i, v) for i, v in enumerate(se.values) if v is not None):
            colour = se.dots[i] if se.dots is not None else se.colour
            out.append(
                f'<circle cx="{_f(pts[j][0])}" cy="{_f(pts[j][1])}" r="{4 if se.dots else 2.5}" '
                f'fill="{colour}"><title>{escape(" ".join(labels[i]))}: {escape(fmt(v))}'
                "</title></circle>"
            )
        ly = _TOP + 14 + 16 * k
        out.append(
            f'<line x1="{_LEFT + plot_w + 6}" y1="{ly - 4}" x2="{_LEFT + plot_w + 22}" '
            f'y2="{ly - 4}" stroke="{se.colour}" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{_LEFT + plot_w + 26}" y="{ly}" fill="#333">{escape(_short(se.name))}</text>'
        )
    if series and series[0].dots is not None:
        ly = _TOP + 14 + 16 * len(series)
        for state, colour in _STATE_COLOURS.items():
            out.append(
                f'<circle cx="{_LEFT + plot_w + 14}" cy="{ly - 4}" r="4" fill="{colour}"/>'
                f'<text x="{_LEFT + plot_w + 26}" y="{ly}" fill="#333">{state}</text>'
            )
            ly += 16
    out.append("</svg>")
    return "".join(out)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (1 for nothing)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _short(name: str, most: int = 24) -> str:
    return name if len(name) <= most else name[: most - 1] + "\u2026"


def _f(v: float) -> str:
    return f"{v:.1f}"
