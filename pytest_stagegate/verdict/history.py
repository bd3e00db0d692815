"""The history of gated verdicts (``--gate-history DIR``): keep, list, prune, select, and the
figures a release programme is run on. Pure core: files and JSON, no pytest, no network.

The layout: one folder per target, one file per gated run, the verdict's JSON exactly as the
run wrote it (signed if it was)::

    DIR/<target>/<started_at UTC>-<short commit>-<state>.json
    DIR/staging/20261202T064357.123456Z-3f2a9c1-pass.json

The time comes first and has a fixed width, so the names of one folder sort by the run's
start. The folder name is the target's name with anything but ``A-Z a-z 0-9 . _ -`` made
``_`` (a target named ``a/b`` goes to ``a_b``); the target itself is read from each verdict,
never from its folder. Only files named so are listed, and only they are removed when a
folder holds more than ``keep`` of them (the oldest first); anything else there stays. The
newest ``passes`` passing verdicts (``gate.baseline.median_of``, at least 1) are never removed,
whatever their age: they do not count against ``keep``, so a run of failures cannot take the
baseline of ``--gate-baseline auto`` away.

What the history answers (``summarize``, per target, over the last runs): the pass rate
against the goal (``defaults.PASS_RATE_GOAL``; every kept run counts, an interrupted or
errored one as not passed), the time from the run's start to its verdict against
``defaults.VERIFY_TIME_GOAL``, the critical tests that failed, and per request name the p95,
p99 and error rate of every run. ``baseline`` picks the latest passing verdicts of a target (and
of the same deployment: its base URL) for ``--gate-baseline auto``, naming every passing
verdict it passed over and why; with several, ``median_stats`` takes the median of each
measurement.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from ..budgets import TOTAL, EndpointStats
from ..defaults import PASS_RATE_GOAL, VERIFY_TIME_GOAL
from ..units import format_duration, format_observed
from .files import VerdictError, baseline_stats, check_signature, load_verdict
from .model import parse_timestamp

__all__ = [
    "Baseline",
    "EndpointTrend",
    "HistoryError",
    "PassedOver",
    "Run",
    "TargetSummary",
    "baseline",
    "entry_name",
    "file_record",
    "folder_name",
    "is_entry_name",
    "load_runs",
    "median_stats",
    "prune",
    "store",
    "summarize",
]

_STATES = ("pass", "fail", "error", "inconclusive")
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_ENTRY = re.compile(
    r"^(?P<time>\d{8}T\d{6}\.\d{6}Z)-(?P<commit>[0-9A-Za-z_]+)-"
    rf"(?P<state>{'|'.join(_STATES)})(?:-(?P<n>\d+))?\.json$"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SHORT_COMMIT = 7
NO_COMMIT = "nocommit"


class HistoryError(VerdictError):
    """A history that cannot be written or read as asked."""


# -- keeping ------------------------------------------------------------------------------------


def folder_name(target: str) -> str:
    """The folder of ``target``'s verdicts: safe on every file system, never ``.``/``..``."""
    name = _UNSAFE.sub("_", target) or "_"
    return "_" + name if name.strip(".") == "" or name.startswith(".") else name


def entry_name(data: Mapping[str, Any]) -> str:
    """The file name of a verdict in the history: its start (UTC, to the microsecond), its
    commit (7 characters, ``nocommit`` without one) and its state."""
    started = parse_timestamp(str(data["started_at"])).astimezone(timezone.utc)
    sha = str((data.get("commit") or {}).get("sha") or "")
    commit = re.sub(r"[^0-9A-Za-z]", "", sha)[:_SHORT_COMMIT] or NO_COMMIT
    state = str(data["verdict"])
    if state not in _STATES:
        raise HistoryError(f"not a verdict state: {state!r}")
    return f"{started.strftime(_TIME_FORMAT)}-{commit}-{state}.json"


def is_entry_name(name: str) -> bool:
    return _ENTRY.match(name) is not None


