"""GitHub Actions annotations of a verdict: workflow commands (``::error file=...,line=...::``)
that GitHub shows on the run's page and beside the lines they point at. Pure: the verdict's
data in, lines out; the glue prints them on the terminal under ``GITHUB_ACTIONS=true``.

What is annotated, most important first (GitHub shows at most 10 errors and 10 warnings of a
step, so each level is cut at ``MAX_PER_LEVEL`` with a last line saying how many more):

- the verdict itself when it does not promote (``error`` for fail and error, ``warning`` for
  inconclusive), without a file: the headline, and the only annotation when the gate could
  not run at all;
- every failed critical test and every critical test that passed only after reruns
  (``error``), at the test's file and line (the verdict's ``source`` of the test);
- every failed budget check (``error``) and every inconclusive one (``warning``), at the line
  of the budget's metric key in stagegate.yaml (``p95: 300ms``; the check's ``source``); a
  default error budget, or a check that no written budget stands for, at the file alone;
- every other failed or errored test (``error``: any failed test fails the verdict), and a
  non-critical test that passed only after reruns (``warning``).

Files are relative to the rootdir in the verdict; ``base`` is the rootdir relative to the
workspace (``GITHUB_WORKSPACE``), so the paths are the repository's. Every text goes through
``redact`` and is escaped as GitHub's toolkit escapes (``%``, CR, LF in the message; also
``:`` and ``,`` in properties).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_PER_LEVEL",
    "Annotation",
    "annotate",
    "escape_data",
    "escape_property",
    "render",
]

Level = Literal["error", "warning"]
MAX_PER_LEVEL = 10  # what GitHub shows of one step, per level


@dataclass(frozen=True)
class Annotation:
    """One workflow command: its level, title and message, and where it points."""

    level: Level
    title: str
    message: str
    file: str = ""
    line: int | None = None

    def command(self, redact: Callable[[str], str] = str) -> str:
        """``::error file=stagegate.yaml,line=12,title=...::message``, redacted and escaped."""
        props: list[str] = []
        if self.file:
            props.append(f"file={escape_property(redact(self.file))}")
            if self.line is not None:
                props.append(f"line={self.line}")
        if self.title:
            props.append(f"title={escape_property(redact(self.title))}")
        head = f"::{self.level}" + (" " + ",".join(props) if props else "")
        return f"{head}::{escape_data(redact(self.message))}"


def escape_data(text: str) -> str:
    """A message as GitHub's toolkit escapes it (``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (file, title) as GitHub's toolkit escapes it (``escapeProperty``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(
    data: Mapping[str, Any],
    *,
    redact: Callable[[str], str] = str,
    config_file: str = "",
    base: str = "",
) -> list[str]:
    """The workflow commands for the verdict ``data`` (``Verdict.to_dict()``), one a line.
    ``config_file``: stagegate.yaml relative to the rootdir, where a check without a line of
    its own points; ``base``: the rootdir relative to the workspace ("" when they are one)."""
    return [a.command(redact) for a in annotate(data, config_file=config_file, base=base)]


def annotate(data: Mapping[str, Any], *, config_file: str = "", base: str = "") -> list[Annotation]:
    """The annotations for the verdict ``data`` (see the module docstring), capped per level."""
    found: list[Annotation] = []
    state = str(data.get("verdict", ""))
    if state and state != "pass":
        reasons = [str(r) for r in data.get("reasons") or ()]
        target = (data.get("target") or {}).get("name", "")
        found.append(
            Annotation(
                "warning" if state == "inconclusive" else "error",
                f"stagegate verdict: {state.upper()} on {target} (do not promote)",
                " ".join(reasons[:3]) or f"The verdict is {state}.",
            )
        )
    tests = data.get("tests") or {}
    failed = list(tests.get("failed_tests") or ())
    flaky = list(tests.get("flaky_tests") or ())
    found += [_test(t, base) for t in failed if t.get("critical")]
    found += [_flaky(t, base) for t in flaky if t.get("critical")]
    gate = data.get("gate") or {}
    # the gate's checks fall back on the config file; a hook's (data["checks"]) points nowhere
    checks = [
        *((c, config_file) for c in gate.get("checks") or ()),
        *((c, "") for c in data.get("checks") or ()),
    ]
    found += [_check(c, f, base) for c, f in checks if c.get("outcome") == "fail"]
    found += [_test(t, base) for t in failed if not t.get("critical")]
    found += [_check(c, f, base) for c, f in checks if c.get("outcome") == "inconclusive"]
    found += [_flaky(t, base) for t in flaky if not t.get("critical")]
    return _capped(found)


def _capped(found: Sequence[Annotation]) -> list[Annotation]:
    out: list[Annotation] = []
    for level in ("error", "warning"):
        mine = [a for a in found if a.level == level]
        if len(mine) > MAX_PER_LEVEL:
            rest = len(mine) - MAX_PER_LEVEL + 1
            noun = "errors" if level == "error" else "warnings"
            mine = [
                *mine[: MAX_PER_LEVEL - 1],
                Annotation(
                    level,
                    f"stagegate: {rest} more {noun}",
                    f"{rest} more {noun} of the stagegate verdict are not annotated (GitHub "
                    "shows 10 a step): see the step summary or stagegate-verdict.json.",
                ),
            ]
        out += mine
    # the order they were found in, errors and warnings interleaved as decided above
    order = {id(a): i for i, a in enumerate(found)}
    return sorted(out, key=lambda a: order.get(id(a), len(found)))


def _where(source: object, base: str) -> tuple[str, int | None]:
    if not isinstance(source, Mapping) or not source.get("file"):
        return "", None
    line = source.get("line")
    return _joined(base, str(source["file"])), line if isinstance(line, int) else None


def _joined(base: str, file: str) -> str:
    return posixpath.normpath(posixpath.join(base, file)) if base else file


def _check(check: Mapping[str, Any], config_file: str, base: str) -> Annotation:
    file, line = _where(check.get("source"), base)
    if not file and config_file:
        # a default error budget, or the rule that a name whose requests all failed fails:
        # no line stands for it, the file does
        file = _joined(base, config_file)
    failed = check.get("outcome") == "fail"
    stage = check.get("stage")
    subject = f"{check.get('metric')} of {check.get('endpoint')}" + (
        f" in stage {stage}" if stage else ""
    )
    title = (
        f"stagegate budget failed: {subject}"
        if failed
        else f"stagegate budget not judged: {subject}"
    )
    message = str(check.get("message") or "") or title
    return Annotation("error" if failed else "warning", title, message, file, line)


def _test(test: Mapping[str, Any], base: str) -> Annotation:
    file, line = _where(test.get("source"), base)
    who = "critical test" if test.get("critical") else "test"
    what = "failed" if test.get("outcome") == "failed" else "errored"
    nodeid = str(test.get("nodeid", ""))
    message = f"{who[:1].upper()}{who[1:]} {nodeid} {what}" + (
        f": {test['message']}" if test.get("message") else "."
    )
    return Annotation("error", f"stagegate: {who} {what}", message, file, line)


def _flaky(test: Mapping[str, Any], base: str) -> Annotation:
    file, line = _where(test.get("source"), base)
    critical = bool(test.get("critical"))
    reruns = int(test.get("reruns") or 0)
    after = f"{reruns} rerun{'' if reruns == 1 else 's'}" if reruns > 0 else "a rerun"
    who = "Critical test" if critical else "Test"
    message = f"{who} {test.get('nodeid', '')} passed only after {after}" + (
        ": a flaky critical path blocks promotion." if critical else "."
    )
    return Annotation(
        "error" if critical else "warning",
        f"stagegate: {who.lower()} is flaky",
        message,
        file,
        line,
    )
