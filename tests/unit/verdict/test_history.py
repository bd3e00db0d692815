"""The history of verdicts (verdict/history.py): names, retention, selection, the median, the
pass rate and the time to a verdict, text and markdown."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.verdict import sign_verdict
from pytest_stagegate.verdict.history import (
    baseline,
    entries,
    entry_name,
    folder_name,
    load_runs,
    median_stats,
    prune,
    render,
    store,
    summarize,
)
from pytest_stagegate.verdict.model import parse_timestamp
from tests.verdict_samples import fail_verdict, pass_verdict


def run_data(
    i: int, state: str = "pass", *, p95: float = 100.0, minutes: float = 5
) -> dict[str, Any]:
    data = copy.deepcopy((pass_verdict() if state == "pass" else fail_verdict()).to_dict())
    began = parse_timestamp(data["started_at"]) + timedelta(hours=i)
    data["started_at"] = began.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    data["finished_at"] = (began + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data["verdict"], data["promote"] = state, state == "pass"
    for e in data["gate"]["endpoints"]:
        e["percentiles"]["p95"] = p95
    return data


def test_names_sort_by_time_and_say_commit_and_state() -> None:
    data = run_data(0)
    data["started_at"] = "2026-12-02T06:43:57.5Z"
    assert entry_name(data) == "20261202T064357.500000Z-3f2a9c1-pass.json"
    data["commit"] = {"sha": None, "ref": None, "run_url": None, "source": "none"}
    assert entry_name(data).endswith("-nocommit-pass.json")
    names = [entry_name(run_data(i)) for i in (10, 2, 0)]
    assert sorted(names) == names[::-1]


@pytest.mark.parametrize(
    ("target", "folder"),
    [("staging", "staging"), ("a/b", "a_b"), ("..", "_.."), (".hidden", "_.hidden"), ("", "_")],
)
def test_folder_names_are_safe(target: str, folder: str) -> None:
    assert folder_name(target) == folder


def test_store_writes_the_verdict_as_is_and_keeps_the_newest(tmp_path: Path) -> None:
    signed = sign_verdict(run_data(0), b"k" * 16)
    path = store(tmp_path, signed, keep=3)
    assert json.loads(path.read_text()) == signed
    assert path.parent == tmp_path / "staging"
    (tmp_path / "staging" / "notes.txt").write_text("mine")
    for i in range(1, 5):
        store(tmp_path, run_data(i, "fail" if i == 2 else "pass"), keep=3)
    kept = entries(tmp_path / "staging")
    assert [p.name[:15] for p in kept] == [entry_name(run_data(i))[:15] for i in (2, 3, 4)]
    assert (tmp_path / "staging" / "notes.txt").exists()  # not ours: never removed
    assert prune(tmp_path / "staging", 1) == kept[:2]


def test_two_runs_in_the_same_microsecond_are_both_kept(tmp_path: Path) -> None:
    a, b = store(tmp_path, run_data(0), 5), store(tmp_path, run_data(0), 5)
    assert a != b and [p.name for p in entries(tmp_path / "staging")] == [a.name, b.name]


def test_baseline_is_the_latest_pass_of_the_target(tmp_path: Path) -> None:
    store(tmp_path, run_data(0, p95=100), 10)
    newest_pass = store(tmp_path, run_data(1, p95=200), 10)
    store(tmp_path, run_data(2, "fail", p95=900), 10)
    other = run_data(3, p95=5)
    other["target"]["name"] = "production"
    store(tmp_path, other, 10)
    found = baseline(tmp_path, "staging")
    assert [r.path for r in found.runs] == [newest_pass]
    assert found.stats is not None and found.stats["GET /api/products"].percentiles["p95"] == 200
    assert found.describe().startswith(newest_pass.name)
    record = found.to_dict(tmp_path)
    assert record["from"] == "history" and record["verdicts"][0]["file"] == str(newest_pass)
    none = baseline(tmp_path, "qa")
    assert none.stats is None and none.runs == ()
    assert none.describe() == "no passing verdict of this target in the history yet"


def test_baseline_median_of_k_passes(tmp_path: Path) -> None:
    for i, p95 in enumerate((100, 300, 200, 999)):
        store(tmp_path, run_data(i, "fail" if p95 == 999 else "pass", p95=p95), 10)
    found = baseline(tmp_path, "staging", median_of=3)
    assert found.stats is not None and len(found.runs) == 3
    assert found.stats["total"].percentiles["p95"] == 200  # median of 100, 300, 200
    assert found.describe().startswith("the median of the last 3 passing verdicts; newest ")
    few = baseline(tmp_path, "staging", median_of=5)
    assert len(few.runs) == 3 and "5 asked" in few.describe()


def test_with_a_signing_key_an_unsigned_or_forged_verdict_is_passed_over(tmp_path: Path) -> None:
    key = b"the-key-of-the-run"
    good = store(tmp_path, sign_verdict(run_data(0, p95=100), key), 10)
    store(tmp_path, run_data(1, p95=1), 10)  # planted, unsigned
    store(tmp_path, sign_verdict(run_data(2, p95=1), b"another key"), 10)
    found = baseline(tmp_path, "staging", signing_key=key)
    assert [r.path for r in found.runs] == [good]
    assert len(found.skipped) == 2
    assert [r.path for r in baseline(tmp_path, "staging").runs] != [good]  # no key: the latest


def test_median_stats_take_medians_and_the_fewest_samples() -> None:
    datas = [run_data(i, p95=p) for i, p in enumerate((10.0, 40.0, 20.0, 30.0))]
    datas[0]["gate"]["endpoints"][0]["requests"] = 7
    stats = median_stats(datas)
    products = stats["GET /api/products"]
    assert products.percentiles["p95"] == 25.0  # (20 + 30) / 2
    assert products.requests == 7
    assert products.timed <= 7
    one = median_stats(datas[:1])["GET /api/products"]
    assert one.percentiles["p95"] == 10.0 and one.requests == 7


def test_summary_pass_rate_time_and_critical_failures(tmp_path: Path) -> None:
    states = ["pass"] * 17 + ["fail"] * 2 + ["pass"]
    for i, state in enumerate(states):
        store(tmp_path, run_data(i, state, minutes=45 if i == 3 else 10), 100)
    runs, skipped = load_runs(tmp_path)
    assert skipped == [] and len(runs) == 20
    (summary,) = summarize(runs)
    assert (summary.passes, summary.pass_rate, summary.meets_pass_goal) == (18, 0.9, False)
    assert summary.over_time_goal == 1 and summary.median_seconds == 600
    assert summary.critical_failures == {"tests/smoke/test_shop.py::test_login": 2}
    (last10,) = summarize(runs, last=10)
    assert len(last10.runs) == 10 and last10.passes == 8
    (best,) = summarize(runs[:17])
    assert best.pass_rate == 1.0 and best.meets_pass_goal
    trend = {t.name: t for t in summary.endpoints}
    assert list(trend)[-1] == "total" and len(trend["total"].p95) == 20


def test_an_unreadable_file_is_skipped_and_said(tmp_path: Path) -> None:
    store(tmp_path, run_data(0), 10)
    bad = tmp_path / "staging" / entry_name(run_data(1))
    bad.write_text("{not json")
    runs, skipped = load_runs(tmp_path)
    assert len(runs) == 1 and len(skipped) == 1 and str(bad) in skipped[0]
    assert load_runs(tmp_path, "production") == ([], [])


def test_render_text_and_markdown(tmp_path: Path) -> None:
    for i, state in enumerate(["pass", "fail", "pass"]):
        store(tmp_path, run_data(i, state, p95=100 + i), 10)
    summaries = summarize(load_runs(tmp_path)[0])
    text = render(summaries)
    assert "Pass rate 66.7% (2 of 3: 1 fail, 2 pass), below the 95% goal" in text
    assert "0 of 3 over the 30m goal" in text
    assert "Critical-test failures: 1 run: tests/smoke/test_shop.py::test_login (1 run)" in text
    assert "GET /api/products       102.0 ms    100.0 ms .. 102.0 ms" in text
    md = render(summaries, "markdown")
    assert md.startswith("## Target staging: the last 3 gated runs\n")
    assert "| tests/smoke/test\\_shop.py::test\\_login |" in md
    assert render([], "text") == "No gated verdicts in this history.\n"


def test_gate_baseline_median_of_is_read_and_checked_with_file_line_key(tmp_path: Path) -> None:
    from pytest_stagegate.config import load_config
    from pytest_stagegate.errors import ConfigError

    path = tmp_path / "stagegate.yaml"
    base = (
        "targets:\n  local: {base_url: 'http://127.0.0.1:1'}\ngate:\n  load: {requests: [GET /]}\n"
    )
    path.write_text(base + "  baseline: {median_of: 5}\n")
    assert load_config(path).gate_settings("local").baseline_median_of == 5
    path.write_text(base)
    assert load_config(path).gate_settings("local").baseline_median_of == 1
    for bad, words in [("{median_of: 0}", "must be at least 1"), ("{median: 3}", "unknown key")]:
        path.write_text(base + f"  baseline: {bad}\n")
        with pytest.raises(ConfigError, match=rf"stagegate.yaml:5: gate\.baseline\..*{words}"):
            load_config(path)


# -- the fix round (C2): retention, first runs, passed-over verdicts, deployments, --html ------


def test_retention_never_removes_the_newest_passes(tmp_path: Path) -> None:
    """Consecutive failures beyond ``keep`` do not take the baseline away: the newest
    ``passes`` passing verdicts stay, in addition to the newest ``keep``."""
    first = store(tmp_path, run_data(0), keep=3)
    for i in (1, 2, 3, 4):
        store(tmp_path, run_data(i, "fail"), keep=3)
    kept = entries(tmp_path / "staging")
    assert kept[0] == first and len(kept) == 4  # the pass, and the newest 3
    assert [p.name.rsplit("-", 1)[1] for p in kept] == ["pass.json"] + ["fail.json"] * 3
    found = baseline(tmp_path, "staging")
    assert [r.path for r in found.runs] == [first]

    two = tmp_path / "two"
    passes = [store(two, run_data(i), keep=2, passes=2) for i in range(3)]
    for i in range(3, 8):
        store(two, run_data(i, "fail"), keep=2, passes=2)
    kept = entries(two / "staging")
    assert kept[:2] == passes[1:] and len(kept) == 4  # the 2 newest passes, the 2 newest runs
    assert prune(two / "staging", 1, passes=2) == [kept[2]]


def test_first_run_only_when_no_passing_verdict_is_kept(tmp_path: Path) -> None:
    empty = baseline(tmp_path / "missing", "staging")
    assert empty.first_run and empty.stats is None and empty.verdicts == 0
    assert empty.describe() == "no passing verdict of this target in the history yet"
    store(tmp_path, run_data(0, "fail"), 10)  # a first run that failed: still no baseline
    failed = baseline(tmp_path, "staging")
    assert failed.first_run and failed.verdicts == 1 and failed.counts() == "1 fail"


def test_passes_that_cannot_be_used_are_not_a_first_run(tmp_path: Path) -> None:
    """Key rotated, file tampered with or unreadable: the history had a baseline; the run must
    not pass its regression budgets unjudged."""
    signed = store(tmp_path, sign_verdict(run_data(0), b"A" * 32), 10)
    store(tmp_path, run_data(1, "fail"), 10)
    rotated = baseline(tmp_path, "staging", signing_key=b"B" * 32)
    assert rotated.stats is None and not rotated.first_run
    assert [s.name for s in rotated.skipped] == [signed.name]
    assert "signature does not match" in rotated.skipped[0].why
    assert rotated.describe() == (
        "no usable passing verdict of this target among the 2 in the history (1 fail, 1 pass); "
        f"passed over 1 passing verdict: {signed.name} ({rotated.skipped[0].why})"
    )
    broken = tmp_path / "staging" / entry_name(run_data(2))
    broken.write_text("{not json")
    lying = run_data(3, "fail")
    (tmp_path / "staging" / entry_name(run_data(3))).write_text(json.dumps(lying))
    found = baseline(tmp_path, "staging", signing_key=b"B" * 32)
    assert not found.first_run and len(found.skipped) == 3
    whys = [s.why for s in found.skipped]
    assert whys[0] == "the file name says pass, the verdict says fail"
    assert whys[1].startswith("not a verdict: not valid JSON") and str(tmp_path) not in whys[1]


def test_every_passed_over_verdict_is_named_with_why(tmp_path: Path) -> None:
    key = b"the-key-of-the-run"
    good = store(tmp_path, sign_verdict(run_data(0), key), 10)
    planted = [store(tmp_path, run_data(i), 10) for i in range(1, 6)]  # unsigned
    found = baseline(tmp_path, "staging", signing_key=key)
    assert [r.path for r in found.runs] == [good]
    assert [s.name for s in found.skipped] == [p.name for p in reversed(planted)]
    line = found.describe()
    assert line.startswith(f"{good.name} (commit 3f2a9c1, finished ")
    unsigned = f"{planted[-1].name} (the verdict is not signed)"
    assert f"; passed over 5 passing verdicts: {unsigned}; " in line
    assert line.endswith("; and 2 more") and planted[0].name not in line
    every = found.passed_over()
    assert all(p.name in every for p in planted) and "more" not in every
    assert found.to_dict(tmp_path)["note"] == line


def test_a_pass_of_another_deployment_is_passed_over(tmp_path: Path) -> None:
    ours = store(tmp_path, run_data(0, p95=100), 10)
    other = run_data(1, p95=1)
    other["target"]["base_url"] = "https://shop-preview.example.com"
    theirs = store(tmp_path, other, 10)
    url = run_data(0)["target"]["base_url"]
    found = baseline(tmp_path, "staging", base_url=url + "/")  # a trailing / is the same URL
    assert [r.path for r in found.runs] == [ours]
    assert [s.name for s in found.skipped] == [theirs.name]
    assert found.skipped[0].why == (
        f"another deployment: its target's base URL is https://shop-preview.example.com, "
        f"this run's {url}/"
    )
    # a target a hook replaced is matched by the URL its stagegate.yaml configured
    replaced = run_data(2, p95=7)
    replaced["target"].update(base_url="https://pr-42.example.com", configured_base_url=url)
    newest = store(tmp_path, replaced, 10)
    assert [r.path for r in baseline(tmp_path, "staging", base_url=url).runs] == [newest]
    assert not baseline(tmp_path, "staging", base_url="https://elsewhere.example").runs


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_history_html_to_a_path_that_cannot_be_a_file_is_one_paragraph(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_stagegate.cli import main

    store(tmp_path / "hist", run_data(0), 10)
    (tmp_path / "out").mkdir()
    (tmp_path / "afile").write_text("mine")
    page = tmp_path / "out" if where == "a directory" else tmp_path / "afile" / "d.html"
    assert main(["history", str(tmp_path / "hist"), "--html", str(page)]) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"stagegate history: --html {page}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err and ".tmp" not in err
    if where == "a directory":
        assert "is a directory; give the name of a file" in err
        assert list((tmp_path / "out").iterdir()) == []  # no temporary file left behind
    else:
        assert f"{tmp_path / 'afile'} is a file, not a folder" in err
        assert (tmp_path / "afile").read_text() == "mine"


def test_history_says_what_it_wrote_and_which_targets_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_stagegate.cli import main

    hist, page = tmp_path / "hist", tmp_path / "d.html"
    store(hist, run_data(0), 10)
    assert main(["history", str(hist), "--html", str(page)]) == 0
    assert capsys.readouterr().out == f"stagegate: wrote {page} (1 verdict, 1 target)\n"
    other = run_data(1)
    other["target"]["name"] = "preview"
    store(hist, other, 10)
    store(hist, run_data(2), 10)
    assert main(["history", str(hist), "--html", str(page)]) == 0
    assert capsys.readouterr().out == f"stagegate: wrote {page} (3 verdicts, 2 targets)\n"

    assert main(["history", str(hist), "--target", "nope"]) != 0
    err = capsys.readouterr().err
    assert f"{hist}: no verdicts of target 'nope'; the targets kept there: 'preview', " in err
    assert "'staging'" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty"), "--target", "nope"]) != 0
    assert "no verdicts of target 'nope'; it keeps no verdicts yet" in capsys.readouterr().err


def test_finish_adds_the_baseline_reasons_and_keeps_the_newest_passes(tmp_path: Path) -> None:
    """plugin/finish.py's history hunk: every reason of --gate-baseline auto is in the verdict
    (redacted), and storing the verdict never removes the newest ``history_passes`` passes."""
    import dataclasses
    from datetime import datetime, timezone

    from pytest_stagegate import defaults
    from pytest_stagegate.config import Target
    from pytest_stagegate.plugin.finish import finish_run
    from pytest_stagegate.plugin.options import RunOptions

    hist = tmp_path / "hist"
    passes = [store(hist, run_data(i), keep=200) for i in range(2)]
    target = Target(
        name="staging", base_url="https://ci:pw-secret@x.invalid", secrets=frozenset({"pw-secret"})
    )
    options = RunOptions(
        target="staging",
        target_source="--target",
        config_path=tmp_path / defaults.CONFIG_FILE,
        config_source="found",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        verdict_path=tmp_path / defaults.VERDICT_FILE,
        junit_path=tmp_path / defaults.JUNIT_FILE,
        verdict_wanted=True,
    )
    reasons = ["--gate-baseline auto passed over 1 passing verdict: x (pw-secret).", "Second."]
    for _ in range(2):
        finished = finish_run(
            dataclasses.replace(options, gate=True, history_dir=hist, history_keep=1),
            target=target,
            tests=(),
            gate=None,
            problems=[],
            interrupted=False,
            started_at=datetime.now(timezone.utc),
            flaky_blocks=False,
            exit_status=0,
            verdict_hook=lambda verdict: None,
            write_line=lambda line, **markup: None,
            environ={},
            baseline_reasons=reasons,
            history_passes=2,
        )
    text = " ".join(finished.data["reasons"])
    assert "passed over 1 passing verdict: x (" in text and "Second." in text
    assert "pw-secret" not in text
    kept = entries(hist / "staging")
    assert kept[:2] == passes and len(kept) == 3  # the 2 passes and the newest run