def store(directory: Path, data: Mapping[str, Any], keep: int, passes: int = 1) -> Path:
    """Write the verdict ``data`` (as written, signature and all) into ``directory``'s folder
    of its target, atomically, then remove that folder's oldest verdicts beyond ``keep``, never
    its newest ``passes`` passing ones (``prune``). Returns the new file. Raises OSError when
    the history cannot be written."""
    if keep < 1:
        raise ValueError(f"keep must be 1 or more, got {keep}")
    folder = directory / folder_name(str(data["target"]["name"]))
    name = entry_name(data)
    path = folder / name
    n = 1
    while path.exists():  # two runs that started in the same microsecond: keep both
        n += 1
        path = folder / f"{name.removesuffix('.json')}-{n}.json"
    with atomic_open(path, "w") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")
    prune(folder, keep, passes)
    return path


def entries(folder: Path) -> list[Path]:
    """The history's verdict files in ``folder``, oldest first (by name); [] without it."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and is_entry_name(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / name for name in sorted(names, key=_sort_key)]


def _sort_key(name: str) -> tuple[str, int]:
    match = _ENTRY.match(name)
    assert match is not None
    return (match["time"], int(match["n"] or 1))


def prune(folder: Path, keep: int, passes: int = 1) -> list[Path]:
    """Remove the verdicts of ``folder`` older than its newest ``keep``, except its newest
    ``passes`` passing ones (by file name; at least 1): those stay whatever their age and do
    not count against ``keep``. Returns the removed files."""
    found = entries(folder)
    newest = set(found[-keep:]) if keep > 0 else set()
    passing = [p for p in found if _state(p.name) == "pass"]
    newest.update(passing[-max(passes, 1) :] if passing else ())
    old = [p for p in found if p not in newest]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def _state(name: str) -> str:
    match = _ENTRY.match(name)
    return match["state"] if match else ""


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One request name in one run: what the trend charts draw (None: not measured)."""

    p95: float | None
    p99: float | None
    error_rate: float | None
    requests: int


@dataclass(frozen=True)
class Run:
    """One kept verdict, read back."""

    path: Path
    data: Mapping[str, Any] = field(repr=False)

    @property
    def target(self) -> str:
        return str(self.data["target"]["name"])

    @property
    def state(self) -> str:
        return str(self.data["verdict"])

    @property
    def passed(self) -> bool:
        return self.state == "pass"

    @property
    def started_at(self) -> datetime:
        return parse_timestamp(str(self.data["started_at"]))

    @property
    def finished_at(self) -> datetime:
        return parse_timestamp(str(self.data["finished_at"]))

    @property
    def seconds(self) -> float:
        """From the run's start to its verdict."""
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def commit(self) -> str:
        sha = (self.data.get("commit") or {}).get("sha")
        return str(sha)[:_SHORT_COMMIT] if sha else ""

    @property
    def critical_failures(self) -> tuple[str, ...]:
        failed = (self.data.get("tests") or {}).get("failed_tests") or ()
        return tuple(str(t["nodeid"]) for t in failed if t.get("critical"))

    @property
    def endpoints(self) -> dict[str, Point]:
        gate = self.data.get("gate") or {}
        points: dict[str, Point] = {}
        for entry in gate.get("endpoints") or ():
            pct = entry.get("percentiles") or {}
            requests = int(entry.get("requests") or 0)
            points[str(entry["name"])] = Point(
                p95=_number(pct.get("p95")),
                p99=_number(pct.get("p99")),
                error_rate=_number(entry.get("error_rate")) if requests else None,
                requests=requests,
            )
        return points


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def load_runs(directory: Path, target: str | None = None) -> tuple[list[Run], list[str]]:
    """Every kept verdict in ``directory`` (of ``target``, if given), oldest first by start,
    and a sentence for each file that could not be read (skipped). Raises HistoryError when
    ``directory`` is not a folder."""
    if not directory.is_dir():
        raise HistoryError(
            f"{directory}: not a history folder (pytest --gate --gate-history {directory} "
            "keeps the verdicts there)"
        )
    runs: list[Run] = []
    skipped: list[str] = []
    folders = sorted(e.path for e in os.scandir(directory) if e.is_dir())
    if target is not None:  # its own folder first; a verdict elsewhere is read, then filtered
        folders = [str(directory / folder_name(target))]
    for folder in folders:
        for path in entries(Path(folder)):
            try:
                run = Run(path, load_verdict(path))
            except VerdictError as exc:
                skipped.append(f"skipped {exc}")
                continue
            if target is None or run.target == target:
                runs.append(run)
    runs.sort(key=lambda r: (r.started_at, r.path.name))
    return runs, skipped


