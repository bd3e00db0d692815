"""verdict/report.py for the load models: the model sentence, the stages table and the chart,
in ``stagegate report`` and in the lines the terminal summary prints. Pure: verdict dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_stagegate.verdict.report import load_model_lines, load_model_sentence, render
from tests.verdict_samples import SAMPLES


def open_gate() -> dict[str, Any]:
    gate: dict[str, Any] = json.loads(json.dumps(SAMPLES["open"]().to_dict()))["gate"]
    return gate


def closed_gate(timeline: bool = True) -> dict[str, Any]:
    gate = json.loads(json.dumps(SAMPLES["pass"]().to_dict()))["gate"]
    gate["load"] = {
        "model": "closed",
        "rate": None,
        "iterations_due": 0,
        "dropped": 0,
        "dropped_share": 0.0,
        "arrival_lag_s": None,
        "stages": [],
        "timeline": [
            {
                "t": t / 2,
                "requests": 40,
                "failures": 0,
                "p95_ms": 150.0,
                "stage": "",
                "judged": t > 10,
            }
            for t in range(1, 61)
        ]
        if timeline
        else [],
    }
    return gate


@pytest.mark.parametrize(
    ("load", "users", "text"),
    [
        (
            {"model": "open", "rate": 50, "iterations_due": 1500, "dropped": 3},
            60,
            "Open model: 50 iterations/s, users up to 60; 3 of 1,500 iterations dropped (0.2%).",
        ),
        (
            {
                "model": "open",
                "rate": 50,
                "iterations_due": 3000,
                "dropped": 45,
                "arrival_lag_s": 0.5,
            },
            60,
            "Open model: 50 iterations/s, users up to 60; 45 of 3,000 iterations dropped (1.5%, "
            "not started within 500ms of their schedule), over 1%: no latency budget can "
            "pass (raise users, or add --gate-workers).",
        ),
        (
            {"model": "open", "rate": 50, "iterations_due": 3000, "dropped": 30},
            60,
            "Open model: 50 iterations/s, users up to 60; 30 of 3,000 iterations dropped (1%).",
        ),
        ({"model": "closed"}, 20, "Closed model: 20 users."),
        (
            {"model": "closed", "stages": [{"level_to": 10}, {"level_to": 40}, {"level_to": 0}]},
            40,
            "Closed model: stages up to 40 users.",
        ),
    ],
)
def test_the_load_model_sentence(load: dict[str, Any], users: int, text: str) -> None:
    assert load_model_sentence(load, users) == text


def test_the_report_shows_the_model_the_stages_and_the_chart() -> None:
    text = render(json.loads(json.dumps(SAMPLES["open"]().to_dict())), "text")
    assert "Open model: stages up to 50 iterations/s, users up to 60; 3 of 1,230" in text
    assert "spawn rate" not in text  # all users start at once in the open model
    table = text.split("stage  time")[1].split("\n\n")[0].splitlines()
    assert table[2].split()[:6] == ["ramp", "0s", "-", "5s", "0", "->"]
    assert table[3].split()[-2:] == ["270.0", "ms"]  # the peak's own p95
    assert "p95 latency over time (* judged, o not judged, - budget 300 ms)" in text
    assert "p95 of total in stage peak" in text
    markdown = render(json.loads(json.dumps(SAMPLES["open"]().to_dict())), "markdown")
    assert "```text\np95 latency over time" in markdown


def test_the_terminal_lines_of_an_open_run() -> None:
    lines = load_model_lines(open_gate())
    assert lines[0].startswith("Open model: stages up to 50 iterations/s")
    assert any(line.startswith("peak ") for line in lines)
    chart = lines[lines.index(next(x for x in lines if x.startswith("p95 latency"))) :]
    assert len(chart) == 10


def test_a_closed_run_without_stages_shows_only_the_chart() -> None:
    lines = load_model_lines(closed_gate())
    assert len(lines) == 10
    assert lines[0] == "p95 latency over time (* judged, o not judged, - budget 300 ms)"
    assert load_model_lines(closed_gate(timeline=False)) == []


def test_a_verdict_without_a_load_section_shows_nothing_new() -> None:
    gate = json.loads(json.dumps(SAMPLES["pass"]().to_dict()))["gate"]
    assert "load" not in gate
    assert load_model_lines(gate) == []
