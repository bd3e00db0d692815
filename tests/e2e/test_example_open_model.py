"""The bundled example's "Try the open model" (issue 11's "Done when"), as a new user follows it:
the YAML its README shows, pasted in place of the four lines of the example's load model, then
``SHOP_MODE=stall pytest <the example> --target=local --gate``.

The README's blocks are read from the README itself, so a block that stops working (a key the
loader refuses, a staging override the switch trips over) fails here. One real run, the
three-stage ramp with its durations shortened and the shop stalling every 2 s instead of 5 s
(``SHOP_STALL_EVERY``): any 2 s of judged load then holds a whole 500 ms of stall, so the
latency's p99 includes it whatever the machine's pace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from pytest_stagegate.config.loader import load_config

EXAMPLE = Path(__file__).parents[2] / "example_suites" / "shop"
# The example's load model, which the README says to replace: from `users: 10` to `wait: ...`.
MODEL_LINES = re.compile(r"^    users: 10\n.*?^    wait: [^\n]*\n", re.MULTILINE | re.DOTALL)
STALL_MS = 500.0  # SHOP_MODE=stall holds a request arriving during a stall until its end


def documented_blocks() -> tuple[str, str]:
    """The YAML blocks of the example README's "Try the open model": the rate, the ramp."""
    readme = (EXAMPLE / "README.md").read_text()
    section = readme.split("## Try the open model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, blocks
    assert "rate: 100/s" in blocks[0] and "stages:" in blocks[1]
    return blocks[0], blocks[1]


def switched(block: str) -> str:
    """The example's stagegate.yaml with ``block`` in place of its load model's four lines."""
    text = (EXAMPLE / "stagegate.yaml").read_text()
    new, count = MODEL_LINES.subn(lambda _: block, text, count=1)
    assert count == 1, "the example's load model lines moved: update the README and this test"
    return new


def test_the_documented_blocks_load_for_every_target(tmp_path: Path) -> None:
    rate, stages = documented_blocks()
    path = tmp_path / "stagegate.yaml"
    shutil.copy(EXAMPLE / "products.csv", tmp_path)  # the journey's data file, next to it

    path.write_text(switched(rate))
    config = load_config(path)  # every target's gate settings are checked here
    local = config.gate_settings("local").load
    assert (local.rate, local.stages, local.duration, local.warmup) == (100.0, (), 10.0, 2.0)
    assert local.users == 50  # half a second's worth of the rate: sends through a stall

    path.write_text(switched(stages))
    config = load_config(path)
    local = config.gate_settings("local").load
    assert local.open_model and local.rate is None
    assert [(s.name, s.duration, s.rate, s.judge) for s in local.stages] == [
        ("ramp-up", 3.0, 100.0, False),
        ("peak", 10.0, 100.0, True),
        ("ramp-down", 2.0, 0.0, False),
    ]
    assert local.duration == 15.0 and local.users == 50
    # staging keeps its own load model whichever the base uses
    staging = config.gate_settings("staging").load
    assert (staging.rate, staging.users, staging.duration, staging.stages) == (50.0, 50, 30.0, ())


def test_a_stall_of_the_bundled_example_shows_in_the_open_models_latency(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(EXAMPLE, shop, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    _, stages = documented_blocks()
    ramp = yaml.safe_load(stages)
    short = {"ramp-up": "1s", "peak": "3s", "ramp-down": "1s"}  # the example's warm-up is 2s
    for stage in ramp["stages"]:
        stage["duration"] = short[stage["name"]]
    block = textwrap.indent(yaml.safe_dump(ramp, sort_keys=False, default_flow_style=None), "    ")
    (shop / "stagegate.yaml").write_text(switched(block))

    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(shop), "--target=local", "--gate",
         "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, "SHOP_MODE": "stall", "SHOP_STALL_EVERY": "2"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    verdict: dict[str, Any] = json.loads((tmp_path / "stagegate-verdict.json").read_text())
    gate = verdict["gate"]
    assert gate["status"] == "completed", output

    # the verdict: the open model, its stages as written
    load = gate["load"]
    assert load["model"] == "open", load
    assert [
        (s["name"], s["judged"], s["level_from"], s["level_to"], s["unit"]) for s in load["stages"]
    ] == [
        ("ramp-up", False, 0.0, 100.0, "iterations/s"),
        ("peak", True, 100.0, 100.0, "iterations/s"),
        ("ramp-down", False, 100.0, 0.0, "iterations/s"),
    ]
    assert gate["profile"]["model"] == "open"
    assert [s["name"] for s in gate["profile"]["stages"]] == ["ramp-up", "peak", "ramp-down"]

    # the stall the shop really had is in the latency (measured from the schedule): a user
    # arriving during it waits for its end, up to 500 ms, and a quarter of them did ...
    total = next(e for e in gate["endpoints"] if e["name"] == "total")
    assert total["percentiles"]["p99"] >= STALL_MS / 2, total
    # ... while most were answered at once: the service time's median is far from the stall
    assert total["service_time"]["percentiles"]["p50"] < STALL_MS / 2, total
    # a latency budget of the example (all of them are under the stall) fails on it
    assert result.returncode == 1, output
    assert verdict["verdict"] == "fail"
    assert any("over its budget of" in r for r in verdict["reasons"]), verdict["reasons"]

    # the terminal: the load model where the run describes its load, and the chart
    header = next(line for line in output.splitlines() if "stagegate: gate on:" in line)
    assert "open model" in header and "3 stages" in header, header
    progress = [line for line in output.splitlines() if line.startswith("stagegate load:")]
    assert progress and all("| rate " in line and " dropped |" in line for line in progress)
    assert "load gate: ran to the end; open model, rate up to 100/s in 3 stages" in output
    assert "Open model: stages up to 100 iterations/s" in output, output
    assert "p95 latency over time" in output and "+peak" in output, output
