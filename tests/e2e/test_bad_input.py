"""Bad input, end to end: every mistake a user can make in stagegate.yaml, on the pytest command
line or with the ``stagegate`` command goes through the real commands (pytest in a subprocess
through pytester, ``python -m pytest_stagegate.cli`` in a subprocess) and must end with the
documented exit code and one message that names the problem and the fix (file, line and key for
a config problem), never with a traceback.

Exit codes: 4 is a usage error (pytest's and the CLI's); 1 is ``stagegate verify`` refusing, or
a run whose verdict is ``error`` (the load gate could not run: broken locustfile). The unit-level
config matrix lives in test_config.py; this one checks what the user actually sees.

Cases marked ``bug`` are strict xfails for real defects, reported with cause and suggested fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pytest_stagegate.verdict import write_verdict
from tests.servers import HTTPTestServer, Route, refused_url
from tests.verdict_samples import pass_verdict

USAGE = 4
REFUSED = 1  # stagegate verify said no
GATE_ERROR = 1  # the run finished, the verdict is "error"

BASE = "targets:\n  local:\n    base_url: {url}\n"
TWO_TARGETS = BASE + "  staging:\n    base_url: {url}\n"
GATE = "gate:\n  load:\n    requests: [GET /]\n"
LOCUST_GATE = (
    "gate:\n"
    "  min_samples: 1\n"
    "  load:\n"
    "    users: 2\n"
    "    spawn_rate: 2\n"
    "    duration: 1s\n"
    "    locustfile: perf.py\n"
    "  budgets:\n"
    "    total: {error_rate: 50%}\n"
)
TINY_GATE = (
    "gate:\n"
    "  min_samples: 1\n"
    "  load:\n"
    "    users: 2\n"
    "    spawn_rate: 2\n"
    "    duration: 1s\n"
    "    requests: [GET /]\n"
    "  budgets:\n"
    "    total: {error_rate: 50%}\n"
)
PASSING_TEST = "def test_one():\n    pass\n"
UNSET_VAR = "STAGEGATE_BAD_INPUT_UNSET_TOKEN"
# The inner runs do not need Hypothesis' pytest plugin, whose import is most of their start-up.
SPEED = ("-p", "no:hypothesispytest")


@dataclass(frozen=True)
class Case:
    """One bad input. ``{url}`` in files is the test server's URL; ``{outside}`` in args is a
    directory outside the project."""

    id: str
    args: tuple[str, ...]
    code: int | tuple[int, ...]  # the exit code, or the codes a fix may choose between
    expect: tuple[str, ...]  # each must appear in stdout + stderr
    config: str | None = BASE
    files: Mapping[str, str] = field(default_factory=dict)
    tests: str = PASSING_TEST
    env: Mapping[str, str] = field(default_factory=dict)
    cli: bool = False  # run `stagegate ...` instead of pytest
    verdict_reason: str | None = None  # a reason of the written verdict must hold this
    bug: str | None = None  # strict xfail: a real defect, see the module docstring


CASES: list[Case] = [
    # -- stagegate.yaml: syntax ---------------------------------------------------------------
    Case(
        "yaml-syntax",
        (),
        USAGE,
        ("stagegate.yaml:3: ", "not valid YAML"),
        config="targets:\n  local: {base_url: {url}\n  staging:\n    base_url: {url}\n",
    ),
    Case(
        "yaml-unclosed-at-end-of-file",
        (),
        USAGE,
        ("stagegate.yaml:4: ", "not valid YAML"),
        config=BASE + "    headers: {A: [oops\n",
    ),
    Case(
        "tab-indentation",
        (),
        USAGE,
        ("stagegate.yaml:3: ", "a tab is used for indentation", "indent with spaces"),
        config="targets:\n  local:\n\tbase_url: {url}\n",
    ),
    # -- stagegate.yaml: keys, types, units ---------------------------------------------------
    Case(
        "unknown-key-did-you-mean",
        (),
        USAGE,
        ("stagegate.yaml:4: targets.local.timout: ", "did you mean 'timeout'?", "Valid keys"),
        config=BASE + "    timout: 3s\n",
    ),
    Case(
        "wrong-type-list-for-duration",
        (),
        USAGE,
        ("stagegate.yaml:4: targets.local.timeout: ", "expected a duration", "got [1, 2]"),
        config=BASE + "    timeout: [1, 2]\n",
    ),
    Case(
        "wrong-type-number-for-url",
        (),
        USAGE,
        ("stagegate.yaml:3: targets.local.base_url: ", "expected a URL", "put it in quotes"),
        config="targets:\n  local:\n    base_url: 42\n",
    ),
    Case(
        "wrong-type-bool",
        (),
        USAGE,
        ("stagegate.yaml:4: targets.local.verify_tls: ", "expected true or false", "'maybe'"),
        config=BASE + "    verify_tls: maybe\n",
    ),
    Case(
        "users-negative",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.load.users: ", "must be at least 1, got -3"),
        config=BASE + "gate:\n  load:\n    users: -3\n",
    ),
    Case(
        "users-zero",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.load.users: ", "must be at least 1, got 0"),
        config=BASE + "gate:\n  load:\n    users: 0\n",
    ),
    Case(
        "users-not-a-number",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.load.users: ", "whole number", "'many'"),
        config=BASE + "gate:\n  load:\n    users: many\n",
    ),
    Case(
        "duration-10-minutes",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.load.duration: ", "such as 250ms, 1.5s, 2m or 1h", "'10 minutes'"),
        config=BASE + "gate:\n  load:\n    duration: 10 minutes\n",
    ),
    Case(
        "budget-p101",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.budgets.total.p101: ", "p0.1 to p99.9"),
        config=BASE + "gate:\n  budgets:\n    total: {p101: 1s}\n",
    ),
    Case(
        "budget-p95-fast",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.budgets.total.p95: ", "expected a duration", "'fast'"),
        config=BASE + "gate:\n  budgets:\n    total: {p95: fast}\n",
    ),
    Case(
        "budget-error-rate-150-percent",
        (),
        USAGE,
        ("stagegate.yaml:6: gate.budgets.total.error_rate: ", "between 0 and 100%", "'150%'"),
        config=BASE + "gate:\n  budgets:\n    total: {error_rate: 150%}\n",
    ),
    # -- targets ------------------------------------------------------------------------------
    Case(
        "missing-environment-variable",
        ("--target", "staging"),
        USAGE,
        (
            "stagegate.yaml:7: targets.staging.headers.Authorization: ",
            f"environment variable {UNSET_VAR} is not set",
            "needed by target 'staging'",
            f"${{{UNSET_VAR}:-value}}",
        ),
        config=TWO_TARGETS + f'    headers:\n      Authorization: "Bearer ${{{UNSET_VAR}}}"\n',
    ),
    Case(
        "unknown-target-lists-known",
        ("--target", "stagign"),
        USAGE,
        ("unknown target 'stagign'; did you mean 'staging'?", "Known targets: local, staging"),
        config=TWO_TARGETS,
    ),
    Case(
        "unknown-target-from-environment",
        (),
        USAGE,
        ("unknown target 'prod'", "STAGEGATE_TARGET"),
        config=TWO_TARGETS,
        env={"STAGEGATE_TARGET": "prod"},
    ),
    Case(
        "unknown-load-path",
        ("--gate",),
        USAGE,
        (
            "pytest-stagegate: $STAGEGATE_LOAD_PATH is 'bogus', which names no request path",
            "set it to lean",
            "or locust",
        ),
        config=BASE + GATE,
        env={"STAGEGATE_LOAD_PATH": "bogus"},
    ),
    Case(
        "worker-unknown-load-path",
        ("worker", "--master-host", "127.0.0.1", "--target", "local"),
        USAGE,
        ("stagegate worker: $STAGEGATE_LOAD_PATH is 'lean-ish', which names no request path",),
        config=BASE + GATE,
        env={"STAGEGATE_LOAD_PATH": "lean-ish", "STAGEGATE_WORKER_TOKEN": "a-worker-token-0123"},
        cli=True,
    ),
    Case(
        "target-without-config-file",
        ("--target", "staging"),
        USAGE,
        ("no stagegate.yaml in ", "or any directory above it", "--stagegate-config PATH"),
        config=None,
    ),
    # -- --stagegate-config, ini --------------------------------------------------------------
    Case(
        "stagegate-config-missing-file",
        ("--stagegate-config", "conf/nope.yaml"),
        USAGE,
        ("--stagegate-config: no file at", "conf/nope.yaml"),
    ),
    Case(
        "stagegate-config-is-a-directory",
        ("--stagegate-config", "."),
        USAGE,
        ("--stagegate-config: no file at",),
    ),
    Case(
        "stagegate-config-not-yaml",
        ("--stagegate-config", "test_case.py"),
        USAGE,
        ("test_case.py:1: ", "unknown key", "Valid keys here: version, targets, gate"),
    ),
    Case(
        "ini-stagegate-config-missing-file",
        (),
        USAGE,
        ("ini stagegate_config: no file at", "conf/sg.yaml"),
        config=None,
        files={"pytest.ini": "[pytest]\nstagegate_config = conf/sg.yaml\n"},
    ),
    # -- the gate's scenario ------------------------------------------------------------------
    Case(
        "gate-without-scenario",
        ("--gate",),
        USAGE,
        ("gate.load: --gate needs a scenario", "gate.load.requests", "gate.load.locustfile"),
    ),
    Case(
        "locustfile-missing",
        ("--gate",),
        USAGE,
        ("stagegate.yaml:10: gate.load.locustfile: ", "'perf.py' not found", "relative to"),
        config=BASE + LOCUST_GATE,
    ),
    Case(
        "locustfile-syntax-error",
        ("--gate",),
        GATE_ERROR,
        ("verdict: ERROR", "Could not import the locustfile", "perf.py", "SyntaxError", "line 2"),
        config=BASE + LOCUST_GATE,
        files={"perf.py": "from locust import HttpUser\nclass Shop(HttpUser)\n    pass\n"},
        verdict_reason="SyntaxError",
    ),
    Case(
        "locustfile-without-user-class",
        ("--gate",),
        GATE_ERROR,
        ("verdict: ERROR", "perf.py defines no User class", "locust.HttpUser"),
        config=BASE + LOCUST_GATE,
        files={"perf.py": "WAIT = 1\n"},
        verdict_reason="defines no User class",
    ),
    Case(
        "locustfile-raises-on-import",
        ("--gate",),
        GATE_ERROR,
        ("verdict: ERROR", "Could not import the locustfile", "RuntimeError: no config here"),
        config=BASE + LOCUST_GATE,
        files={"perf.py": "raise RuntimeError('no config here')\n"},
        verdict_reason="RuntimeError: no config here",
    ),
    # -- verdict and report paths -------------------------------------------------------------
    *(
        Case(
            f"unwritable-{name}",
            args,
            (1, USAGE),
            (shown,),
        )
        for name, args, shown in [
            ("verdict-under-proc", ("--verdict", "/proc/nope/v.json"), "/proc/nope/v.json"),
            ("verdict-under-a-file", ("--verdict", "test_case.py/v.json"), "test_case.py"),
            ("verdict-is-a-directory", ("--verdict", "."), "--verdict"),
            ("junit-under-proc", ("--verdict-junit", "/proc/nope/j.xml"), "/proc/nope/j.xml"),
        ]
    ),
    Case(
        "gate-report-unwritable",
        ("--gate", "--gate-report", "test_case.py/report.html"),
        (0, USAGE),
        ("report.html",),
        config=BASE + TINY_GATE,
    ),
    # -- --gate-baseline ----------------------------------------------------------------------
    Case(
        "baseline-corrupt-json",
        ("--gate", "--gate-baseline", "corrupt.json"),
        USAGE,
        ("--gate-baseline: ", "corrupt.json: not a verdict: not valid JSON", "line 2"),
        config=BASE + GATE,
    ),
    Case(
        "baseline-newer-schema",
        ("--gate", "--gate-baseline", "schema2.json"),
        USAGE,
        ("--gate-baseline: ", "verdict schema 2 is newer", "upgrade pytest-stagegate"),
        config=BASE + GATE,
    ),
    Case(
        "baseline-older-schema",
        ("--gate", "--gate-baseline", "schema0.json"),
        USAGE,
        ("--gate-baseline: ", "verdict schema 0 is not supported", "reads schema 1"),
        config=BASE + GATE,
    ),
    Case(
        "baseline-missing-file",
        ("--gate", "--gate-baseline", "nope.json"),
        USAGE,
        ("--gate-baseline: ", "nope.json: no such file"),
        config=BASE + GATE,
    ),
    Case(
        "baseline-is-a-directory",
        ("--gate", "--gate-baseline", "."),
        USAGE,
        ("--gate-baseline: ", "is a directory, not a verdict file"),
        config=BASE + GATE,
    ),
    Case(
        "baseline-outside-the-project",
        ("--gate", "--gate-baseline", "{outside}/corrupt.json"),
        USAGE,
        ("--gate-baseline: ", "not valid JSON"),
        config=BASE + GATE,
    ),
    # -- --gate-workers -----------------------------------------------------------------------
    Case(
        "gate-workers-abc",
        ("--gate-workers", "abc"),
        USAGE,
        ("argument --gate-workers", "whole number of Locust worker processes or 'auto'", "'abc'"),
    ),
    Case(
        "gate-workers-negative",
        ("--gate-workers", "-1"),
        USAGE,
        ("argument --gate-workers", "expected 0 or more worker processes, got -1"),
    ),
    # -- the targets marker -------------------------------------------------------------------
    Case(
        "targets-marker-without-names",
        (),
        USAGE,
        ("test_case.py::test_x", "needs at least one target name", "targets('staging')"),
        tests="import pytest\n\n@pytest.mark.targets()\ndef test_x():\n    pass\n",
    ),
    Case(
        "targets-marker-unknown-name",
        (),
        USAGE,
        ("test_case.py::test_x", "'stagign'", "did you mean 'staging'? known: local, staging"),
        config=TWO_TARGETS,
        tests="import pytest\n\n@pytest.mark.targets('stagign')\ndef test_x():\n    pass\n",
    ),
    # An xdist worker cannot end the session with a usage error: the test errors at setup
    # with the same message, and the run fails (exit 1).
    Case(
        "targets-marker-unknown-name-under-xdist",
        ("-n", "2"),
        1,
        ("'stagign'", "known: local, staging"),
        config=TWO_TARGETS,
        tests="import pytest\n\n@pytest.mark.targets('stagign')\ndef test_x():\n    pass\n",
    ),
    # -- the stagegate command ----------------------------------------------------------------
    Case(
        "cli-no-subcommand",
        (),
        USAGE,
        ("usage: stagegate", "the following arguments are required: COMMAND"),
        cli=True,
    ),
    Case(
        "cli-unknown-subcommand",
        ("verfiy",),
        USAGE,
        ("invalid choice: 'verfiy'", "'verify', 'report', 'compare', 'history', 'schema'"),
        cli=True,
    ),
    Case(
        "cli-verify-without-target",
        ("verify", "good.json"),
        USAGE,
        ("usage: stagegate verify", "the following arguments are required: --target"),
        cli=True,
    ),
    Case(
        "cli-verify-max-age-soon",
        ("verify", "good.json", "--target", "staging", "--max-age", "soon"),
        USAGE,
        ("argument --max-age", "such as 250ms", "7d", "got 'soon'"),
        cli=True,
    ),
    Case(
        "cli-verify-empty-commit",
        ("verify", "good.json", "--target", "staging", "--commit", ""),
        USAGE,
        ("argument --commit: is empty", "leave out --commit"),
        cli=True,
    ),
    Case(
        "cli-verify-commit-with-spaces",
        ("verify", "good.json", "--target", "staging", "--commit", "abc def"),
        USAGE,
        ("argument --commit", "without spaces", "'abc def'"),
        cli=True,
    ),
    Case(
        "cli-verify-missing-file-is-refused",
        ("verify", "nope.json", "--target", "staging"),
        REFUSED,
        ("REFUSED: nope.json: no such file",),
        cli=True,
    ),
    Case(
        "cli-verify-newer-schema-is-refused",
        ("verify", "schema2.json", "--target", "staging"),
        REFUSED,
        ("REFUSED: schema2.json: verdict schema 2 is newer", "upgrade"),
        cli=True,
    ),
    Case(
        "cli-report-format-pdf",
        ("report", "good.json", "--format", "pdf"),
        USAGE,
        ("argument --format: invalid choice: 'pdf'", "'text', 'markdown'"),
        cli=True,
    ),
    Case(
        "cli-report-corrupt-file",
        ("report", "corrupt.json"),
        USAGE,
        ("stagegate: error: corrupt.json: not a verdict: not valid JSON",),
        cli=True,
    ),
    Case(
        "cli-compare-missing-old",
        ("compare", "nope.json", "good.json"),
        USAGE,
        ("stagegate: error: nope.json: no such file",),
        cli=True,
    ),
    Case(
        "cli-compare-missing-new",
        ("compare", "good.json", "nope.json"),
        USAGE,
        ("stagegate: error: nope.json: no such file",),
        cli=True,
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer({"/": Route()}) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STAGEGATE_TARGET", "GITHUB_STEP_SUMMARY", UNSET_VAR):
        monkeypatch.delenv(name, raising=False)


def _write_inputs(directory: Path) -> None:
    """Verdict files the cases refer to: a good one, a corrupt one, two of other schemas."""
    write_verdict(directory / "good.json", pass_verdict())
    (directory / "corrupt.json").write_text('{"schema": 1, "verdict": "pass",\n')
    (directory / "schema2.json").write_text('{"schema": 2, "verdict": "pass"}\n')
    (directory / "schema0.json").write_text('{"schema": 0, "verdict": "pass"}\n')


def _run_cli(args: tuple[str, ...], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _params() -> list[object]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=f"BUG: {case.bug}")] if case.bug else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_bad_input(
    case: Case,
    pytester: pytest.Pytester,
    server: HTTPTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = pytester.path
    outside = project.parent / f"{project.name}-outside"
    outside.mkdir(exist_ok=True)
    _write_inputs(project)
    _write_inputs(outside)
    if case.config is not None:
        (project / "stagegate.yaml").write_text(case.config.replace("{url}", server.url))
    for name, text in case.files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{url}", server.url))
    (project / "test_case.py").write_text(case.tests)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = tuple(a.replace("{outside}", str(outside)) for a in case.args)

    if case.cli:
        code, output = _run_cli(args, project)
    else:
        result = pytester.runpytest(*SPEED, *args, timeout=120)
        code, output = result.ret, result.stdout.str() + "\n" + result.stderr.str()

    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    allowed = case.code if isinstance(case.code, tuple) else (case.code,)
    assert code in allowed, f"exit code {code}, expected {allowed}:\n{output}"
    for phrase in case.expect:
        assert phrase in output, f"{phrase!r} not in:\n{output}"
    if case.verdict_reason is not None:
        verdict = json.loads((project / "stagegate-verdict.json").read_text())
        assert verdict["verdict"] == "error" and verdict["promote"] is False
        assert verdict["gate"]["status"] == "error"
        assert case.verdict_reason in verdict["reasons"][0], verdict["reasons"]


def test_the_matrix_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


# --- random junk on the command line --------------------------------------------------------

PROPERTY_CONFIG = (
    "targets:\n"
    "  local:\n"
    "    base_url: {url}\n"
    "  staging:\n"
    "    base_url: {url}\n"
    f'    headers: {{Authorization: "Bearer ${{{UNSET_VAR}}}"}}\n'
    "gate:\n"
    "  load:\n"
    "    users: 1\n"
    "    duration: 1s\n"
    "    requests: [GET /]\n"
    "  budgets:\n"
    "    total: {p95: 1s, error_rate: 10%}\n"
)
# Values of a kind each option has met in real life, and plain junk. No leading "/": junk must
# not create directories outside the test's own one.
SPECIAL_VALUES = [
    "",
    "0",
    "-1",
    "1.5",
    "auto",
    "AUTO",
    "abc",
    "local",
    "staging",
    "nope.json",
    "stagegate.yaml",
    "test_junk.py",
    "sub/dir/out.json",
    "..",
    ".",
    "a b",
    "${HOME}",
    "10 minutes",
    "--gate",
    "-",
    "ünïcødé",
    "p101",
]
JUNK = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00/"),
        max_size=12,
    ),
)
VALUE_OPTIONS = [
    "--target",
    "--stagegate-config",
    "--verdict",
    "--verdict-junit",
    "--gate-baseline",
    "--gate-workers",
    "--gate-report",
]
OPTION = st.tuples(st.sampled_from(VALUE_OPTIONS), JUNK, st.booleans())
WRITTEN_PATH_OPTIONS = ("--verdict", "--verdict-junit")


def _unwritable_output(options: list[tuple[str, str, bool]], cwd: Path) -> tuple[str, str] | None:
    """The --verdict / --verdict-junit (option, value) that names a directory or lies under a
    file, as the run will see it (the last of each option wins), or None. Such a run must end
    with a usage error naming the option and the path (the cases 'unwritable-*' above)."""
    last: dict[str, tuple[str, bool]] = {}
    for name, value, joined in options:
        last[name] = (value, joined)
    for name in WRITTEN_PATH_OPTIONS:
        value, joined = last.get(name, ("", True))
        # Written apart, a value starting with "-" is read as an option: a usage error anyway.
        if not value or (value.startswith("-") and not joined):
            continue
        path = cwd / value
        if path.is_dir() or any(p.exists() and not p.is_dir() for p in path.parents):
            return name, value
    return None


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    options=st.lists(OPTION, max_size=4),
    gate=st.booleans(),
)
# The inputs that once ended in a traceback, always tried (random junk rarely finds them).
@example(options=[("--verdict", ".", False)], gate=False)
@example(options=[("--verdict-junit", "test_junk.py/j.xml", True)], gate=True)
@example(options=[("--verdict", "ok.json", True), ("--verdict", "..", True)], gate=False)
def test_junk_on_the_command_line_is_never_an_internal_error(
    pytester: pytest.Pytester, options: list[tuple[str, str, bool]], gate: bool
) -> None:
    # Subprocess, not in-process: the plugin installs a SIGTERM handler and pytest keeps
    # module state, so in-process runs would leak into each other.
    workdir = Path(tempfile.mkdtemp(dir=pytester.path))
    # Nothing listens there: --gate ends at once with verdict "error", never putting load.
    (workdir / "stagegate.yaml").write_text(PROPERTY_CONFIG.replace("{url}", refused_url()))
    (workdir / "test_junk.py").write_text(PASSING_TEST)
    unwritable = _unwritable_output(options, workdir)
    argv = ["--gate"] if gate else []
    for name, value, joined in options:
        argv += [f"{name}={value}"] if joined else [name, value]
    env = {k: v for k, v in os.environ.items() if k not in ("STAGEGATE_TARGET", UNSET_VAR)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *SPEED, *argv],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = proc.stdout + proc.stderr
    event(f"exit code {proc.returncode}")
    assert "Traceback" not in output and "INTERNALERROR" not in output, (argv, output)
    assert proc.returncode in (0, 1, 4, 5), (argv, proc.returncode, output)
    if unwritable is not None:
        # Never a run that ends without the verdict it was asked to write: a clean refusal
        # that names what is wrong (this option and path, or another bad option before it).
        event("an unwritable verdict path")
        name, value = unwritable
        assert proc.returncode in (1, USAGE), (argv, proc.returncode, output)
        assert f"pytest-stagegate: {name} {value}:" in output or "error:" in output.lower(), (
            argv,
            output,
        )
