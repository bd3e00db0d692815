"""verdict/chart.py: latency over time as text and as SVG. Pure: hand-made timelines."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from pytest_stagegate.verdict.chart import (
    Band,
    Point,
    bands_from_json,
    budget_line,
    points_from_json,
    svg_chart,
    text_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def steady(n: int = 60, ms: float = 100.0, *, judged_after: float = 0.0) -> list[Point]:
    return [Point(i * 0.5, ms, judged=i * 0.5 > judged_after) for i in range(1, n + 1)]


def plot(lines: list[str], width: int = 60) -> list[str]:
    """The plot rows without the title and the axis, after the gutter's ``|``, ``width``
    wide (the lines end where their last mark does)."""
    return [line.split("|", 1)[1].ljust(width) for line in lines[1:-1]]


def test_nothing_to_draw_is_no_chart() -> None:
    assert text_chart([], [], 300) == []
    assert text_chart([Point(0.5, None), Point(1.0, None)], [], 300) == []
    assert svg_chart([], [], 300) == ""


def test_the_shape_title_plot_and_axis_in_height_plus_two_lines() -> None:
    lines = text_chart(steady(), [], 300, width=40, height=8)
    assert len(lines) == 10
    assert lines[0] == "p95 latency over time (* judged, o not judged, - budget 300 ms)"
    assert lines[-1].endswith(" 30s")  # the run's length at the end of the time axis
    assert all(line.isascii() for line in lines)
    gutter = len(lines[1].split("|")[0])
    assert {len(line.split("|")[0]) for line in lines[1:-1]} == {gutter}
    assert max(len(line) for line in lines[1:]) <= gutter + 2 + 40 + 4


def test_the_budget_row_separates_within_from_over() -> None:
    """A point on the budget's row or below is within it; one above is over."""
    values = [299.0, 301.0, 100.0, 900.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0]
    timeline = [Point(i + 1.0, v) for i, v in enumerate(values)]
    lines = text_chart(timeline, [], 300, width=10, height=8)
    rows = plot(lines, 10)  # top first
    budget = next(i for i, line in enumerate(lines) if line.lstrip().startswith("300 ms"))
    budget_row = budget - 1
    column = {c: next(r for r, row in enumerate(rows) if row[c] == "*") for c in range(4)}
    assert column[0] >= budget_row  # 299: on or under the line (rows count from the top)
    assert column[1] < budget_row  # 301: above it
    assert column[2] > budget_row
    assert column[3] == min(column.values()) < column[1]  # the highest, and not clipped
    assert "^" not in "".join(rows)
    assert rows[budget_row].count("-") == 9  # the line shows where no point sits on it


def test_far_over_the_budget_is_clipped_and_marked() -> None:
    timeline = [Point(float(i), 5000.0 if i == 10 else 10.0) for i in range(1, 11)]
    lines = text_chart(timeline, [], 30, width=10, height=4)
    rows = plot(lines, 10)
    assert rows[0][9] == "^"
    assert "30 ms" in lines[-2]  # the budget is the bottom row: its line is still drawn


def test_a_stall_is_not_averaged_away_by_narrow_columns() -> None:
    """300 intervals in 30 columns: each column shows the highest p95 it covers."""
    timeline = steady(300, 100.0)
    timeline[150] = Point(timeline[150].t, 2000.0)
    lines = text_chart(timeline, [], 300, width=30, height=8)
    rows = plot(lines, 30)
    budget_row = next(i for i, line in enumerate(lines) if line.lstrip().startswith("300 ms")) - 1
    over = [row for row in rows[:budget_row] if "*" in row]
    assert len(over) == 1 and over[0].count("*") == 1


def test_unjudged_parts_and_stages_are_marked() -> None:
    timeline = steady(60, 100.0, judged_after=5.0)
    stages = [Band("ramp", 0.0, 10.0, judged=False), Band("peak", 10.0, 30.0)]
    lines = text_chart(timeline, stages, 300, width=60, height=8)
    rows = plot(lines)
    marks = "".join(rows)
    assert "o" in marks and "*" in marks
    # the warm-up (first 5 s = 10 columns) is drawn with o, the rest with *
    low = next(row for row in rows if "*" in row)
    assert set(low[:10]) == {"o"}
    assert set(low[11:].replace(":", "")) == {"*"}
    axis = lines[-1]
    # the first stage starts at the corner; the next at a + of its own
    assert axis.split(" +", 1)[1].startswith("ramp......")
    assert "+peak" in axis
    assert any(row[20] == ":" for row in rows)  # the boundary down the plot at 10 s of 30 s


def test_the_unjudged_stretch_on_the_time_axis() -> None:
    lines = text_chart(steady(20, 50.0, judged_after=5.0), [], None, width=20, height=4)
    axis = lines[-1].split("+", 1)[1]
    assert axis.startswith("..........")
    assert axis[10:20] == "-" * 10
    assert "budget" not in lines[0]


