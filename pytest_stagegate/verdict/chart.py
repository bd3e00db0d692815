"""Latency over time, as plain text (the terminal summary, ``stagegate report``) and as an inline
SVG (Locust's HTML report). Pure: no I/O, no dependencies beyond the standard library.

One chart per run, with the stages as labelled bands on it (the time axis is the run's, so the
stages sit side by side as they happened, each stage's region of the chart being that stage's
chart). What is drawn:

- the p95 latency of each interval of the timeline (``TimelinePoint``: successes and timeouts
  ending in it), as a point per column (text) or a stepped line (SVG);
- the budget, a horizontal line at ``limit_ms`` (None: no line): points above it are over;
- the stage boundaries (``+`` on the time axis and ``:`` down the plot, or a band in the SVG),
  each stage named at its start;
- what is not judged (the warm-up, stages with ``judge: false``): ``o`` instead of ``*`` and
  ``.`` on the time axis, or a grey hatched band in the SVG.

Both functions take any objects with the attributes they read (``load.result.TimelinePoint`` and
``StageResult``, or ``Point`` and ``Band`` here, which ``points_from_json`` / ``bands_from_json``
build from a verdict's JSON): this module sits in ``verdict/``, below ``load/``, and imports
nothing of it. The text is ASCII except for the names of stages, as written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol, TypeGuard

from ..metrics import parse_metric
from ..units import format_duration, format_limit, format_ms

__all__ = [
    "Band",
    "ChartPoint",
    "ChartStage",
    "Point",
    "bands_from_json",
    "budget_line",
    "points_from_json",
    "svg_chart",
    "text_chart",
]


class ChartPoint(Protocol):
    """One interval of the timeline: ``t`` its end (seconds from the load start)."""

    @property
    def t(self) -> float: ...
    @property
    def p95_ms(self) -> float | None: ...
    @property
    def judged(self) -> bool: ...


class ChartStage(Protocol):
    """One stage: seconds from the load start."""

    @property
    def name(self) -> str: ...
    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def judged(self) -> bool: ...


@dataclass(frozen=True)
class Point:
    t: float
    p95_ms: float | None
    judged: bool = True


@dataclass(frozen=True)
class Band:
    name: str
    start_s: float
    end_s: float
    judged: bool = True


def _finite(value: object) -> TypeGuard[float]:
    """A number a float holds: not a bool, an infinity, NaN, nor an int too large (10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _num(value: object, default: float = 0.0) -> float:
    return float(value) if _finite(value) else default


def points_from_json(timeline: Iterable[Mapping[str, Any]]) -> list[Point]:
    """The verdict's ``gate.load.timeline`` entries (``t``, ``p95_ms``, ``judged``) as points."""
    points = []
    for entry in timeline:
        p95 = entry.get("p95_ms")
        points.append(
            Point(
                t=_num(entry.get("t")),
                p95_ms=_num(p95) if _finite(p95) else None,
                judged=entry.get("judged", True) is not False,
            )
        )
    return points


def bands_from_json(stages: Iterable[Mapping[str, Any]]) -> list[Band]:
    """The verdict's ``gate.load.stages`` entries (``name``, ``start_s``, ``end_s``, ``judged``)."""
    return [
        Band(
            name=str(s.get("name", "")),
            start_s=_num(s.get("start_s")),
            end_s=_num(s.get("end_s")),
            judged=s.get("judged", True) is not False,
        )
        for s in stages
    ]


def budget_line(budgets: Iterable[tuple[str, str, float | None]]) -> float | None:
    """The limit the chart draws, from (endpoint, metric, limit in ms) triples: the p95
    budget of ``total``, else its first other latency budget (pNN, avg, max; not a
    regression or a service time, which are not the latency drawn); None without one."""
    first: float | None = None
    for endpoint, metric, limit in budgets:
        if endpoint != "total" or limit is None or limit <= 0:
            continue
        if metric == "p95":
            return float(limit)
        try:
            parsed = parse_metric(metric)
        except ValueError:
            continue
        latency = parsed.is_latency and not (parsed.regression or parsed.service_time)
        if first is None and latency:
            first = float(limit)
    return first


# --- shared geometry ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    ymax: float  # the top of the plot, ms
    end: float  # seconds: the right edge
    budget: bool = False  # the budget line is on the plot (not far above every point)


def _intervals(timeline: Sequence[ChartPoint]) -> list[tuple[float, float, ChartPoint]]:
    """Each point with the interval it covers, (previous t, t]; sorted by t. Defensive (the
    readers refuse them): a point whose time is not a finite number is left out, one whose p95
    is not is an interval without latency."""
    out: list[tuple[float, float, ChartPoint]] = []
    previous = 0.0
    points = [
        p if p.p95_ms is None or _finite(p.p95_ms) else Point(float(p.t), None, p.judged)
        for p in timeline
        if _finite(p.t)
    ]
    for p in sorted(points, key=lambda p: p.t):
        start = min(previous, p.t)
        out.append((start, p.t, p))
        previous = p.t
    return out


def _finite_stages(stages: Sequence[ChartStage]) -> list[ChartStage]:
    """Defensive, like ``_intervals``: the stages whose start and end are finite numbers."""
    return [s for s in stages if _finite(s.start_s) and _finite(s.end_s)]


_FAR_UNDER = 0.25


def _scale(values: Sequence[float], limit_ms: float | None, rows: int, end: float) -> _Scale:
    """The y range. With a budget, its line falls on a row boundary (a point drawn on or below
    the budget's row is within it, one above is over) and, when the points allow, nothing is
    clipped: ymax = limit * rows / k for the largest k that keeps every point in range. When
    every point is under a quarter of the budget, the plot is scaled to the points (their
    shape shows) and the budget is left off it, said in words instead."""
    vmax = max(values, default=0.0)
    if limit_ms is None or limit_ms <= 0 or vmax < limit_ms * _FAR_UNDER:
        # the highest point one row below the top, like a budget that is not crossed
        return _Scale(ymax=vmax * rows / (rows - 1) if vmax > 0 else 1.0, end=end)
    if vmax <= limit_ms:
        k = rows - 1  # the budget one row below the top: headroom to see it is not crossed
    else:
        k = max(1, math.floor(limit_ms * rows / vmax))
    return _Scale(ymax=limit_ms * rows / k, end=end, budget=True)


def _clean(name: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in name)


# --- text -----------------------------------------------------------------------------------


def text_chart(
    timeline: Sequence[ChartPoint],
    stages: Sequence[ChartStage],
    limit_ms: float | None,
    *,
    width: int = 60,
    height: int = 8,
) -> list[str]:
    """The p95 over time as ``height + 2`` lines of plain text (a title, the plot, the time
    axis with the stages); [] when the timeline has no latency to draw.

    Each column is a slice of the run; its point is the highest p95 of the intervals it
    overlaps (a stall is never averaged away), ``*`` when that interval was judged, ``o`` when
    not (warm-up, ``judge: false``), ``^`` when it is above the top of the plot. The budget is a
    row of ``-``: a point on it or below is within the budget. On the time axis ``+`` marks
    where a stage starts, followed by its name, and ``.`` a stretch not judged at all.
    """
    width = max(10, width)
    height = max(3, height)
    spans = _intervals(timeline)
    stages, limit_ms = _finite_stages(stages), limit_ms if _finite(limit_ms) else None
    if not any(p.p95_ms is not None for _, _, p in spans):
        return []
    end = max([b for _, b, _ in spans] + [s.end_s for s in stages])
    if end <= 0:
        return []
    # per column: the highest point overlapping it, and whether any judged interval overlaps
    values: list[float | None] = [None] * width
    judged_value = [True] * width
    judged_any = [False] * width
    covered = [False] * width
    for a, b, p in spans:
        first = min(width - 1, max(0, math.floor(a / end * width)))
        last = min(width - 1, max(first, math.ceil(b / end * width) - 1))
        for c in range(first, last + 1):
            covered[c] = True
            judged_any[c] = judged_any[c] or p.judged
            current = values[c]
            if p.p95_ms is not None and (current is None or p.p95_ms > current):
                values[c] = p.p95_ms
                judged_value[c] = p.judged
    scale = _scale([v for v in values if v is not None], limit_ms, height, end)
    step = scale.ymax / height
    budget_row = (
        round(limit_ms / step) - 1 if scale.budget and limit_ms is not None else None
    )  # from the bottom; exact by construction of the scale
    boundaries = {min(width - 1, round(s.start_s / end * width)) for s in stages if s.start_s > 0}

    grid = [[" "] * width for _ in range(height)]  # grid[0] is the bottom row
    for c in boundaries:
        for r in range(height):
            grid[r][c] = ":"
    if budget_row is not None:
        for c in range(width):
            grid[budget_row][c] = "-"
    for c, v in enumerate(values):
        if v is None:
            continue
        row = max(0, math.ceil(v / step - 1e-9) - 1)
        mark = "*" if judged_value[c] else "o"
        if row >= height:
            row, mark = height - 1, "^"
        grid[row][c] = mark

    top = format_ms(scale.ymax)
    budget = format_limit(limit_ms, "ms") if budget_row is not None and limit_ms else ""
    gutter = max(len(top), len(budget), 4)
    legend = "* judged, o not judged"
    if budget:
        legend += f", - budget {budget}"
    elif limit_ms is not None and limit_ms > 0:
        legend += f"; budget {format_limit(limit_ms, 'ms')}, far above"
    lines = [f"p95 latency over time ({legend})"]
    for r in range(height - 1, -1, -1):
        label = top if r == height - 1 else budget if r == budget_row else ""
        lines.append(f"{label:>{gutter}} |{''.join(grid[r])}".rstrip())

    axis = ["-" if (judged_any[c] or not covered[c]) else "." for c in range(width)]
    starts = sorted(
        (min(width - 1, round(s.start_s / end * width)), _clean(s.name)) for s in stages
    )
    for i, (c, name) in enumerate(starts):
        if c in boundaries:
            axis[c] = "+"
            c += 1
        stop = starts[i + 1][0] if i + 1 < len(starts) else width
        room = stop - c - 1
        if room >= 2:
            for j, ch in enumerate(name[:room]):
                axis[c + j] = ch
    # the run's length to a tenth of a second (the last tick ends at 3.001 s)
    lines.append(f"{'0 ms':>{gutter}} +{''.join(axis)} {format_duration(round(end, 1))}")
    return lines


# --- SVG ------------------------------------------------------------------------------------

_W, _H = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 40, 36
_STAGE_FILLS = ("#eef3fb", "#f7f7f7")


def _f(value: float) -> str:
    return f"{value:.1f}"


def svg_chart(
    timeline: Sequence[ChartPoint],
    stages: Sequence[ChartStage],
    limit_ms: float | None,
    *,
    title: str = "",
) -> str:
    """The p95 over time as one self-contained ``<svg>`` element (no script, no external
    resource, every text escaped): a stepped line of the intervals' p95 (a gap where an
    interval has none), the budget as a dashed red line, each stage a labelled band, what is
    not judged hatched grey. "" when the timeline has no latency to draw."""
    spans = _intervals(timeline)
    stages, limit_ms = _finite_stages(stages), limit_ms if _finite(limit_ms) else None
    if not any(p.p95_ms is not None for _, _, p in spans):
        return ""
    end = max([b for _, b, _ in spans] + [s.end_s for s in stages])
    if end <= 0:
        return ""
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM
    values = [p.p95_ms for _, _, p in spans if p.p95_ms is not None]
    scale = _scale(values, limit_ms, 8, end)

    def x(t: float) -> float:
        return _LEFT + plot_w * min(max(t / end, 0.0), 1.0)

    def y(ms: float) -> float:
        return _TOP + plot_h * (1 - min(max(ms / scale.ymax, 0.0), 1.0))

    label = title or "p95 latency over time"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(label)}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(label)}</title>",
        '<defs><pattern id="sg-unjudged" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#f0f0f0"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#d0d0d0" stroke-width="2"/></pattern></defs>',
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(label)}</text>',
    ]
    # stage bands, then what is not judged (hatched) over them
    for i, s in enumerate(sorted(stages, key=lambda s: s.start_s)):
        x0, x1 = x(s.start_s), x(s.end_s)
        fill = "url(#sg-unjudged)" if not s.judged else _STAGE_FILLS[i % 2]
        out.append(
            f'<rect x="{_f(x0)}" y="{_TOP}" width="{_f(max(0.0, x1 - x0))}" height="{plot_h}" '
            f'fill="{fill}"/>'
        )
        name = escape(s.name) + ("" if s.judged else " (not judged)")
        out.append(
            f'<text x="{_f(x0 + 3)}" y="{_TOP - 4}" fill="#333">{name}</text>'
            if x1 - x0 > 30
            else ""
        )
        if s.start_s > 0:
            out.append(
                f'<line x1="{_f(x0)}" y1="{_TOP}" x2="{_f(x0)}" y2="{_TOP + plot_h}" '
                'stroke="#888" stroke-dasharray="2,2"/>'
            )
    # unjudged intervals outside unjudged stages (the warm-up)
    unjudged_stages = [(s.start_s, s.end_s) for s in stages if not s.judged]
    stretches: list[list[float]] = []  # contiguous, one rect each
    for a, b, p in spans:
        if not p.judged and not any(lo <= a and b <= hi for lo, hi in unjudged_stages):
            if stretches and stretches[-1][1] >= a:
                stretches[-1][1] = b
            else:
                stretches.append([a, b])
    for a, b in stretches:
        out.append(
            f'<rect x="{_f(x(a))}" y="{_TOP}" width="{_f(max(0.0, x(b) - x(a)))}" '
            f'height="{plot_h}" fill="url(#sg-unjudged)"/>'
        )
    # axes and their labels
    out.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'stroke="#333"/>'
    )
    out.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#333"/>')
    for ms in (0.0, scale.ymax / 2, scale.ymax):
        out.append(
            f'<text x="{_LEFT - 4}" y="{_f(y(ms) + 4)}" text-anchor="end">'
            f"{escape(format_ms(ms) if ms else '0 ms')}</text>"
        )
    for t, anchor in ((0.0, "start"), (end, "end")):
        out.append(
            f'<text x="{_f(x(t))}" y="{_TOP + plot_h + 14}" text-anchor="{anchor}">'
            f"{escape(format_duration(round(t, 1)) if t else '0s')}</text>"
        )
    # the budget
    if scale.budget and limit_ms is not None:
        yb = y(limit_ms)
        out.append(
            f'<line x1="{_LEFT}" y1="{_f(yb)}" x2="{_LEFT + plot_w}" y2="{_f(yb)}" '
            'stroke="#c62828" stroke-width="1.5" stroke-dasharray="6,4"/>'
        )
        out.append(
            f'<text x="{_LEFT + plot_w - 2}" y="{_f(yb - 4)}" text-anchor="end" fill="#c62828">'
            f"budget {escape(format_limit(limit_ms, 'ms'))}</text>"
        )
    elif limit_ms is not None and limit_ms > 0:
        out.append(
            f'<text x="{_LEFT + plot_w - 2}" y="{_TOP + 12}" text-anchor="end" fill="#c62828">'
            f"budget {escape(format_limit(limit_ms, 'ms'))}, far above</text>"
        )
    # the p95, a stepped line per run of intervals that have one
    runs: list[list[str]] = []
    current: list[str] = []
    for a, b, p in spans:
        if p.p95_ms is None:
            if current:
                runs.append(current)
            current = []
            continue
        yy = _f(y(p.p95_ms))
        current.extend((f"{_f(x(a))},{yy}", f"{_f(x(b))},{yy}"))
    if current:
        runs.append(current)
    for run in runs:
        out.append(
            f'<polyline points="{" ".join(run)}" fill="none" stroke="#1565c0" stroke-width="1.5"/>'
        )
    out.append(
        f'<text x="{_LEFT + plot_w}" y="{_H - 6}" text-anchor="end" fill="#555">'
        "p95 per interval; hatched: not judged</text>"
    )
    out.append("</svg>")
    return "\n".join(line for line in out if line)