# -- the automatic baseline ---------------------------------------------------------------------


_NAMED = 3  # passed-over verdicts named in the header's baseline line; the rest counted


@dataclass(frozen=True)
class PassedOver:
    """A passing verdict of the target that ``baseline`` could not use: its file, and why."""

    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.name} ({self.why})"


@dataclass(frozen=True)
class Baseline:
    """What ``--gate-baseline auto`` found: the stats to compare with (None: no usable passing
    verdict), the verdicts they come from (newest first), how many were asked for, the passing
    verdicts passed over on the way (newest first), how many verdicts the target's folder holds
    and their states (by file name)."""

    stats: dict[str, EndpointStats] | None
    runs: tuple[Run, ...]
    median_of: int
    skipped: tuple[PassedOver, ...] = ()
    verdicts: int = 0
    states: tuple[tuple[str, int], ...] = ()

    @property
    def first_run(self) -> bool:
        """No passing verdict of the target is kept at all, usable or not: a new history, or
        one whose runs have all failed so far (retention never removes the newest pass). Only
        then may the regression budgets go unjudged; a history whose passes cannot be used
        (unreadable, a signature that does not check, another deployment's) makes them
        inconclusive instead."""
        return not self.runs and not self.skipped

    def describe(self, named: int | None = _NAMED) -> str:
        """One line for the terminal's header and the verdict's ``baseline`` note; the passed
        over verdicts are named (the first ``named`` of them, all when None)."""
        over = f"; {self.passed_over(named)}" if self.skipped else ""
        if not self.runs:
            if self.first_run:
                return "no passing verdict of this target in the history yet"
            return (
                f"no usable passing verdict of this target among the {self.verdicts} in the "
                f"history ({self.counts()}){over}"
            )
        newest = self.runs[0]
        one = f"{newest.path.name} (commit {newest.commit or 'unknown'}, finished {_iso(newest)})"
        if len(self.runs) == 1 and self.median_of == 1:
            return one + over
        asked = "" if len(self.runs) == self.median_of else f", {self.median_of} asked"
        return (
            f"the median of the last {len(self.runs)} passing verdicts{asked}; newest {one}{over}"
        )

    def passed_over(self, named: int | None = None) -> str:
        """``passed over 2 passing verdicts: NAME (why); NAME (why)``, the first ``named``
        of them named (all when None) and the rest counted; "" when none was."""
        if not self.skipped:
            return ""
        n = len(self.skipped)
        shown = self.skipped if named is None else self.skipped[:named]
        more = n - len(shown)
        tail = f"; and {more} more" if more else ""
        listed = "; ".join(str(s) for s in shown)
        return f"passed over {n} passing verdict{_s(n)}: {listed}{tail}"

    def counts(self) -> str:
        """The target's verdicts by state, e.g. ``2 fail, 1 pass``."""
        return ", ".join(f"{n} {state}" for state, n in self.states) or "none"

    def to_dict(self, directory: Path) -> dict[str, Any]:
        """The verdict's ``baseline`` field."""
        return {
            "from": "history",
            "history": str(directory),
            "median_of": self.median_of,
            "verdicts": [
                {
                    "file": str(run.path),
                    "commit": (run.data.get("commit") or {}).get("sha"),
                    "finished_at": str(run.data["finished_at"]),
                }
                for run in self.runs
            ],
            "note": self.describe(),
        }