def test_stage_names_are_cut_to_their_room_and_made_printable() -> None:
    stages = [Band("a\nvery long stage name", 0.0, 1.0), Band("b", 1.0, 10.0)]
    axis = text_chart(steady(20), stages, 300, width=20, height=4)[-1]
    assert "\n" not in axis
    assert "very long" not in axis


@pytest.mark.parametrize("bad", [math.inf, math.nan, 10**400], ids=["inf", "nan", "10**400"])
def test_a_point_without_a_finite_p95_or_time_is_skipped(bad: float) -> None:
    """Defensive: the readers refuse these, a caller that did not must still get a chart (the
    interval drawn as one without latency), never an OverflowError or ValueError."""
    base = steady(20)
    with_bad = [*base, Point(10.5, bad), Point(bad, 100.0)]
    without = [*base, Point(10.5, None)]
    assert text_chart(with_bad, [], 300) == text_chart(without, [], 300) != []
    assert svg_chart(with_bad, [], 300) == svg_chart(without, [], 300) != ""
    assert text_chart(steady(20), [], bad) == text_chart(steady(20), [], None)
    assert svg_chart(steady(20), [], bad) == svg_chart(steady(20), [], None)
    assert points_from_json([{"t": 1.0, "p95_ms": bad}]) == [Point(1.0, None, True)]


def test_points_and_bands_from_the_verdicts_json() -> None:
    points = points_from_json(
        [{"t": 1.0, "p95_ms": 12.5, "judged": False}, {"t": 2, "p95_ms": None}, {"t": "x"}]
    )
    assert points == [Point(1.0, 12.5, False), Point(2.0, None, True), Point(0.0, None, True)]
    bands = bands_from_json([{"name": "peak", "start_s": 5, "end_s": 25.5, "judged": True}])
    assert bands == [Band("peak", 5.0, 25.5, True)]


@pytest.mark.parametrize(
    ("budgets", "limit"),
    [
        ([("total", "p99", 800.0), ("total", "p95", 300.0)], 300.0),
        ([("GET /a", "p95", 100.0), ("total", "avg", 150.0), ("total", "p99", 800.0)], 150.0),
        ([("total", "service_time_p95", 100.0), ("total", "p95_regression", 400.0)], None),
        ([("total", "error_rate", 0.01), ("total", "min_rps", 20.0)], None),
        ([("total", "p95", None), ("total", "max", 2000.0)], 2000.0),
    ],
)
def test_the_budget_line_is_totals_p95_else_its_first_latency_budget(
    budgets: list[tuple[str, str, float | None]], limit: float | None
) -> None:
    assert budget_line(budgets) == limit


def test_svg_is_self_contained_escaped_and_well_formed() -> None:
    timeline = [*steady(20, 100.0, judged_after=2.0), Point(10.5, None), Point(11.0, 400.0)]
    stages = [Band("<ramp> & co", 0.0, 3.0, judged=False), Band("peak", 3.0, 11.0)]
    svg = svg_chart(timeline, stages, 300, title='p95 "shop" <staging>')
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg"
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert "href" not in svg and "javascript" not in svg.lower()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert 'p95 "shop" <staging>' in texts  # escaped in the source, intact once parsed
    assert "<ramp> & co (not judged)" in texts
    assert "budget 300 ms" in texts
    # the interval without a p95 breaks the line in two
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    budget = [line for line in root.iter(f"{SVG}line") if line.get("stroke") == "#c62828"]
    assert len(budget) == 1


def test_svg_without_a_budget_draws_no_budget_line() -> None:
    svg = svg_chart(steady(10), [], None)
    assert "budget" not in svg
    assert "#c62828" not in svg


def test_a_budget_far_above_every_point_is_said_not_drawn() -> None:
    """Points under a quarter of the budget: the plot is scaled to them, so their shape
    shows; the budget is named in the title."""
    timeline = [Point(float(i), 10.0 + i) for i in range(1, 21)]
    lines = text_chart(timeline, [], 500, width=20, height=8)
    assert lines[0] == "p95 latency over time (* judged, o not judged; budget 500 ms, far above)"
    rows = plot(lines, 20)
    assert "-" not in "".join(rows)
    assert len({row.index("*") for row in rows if "*" in row}) > 4  # the rise is visible
    assert text_chart(timeline, [], 100, width=20, height=8)[0].endswith("- budget 100 ms)")
    svg = svg_chart(timeline, [], 500)
    assert "budget 500 ms, far above" in svg and 'stroke="#c62828"' not in svg


def test_svg_hatches_the_warmup_once() -> None:
    svg = svg_chart(steady(40, 100.0, judged_after=5.0), [], 300)
    assert svg.count('fill="url(#sg-unjudged)"') == 1
