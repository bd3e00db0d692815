"""The leak matrix: each form a secret takes against each output a run writes.

Secrets (random canaries, from the environment as in CI):

- a 412-character JWT-like token in a header (``Authorization: Bearer ...``): pytest shortens
  its repr in a failing assert (``'eyJhbGciOi...'``), ``-l`` shows 240 characters of it;
- a base_url password with ``%``, ``@`` and a backslash: percent-encoded in the URL (and in
  httpx's request log), doubled backslash in a repr, and the base64 Basic header httpx and
  Locust derive from ``user:password``;
- a multi-line secret (a PEM-like value in ``vars``): each line in a diff, ``\\n``-escaped in
  a repr and in JSON;
- a secret with ``&`` and ``'``: JSON-escaped ``\\u0026``/``\\u0027`` in Locust's HTML report,
  ``&amp;``/``&#x27;`` in XML and HTML, and as a parametrize id in every test name.

Outputs: the terminal at default verbosity, ``-vv``, ``-l``, ``-s`` and under xdist; live
logs at DEBUG (``--log-cli-level``); ``--log-file``; the warnings summary; a collection error;
a ``pytest.exit`` reason; the verdict JSON; our JUnit; pytest's ``--junitxml``; Locust's HTML
report (``--gate-report``); the load log; ``$GITHUB_STEP_SUMMARY``; GitHub annotations
(``GITHUB_ACTIONS=true``); the ``--gate-metrics`` file; pytest's cache. Every file
the run leaves is searched, not only the expected ones.

The checker, ``leaked_runs``, derives the forms on its own (not through the Redactor) and
reports every run of 8 characters of a form found in a text (runs of fewer than 3 distinct
characters excepted, as the Redactor's rule says: ``--------`` of a PEM header is no secret).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, Route

RUN = 8


# -- the checker ---------------------------------------------------------------------------------


def secret_forms(secret: str) -> set[str]:
    """The texts ``secret`` may be written as, derived here independently of the Redactor."""
    body = json.dumps(secret)[1:-1]
    forms = {
        secret,
        repr(secret)[1:-1],
        body,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        body.replace("&", "\\u0026").replace("'", "\\u0027"),  # Jinja's tojson (Locust's report)
        body.replace("&", "\\u0026").replace("'", "\\u0027").replace("<", "\\u003c"),
        json.dumps(repr(secret)[1:-1])[1:-1],  # a repr written into a JSON file
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    forms |= {line.strip() for line in secret.splitlines()}
    return forms


def leaked_runs(text: str, forms: Iterable[str], run: int = RUN) -> list[str]:
    """Every run of ``run`` characters of one of ``forms`` that occurs in ``text`` (runs of
    fewer than 3 distinct characters excepted)."""
    pieces = {
        form[i : i + run]
        for form in forms
        for i in range(len(form) - run + 1)
        if len(set(form[i : i + run])) >= 3
    }
    seen = {text[i : i + run] for i in range(len(text) - run + 1)}
    return sorted(pieces & seen)


def test_checker_finds_a_shortened_repr_and_nothing_shorter_than_a_run() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.payload-" + "x1y2z3" * 10
    shortened = f"AssertionError: assert {token[:9]!r}... == 'x'"
    assert leaked_runs(shortened, {token}) == ["eyJhbGci", "yJhbGciO"]
    assert leaked_runs(f"the end {token[-7:]}", {token}) == []  # 7 characters: not a run
    assert leaked_runs(f"{token[:4]}***{token[4:8]}", {token}) == []


def test_checker_finds_every_form() -> None:
    secret = "amp&it's\\a@b%c-0123456789"
    forms = secret_forms(secret)
    for text in (
        json.dumps({"a": secret}),
        json.dumps(secret).replace("&", "\\u0026").replace("'", "\\u0027"),
        repr(secret),
        quote(secret, safe=""),
        f'<failure message="{html.escape(secret)}"/>',
    ):
        assert leaked_runs(text, forms), text
    body = ["MIIBVwIBADANBgkqhkiG9w0BAQEF", "AASCAUEwggE9AgEAAkEAq7BFUpkG"]
    pem = "\n".join(["-----BEGIN KEY-----", *body, "-----END KEY-----"])
    assert leaked_runs("- 'AASCAUEwggE9AgEAAkEAq7BFUpkG'", secret_forms(pem))
    assert leaked_runs(json.dumps(repr(pem)), secret_forms(pem))
    # pytest's separators are no run of a PEM header's dashes
    assert leaked_runs("-------------- Captured log call --------------", secret_forms(pem)) == []


# -- the matrix ----------------------------------------------------------------------------------

CONFTEST = """
import pytest


@pytest.fixture
def all_secrets(http, target_vars):
    basic = http.get("/ok").request.headers["authorization"]  # httpx derives it from base_url
    return [http.headers["authorization"], http.base_url.password, basic,
            target_vars["pem"], http.headers["x-token"]]