def file_record(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict's ``baseline`` field for ``--gate-baseline PATH``."""
    commit = (data.get("commit") or {}).get("sha")
    finished = str(data.get("finished_at") or "")
    return {
        "from": "file",
        "verdicts": [{"file": str(path), "commit": commit, "finished_at": finished}],
        "note": f"{path} (commit {str(commit)[:_SHORT_COMMIT] if commit else 'unknown'}, "
        f"finished {finished or 'unknown'})",
    }


def _iso(run: Run) -> str:
    return run.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def baseline(
    directory: Path,
    target: str,
    median_of: int = 1,
    signing_key: bytes | None = None,
    base_url: str | None = None,
) -> Baseline:
    """The latest ``median_of`` passing verdicts of ``target`` in ``directory`` and their
    stats (the median of each measurement when more than one). A passing verdict is passed
    over, and named with why in ``skipped``, when it cannot be read, its content does not say
    pass, ``signing_key`` is given and its signature does not check (a planted verdict must not
    set the bar), or ``base_url`` (the run's, redacted as a verdict records it) is given and
    the verdict's target had another (the same name, another deployment; a target replaced by
    a hook is compared by the URL its stagegate.yaml configured). A verdict of another target
    name that shares the folder is not this target's: ignored. No usable passing verdict:
    ``stats`` is None."""
    if median_of < 1:
        raise ValueError(f"median_of must be 1 or more, got {median_of}")
    found = entries(directory / folder_name(target))
    chosen: list[Run] = []
    skipped: list[PassedOver] = []
    for path in reversed(found):
        if len(chosen) == median_of:
            break
        if _state(path.name) != "pass":
            continue
        try:
            run = Run(path, load_verdict(path))
        except VerdictError as exc:
            skipped.append(PassedOver(path.name, str(exc).removeprefix(f"{path}: ")))
            continue
        if run.target != target:
            continue
        problem = _unusable(run, signing_key, base_url)
        if problem:
            skipped.append(PassedOver(path.name, problem))
            continue
        chosen.append(run)
    states = tuple(sorted(Counter(_state(p.name) for p in found).items()))
    stats = median_stats([run.data for run in chosen]) if chosen else None
    return Baseline(stats, tuple(chosen), median_of, tuple(skipped), len(found), states)


def _unusable(run: Run, signing_key: bytes | None, base_url: str | None) -> str:
    """Why a passing verdict of the target cannot be a baseline, or ""."""
    if not run.passed:
        return f"the file name says pass, the verdict says {run.state}"
    if signing_key:
        problem = check_signature(run.data, signing_key)
        if problem is not None:
            return problem
    if base_url is not None:
        recorded = run.data["target"].get("configured_base_url") or run.data["target"].get(
            "base_url"
        )
        if not isinstance(recorded, str) or recorded.rstrip("/") != base_url.rstrip("/"):
            return f"another deployment: its target's base URL is {recorded}, this run's {base_url}"
    return ""


def median_stats(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, EndpointStats]:
    """Per request name (and flow), the median of each latency measurement (avg, max, every
    percentile) and of the rate over ``verdicts``' gates; the counts are the smallest among them
    (a regression check then needs its samples in every one). One verdict: its own stats."""
    per_verdict = [baseline_stats(v) for v in verdicts]
    if len(per_verdict) == 1:
        return per_verdict[0]
    names: dict[str, None] = {}
    for stats in per_verdict:
        names.update(dict.fromkeys(stats))
    out: dict[str, EndpointStats] = {}
    for name in names:
        seen = [s[name] for s in per_verdict if name in s]
        keys = sorted({k for s in seen for k in s.percentiles})
        out[name] = EndpointStats(
            name=name,
            requests=min(s.requests for s in seen),
            failures=round(statistics.median(s.failures for s in seen)),
            rps=statistics.median(s.rps for s in seen),
            avg_ms=statistics.median(s.avg_ms for s in seen),
            min_ms=statistics.median(s.min_ms for s in seen),
            max_ms=statistics.median(s.max_ms for s in seen),
            percentiles={
                k: statistics.median(s.percentiles[k] for s in seen if k in s.percentiles)
                for k in keys
            },
            timeouts=round(statistics.median(s.timeouts for s in seen)),
            latency_samples=min(s.timed for s in seen),
            kind=seen[0].kind,
        )
    return out


# -- the figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointTrend:
    """One request name over the runs (oldest first; None where a run did not measure it)."""

    name: str
    p95: tuple[float | None, ...]
    p99: tuple[float | None, ...]
    error_rate: tuple[float | None, ...]


@dataclass(frozen=True)
class TargetSummary:
    """The figures of one target over its last runs (oldest first)."""

    target: str
    runs: tuple[Run, ...]
    pass_goal: float = PASS_RATE_GOAL
    time_goal: float = VERIFY_TIME_GOAL
    endpoints: tuple[EndpointTrend, ...] = ()

    @property
    def passes(self) -> int:
        return sum(1 for r in self.runs if r.passed)

    @property
    def pass_rate(self) -> float:
        return self.passes / len(self.runs) if self.runs else 0.0

    @property
    def meets_pass_goal(self) -> bool:
        return bool(self.runs) and self.pass_rate >= self.pass_goal

    @property
    def states(self) -> Counter[str]:
        return Counter(r.state for r in self.runs)

    @property
    def seconds(self) -> tuple[float, ...]:
        return tuple(r.seconds for r in self.runs)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.runs else 0.0

    @property
    def over_time_goal(self) -> int:
        return sum(1 for s in self.seconds if s > self.time_goal)

    @property
    def critical_failures(self) -> Counter[str]:
        """Each critical test that failed, with the number of runs it failed in."""
        return Counter(name for r in self.runs for name in set(r.critical_failures))

    @property
    def runs_with_critical_failures(self) -> int:
        return sum(1 for r in self.runs if r.critical_failures)


def summarize(
    runs: Iterable[Run],
    *,
    last: int | None = None,
    pass_goal: float = PASS_RATE_GOAL,
    time_goal: float = VERIFY_TIME_GOAL,
) -> list[TargetSummary]:
    """Per target (by name), the summary of its ``last`` runs (all when None)."""
    by_target: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.path.name)):
        by_target.setdefault(run.target, []).append(run)
    out = []
    for target in sorted(by_target):
        kept = by_target[target][-last:] if last else by_target[target]
        out.append(TargetSummary(target, tuple(kept), pass_goal, time_goal, _trends(kept)))
    return out


