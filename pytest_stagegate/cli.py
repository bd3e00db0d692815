"""The ``stagegate`` command: what CI runs after pytest, to act on the verdict.

    stagegate verify VERDICT --target T [--commit SHA] [--max-age 24h] [--allow-no-gate]
                     [--require-signature] [--base-url URL] [--allow-replaced-target]
        exit 0 only for a valid, passing verdict of that target (and commit, and base URL),
        young enough, whose load gate ran, measured on the configured target (not one a hook
        replaced), signed with $STAGEGATE_SIGNING_KEY whenever that key is set (and
        --require-signature refuses to check without it); otherwise print "REFUSED: <reason>"
        and exit 1.
        Reads at most 16 MiB of VERDICT.
    stagegate report VERDICT [--format text|markdown]     a summary, e.g. for $GITHUB_STEP_SUMMARY
    stagegate compare OLD NEW [--format text|markdown]    per-endpoint latency changes
    stagegate history DIR [--target T] [--last N] [--html PATH | --format text|markdown]
        per target of a --gate-history folder: pass rate, time to verdict, critical failures,
        p95/p99 and error rate per request name over the runs; --html: one offline file
    stagegate schema                                      the verdict's JSON Schema
    stagegate explain [--target T] [--config PATH]        how the gate judges this config:
        each budget with its limit and the samples it needs, the policy values, the rules
    stagegate worker --master-host H [--master-port P] [--target T]
        a Locust worker on another machine for `pytest --gate --gate-remote-workers N`;
        it proves $STAGEGATE_WORKER_TOKEN to the master (unset: exit 4)

Exit codes: 0 success, 1 ``verify`` refused, 4 bad usage or unreadable input (the convention
of pytest for usage errors). Problems the user can fix are one message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import defaults
from ._version import __version__
from .defaults import SIGNING_KEY_ENV
from .errors import StagegateError
from .units import DURATION_HELP, format_duration, parse_duration
from .urls import place
from .verdict import (
    VerdictError,
    check_signature,
    load_verdict,
    parse_timestamp,
    public_url,
    schema,
    signing_key,
)
from .verdict.report import render, render_compare

if TYPE_CHECKING:
    from .config import GateSettings

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 4

# Clocks of CI runners disagree a little; more than this and the verdict is not to be trusted.
FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_MAX_AGE = "24h"
DEFAULT_HISTORY_LAST = 30  # stagegate history: runs per target
_HEX = re.compile(r"^[0-9a-f]+$")
_MIN_PREFIX = 7


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with 4 (like pytest's) instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@dataclass(frozen=True)
class _MaxAge:
    seconds: float | None  # None: no limit
    text: str


def _max_age(text: str) -> _MaxAge:
    value = text.strip().lower()
    if value in ("none", "off"):
        return _MaxAge(None, text)
    try:
        # Days are not a unit of stagegate.yaml, but "7d" is what people write for a verdict age.
        if value.endswith("d") and value[:-1].replace(".", "", 1).isdigit():
            return _MaxAge(float(value[:-1]) * 86400, text)
        return _MaxAge(parse_duration(value), text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {DURATION_HELP} (or 7d, or none for no limit), got {text!r}"
        ) from None


def _commit(text: str) -> str:
    value = text.strip().lower()
    if not value:
        # Typically "$GITHUB_SHA" outside GitHub Actions: checking nothing would be a silent pass.
        raise argparse.ArgumentTypeError(
            "is empty; pass the commit SHA the verdict must be for, or leave out --commit"
        )
    # Not restricted to hex: STAGEGATE_COMMIT may record any id a CI system uses (an SVN
    # revision, a build number), and verify must be able to match what the verdict can hold.
    if any(ch.isspace() for ch in value):
        raise argparse.ArgumentTypeError(f"expected one commit id without spaces, got {text!r}")
    return value


def _base_url(text: str) -> str:
    if place(text) is None:
        raise argparse.ArgumentTypeError(
            f"expected an http(s) URL such as https://host, got {text!r}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stagegate",
        description="Act on a pytest-stagegate verdict: verify it before promoting, report it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = commands.add_parser(
        "verify",
        help="exit 0 only for a valid, passing verdict of this target and commit",
        description="Exit 0 only if VERDICT is a valid verdict file that says pass, for TARGET "
        "(and COMMIT, if given), finished no longer than MAX_AGE ago. Otherwise print "
        "'REFUSED: <reason>' and exit 1.",
    )
    verify.add_argument("verdict", type=Path, metavar="VERDICT", help="stagegate-verdict.json")
    verify.add_argument("--target", required=True, help="the target the verdict must be for")
    verify.add_argument(
        "--commit",
        type=_commit,
        help="the commit the verdict must be for (full SHA, or an abbreviation of 7+ hex digits)",
    )
    verify.add_argument(
        "--max-age",
        type=_max_age,
        default=_max_age(DEFAULT_MAX_AGE),
        metavar="AGE",
        help=f"refuse a verdict that finished longer ago, e.g. 30m, 24h, 7d or none "
        f"(default: {DEFAULT_MAX_AGE})",
    )
    verify.add_argument(
        "--allow-no-gate",
        action="store_true",
        help="accept a verdict of smoke tests alone (by default the load gate must have run)",
    )
    verify.add_argument(
        "--require-signature",
        action="store_true",
        help=f"refuse a verdict that is not signed with the key in ${SIGNING_KEY_ENV}, and "
        "refuse to run without that key (with the key set, every verdict must be signed by "
        "it, flag or not)",
    )
    verify.add_argument(
        "--base-url",
        type=_base_url,
        metavar="URL",
        help="the base URL the verdict must have been measured at (credentials are ignored)",
    )
    verify.add_argument(
        "--allow-replaced-target",
        action="store_true",
        help="accept a verdict whose target a pytest_stagegate_configure_target hook replaced "
        "(e.g. with a local app); refused by default",
    )
    verify.set_defaults(func=_verify)

    report = commands.add_parser(
        "report", help="print a summary of a verdict", description="Print a summary of VERDICT."
    )
    report.add_argument(
        "verdict",
        type=Path,
        nargs="?",
        metavar="VERDICT",
        help=f"the verdict file (default: {defaults.VERDICT_FILE} in the current directory, "
        "where pytest --gate writes it)",
    )
    _format_option(report)
    report.set_defaults(func=_report)

    compare = commands.add_parser(
        "compare",
        help="compare the load measurements of two verdicts",
        description="Print per-endpoint changes (p50, p95, p99, avg, error rate, rps) from OLD "
        "to NEW.",
    )
    compare.add_argument("old", type=Path, metavar="OLD")
    compare.add_argument("new", type=Path, metavar="NEW")
    _format_option(compare)
    compare.set_defaults(func=_compare)

    history = commands.add_parser(
        "history",
        help="pass rate, time to verdict and latency trends of the verdicts in a history",
        description="Per target of DIR (pytest --gate --gate-history DIR): the pass rate of "
        f"the last N gated runs against the {percent_goal()} goal, the time from each run's "
        f"start to its verdict against the {format_duration(defaults.VERIFY_TIME_GOAL)} goal, "
        "the critical tests that failed, and the p95, p99 and error rate of every request name "
        "per run; as text, markdown, or one self-contained HTML file with charts.",
    )
    history.add_argument("directory", type=Path, metavar="DIR", help="the history folder")
    history.add_argument("--target", help="only this target (default: every target in DIR)")
    history.add_argument(
        "--last",
        type=_positive,
        default=DEFAULT_HISTORY_LAST,
        metavar="N",
        help=f"the last N runs of each target (default: {DEFAULT_HISTORY_LAST})",
    )
    shown = history.add_mutually_exclusive_group()
    shown.add_argument(
        "--html", type=Path, metavar="PATH", help="write the dashboard to PATH (HTML, offline)"
    )
    shown.add_argument(
        "--format", choices=("text", "markdown"), default="text", help="default: text"
    )
    history.set_defaults(func=_history)

    schema_cmd = commands.add_parser(
        "schema",
        help="print the JSON Schema of the verdict",
        description="Print the JSON Schema (draft 2020-12) of the verdict file.",
    )
    schema_cmd.set_defaults(func=_schema)

    explain = commands.add_parser(
        "explain",
        help="print how the gate judges, with the budgets and policy of a stagegate.yaml",
        description=(
            "Print every budget of TARGET with its limit and the samples it needs, the policy "
            "values (min_samples, default_error_rate, saturation_cpu, ...) and every rule the "
            "gate applies, for the stagegate.yaml found at the current directory or above it "
            "(as pytest finds it), or given with --config."
        ),
    )
    explain.add_argument(
        "--target", default=os.environ.get(defaults.TARGET_ENV, defaults.TARGET),
        help=f"the target (default: ${defaults.TARGET_ENV} or {defaults.TARGET})",
    )  # fmt: skip
    explain.add_argument(
        "--config", type=Path, metavar="PATH",
        help=f"the {defaults.CONFIG_FILE} to read (default: the first one in the current "
        "directory or above it, up to a repository root)",
    )  # fmt: skip
    explain.set_defaults(func=_explain)

    worker = commands.add_parser(
        "worker",
        help="run a Locust worker for a gated run's master on another machine",
        description=(
            "Join the load of `pytest --gate --gate-remote-workers N --gate-master-bind "
            "HOST:PORT` from another machine. The plan comes from this machine's "
            "stagegate.yaml and environment; the worker exits when the run ends. It proves "
            f"${defaults.WORKER_TOKEN_ENV} (the master's, at least 16 characters) before the "
            "master counts it, and obeys only a master that proves it back."
        ),
    )
    worker.add_argument("--master-host", required=True, help="the master's address")
    worker.add_argument(
        "--master-port",
        type=int,
        default=defaults.MASTER_PORT,
        help=f"default: {defaults.MASTER_PORT}",
    )
    worker.add_argument(
        "--stagegate-config", type=Path, default=Path(defaults.CONFIG_FILE), metavar="PATH",
        help=f"default: ./{defaults.CONFIG_FILE}",
    )  # fmt: skip
    worker.add_argument(
        "--target", default=os.environ.get(defaults.TARGET_ENV, defaults.TARGET),
        help=f"the target under load (default: ${defaults.TARGET_ENV} or {defaults.TARGET})",
    )  # fmt: skip
    worker.set_defaults(func=_worker)
    return parser


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("text", "markdown"), default="text", help="default: text"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stagegate`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`stagegate schema | head`): not an error. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (StagegateError, OSError, ValueError) as exc:
        print(f"stagegate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _verify(args: argparse.Namespace) -> int:
    try:
        data = load_verdict(args.verdict)
    except VerdictError as exc:
        return _refuse([str(exc)])

    # The signature first: without it, nothing else in the file can be trusted.
    refusals, signed = _signature_refusals(data, args.require_signature)
    state = data["verdict"]
    if state != "pass":
        refusals.append(f"the verdict is {state}, not pass: {data['reasons'][0]}")

    refusals += _gate_refusals(data.get("gate"), state, args.allow_no_gate)

    target = data["target"]["name"]
    if target != args.target:
        refusals.append(f"the verdict is for target {target!r}, not {args.target!r}")
    refusals += _where_refusals(data["target"], args)

    sha: str | None = data["commit"]["sha"]
    if args.commit is not None:
        if not sha:
            refusals.append(
                f"the verdict records no commit (source {data['commit']['source']}), so it "
                f"cannot be matched to {args.commit}"
            )
        elif not _same_commit(sha, args.commit):
            refusals.append(f"the verdict is for commit {sha}, not {args.commit}")

    finished = parse_timestamp(data["finished_at"])
    age = _now() - finished
    max_age: _MaxAge = args.max_age
    if age < -FUTURE_TOLERANCE:
        refusals.append(
            f"the verdict finished at {data['finished_at']}, {_human(-age)} in the future; "
            "a clock is wrong or the file was edited"
        )
    elif max_age.seconds is not None and age.total_seconds() > max_age.seconds:
        refusals.append(
            f"the verdict finished {_human(age)} ago ({data['finished_at']}), longer ago than "
            f"--max-age {max_age.text}"
        )

    if refusals:
        return _refuse(refusals)
    at = f" at commit {sha[:12]}" if sha else ""
    when = "just now" if age.total_seconds() < 1 else f"{_human(age)} ago"
    extra = "; signature verified" if signed else ""
    if data["target"].get("replaced"):
        extra += "; measured on a target a hook replaced (--allow-replaced-target)"
    print(f"OK: {args.verdict}: verdict pass for target {target!r}{at}, finished {when}{extra}")
    return EXIT_OK


def _signature_refusals(data: dict[str, Any], required: bool) -> tuple[list[str], bool]:
    """(refusals, whether the signature was verified). With the key set, the signature must
    be there and match (a removed signature looks like none); without it, --require-signature
    refuses. The key is never shown."""
    key = signing_key(os.environ)
    present = data.get("signature") is not None
    if key is None:
        if required:
            return [
                f"--require-signature needs the signing key in ${SIGNING_KEY_ENV}, which is not "
                "set (or empty), so the verdict's signature cannot be checked"
            ], False
        return [], False
    problem = check_signature(data, key)
    if problem is None:
        return [], True
    if not present:
        problem += (
            f" (was {SIGNING_KEY_ENV} set for the pytest run that wrote it?); with the key "
            "set, an unsigned verdict is refused: a removed signature looks the same"
        )
    return [problem], False


def _where_refusals(target: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Refusals about where the verdict was measured: --base-url, a replaced target."""
    refusals = []
    if target.get("replaced") and not args.allow_replaced_target:
        configured = target.get("configured_base_url")
        refusals.append(
            f"the verdict was not measured on the configured target {target['name']!r}: a "
            f"pytest_stagegate_configure_target hook replaced it (measured at "
            f"{target['base_url']}"
            + (f", configured {configured}" if configured else "")
            + "); pass --allow-replaced-target to accept that"
        )
    if args.base_url is not None and place(target["base_url"]) != place(args.base_url):
        refusals.append(
            f"the verdict was measured at {target['base_url']}, not at {public_url(args.base_url)}"
        )
    return refusals


