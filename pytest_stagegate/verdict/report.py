"""Human-readable summaries of verdicts: ``stagegate report`` and ``stagegate compare``.

Rendered from the verdict's JSON data, in Markdown (for ``$GITHUB_STEP_SUMMARY`` or a merge
request comment) or plain text (for a terminal or a CI log). The output depends on the verdict
only, never on the clock, so it can be compared against golden files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from .. import defaults
from ..units import format_duration, format_limit, format_ms, format_observed, format_rate
from .chart import bands_from_json, budget_line, points_from_json, text_chart
from .decide import sentence

__all__ = [
    "Format",
    "all_failed_rule",
    "covers_text",
    "gate_table_lines",
    "limit_text",
    "load_model_lines",
    "load_model_sentence",
    "regression_allowance",
    "render",
    "render_compare",
]

Format = Literal["markdown", "text"]

_HEADLINE = {
    "pass": "PASS, may be promoted",
    "fail": "FAIL, must not be promoted",
    "error": "ERROR, the run could not decide; do not promote",
    "inconclusive": "INCONCLUSIVE, not enough evidence; do not promote",
}
_OUTCOME_WORD = {"failed": "failed", "error": "error"}


def render(verdict: Mapping[str, Any], fmt: Format = "text") -> str:
    """The verdict as a report: headline, reasons, test counts, failed tests, the load
    profile, per-endpoint measurements and every budget check."""
    doc = _Doc(fmt)
    target = verdict["target"]
    doc.title(f"Stagegate verdict for {target['name']}: {_HEADLINE[verdict['verdict']]}")
    doc.facts(
        [
            ("target", f"{target['name']} ({target['base_url']})"),
            ("commit", _commit(verdict["commit"])),
            (
                "finished",
                f"{verdict['finished_at']} after {format_duration(verdict['duration_s'])}",
            ),
            ("pytest-stagegate", verdict.get("plugin_version") or "unknown"),
        ]
    )

    doc.heading("Reasons")
    doc.bullets(verdict["reasons"])

    tests = verdict["tests"]
    doc.heading("Tests")
    keys = ("total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky")
    doc.table(list(keys), [[str(tests[key]) for key in keys]], numeric=set(keys))
    if tests["failed_tests"]:
        doc.heading("Failed tests", level=3)
        doc.table(
            ["test", "outcome", "critical", "message"],
            [
                [
                    doc.code(t["nodeid"]),
                    _OUTCOME_WORD.get(t["outcome"], t["outcome"]),
                    "yes" if t["critical"] else "",
                    t["message"],
                ]
                for t in tests["failed_tests"]
            ],
        )
    if tests["flaky_tests"]:
        doc.heading("Flaky tests", level=3)
        doc.table(
            ["test", "reruns", "critical"],
            [
                [doc.code(t["nodeid"]), str(t["reruns"]), "yes" if t["critical"] else ""]
                for t in tests["flaky_tests"]
            ],
            numeric={"reruns"},
        )

    gate = verdict.get("gate")
    if gate:
        doc.heading(f"Load gate: {gate['status'].replace('_', ' ')}")
        if gate["reason"]:
            doc.paragraph(sentence(gate["reason"]))
        profile = _profile(gate["profile"], gate["load_seconds"])
        if profile:
            doc.paragraph(profile)
        _load_model(doc, gate)
        _gate_tables(doc, gate)
        generator = gate.get("generator") or {}
        if generator.get("saturated"):
            doc.paragraph(
                "The load generator was saturated: latencies include its own delays."
                + (f" {generator['note']}" if generator.get("note") else "")
            )
    _checks(doc, "Extra checks", verdict.get("checks") or [])
    return doc.text()


def render_compare(old: Mapping[str, Any], new: Mapping[str, Any], fmt: Format = "text") -> str:
    """Per-endpoint changes from ``old`` to ``new``: p50, p95, p99, avg, rps as a relative
    change in %, and error rate in percentage points (a relative change of a rate near zero
    says little: 0.1% -> 0.2% is "+100%")."""
    doc = _Doc(fmt)
    doc.title("Stagegate comparison")
    doc.facts(
        [
            ("old", _identity(old)),
            ("new", _identity(new)),
        ]
    )
    old_eps = _endpoints(old)
    new_eps = _endpoints(new)
    if not old_eps or not new_eps:
        missing = [label for label, eps in (("old", old_eps), ("new", new_eps)) if not eps]
        doc.paragraph(
            f"Nothing to compare: the {' and the '.join(missing)} verdict "
            f"{'has' if len(missing) == 1 else 'have'} no load measurements."
        )
        return doc.text()

    metrics: list[tuple[str, Callable[[Mapping[str, Any]], float | None], str]] = [
        ("p50", lambda e: e["percentiles"].get("p50"), "ms"),
        ("p95", lambda e: e["percentiles"].get("p95"), "ms"),
        ("p99", lambda e: e["percentiles"].get("p99"), "ms"),
        ("avg", lambda e: e["avg_ms"], "ms"),
        ("error rate", lambda e: e["error_rate"], "ratio"),
        ("rps", lambda e: e["rps"], "rps"),
    ]
    rows: list[list[str]] = []
    names = sorted(set(old_eps) | set(new_eps), key=lambda n: (n == "total", n))
    for name in names:
        before, after = old_eps.get(name), new_eps.get(name)
        if before is None or after is None:
            rows.append(
                [
                    doc.code(name),
                    "",
                    "",
                    "",
                    "only in the new run" if before is None else "only in the old run",
                ]
            )
            continue
        for label, get, unit in metrics:
            a, b = get(before), get(after)
            rows.append(
                [doc.code(name), label, _format(a, unit), _format(b, unit), _change(a, b, unit)]
            )
    doc.table(["endpoint", "metric", "old", "new", "change"], rows, numeric={"old", "new"})
    return doc.text()


def gate_table_lines(gate: Mapping[str, Any], fmt: Format = "text") -> list[tuple[str, bool]]:
    """The load gate's tables, as ``stagegate report`` shows them: per endpoint (requests,
    failures, rps, p50, p95, p99) and every budget check (observed, limit, samples, outcome),
    in the verdict's order (endpoints by name, total last; checks in stagegate.yaml's order).
    ``gate`` is the verdict's ``gate`` mapping. One (line, failed) pair per line;
    ``failed`` marks the row of a failed check, which a terminal shows in red."""
    doc = _Doc(fmt)
    _gate_tables(doc, gate)
    return [
        (line, line in doc.alarms) for block in doc.blocks for line in (*block.splitlines(), "")
    ][:-1]


def load_model_lines(gate: Mapping[str, Any], fmt: Format = "text") -> list[str]:
    """The load model as ``stagegate report`` shows it, for the terminal summary: the model
    sentence (not for a closed model without stages: the summary's header says the users),
    the stages table, the latency chart (``verdict.chart.text_chart``). [] when the verdict
    has no ``gate.load`` (a gate that did not run, a verdict of 0.1)."""
    doc = _Doc(fmt)
    _load_model(doc, gate, terse=True)
    return [line for block in doc.blocks for line in (*block.splitlines(), "")][:-1]


def load_model_sentence(load: Mapping[str, Any], users: object = None) -> str:
    """``Open model: 50 iterations/s, users up to 60; 3 of 1,500 iterations dropped (0.2%).``
    or ``Closed model: 20 users.``; with stages, their peak level."""
    stages = load.get("stages") or []
    peak = max((float(s.get("level_to") or 0) for s in stages), default=0.0)
    if load.get("model") == "open":
        rate = f"stages up to {peak:g}" if stages else f"{float(load.get('rate') or 0):g}"
        text = f"Open model: {rate} iterations/s"
        if isinstance(users, int) and users > 0:
            text += f", users up to {users:,}"
        due, dropped = int(load.get("iterations_due") or 0), int(load.get("dropped") or 0)
        lag = load.get("arrival_lag_s")
        if due:
            share = dropped / due
            text += f"; {dropped:,} of {due:,} iterations dropped ({share * 100:.2g}%"
            if lag and dropped:
                text += f", not started within {format_duration(lag)} of their schedule"
            text += ")"
            if share > defaults.MAX_DROPPED:
                text += (
                    f", over {defaults.MAX_DROPPED * 100:g}%: no latency budget can pass "
                    "(raise users, or add --gate-workers)"
                )
        return text + "." + _unanswered_note(load)
    if stages:
        return f"Closed model: stages up to {peak:g} users." + _unanswered_note(load)
    text = f"Closed model: {users} users." if isinstance(users, int) else "Closed model."
    return text + _unanswered_note(load)


def _unanswered_note(load: Mapping[str, Any]) -> str:
    """`` 105 judged requests were still waiting for an answer when the load stopped: each is
    in the latency at its wait so far (a lower bound).`` ("" when none was)."""
    n = int(load.get("unanswered_measured") or 0)
    if n <= 0:
        return ""
    were = "requests were" if n != 1 else "request was"
    return (
        f" {n:,} judged {were} still waiting for an answer when the load stopped: each is in "
        "the latency at its wait so far (a lower bound)."
    )


# -- pieces ---------------------------------------------------------------------------------


def _load_model(doc: _Doc, gate: Mapping[str, Any], *, terse: bool = False) -> None:
    load = gate.get("load")
    if not isinstance(load, Mapping):
        return
    stages = load.get("stages") or []
    if not (
        terse and load.get("model") != "open" and not stages and not load.get("unanswered_measured")
    ):
        doc.paragraph(load_model_sentence(load, (gate.get("profile") or {}).get("users")))
    if stages:
        timeline = load.get("timeline") or []
        # the open model: each judged stage's dropped iterations, what its budgets are judged on
        dropped = any(st.get("iterations_due") is not None for st in stages)
        rows = []
        for st in stages:
            total = next((e for e in st.get("endpoints") or [] if e["name"] == "total"), None)
            requests = st.get("requests")
            if requests is None and total:
                requests = total["requests"]
            if requests is None and timeline:  # a verdict without the stages' counts
                mine = [p for p in timeline if p.get("stage") == st["name"]]
                requests = sum(int(p.get("requests") or 0) for p in mine)
            level = f"{st['level_from']:g} -> {st['level_to']:g} {st['unit']}"
            if st["level_from"] == st["level_to"]:
                level = f"{st['level_to']:g} {st['unit']}"
            rows.append(
                [
                    st["name"],
                    f"{format_duration(st['start_s']) if st['start_s'] else '0s'} - "
                    f"{format_duration(st['end_s'])}",
                    level,
                    "yes" if st["judged"] else "no",
                    # its requests as the verdict counts them, by start or due time
                    "-" if requests is None else f"{requests:,}",
                    _ms(total["percentiles"].get("p95")) if total else "-",
                    *([_stage_dropped(st)] if dropped else []),
                ]
            )
        doc.table(
            [
                "stage",
                "time",
                "level",
                "judged",
                "requests",
                "p95",
                *(["dropped"] if dropped else []),
            ],
            rows,
            numeric={"requests", "p95", "dropped"},
        )
    limit = budget_line(
        (c["endpoint"], c["metric"], c["limit"] if c.get("unit") == "ms" else None)
        for c in gate.get("checks") or []
        if not c.get("stage")
    )
    chart = text_chart(points_from_json(load.get("timeline") or []), bands_from_json(stages), limit)
    if chart:
        doc.preformatted(chart)


def _stage_dropped(st: Mapping[str, Any]) -> str:
    """``60 of 2,000 (3%)``: a stage's dropped iterations of those due; ``-`` without."""
    due = st.get("iterations_due")
    if due is None:
        return "-"
    n = int(st.get("dropped") or 0)
    share = f" ({n / due * 100:.2g}%)" if due else ""  # as the load sentence says it
    return f"{n:,} of {due:,}{share}"


def _gate_tables(doc: _Doc, gate: Mapping[str, Any]) -> None:
    if gate["endpoints"]:
        # the open model: the service time's p95 (from the send) beside the latency's
        service = any(e.get("service_time") for e in gate["endpoints"])
        extra = ["service p95"] if service else []
        doc.table(
            ["endpoint", "requests", "failures", "rps", "p50", "p95", "p99", *extra],
            [
                [
                    doc.code(e["name"]),
                    str(e["requests"]),
                    f"{e['failures']} ({_rate(e['error_rate'])}"
                    + (f", {e['timeouts']} timed out" if e.get("timeouts") else "")
                    + ")",
                    _rps(e["rps"]),
                    _ms(e["percentiles"].get("p50")),
                    _ms(e["percentiles"].get("p95")),
                    _ms(e["percentiles"].get("p99")),
                    *(
                        [_ms((e.get("service_time") or {}).get("percentiles", {}).get("p95"))]
                        if service
                        else []
                    ),
                ]
                for e in gate["endpoints"]
            ],
            numeric={"requests", "failures", "rps", "p50", "p95", "p99", *extra},
        )
    flows = gate.get("flows") or []
    if flows:  # each iteration's whole duration is one sample
        doc.table(
            ["flow", "iterations", "failed", "per second", "p50", "p95", "p99"],
            [
                [
                    doc.code(f["name"]),
                    str(f["requests"]),
                    f"{f['failures']} ({_rate(f['error_rate'])})",
                    _rps(f["rps"]),
                    _ms(f["percentiles"].get("p50")),
                    _ms(f["percentiles"].get("p95")),
                    _ms(f["percentiles"].get("p99")),
                ]
                for f in flows
            ],
            numeric={"iterations", "failed", "per second", "p50", "p95", "p99"},
        )
    _checks(doc, "Budget checks", gate["checks"])


def _checks(doc: _Doc, title: str, checks: Sequence[Mapping[str, Any]]) -> None:
    if not checks:
        return
    doc.heading(title, level=3)
    doc.table(
        ["check", "observed", "limit", "samples", "outcome"],
        [
            [
                doc.code(f"{c['metric']} of {c['endpoint']}")
                + (f" {covers_text(c)}" if c.get("covers") else "")
                + (f" in stage {c['stage']}" if c.get("stage") else ""),
                _format(c["observed"], c["unit"]),
                _limit(c),
                str(c["samples"]),
                c["outcome"].upper() if c["outcome"] != "pass" else "pass",
            ]
            for c in checks
        ],
        numeric={"observed", "limit", "samples"},
        alarms=[c["outcome"] == "fail" for c in checks],
    )


def all_failed_rule(check: Mapping[str, Any]) -> bool:
    """Whether ``check`` (one of the verdict's) failed by the all-failed rule with a limit that
    would have let it pass: an ``error_rate`` of 100% over a limit of 100% (the rule's own check
    for a name without an error budget, or a budget of 100%). Its limit reads ``all failed``,
    not ``<= 100%``, which would contradict its FAIL."""
    observed, limit = check.get("observed"), check.get("limit")
    return (
        check.get("metric") == "error_rate"
        and check.get("outcome") == "fail"
        and observed is not None
        and limit is not None
        and float(observed) >= 1.0
        and float(limit) >= 1.0
    )


def _limit(check: Mapping[str, Any]) -> str:
    if all_failed_rule(check):
        return "all failed"
    if check["metric"].endswith("_regression"):
        allowed = regression_allowance(check)
        plus = "+?" if allowed is None else f"+{format_rate(allowed)}"
        if check["unit"] == "ratio" or check["limit"] is None or check.get("baseline") is None:
            return f"<= baseline {plus}"  # no usable baseline: nothing to scale
        base = format_observed(check["baseline"], "ms")
        return f"<= {format_limit(check['limit'], 'ms')} (baseline {base} {plus})"
    op = ">=" if check["metric"] == "min_rps" else "<="
    return f"{op} {format_limit(check['limit'], check['unit'])}"


def covers_text(check: Mapping[str, Any], most: int = 3) -> str:
    """A group budget's names, briefly: ``(3 names: GET /api/a, GET /api/b, GET /api/c)``,
    ``(5 names: GET /a, GET /b, GET /c, ...)``; "" for a check that covers none."""
    names = [str(n) for n in check.get("covers") or ()]
    if not names:
        return ""
    shown = ", ".join(names[:most]) + (", ..." if len(names) > most else "")
    return f"({len(names)} name{'' if len(names) == 1 else 's'}: {shown})"


def limit_text(check: Mapping[str, Any]) -> str:
    """A check's limit as the report's table shows it: ``<= 300 ms``, ``>= 20 req/s``,
    ``<= 959.1 ms (baseline 871.9 ms +10%)``. ``check`` is one of the verdict's checks."""
    if check.get("limit") is None:
        return "-"
    return _limit(check)


def regression_allowance(check: Mapping[str, Any]) -> float | None:
    """The allowed increase (a fraction) of a ``*_regression`` check as the verdict records it:
    ``limit`` is the allowance itself when there was no usable baseline (unit ``ratio``), else
    the absolute limit ``baseline * (1 + allowance)`` in ms."""
    limit, baseline = check.get("limit"), check.get("baseline")
    if limit is None:
        return None
    if check.get("unit") == "ratio":
        return float(limit)
    if not baseline:
        return None
    return round(float(limit) / float(baseline) - 1, 4)


def _commit(commit: Mapping[str, Any]) -> str:
    sha = commit.get("sha")
    text = sha[:12] if sha else "unknown"
    if commit.get("ref"):
        text += f" ({commit['ref']})"
    text += f", from {commit.get('source') or 'unknown'}"
    if commit.get("run_url"):
        text += f", {commit['run_url']}"
    return text


def _identity(verdict: Mapping[str, Any]) -> str:
    sha = verdict["commit"].get("sha")
    return (
        f"{verdict['target']['name']} at {sha[:12] if sha else 'unknown commit'}, "
        f"{verdict['verdict']}, finished {verdict['finished_at']}"
    )


def _profile(profile: Mapping[str, Any], load_seconds: float) -> str:
    parts: list[str] = []
    if "users" in profile:
        # the open model's users are the most concurrent iterations, as the header says
        if profile.get("model") == "open":
            parts.append(f"at most {profile['users']} concurrent iterations")
        else:
            parts.append(f"{profile['users']} users")
    if "spawn_rate" in profile and profile.get("model") != "open":
        parts.append(f"spawn rate {profile['spawn_rate']:g}/s")
    if isinstance(profile.get("duration_s"), (int, float)):
        text = f"{format_duration(profile['duration_s'])} of load"
        if isinstance(profile.get("warmup_s"), (int, float)) and profile["warmup_s"]:
            text += f" ({format_duration(profile['warmup_s'])} warm-up excluded)"
        parts.append(text)
    workers = profile.get("workers")
    if isinstance(workers, int) and workers > 0:  # 0: one local process, nothing to say
        parts.append(f"{workers} worker processes")
    if "scenario" in profile:
        flows = [str(f) for f in profile.get("flows") or ()]
        names = f" ({', '.join(flows)})" if profile["scenario"] == "flows" and flows else ""
        parts.append(f"scenario: {profile['scenario']}{names}")
    planned = profile.get("duration_s")
    # Only worth saying when the load ran shorter or longer than planned (an early abort).
    if load_seconds and not (isinstance(planned, (int, float)) and abs(load_seconds - planned) < 1):
        parts.append(f"ran {format_duration(load_seconds)}")
    if not parts:
        return ""
    text = ", ".join(parts)
    # Not str.capitalize(): it would lowercase a locustfile path or a scenario name.
    return f"{text[0].upper()}{text[1:]}."


def _endpoints(verdict: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    gate = verdict.get("gate") or {}
    return {e["name"]: e for e in gate.get("endpoints", ())}


def _format(value: float | None, unit: str) -> str:
    return "-" if value is None else format_observed(value, unit)


def _ms(value: float | None) -> str:
    return "-" if value is None else format_ms(value)


def _rps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def _rate(value: float | None) -> str:
    return "-" if value is None else format_rate(value)


def _change(old: float | None, new: float | None, unit: str) -> str:
    if old is None or new is None:
        return "n/a"
    if unit == "ratio":
        return f"{(new - old) * 100:+.2f} pp"
    if old == 0:
        return "+0.0%" if new == 0 else "n/a"
    return f"{(new - old) / old * 100:+.1f}%"


class _Doc:
    """Just enough of a document model to write the same report as Markdown or text."""

    def __init__(self, fmt: Format) -> None:
        if fmt not in ("markdown", "text"):
            raise ValueError(f"format must be markdown or text, got {fmt!r}")
        self.markdown = fmt == "markdown"
        self.blocks: list[str] = []
        self.alarms: set[str] = set()  # rendered rows of failed checks

    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n"

    def code(self, text: str) -> str:
        if not self.markdown:
            return text
        # A backtick inside would end the code span early; double ones tolerate single ones.
        return f"`` {text} ``" if "`" in text else f"`{text}`"

    def title(self, text: str) -> None:
        self.blocks.append(f"## {text}" if self.markdown else f"{text}\n{'=' * len(text)}")

    def heading(self, text: str, level: int = 3) -> None:
        if self.markdown:
            self.blocks.append(f"{'#' * level} {text}")
        else:
            self.blocks.append(f"{text}\n{'-' * len(text)}")

    def paragraph(self, text: str) -> None:
        self.blocks.append(_one_line(text))

    def facts(self, pairs: Sequence[tuple[str, str]]) -> None:
        if self.markdown:
            self.blocks.append("  \n".join(f"**{k}:** {_one_line(v)}" for k, v in pairs))
        else:
            width = max(len(k) for k, _ in pairs)
            self.blocks.append("\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs))

    def preformatted(self, lines: Sequence[str]) -> None:
        """Lines kept as they are (a chart): a code block in Markdown."""
        body = "\n".join(lines)
        self.blocks.append(f"```text\n{body}\n```" if self.markdown else body)

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append("\n".join(f"- {_one_line(item)}" for item in items))

    def table(
        self,
        headers: list[str],
        rows: Sequence[Sequence[str]],
        numeric: set[str] | None = None,
        alarms: Sequence[bool] = (),
    ) -> None:
        """``alarms``: per row, whether it reports a failure (see ``gate_table_lines``)."""
        numeric = numeric or set()
        if self.markdown:
            lines = ["| " + " | ".join(headers) + " |"]
            lines.append("|" + "|".join("---:" if h in numeric else "---" for h in headers) + "|")
            rendered = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
            self.alarms.update(r for r, alarm in zip(rendered, alarms, strict=False) if alarm)
            self.blocks.append("\n".join([*lines, *rendered]))
            return
        cells = [[_one_line(c) for c in row] for row in rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

        def line(values: Sequence[str]) -> str:
            padded = [
                v.rjust(w) if h in numeric else v.ljust(w)
                for v, w, h in zip(values, widths, headers, strict=True)
            ]
            return "  ".join(padded).rstrip()

        rule = "  ".join("-" * w for w in widths)
        rendered = [line(r) for r in cells]
        self.alarms.update(r for r, alarm in zip(rendered, alarms, strict=False) if alarm)
        self.blocks.append("\n".join([line(headers), rule, *rendered]))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|") or " "