def _trends(runs: Sequence[Run]) -> tuple[EndpointTrend, ...]:
    names: dict[str, None] = {}
    points = [r.endpoints for r in runs]
    for p in points:
        names.update(dict.fromkeys(p))
    ordered = sorted(names, key=lambda n: (n == TOTAL, n))  # total last, as the gate table

    def series(name: str, attr: str) -> tuple[float | None, ...]:
        return tuple(getattr(p[name], attr) if name in p else None for p in points)

    return tuple(
        EndpointTrend(name, series(name, "p95"), series(name, "p99"), series(name, "error_rate"))
        for name in ordered
    )


# -- text and markdown --------------------------------------------------------------------------


def to_verdict(seconds: float) -> str:
    """A run's time to its verdict, rounded once for every view (text, markdown, the HTML
    dashboard): to a tenth of a second, ``12.5s``, ``31m2.4s``."""
    return format_duration(round(seconds, 1))


def percent(rate: float) -> str:
    """``95%``, ``66.7%``: a pass rate as people say it."""
    text = f"{rate * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def render(summaries: Sequence[TargetSummary], fmt: str = "text") -> str:
    """``stagegate history`` as text or markdown: per target, the pass rate against its goal,
    the time to a verdict against its goal, the critical tests that failed, and per request
    name the p95, p99 and error rate of the latest run with their range over the runs."""
    md = fmt == "markdown"
    lines: list[str] = []
    if not summaries:
        return "No gated verdicts in this history.\n"
    for s in summaries:
        if lines:
            lines.append("")
        title = f"Target {s.target}: the last {len(s.runs)} gated run{_s(len(s.runs))}"
        lines += [f"## {_md(title)}", ""] if md else [title, "=" * len(title)]
        lines += [f"- {_md(line)}" if md else f"  {line}" for line in _headline(s)]
        if md:
            lines.append("")
        lines += _runs_table(s, md)
        trends = _trend_rows(s)
        if trends:
            lines.append("")
            head = [
                "request",
                "p95 latest",
                "p95 range",
                "p99 latest",
                "p99 range",
                "errors latest",
            ]
            lines += _table(head, trends, md)
    return "\n".join(lines) + "\n"