def _gate_refusals(gate: dict[str, Any] | None, state: str, allow_no_gate: bool) -> list[str]:
    """A verdict without a completed load gate proves nothing about performance. Only a passing
    verdict is offered --allow-no-gate (it cannot turn any other into an accepted one), and a
    gate that was requested is not said to be missing: the verdict's reasons say what it did."""
    if allow_no_gate or (gate is not None and gate.get("status") == "completed"):
        return []
    if gate is None:
        refusal = "the load gate did not run for this verdict (pytest ... --gate), so it proves "
        refusal += "nothing about performance"
        if state == "pass":
            refusal += "; pass --allow-no-gate to accept smoke tests alone"
        return [refusal]
    if state != "pass":
        return []  # the verdict is refused already, and its first reason says why
    return [f"the verdict's load gate did not complete (status {gate.get('status')!r})"]


def _refuse(refusals: Sequence[str]) -> int:
    # One line of clauses: a refusal quoting a sentence (a verdict's reason) loses its full stop.
    print("REFUSED: " + "; ".join(" ".join(r.split()).rstrip(". ") for r in refusals))
    return EXIT_REFUSED


def _same_commit(recorded: str, wanted: str) -> bool:
    """Equal ignoring case, or, for hex SHAs, one a prefix of the other of at least 7 digits:
    CI systems and people pass abbreviated SHAs."""
    recorded, wanted = recorded.strip().lower(), wanted.strip().lower()
    if recorded == wanted:
        return True
    short, long = sorted((recorded, wanted), key=len)
    return (
        len(short) >= _MIN_PREFIX
        and bool(_HEX.match(short) and _HEX.match(long))
        and long.startswith(short)
    )