"""

TESTS = r"""
import logging
import os
import sys
import warnings

import pytest

AMP = os.environ["LEAK_AMP"]


def test_jwt_compared(http):
    assert http.headers["authorization"] == "Bearer nope"


def test_password_compared(http):
    assert http.base_url.password == "nope"


def test_basic_header_compared(http):
    assert http.get("/ok").request.headers["authorization"] == "Basic nope"


def test_multiline_compared(target_vars):
    assert target_vars["pem"] == "nope\nnope"


def test_amp_compared(http):
    assert http.headers["x-token"] == "nope"


def test_everything_compared(all_secrets):
    assert all_secrets == ["nope"]


@pytest.mark.parametrize("token", [AMP])
def test_parametrized(token):
    pass


def test_locals(all_secrets, target_vars):
    jwt, password, basic, pem, amp = all_secrets
    assert not jwt


def test_logs(all_secrets, http):
    log = logging.getLogger("app")
    log.warning("all of them: %s", all_secrets)
    log.info("one by one: %s %s %s %s %s", *all_secrets)
    try:
        raise ValueError(" ".join(all_secrets))
    except ValueError:
        log.exception("it failed")
    http.get("/ok")  # httpx logs the URL, password included


def test_warns(all_secrets):
    warnings.warn(UserWarning("careful: " + repr(all_secrets)))


def test_prints(all_secrets):
    print(all_secrets)
    print(*all_secrets, file=sys.stderr)
    assert False, "see the output"
"""

BROKEN = """
import os
raise RuntimeError("cannot import with " + os.environ["LEAK_JWT"] + " " + os.environ["LEAK_AMP"])
"""

EXITS = """
import pytest


def test_exits(all_secrets):
    pytest.exit("giving up: " + " | ".join(all_secrets), returncode=3)


def test_after():
    pass
"""

LOCUSTFILE = """
import logging
from urllib.parse import unquote, urlsplit

from locust import HttpUser, constant, task


class Leaky(HttpUser):
    wait_time = constant(0.05)

    @task
    def leak(self):
        target = self.environment.stagegate_target
        password = unquote(urlsplit(self.host).password)
        values = [target["headers"]["Authorization"], password, target["vars"]["pem"],
                  target["headers"]["X-Token"]]
        name = "GET /ok " + target["headers"]["X-Token"]
        with self.client.get("/ok", name=name, catch_response=True) as response:
            basic = response.request.headers.get("Authorization", "")
            response.failure("refused: " + " | ".join(values + [basic]))
        logging.getLogger("shop").warning("values: %r", values + [basic])
        print(values)