def _headline(s: TargetSummary) -> list[str]:
    states = ", ".join(f"{n} {state}" for state, n in sorted(s.states.items()))
    goal = "meets" if s.meets_pass_goal else "below"
    pass_line = (
        f"Pass rate {percent(s.pass_rate)} ({s.passes} of {len(s.runs)}: {states}), "
        f"{goal} the {percent(s.pass_goal)} goal"
    )

    worst = max(s.seconds) if s.seconds else 0.0
    time_line = (
        f"Time to verdict: median {to_verdict(s.median_seconds)}, longest "
        f"{to_verdict(worst)}; {s.over_time_goal} of {len(s.runs)} over the "
        f"{format_duration(s.time_goal)} goal"
    )
    crit = s.critical_failures
    if crit:
        named = "; ".join(f"{name} ({n} run{_s(n)})" for name, n in crit.most_common())
        crit_line = (
            f"Critical-test failures: {s.runs_with_critical_failures} run"
            f"{_s(s.runs_with_critical_failures)}: {named}"
        )
    else:
        crit_line = "Critical-test failures: none"
    return [pass_line, time_line, crit_line]


def _runs_table(s: TargetSummary, md: bool) -> list[str]:

    rows = []
    for run in s.runs:
        total = run.endpoints.get(TOTAL)
        rows.append(
            [
                run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                run.commit or "-",
                run.state,
                to_verdict(run.seconds),
                _ms(total.p95 if total else None),
                _ms(total.p99 if total else None),
                _rate(total.error_rate if total else None),
                ", ".join(run.critical_failures) or "-",
            ]
        )
    head = [
        "started (UTC)",
        "commit",
        "verdict",
        "to verdict",
        "p95",
        "p99",
        "errors",
        "critical failed",
    ]
    return _table(head, rows, md)


def _trend_rows(s: TargetSummary) -> list[list[str]]:
    rows = []
    for t in s.endpoints:
        rows.append(
            [
                t.name,
                _ms(_latest(t.p95)),
                _range(t.p95),
                _ms(_latest(t.p99)),
                _range(t.p99),
                _rate(_latest(t.error_rate)),
            ]
        )
    return rows


def _latest(values: Sequence[float | None]) -> float | None:
    return values[-1] if values else None


def _range(values: Sequence[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "-"
    return f"{_ms(min(seen))} .. {_ms(max(seen))}"


def _ms(value: float | None) -> str:

    return "-" if value is None else format_observed(value, "ms")


def _rate(value: float | None) -> str:

    return "-" if value is None else format_observed(value, "ratio")


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _md(text: str) -> str:
    """Markdown-inert: what could open a link, an image, HTML or a table cell is escaped."""
    return re.sub(r"([\\`*_\[\]<>|#!])", r"\\\1", text)


def _table(head: list[str], rows: list[list[str]], md: bool) -> list[str]:
    if md:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        return out
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [("  " + fmt.format(*r)).rstrip() for r in [head, *rows]]