def _human(age: timedelta) -> str:
    seconds = int(abs(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _report(args: argparse.Namespace) -> int:
    path = args.verdict
    if path is None:
        path = Path(defaults.VERDICT_FILE)
        if not path.exists():
            raise VerdictError(
                f"no {defaults.VERDICT_FILE} in the current directory ({Path.cwd()}): run "
                "pytest --gate here first, or give the verdict's path: stagegate report PATH"
            )
    sys.stdout.write(render(load_verdict(path), args.format))
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    old, new = load_verdict(args.old), load_verdict(args.new)
    sys.stdout.write(render_compare(old, new, args.format))
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    from .load.remote import run_worker

    return run_worker(
        config_path=args.stagegate_config,
        target_name=args.target,
        master_host=args.master_host,
        master_port=args.master_port,
    )


def _history(args: argparse.Namespace) -> int:
    from .verdict.history import load_runs, render, summarize

    runs, skipped = load_runs(args.directory, args.target)
    for line in skipped:
        print(f"stagegate: {line}", file=sys.stderr)
    if args.target is not None and not runs:
        kept = sorted({run.target for run in load_runs(args.directory)[0]})
        there = (
            f"the targets kept there: {', '.join(repr(t) for t in kept)}"
            if kept
            else "it keeps no verdicts yet"
        )
        raise VerdictError(f"{args.directory}: no verdicts of target {args.target!r}; {there}")
    summaries = summarize(runs, last=args.last)
    if args.html is None:
        sys.stdout.write(render(summaries, args.format))
        return EXIT_OK
    from ._atomic import atomic_write_text
    from .verdict.dashboard import render_html

    page = render_html(summaries, source=str(args.directory), skipped=skipped)
    try:
        atomic_write_text(args.html, page)
    except OSError as exc:
        print(_unwritable_html(args.html, exc), file=sys.stderr)
        return EXIT_USAGE
    print(
        f"stagegate: wrote {args.html} ({_count(len(runs), 'verdict')}, "
        f"{_count(len(summaries), 'target')})"
    )
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    """``1 verdict``, ``2 verdicts``, ``0 targets``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _unwritable_html(path: Path, exc: OSError) -> str:
    """One paragraph: why ``--html PATH`` could not be written (never a temporary file's name:
    ``exc.filename`` may be one)."""
    if path.is_dir():
        why = f"is a directory; give the name of a file to write, e.g. {path / 'history.html'}"
    else:
        above = next((p for p in path.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            why = f"cannot be made: {above} is a file, not a folder"
        else:
            why = f"cannot be written ({exc.strerror or type(exc).__name__})"
    return f"stagegate history: --html {path}: {why}; nothing was written."


def percent_goal() -> str:
    return f"{defaults.PASS_RATE_GOAL * 100:g}%"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of runs, 1 or more, got {text!r}"
        )
    return value


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(schema(), indent=2))
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from .config import load_config
    from .discovery import find_config

    if args.config is not None:
        path, how = Path(os.path.abspath(args.config)), "given with --config"
    else:
        search = find_config(Path.cwd())
        if search.path is None:
            print(
                f"stagegate: error: no {defaults.CONFIG_FILE} {search.looked}; run this in your "
                f"project or pass --config PATH/TO/{defaults.CONFIG_FILE}.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        path, how = search.path, search.how
    settings = load_config(path).gate_settings(args.target)
    sys.stdout.write("\n".join(explain_lines(args.target, path, how, settings)) + "\n")
    return EXIT_OK


def explain_lines(target: str, path: Path, how: str, settings: GateSettings) -> list[str]:
    """``stagegate explain``: the budgets of ``target`` (each with its limit and the samples
    it needs), the policy values, and every rule of the judgment with those values. The rules
    are the README's "How the gate judges"; budgets.py and load/usage.py apply them."""
    from .budgets import TOTAL, samples_needed
    from .load.usage import HOT_MIN_SAMPLES, HOT_SHARE, LAG_LIMIT_MS, LAG_MIN_SAMPLES, LAG_SHARE
    from .metrics import parse_metric
    from .units import format_duration, format_limit, format_rate

    min_samples = settings.min_samples
    default_rate = format_rate(settings.default_error_rate)
    load = settings.load

    def row(endpoint: str, metric: str, limit: float) -> list[str]:
        parsed = parse_metric(metric)
        needed = samples_needed(metric, min_samples)
        if parsed.regression:
            written = f"<= +{format_rate(limit)} on the baseline"
        elif parsed.base == "min_rps":
            written = f">= {format_limit(limit, parsed.unit)}"
        else:
            written = f"<= {format_limit(limit, parsed.unit)}"
        why = "min_samples"
        if parsed.percentile is not None and needed > max(1, min_samples):
            why = f"{parsed.base}: ceil(1 / (1 - {parsed.base[1:]}/100))"
        if parsed.regression:
            why += "; the baseline needs as many"
        return [endpoint, metric, written, f"{needed:,}", why]

    rows = [row(b.endpoint, b.metric, b.limit) for b in settings.budgets]
    for waiver in settings.waivers:
        rows.append([waiver.endpoint, "error_rate", "off (waived)", "-", waiver.written()])
    written_rates = {b.endpoint for b in settings.budgets if b.metric == "error_rate"}
    written_rates.update(w.endpoint for w in settings.waivers)
    others = (
        "every other request name and total"
        if TOTAL not in written_rates
        else "every other request name"
    )
    rows.append(
        [others, "error_rate", f"<= {default_rate}", f"{max(1, min_samples):,}",
         "gate.default_error_rate"]
    )  # fmt: skip

    lines = [f"Target {target!r} of {path} ({how}).", ""]
    lines += ["Budgets as written, then waived and default ones:"]
    lines += _table(["request name", "budget", "limit", "needs", "why"], rows)
    for stage in load.stages:
        if stage.budgets:
            lines += ["", f"Budgets of stage {stage.name!r} (on its requests only):"]
            lines += _table(
                ["request name", "budget", "limit", "needs", "why"],
                [row(b.endpoint, b.metric, b.limit) for b in stage.budgets],
            )
    if load.open_model:
        rate = f"{load.rate:g}/s" if load.rate is not None else "in stages"
        model = f"open model, {rate}, at most {load.users:,} concurrent iterations,"
    else:
        model = f"closed model, {load.users:,} user{'' if load.users == 1 else 's'}"
    unjudged = [s.name for s in load.stages if not s.judge]
    lines += [
        "",
        "Policy:",
        f"  min_samples: {min_samples:,}",
        f"  default_error_rate: {default_rate}",
        f"  saturation_cpu: {settings.saturation_cpu:g}% of one core, per load process",
        f"  run_after_critical_failure: {str(settings.run_after_critical_failure).lower()}",
        f"  flaky_blocks: {str(settings.flaky_blocks).lower()}",
        f"  load: {model} for {format_duration(load.duration)}"
        + (f", warm-up {format_duration(load.warmup)} not judged" if load.warmup else "")
        + (f", stages not judged: {', '.join(unjudged)}" if unjudged else ""),
    ]
    examples = ", ".join(
        f"{p}: {samples_needed(p, 1):,}" for p in ("p50", "p90", "p95", "p99", "p99.9")
    )
    abort = load.abort
    dropped = (
        "this load uses the open model"
        if load.open_model
        else "this load uses the closed model (users), in which nothing is dropped"
    )
    rules = [
        f"Samples: a check is judged on at least min_samples ({min_samples:,}) requests, and a "
        f"percentile pNN on at least ceil(1 / (1 - NN/100)) ({examples}), below which pNN is "
        "the maximum. With fewer it is inconclusive, never a pass, unless no more samples "
        "could save it: a max already over its limit, an error rate over its limit even if "
        "every missing request had succeeded, a min_rps not reached; those fail.",
        "Latency (pNN, avg, max) is over the successful responses and the requests that timed "
        "out, at their full wait; other failed requests are counted apart. min_rps counts "
        "successful responses per second; error_rate is failed requests over all requests.",
        f"Error budgets: every request name and total without an error_rate budget get one of "
        f"{default_rate} (gate.default_error_rate); error_rate: off waives it, with a warning. "
        "A name that runs only in a flow's on_start (a login, once per user) gets none, too few "
        "requests to judge a rate (its failures count in total and fail the flow's iteration); "
        "globs and flows get none either: only the budgets written on them.",
        "All failed: a request name, or a flow, whose requests (iterations) all failed fails "
        "the gate, whatever its budgets say, waived or not.",
        "Budget keys: a request name or total; else a flow's name (gate.load.flows), judged on "
        "its iterations (each one's whole duration is one sample; one with a failed step is a "
        "failure, so error_rate is the share of failed iterations); else, with * ? or [, a "
        "glob over the request names, judged on their requests merged (the verdict lists the "
        "names it covers; a glob that covers none is inconclusive).",
        "Status classes: status_Nxx (status_1xx to status_5xx) is the share of all the "
        "requests of its key (a name, a glob, total) answered with that class, judged like "
        "error_rate; a flow has no status of its own.",
        "Hang: a load that measured no request while requests were still waiting is an error "
        "(the target did not answer within the timeout).",
        "Unanswered: a request still waiting for its answer when the load stops is judged at its "
        "wait so far, a lower bound of its latency (from its send, or its slot's due time in the "
        "open model), in its name's latency and total's; it is neither a success nor a failure "
        "(error_rate, rps and min_rps count answers only).",
        f"Saturation: a load process is saturated when its CPU was at or above "
        f"{settings.saturation_cpu:g}% of one core in at least {HOT_SHARE:.0%} of its samples "
        f"({HOT_MIN_SAMPLES} or more), or its event loop lagged over {LAG_LIMIT_MS:g} ms in at "
        f"least {LAG_SHARE:.0%} of them ({LAG_MIN_SAMPLES} or more). A latency or min_rps "
        "check that would fail is then inconclusive (a pass stays a pass, with a warning).",
        f"Dropped iterations (open model: gate.load.rate, or stages with a rate): an iteration "
        f"that cannot start within {format_duration(defaults.ARRIVAL_LAG)} of its schedule is "
        f"dropped and counted. With more than {format_rate(defaults.MAX_DROPPED)} of the "
        "iterations due dropped (a stage's budgets: of that stage's), a latency check (not "
        "service_time_*) that passed is "
        "inconclusive, and one that failed stays failed only if its limit is at most that lag "
        f"(a dropped iteration waited at least as long), else it is inconclusive too; {dropped}.",
        "Regression budgets (*_regression) compare with the --gate-baseline verdict: the limit "
        "is the baseline's value times (1 + the allowed increase); without a baseline value "
        "measured on enough samples the check is inconclusive.",
        f"Early abort: at least {format_rate(abort.error_rate)} of the requests of the last "
        f"few seconds failed ({abort.min_requests:,} or more of them), or a latency budget "
        f"exceeded {abort.latency_factor:g} times over for {format_duration(abort.latency_for)} "
        "in a row while the generator was not saturated: the load stops and the gate fails"
        + ("." if abort.enabled else " (switched off for this target)."),
        "The gate fails if any check fails; else it is inconclusive if any check is; else it "
        "passes.",
    ]
    lines += ["", "Rules:"]
    for i, rule in enumerate(rules, 1):
        lines += textwrap.wrap(
            f"{i}. {rule}", width=_WIDTH, initial_indent="  ", subsequent_indent="     "
        )
    return lines


_WIDTH = 100  # the rules are wrapped to this many columns


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


if __name__ == "__main__":
    sys.exit(main())