"""


class Canaries:
    """The secrets of one run and the forms the checker looks for."""

    def __init__(self) -> None:
        tag = secrets.token_hex(6)
        payload = base64.urlsafe_b64encode(secrets.token_bytes(400)).decode().rstrip("=")
        self.jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + payload)[:412]
        self.password = f"pa%ss@wo\\rd-{tag}"
        self.password_in_url = quote(self.password, safe="")
        self.basic = base64.b64encode(f"ci:{self.password}".encode()).decode()
        lines = [base64.b64encode(secrets.token_bytes(36)).decode() for _ in range(3)]
        self.pem = "\n".join(["-----BEGIN TEST KEY-----", *lines, "-----END TEST KEY-----"])
        self.amp = f"amp&it's-{tag}"

    def environ(self) -> dict[str, str]:
        return {
            "LEAK_JWT": self.jwt,
            "LEAK_PW": self.password_in_url,
            "LEAK_PEM": self.pem,
            "LEAK_AMP": self.amp,
        }

    def forms(self) -> set[str]:
        values = (self.jwt, self.password, self.password_in_url, self.basic, self.pem, self.amp)
        return {form for value in values for form in secret_forms(value)}


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Canaries:
    made = Canaries()
    for name, value in made.environ().items():
        monkeypatch.setenv(name, value)
    return made


def _project(pytester: pytest.Pytester, server: HTTPTestServer) -> None:
    write_stagegate(
        pytester,
        server.url.replace("http://", "http://ci:${LEAK_PW}@"),
        target={
            "headers": {"Authorization": "Bearer ${LEAK_JWT}", "X-Token": "${LEAK_AMP}"},
            "vars": {"pem": "${LEAK_PEM}"},
        },
        gate={
            "load": {"requests": None, "wait": None, "locustfile": "leak_locustfile.py"},
            "budgets": {"total": {"p95": None}},
        },
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_leaks=TESTS,
        test_broken=BROKEN,
        test_exits=EXITS,
        leak_locustfile=LOCUSTFILE,
    )


def _outputs(pytester: pytest.Pytester, result: pytest.RunResult) -> dict[str, str]:
    """The terminal and every file the run left (the project's own sources hold no secret)."""
    outputs = {"terminal": result.stdout.str() + "\n" + result.stderr.str()}
    for path in sorted(Path(pytester.path).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            outputs[str(path.relative_to(pytester.path))] = path.read_text(errors="replace")
    return outputs


# The runs of the matrix: each output is produced by at least one of them.
GATED = [
    "--gate",
    "--gate-report",
    "report.html",
    "--junitxml",
    "pytest-junit.xml",
    "--log-cli-level=DEBUG",
    "--log-file",
    "debug.log",
    "--log-file-level=DEBUG",
    "--gate-metrics",
    "metrics.txt",
]
RUNS = {
    "default, gated, live logs, log file": [*GATED, "--ignore=test_exits.py", "-rA"],
    "-vv": ["-vv", "--ignore=test_exits.py", "-rA", "--verdict", "v.json", "--junitxml=j.xml"],
    "-l": ["-l", "--ignore=test_exits.py", "--verdict-junit", "vj.xml"],
    "-l -vv --tb=long": ["-l", "-vv", "--tb=long", "--ignore=test_exits.py", "--full-trace"],
    "pytest.exit": ["test_exits.py", "-v", "--verdict", "v.json", "--junitxml", "j.xml"],
    "-s (no capture)": ["-s", "--ignore=test_exits.py", "--log-cli-level=INFO"],
    "xdist -n 2": ["-n", "2", "-v", "--ignore=test_exits.py", "-rA", "--verdict", "v.json"],
}
# files each run must have written (so no output passes by being absent)
EXPECTED = {
    "default, gated, live logs, log file": [
        "stagegate-verdict.json",
        "stagegate-junit.xml",
        "stagegate-load.log",
        "report.html",
        "pytest-junit.xml",
        "debug.log",
        "summary.md",
        "metrics.txt",
    ],
    "-vv": ["v.json", "j.xml"],
    "-l": ["vj.xml"],
    "-l -vv --tb=long": [],
    "pytest.exit": ["v.json", "j.xml"],
    "-s (no capture)": [],
    "xdist -n 2": ["v.json"],
}


@pytest.mark.parametrize("run", list(RUNS))
def test_no_form_of_a_secret_in_any_output(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    canaries: Canaries,
    run: str,
) -> None:
    server = serve({"/ok": Route()})
    _project(pytester, server)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # a gated run annotates its failures
    result = pytester.runpytest("--continue-on-collection-errors", *RUNS[run])
    outputs = _outputs(pytester, result)
    terminal = outputs["terminal"]
    for name in EXPECTED[run]:
        assert name in outputs, (name, terminal[-3000:])
    # the secrets really travelled: the server saw them, the outputs show the masks
    seen = {k.lower(): v for k, v in server.last_headers("/ok").items()}
    assert seen["authorization"] in (f"Bearer {canaries.jwt}", f"Basic {canaries.basic}")
    assert seen["x-token"] == canaries.amp
    assert "***" in terminal
    if run == "pytest.exit":
        assert "giving up: Bearer ***" in terminal
        assert result.ret == 3
    else:
        assert "test_broken.py" in terminal  # the collection error is shown, redacted
        assert "failed" in terminal
    if run.startswith("default"):
        assert "careful: " in terminal  # the warnings summary
        assert "it failed" in outputs["debug.log"]
        assert "HTTP Request: GET" in outputs["debug.log"]  # httpx's log of the URL
        assert "refused: Bearer ***" in outputs["stagegate-load.log"] + outputs["report.html"]
        assert "\n::error " in terminal  # the annotations, searched with the terminal
    leaks = {name: leaked_runs(text, canaries.forms()) for name, text in outputs.items()}
    assert {name: runs for name, runs in leaks.items() if runs} == {}


# -- short secrets: the documented rule, not mangled output -------------------------------------


@pytest.mark.parametrize("password", ["e", "rtio"])
def test_a_short_password_does_not_mangle_the_output(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    password: str,
) -> None:
    monkeypatch.setenv("LEAK_PW", password)
    server = serve({"/ok": Route()})
    write_stagegate(pytester, server.url.replace("http://", "http://ci:${LEAK_PW}@"))
    pytester.makepyfile(
        textwrap.dedent(
            """
            def test_compares(http):
                assert http.base_url.password == "x"

            def test_message(http):
                assert "AssertionError" == http.base_url.password + "RTIO"
            """
        )
    )
    result = pytester.runpytest("-vv", "--verdict", "v.json")
    terminal = result.stdout.str()
    assert result.ret == 1
    assert "AssertionError" in terminal
    assert "Ass***" not in terminal and "***rtionError" not in terminal
    assert "failed" in terminal
    verdict = (pytester.path / "v.json").read_text()
    assert "AssertionError" in verdict
    if len(password) == 1:
        # rule 3: too short to mask, and the run says so in its header
        assert "cannot be masked" in terminal
        assert "'e' == 'x'" in terminal
    else:
        # rule 2: masked as a whole token only
        assert "cannot be masked" not in terminal
        assert "assert '***' == 'x'" in terminal
        assert "'rtio'" not in terminal and "'rtio'" not in verdict
        assert "assert '***' == 'x'" in verdict
