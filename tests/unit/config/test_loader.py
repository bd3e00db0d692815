"""stagegate.yaml: the contract's example, environment substitution, overrides, and a matrix of
bad files that must each be reported at the right file, line and key, with a useful hint."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.config import (
    CONFIG_FILENAME,
    AbortSettings,
    Config,
    ConfigError,
    GateSettings,
    LoadSettings,
    RequestSpec,
    Target,
    load_config,
)

MARK = "# <--"  # the line a bad case must be reported on


def write(directory: Path, text: str, name: str = CONFIG_FILENAME) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(textwrap.dedent(text).splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "each bad case marks exactly one line"
    return lines[0]


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


# --- the contract's example, verbatim ----------------------------------------------------------

CONTRACT_EXAMPLE = """\
targets:
  local:
    base_url: http://127.0.0.1:8000
  staging:
    base_url: https://shop-staging.example.com
    headers:
      Authorization: "Bearer ${STAGING_TOKEN}"   # ${VAR} and ${VAR:-default} from the environment
    timeout: 10s                                 # per request
    ready:                                       # wait before the first test
      path: /healthz
      timeout: 120s
    version:                                     # refuse to test the wrong build
      path: /version
      expect: "${GIT_SHA}"
    vars:                                        # free-form data for tests
      product_id: 42
  production:
    base_url: https://shop.example.com
    protected: true                              # no destructive tests, no load unless allowed
    allow_load: false

gate:
  load:
    users: 20
    spawn_rate: 10
    duration: 30s
    warmup: 5s                                   # excluded from evaluation
    requests:                                    # declarative scenario ...
      - GET /api/products
      - {method: GET, path: /api/products/1, name: "GET /api/products/{id}", weight: 3}
    # locustfile: perf/locustfile.py             # ... or the user's own Locust file
  budgets:
    total:                                       # all requests together
      p95: 300ms
      error_rate: 1%
      min_rps: 20
    "GET /api/products/{id}":                    # one endpoint, by request name
      p99: 500ms
  targets:                                       # per-target overrides of load and budgets
    production:
      load: {users: 5, duration: 15s}
"""

ENV = {"STAGING_TOKEN": "s3cr3t-token", "GIT_SHA": "0123abc"}


@pytest.fixture
def example(tmp_path: Path) -> Config:
    return load_text(tmp_path, CONTRACT_EXAMPLE)


def test_example_targets(example: Config) -> None:
    assert example.target_names == ("local", "staging", "production")
    local = example.resolve_target("local", {})
    assert local == Target(name="local", base_url="http://127.0.0.1:8000")

    staging = example.resolve_target("staging", ENV)
    assert staging.base_url == "https://shop-staging.example.com"
    assert staging.headers == {"Authorization": "Bearer s3cr3t-token"}
    assert staging.timeout == 10.0
    assert staging.ready is not None
    assert (staging.ready.path, staging.ready.timeout, staging.ready.interval) == (
        "/healthz",
        120.0,
        0.25,
    )
    assert staging.version is not None
    assert (staging.version.path, staging.version.expect, staging.version.field) == (
        "/version",
        "0123abc",
        None,
    )
    assert staging.vars == {"product_id": 42}
    # The expected build is shown when it does not match: it is not a secret.
    assert staging.secrets == {"s3cr3t-token"}
    assert (staging.protected, staging.allow_load, staging.verify_tls) == (False, True, True)

    production = example.resolve_target("production", {})
    assert (production.protected, production.allow_load) == (True, False)


def test_example_gate(example: Config) -> None:
    requests = (
        RequestSpec(method="GET", path="/api/products", name="GET /api/products"),
        RequestSpec(method="GET", path="/api/products/1", name="GET /api/products/{id}", weight=3),
    )
    staging = example.gate_settings("staging")
    assert staging.load == LoadSettings(
        users=20, spawn_rate=10.0, duration=30.0, warmup=5.0, requests=requests
    )
    assert staging.budgets == (
        Budget("total", "p95", 300.0, f"{CONFIG_FILENAME}:34"),
        Budget("total", "error_rate", 0.01, f"{CONFIG_FILENAME}:35"),
        Budget("total", "min_rps", 20.0, f"{CONFIG_FILENAME}:36"),
        Budget("GET /api/products/{id}", "p99", 500.0, f"{CONFIG_FILENAME}:38"),
    )
    assert (staging.min_samples, staging.saturation_cpu) == (100, 90.0)
    assert example.gate_settings("local") == staging

    production = example.gate_settings("production")
    assert production.load == dataclasses.replace(staging.load, users=5, duration=15.0)
    assert production.budgets == staging.budgets


def test_config_is_frozen(example: Config) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        example.path = None  # type: ignore[misc,assignment]
    target = example.resolve_target("staging", ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.base_url = "http://elsewhere"  # type: ignore[misc]


def test_accepts_a_str_path(tmp_path: Path) -> None:
    path = write(tmp_path, CONTRACT_EXAMPLE)
    assert load_config(str(path)).path == path


# --- environment substitution ------------------------------------------------------------------

ENV_FILE = """\
targets:
  staging:
    base_url: "${STAGING_URL:-https://staging.example.com}/"
    headers:
      Authorization: "Bearer ${TOKEN}"
      X-Price: "$$5 and $$${TOKEN}"
      X-Team: "${TEAM:-qa}"
      X-Empty: "${NOTHING:-}"
      X-Retries: 3
    timeout: "${TIMEOUT:-5s}"
    protected: "${PROTECTED:-false}"
    version: {path: /version, expect: "${GIT_SHA:-dev}", field: build.sha}
    vars:
      user: "${USER_NAME}"
      nested: [{deep: "${TOKEN}"}, 7, "$$HOME"]
      plain: just text
  other:
    base_url: https://other.example.com
    headers: {Authorization: "${OTHER_TOKEN}"}  # never set, never needed
"""


def test_env_substitution_with_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    target = config.resolve_target("staging", {"TOKEN": "tkn-77", "USER_NAME": "alice"})
    assert target.base_url == "https://staging.example.com"
    assert target.headers == {
        "Authorization": "Bearer tkn-77",
        "X-Price": "$5 and $tkn-77",
        "X-Team": "qa",
        "X-Empty": "",
        "X-Retries": "3",
    }
    assert target.timeout == 5.0
    assert target.protected is False
    assert target.version is not None
    assert (target.version.expect, target.version.field) == ("dev", "build.sha")
    assert target.vars == {
        "user": "alice",
        "nested": [{"deep": "tkn-77"}, 7, "$HOME"],
        "plain": "just text",
    }
    # Only values from the environment are secrets; defaults written in the file are not.
    assert target.secrets == {"tkn-77", "alice"}


def test_environment_overrides_defaults_and_types(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    environ = {
        "TOKEN": "t",
        "USER_NAME": "u",
        "STAGING_URL": "http://10.0.0.5:8080",
        "TIMEOUT": "250ms",
        "PROTECTED": "true",
        "TEAM": "payments",
    }
    target = config.resolve_target("staging", environ)
    assert target.base_url == "http://10.0.0.5:8080"
    assert target.timeout == 0.25
    assert (target.protected, target.allow_load) == (True, False)
    assert target.headers["X-Team"] == "payments"
    # Headers and vars carry secrets; typed values, the URL and values under 4 characters
    # ("t") do not: masking them everywhere would destroy the output and hide nothing.
    assert target.secrets == {"payments"}


def test_a_password_in_the_base_url_is_a_secret(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        "targets:\n  staging:\n    base_url: ${STAGING_URL}\n",
    )
    target = config.resolve_target("staging", {"STAGING_URL": "https://ci:p%40ss-w0rd@host"})
    assert {"p%40ss-w0rd", "p@ss-w0rd"} <= target.secrets
    assert "p%40ss-w0rd" not in repr(target)


def test_missing_variable_names_variable_target_and_line(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    with pytest.raises(ConfigError) as info:
        config.resolve_target("staging", {"USER_NAME": "alice"})
    message = str(info.value)
    assert f"{CONFIG_FILENAME}:5: targets.staging.headers.Authorization: " in message
    assert "environment variable TOKEN is not set (needed by target 'staging')" in message
    assert "${TOKEN:-value}" in message
    assert (info.value.line, info.value.key) == (5, "targets.staging.headers.Authorization")


def test_empty_variable_is_reported_as_empty(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    with pytest.raises(ConfigError, match="TOKEN is set but empty"):
        config.resolve_target("staging", {"TOKEN": "", "USER_NAME": "u"})


def test_missing_variable_of_another_target_is_no_error(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    config.resolve_target("staging", {"TOKEN": "t", "USER_NAME": "u"})
    with pytest.raises(ConfigError, match=r"OTHER_TOKEN is not set .*target 'other'"):
        config.resolve_target("other", {})


def test_missing_variable_in_vars_points_at_the_vars_line(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    with pytest.raises(ConfigError) as info:
        config.resolve_target("staging", {"TOKEN": "t"})
    assert (info.value.line, info.value.key) == (14, "targets.staging.vars.user")


def test_repr_redacts_secrets(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    target = config.resolve_target("staging", {"TOKEN": "tkn-77", "USER_NAME": "alice"})
    for text in (repr(target), str(target), repr(target.public_headers())):
        assert "tkn-77" not in text
        assert "alice" not in text
    # A secret inside a longer value is replaced, the rest stays readable.
    assert target.public_headers()["Authorization"] == "Bearer ***"
    assert target.public_headers()["X-Price"] == "$5 and $***"
    assert "'X-Team': 'qa'" in repr(target)


def test_invalid_value_from_environment_is_not_shown(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    with pytest.raises(ConfigError) as info:
        config.resolve_target(
            "staging", {"TOKEN": "t", "USER_NAME": "u", "STAGING_URL": "ftp://hunter2@host"}
        )
    message = str(info.value)
    assert "hunter2" not in message
    assert "targets.staging.base_url" in message
    assert "http:// or https://" in message


def test_resolving_mutates_nothing(tmp_path: Path) -> None:
    config = load_text(tmp_path, ENV_FILE)
    before = repr(config._raw_targets)
    first = config.resolve_target("staging", {"TOKEN": "one", "USER_NAME": "u"})
    first.vars["nested"][0]["deep"] = "changed by a test"
    second = config.resolve_target("staging", {"TOKEN": "two", "USER_NAME": "u"})
    assert second.headers["Authorization"] == "Bearer two"
    assert second.vars["nested"][0] == {"deep": "two"}
    assert first.headers["Authorization"] == "Bearer one"
    assert repr(config._raw_targets) == before


def test_unknown_target_lists_known_names(example: Config) -> None:
    for call in (example.resolve_target, lambda name, _: example.gate_settings(name)):
        with pytest.raises(ConfigError) as info:
            call("stagign", {})
        message = str(info.value)
        assert "unknown target 'stagign'; did you mean 'staging'?" in message
        assert "Known targets: local, staging, production." in message
        assert CONFIG_FILENAME in message


def test_works_with_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_TOKEN", "from-os")
    monkeypatch.setenv("GIT_SHA", "abc")
    config = load_text(tmp_path, CONTRACT_EXAMPLE)
    assert config.resolve_target("staging", os.environ).headers["Authorization"] == (
        "Bearer from-os"
    )


# --- overrides ---------------------------------------------------------------------------------

OVERRIDES = """\
targets:
  staging: {base_url: "https://staging.example.com"}
  production: {base_url: "https://shop.example.com"}
  canary: {base_url: "https://canary.example.com"}
gate:
  min_samples: 50
  saturation_cpu: 80%
  load:
    users: 20
    duration: 1m
    warmup: 10s
    wait: [100ms, 1s]
    requests: [GET /a, "post /b"]
    abort: {error_rate: 50%, min_requests: 40}
  budgets:
    total: {p95: 300ms, error_rate: 1%}
    GET /a: {p99: 1s, max: 2s}
  targets:
    production:
      min_samples: 10
      flaky_blocks: true
      load:
        users: 5
        abort: {min_requests: 5, grace: 30s}
      budgets:
        GET /a: {p99: 500ms}
        POST /b: {avg: 50ms}
    canary:
      load:
        locustfile: perf/locustfile.py
"""


@pytest.fixture
def overrides(tmp_path: Path) -> Config:
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "locustfile.py").write_text("# a Locust file\n")
    return load_text(tmp_path, OVERRIDES)


def test_base_gate_settings(overrides: Config) -> None:
    staging = overrides.gate_settings("staging")
    assert staging.min_samples == 50
    assert staging.saturation_cpu == 80.0
    assert staging.load.users == 20
    assert (staging.load.duration, staging.load.warmup, staging.load.wait) == (60.0, 10.0, (0.1, 1))
    assert [r.name for r in staging.load.requests] == ["GET /a", "POST /b"]
    assert staging.load.abort == AbortSettings(error_rate=0.5, min_requests=40)
    assert [(b.endpoint, b.metric, b.limit) for b in staging.budgets] == [
        ("total", "p95", 300.0),
        ("total", "error_rate", 0.01),
        ("GET /a", "p99", 1000.0),
        ("GET /a", "max", 2000.0),
    ]


def test_target_overrides_merge_key_by_key(overrides: Config) -> None:
    production = overrides.gate_settings("production")
    assert (production.min_samples, production.flaky_blocks) == (10, True)
    assert production.saturation_cpu == 80.0
    assert (production.load.users, production.load.duration, production.load.warmup) == (
        5,
        60.0,
        10.0,
    )
    assert production.load.requests == overrides.gate_settings("staging").load.requests
    assert production.load.abort == AbortSettings(error_rate=0.5, min_requests=5, grace=30.0)
    # Per endpoint, then per metric: p99 tightened, max kept, a new endpoint added.
    assert [(b.endpoint, b.metric, b.limit) for b in production.budgets] == [
        ("total", "p95", 300.0),
        ("total", "error_rate", 0.01),
        ("GET /a", "p99", 500.0),
        ("GET /a", "max", 2000.0),
        ("POST /b", "avg", 50.0),
    ]
    sources = {b.metric: b.source for b in production.budgets}
    assert sources["p99"] == f"{CONFIG_FILENAME}:26"
    assert sources["max"] == f"{CONFIG_FILENAME}:17"


def test_override_scenario_replaces_the_base_one(overrides: Config, tmp_path: Path) -> None:
    canary = overrides.gate_settings("canary")
    assert canary.load.requests == ()
    assert canary.load.locustfile == tmp_path / "perf" / "locustfile.py"
    assert canary.load.locustfile.is_absolute()
    assert canary.load.users == 20


def test_locustfile_is_relative_to_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "perf").mkdir(parents=True)
    (project / "perf" / "load.py").write_text("")
    monkeypatch.chdir(tmp_path)  # somewhere else than the config file
    path = write(
        project,
        """\
        targets: {local: {base_url: "http://127.0.0.1:8000"}}
        gate: {load: {locustfile: perf/load.py}}
        """,
    )
    settings = load_config(path).gate_settings("local")
    assert settings.load.locustfile == (project / "perf" / "load.py").resolve()


def test_shorthands_and_normalisation(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """\
        version: 1
        targets:
          local:
            base_url: http://127.0.0.1:8000///
            ready: /healthz
            verify_tls: false
        gate:
          load:
            wait: 2s
            user_class: http
            requests:
              - delete /items/1
              - {path: /items, method: post, json: {a: [1, 2]}, expect_status: [201, 409]}
              - {path: /health, expect_status: 204, headers: {X-Trace: 1}}
        """,
    )
    target = config.resolve_target("local", {})
    assert target.base_url == "http://127.0.0.1:8000"
    assert target.ready is not None and target.ready.path == "/healthz"
    assert target.verify_tls is False
    load = config.gate_settings("local").load
    assert (load.wait, load.user_class) == ((2.0, 2.0), "http")
    assert load.requests == (
        RequestSpec("DELETE", "/items/1", "DELETE /items/1"),
        RequestSpec("POST", "/items", "POST /items", json={"a": [1, 2]}, expect_status=(201, 409)),
        RequestSpec(
            "GET", "/health", "GET /health", headers={"X-Trace": "1"}, expect_status=(204,)
        ),
    )


def test_yaml_merge_keys(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """\
        targets:
          a: &a
            base_url: https://a.example.com
            timeout: 3s
            headers: {X-Suite: smoke}
          b:
            <<: *a
            base_url: https://b.example.com
            timeout: 4s
        """,
    )
    b = config.resolve_target("b", {})
    assert (b.base_url, b.timeout, dict(b.headers)) == (
        "https://b.example.com",
        4.0,
        {"X-Suite": "smoke"},
    )


def test_null_means_default(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """\
        targets:
          local:
            base_url: http://127.0.0.1:8000
            headers:
            timeout:
        gate:
          load:
            users:
          budgets:
        """,
    )
    assert config.resolve_target("local", {}).timeout == 10.0
    assert config.gate_settings("local") == GateSettings()


# --- the bad-input matrix ----------------------------------------------------------------------

T = """\
targets:
  staging:
    base_url: https://staging.example.com
  production:
    base_url: https://shop.example.com
"""

# (id, file text with the reported line marked, dotted key or None, hints the message must hold)
BAD: list[tuple[str, str, str | None, list[str]]] = [
    (
        "yaml-syntax",
        "targets:\n  staging: {base_url: https://x\n  production:  # <--\n",
        None,
        ["not valid YAML"],
    ),
    (
        "yaml-unclosed-quote",
        'targets:\n  staging:\n    base_url: "https://x  # <--\n',
        None,
        ["not valid YAML", "quoted scalar"],
    ),
    (
        "tab-indentation",
        "targets:\n  staging:\n\tbase_url: https://x  # <--\n",
        None,
        ["tab", "spaces"],
    ),
    ("top-level-list", "- staging  # <--\n- production\n", None, ["must be a mapping", "targets:"]),
    ("top-level-scalar", "just some text  # <--\n", None, ["must be a mapping"]),
    (
        "empty-file",
        "# <-- nothing but a comment\n",
        None,
        ["empty", "minimal", "base_url: http://127.0.0.1:8000"],
    ),
    (
        "no-targets",
        "gate:  # <--\n  min_samples: 5\n",
        "targets",
        ["no targets", "minimal", "base_url:"],
    ),
    ("targets-empty", "targets: {}  # <--\n", "targets", ["no targets", "minimal"]),
    (
        "unknown-top-level-key",
        T + "gates:  # <--\n  min_samples: 5\n",
        "gates",
        ["unknown key 'gates'", "did you mean 'gate'?", "Valid keys here: version, targets, gate"],
    ),
    (
        "unknown-target-key",
        "targets:\n  staging:\n    base_ulr: https://x  # <--\n",
        "targets.staging.base_ulr",
        ["did you mean 'base_url'?", "Valid keys here: base_url, headers, timeout"],
    ),
    (
        "missing-base-url",
        "targets:\n  staging:  # <--\n    timeout: 5s\n",
        "targets.staging.base_url",
        ["missing", "https://"],
    ),
    (
        "bad-base-url-scheme",
        "targets:\n  staging:\n    base_url: ftp://files.example.com  # <--\n",
        "targets.staging.base_url",
        ["http:// or https://", "'ftp://files.example.com'"],
    ),
    (
        "base-url-without-scheme",
        "targets:\n  staging:\n    base_url: staging.example.com  # <--\n",
        "targets.staging.base_url",
        ["http:// or https://"],
    ),
    (
        "headers-wrong-type",
        T + "  canary:\n    base_url: https://c\n    headers: [a, b]  # <--\n",
        "targets.canary.headers",
        ["expected a mapping", "got a list"],
    ),
    (
        "header-value-boolean",
        "targets:\n  s:\n    base_url: https://x\n    headers:\n      X-Debug: yes  # <--\n",
        "targets.s.headers.X-Debug",
        ["expected a string", "got true", "quotes"],
    ),
    (
        "timeout-fast",
        "targets:\n  staging:\n    base_url: https://x\n    timeout: fast  # <--\n",
        "targets.staging.timeout",
        ["expected a duration such as 250ms, 1.5s, 2m or 1h, got 'fast'"],
    ),
    (
        "protected-not-bool",
        "targets:\n  s:\n    base_url: https://x\n    protected: maybe  # <--\n",
        "targets.s.protected",
        ["expected true or false", "'maybe'"],
    ),
    (
        "version-without-expect",
        "targets:\n  s:\n    base_url: https://x\n    version:  # <--\n      path: /version\n",
        "targets.s.version.expect",
        ["missing", "path and expect"],
    ),
    (
        "ready-without-path",
        "targets:\n  s:\n    base_url: https://x\n    ready: {timeout: 5s}  # <--\n",
        "targets.s.ready.path",
        ["missing", "/healthz"],
    ),
    (
        "ready-path-without-slash",
        "targets:\n  s:\n    base_url: https://x\n    ready: {path: healthz}  # <--\n",
        "targets.s.ready.path",
        ["starting with /"],
    ),
    (
        "unbraced-variable",
        'targets:\n  s:\n    base_url: https://x\n    headers: {A: "Bearer $TOKEN"}  # <--\n',
        "targets.s.headers.A",
        ["${TOKEN}", "$$TOKEN"],
    ),
    (
        "unclosed-variable",
        'targets:\n  s:\n    base_url: https://x\n    vars: {a: "${TOKEN"}  # <--\n',
        "targets.s.vars.a",
        ["not closed"],
    ),
    (
        "target-name-not-a-string",
        "targets:\n  no:  # <--\n    base_url: https://x\n",
        'targets["False"]',
        ["target name", "quotes"],
    ),
    (
        "duplicate-key",
        "targets:\n  s:\n    base_url: https://x\n    timeout: 1s\n    timeout: 2s  # <--\n",
        None,
        ["duplicate key 'timeout'", "line 4"],
    ),
    (
        "config-version-2",
        "version: 2  # <--\n" + T,
        "version",
        ["version: 1", "got 2"],
    ),
    (
        "unknown-gate-key",
        T + "gate:\n  budget:  # <--\n    total: {p95: 1s}\n",
        "gate.budget",
        ["did you mean 'budgets'?"],
    ),
    (
        "duration-10-minutes",
        T + "gate:\n  load:\n    duration: 10 minutes  # <--\n",
        "gate.load.duration",
        ["expected a duration such as 250ms", "'10 minutes'"],
    ),
    (
        "users-zero",
        T + "gate:\n  load:\n    users: 0  # <--\n",
        "gate.load.users",
        ["at least 1", "got 0"],
    ),
    (
        "users-negative",
        T + "gate:\n  load:\n    users: -3  # <--\n",
        "gate.load.users",
        ["at least 1", "got -3"],
    ),
    (
        "users-not-a-number",
        T + "gate:\n  load:\n    users: many  # <--\n",
        "gate.load.users",
        ["whole number", "'many'"],
    ),
    (
        "spawn-rate-negative",
        T + "gate:\n  load:\n    spawn_rate: -1  # <--\n",
        "gate.load.spawn_rate",
        ["number > 0", "-1"],
    ),
    (
        "warmup-not-shorter",
        T + "gate:\n  load:\n    duration: 10s\n    warmup: 10s  # <--\n",
        "gate.load.warmup",
        ["warmup (10s) must be shorter than duration (10s)"],
    ),
    (
        "warmup-longer-than-default-duration",
        T + "gate:\n  load:\n    warmup: 1m  # <--\n",
        "gate.load.warmup",
        ["warmup (1m) must be shorter than duration (30s, the default)"],
    ),
    (
        "override-duration-below-base-warmup",
        T
        + "gate:\n  load: {warmup: 10s}\n  targets:\n    production:\n"
        + "      load: {duration: 5s}  # <--\n",
        "gate.targets.production.load.duration",
        ["warmup (10s) must be shorter than duration (5s) for target 'production'"],
    ),
    (
        "wait-min-over-max",
        T + "gate:\n  load:\n    wait: [3s, 1s]  # <--\n",
        "gate.load.wait",
        ["min (3s) is more than max (1s)"],
    ),
    (
        "user-class-unknown",
        T + "gate:\n  load:\n    user_class: slow  # <--\n",
        "gate.load.user_class",
        ["'fast' or 'http'", "'slow'"],
    ),
    (
        "requests-not-a-list",
        T + "gate:\n  load:\n    requests: GET /api  # <--\n",
        "gate.load.requests",
        ["list of requests"],
    ),
    (
        "request-without-path",
        T
        + "gate:\n  load:\n    requests:\n      - GET /a\n      - {method: GET, name: x}  # <--\n",
        "gate.load.requests[1].path",
        ["missing", "needs a path"],
    ),
    (
        "request-string-without-method",
        T + "gate:\n  load:\n    requests:\n      - /api/products  # <--\n",
        "gate.load.requests[0]",
        ["'METHOD /path'", "GET /api/products"],
    ),
    (
        "request-bad-method",
        T + "gate:\n  load:\n    requests:\n      - FETCH /api  # <--\n",
        "gate.load.requests[0].method",
        ["unknown HTTP method 'FETCH'", "Valid methods: GET, POST"],
    ),
    (
        "request-typo-method",
        T + "gate:\n  load:\n    requests:\n      - {method: PSOT, path: /a}  # <--\n",
        "gate.load.requests[0].method",
        ["did you mean 'POST'?"],
    ),
    (
        "request-unknown-key",
        T + "gate:\n  load:\n    requests:\n      - {path: /a, wieght: 3}  # <--\n",
        "gate.load.requests[0].wieght",
        ["did you mean 'weight'?"],
    ),
    (
        "request-bad-status",
        T + "gate:\n  load:\n    requests:\n      - {path: /a, expect_status: [200, 999]}  # <--\n",
        "gate.load.requests[0].expect_status[1]",
        ["HTTP status", "999"],
    ),
    (
        "requests-and-locustfile",
        T + "gate:\n  load:\n    requests: [GET /a]\n    locustfile: perf/l.py  # <--\n",
        "gate.load.locustfile",
        ["requests and locustfile cannot be used together"],
    ),
    (
        "missing-locustfile",
        T + "gate:\n  load:\n    locustfile: perf/nope.py  # <--\n",
        "gate.load.locustfile",
        ["'perf/nope.py' not found", "relative to the directory of stagegate.yaml"],
    ),
    (
        "abort-latency-factor",
        T + "gate:\n  load:\n    abort:\n      latency_factor: 1  # <--\n",
        "gate.load.abort.latency_factor",
        ["number > 1"],
    ),
    (
        "abort-unknown-key",
        T + "gate:\n  load:\n    abort:\n      enable: false  # <--\n",
        "gate.load.abort.enable",
        ["did you mean 'enabled'?"],
    ),
    (
        "min-samples-zero",
        T + "gate:\n  min_samples: 0  # <--\n",
        "gate.min_samples",
        ["at least 1"],
    ),
    (
        "saturation-cpu-150",
        T + "gate:\n  saturation_cpu: 150%  # <--\n",
        "gate.saturation_cpu",
        ["percentage from 1 to 100", "'150%'"],
    ),
    (
        "budget-p101",
        T + "gate:\n  budgets:\n    total:\n      p101: 1s  # <--\n",
        "gate.budgets.total.p101",
        ["p101", "p99.9"],
    ),
    (
        "budget-p95-fast",
        T + "gate:\n  budgets:\n    total:\n      p95: fast  # <--\n",
        "gate.budgets.total.p95",
        ["duration", "'fast'"],
    ),
    (
        "budget-error-rate-150",
        T + "gate:\n  budgets:\n    total:\n      error_rate: 150%  # <--\n",
        "gate.budgets.total.error_rate",
        ["rate", "'150%'"],
    ),
    (
        "budget-min-rps-negative",
        T + "gate:\n  budgets:\n    total:\n      min_rps: -5  # <--\n",
        "gate.budgets.total.min_rps",
        ["-5"],
    ),
    (
        "budget-unknown-metric",
        T + "gate:\n  budgets:\n    total:\n      p95x: 1s  # <--\n",
        "gate.budgets.total.p95x",
        ["unknown budget 'p95x'", "did you mean 'p95'?"],
    ),
    (
        "budget-not-a-mapping",
        T + "gate:\n  budgets:\n    total: 300ms  # <--\n",
        "gate.budgets.total",
        ["{p95: 300ms}"],
    ),
    (
        "budget-for-unknown-request",
        T
        + "gate:\n  load: {requests: [GET /api/products]}\n  budgets:\n"
        + '    "GET /api/product": {p95: 1s}  # <--\n',
        'gate.budgets["GET /api/product"]',
        ["no request is named 'GET /api/product'", "did you mean 'GET /api/products'?"],
    ),
    (
        "gate-targets-unknown-target",
        T + "gate:\n  targets:\n    prodution:  # <--\n      load: {users: 1}\n",
        "gate.targets.prodution",
        ["no target 'prodution'", "did you mean 'production'?", "staging, production"],
    ),
    (
        "gate-targets-unknown-key",
        T + "gate:\n  targets:\n    production:\n      laod: {users: 1}  # <--\n",
        "gate.targets.production.laod",
        ["did you mean 'load'?"],
    ),
    (
        "gate-targets-bad-override-value",
        T + "gate:\n  targets:\n    production:\n      load: {users: 0}  # <--\n",
        "gate.targets.production.load.users",
        ["at least 1"],
    ),
    (
        "config-version-true",
        "version: true  # <--\n" + T,
        "version",
        ["version: 1", "got true"],
    ),
    (
        "vars-not-json",
        "targets:\n  s:\n    base_url: https://x\n    vars: {ratio: .nan}  # <--\n",
        "targets.s.vars.ratio",
        ["not a JSON number", "quotes"],
    ),
    (
        "request-json-date",
        T + "gate:\n  load:\n    requests:\n      - {path: /a, json: {on: 2024-01-01}}  # <--\n",
        'gate.load.requests[0].json["True"]',
        ["a key here must be a string", "quotes"],
    ),
    (
        "request-json-date-value",
        T + "gate:\n  load:\n    requests:\n      - {path: /a, json: {day: 2024-01-01}}  # <--\n",
        "gate.load.requests[0].json.day",
        ["plain data", "date", "quotes"],
    ),
    (
        "invalid-date",
        "targets:\n  s:\n    base_url: https://x\n    vars: {day: 2024-02-30}  # <--\n",
        "targets.s.vars.day",
        ["cannot read this value", "day is out of range"],
    ),
]


@pytest.mark.parametrize(("text", "key", "hints"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config(tmp_path: Path, text: str, key: str | None, hints: list[str]) -> None:
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "l.py").write_text("")
    path = write(tmp_path, text)
    line = marked_line(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    message = str(error)
    assert message.startswith(f"{path}:{line}: "), message
    assert (error.path, error.line, error.key) == (path, line, key), message
    if key is not None:
        assert f":{line}: {key}: " in message
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"


def test_bad_matrix_is_big_enough() -> None:
    assert len(BAD) >= 25


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file") as info:
        load_config(tmp_path / CONFIG_FILENAME)
    assert info.value.path == tmp_path / CONFIG_FILENAME


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILENAME
    path.write_bytes(b"targets:\n  s: {base_url: '\xff'}\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_a_huge_file_is_refused_without_parsing_it(tmp_path: Path) -> None:
    # 10 MB of YAML list took 27 s and 556 MB before its error; now it is never parsed
    path = tmp_path / CONFIG_FILENAME
    path.write_text("targets: [" + "x, " * 4_000_000 + "x]\n")
    with pytest.raises(ConfigError, match="larger than 1MB") as info:
        load_config(path)
    assert info.value.path == path


def test_a_file_just_under_the_size_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILENAME
    text = "targets:\n  s: {base_url: https://x}\n"
    path.write_text(text + "#" * (defaults.MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert load_config(path).target_names == ("s",)


def test_recursive_alias(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recursive"):
        load_text(tmp_path, "targets:\n  s: {base_url: https://x, vars: &v {self: *v}}\n")


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "targets:\n  s:\n    base_url: https://x\n    vars:\n"
    text += "".join(f"      {line}\n" for line in lines)
    with pytest.raises(ConfigError, match="expands to more than"):
        load_text(tmp_path, text)


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """\
        targets:
          a: &a {base_url: "https://a.example.com", timeout: 1s}
          b: &b {<<: *a, timeout: 2s}
          c: {<<: *b, timeout: 3s}
        """,
    )
    assert [config.resolve_target(n, {}).timeout for n in "abc"] == [1.0, 2.0, 3.0]


def test_multiple_documents(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"not valid YAML: expected a single document .*but found another document",
    ) as info:
        load_text(tmp_path, T + "---\n" + T)
    assert info.value.line == 6


def test_error_message_shape_matches_the_contract(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  staging:\n    base_url: https://x\n    timeout: fast\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:4: targets.staging.timeout: expected a duration such as 250ms, 1.5s, 2m or "
        "1h, got 'fast'"
    )


# --- targets.NAME.max_body (issue 10) --------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("512KB", 512 * 1024),
        ("16MB", 16 * 1024**2),
        ("1GB", 1024**3),
        ("1.5MB", 3 * 512 * 1024),
        ("2MiB", 2 * 1024**2),
        ("100kb", 100 * 1024),
        ("4096", 4096),
        ("1", 1),
    ],
)
def test_max_body_sizes(tmp_path: Path, written: str, size: int) -> None:
    config = load_text(
        tmp_path, f"targets:\n  staging:\n    base_url: https://x\n    max_body: {written}\n"
    )
    assert config.resolve_target("staging", {}).max_body == size


def test_max_body_defaults_to_16mb(tmp_path: Path) -> None:
    config = load_text(tmp_path, "targets:\n  staging:\n    base_url: https://x\n")
    assert config.resolve_target("staging", {}).max_body == 16 * 1024**2 == Target.max_body


def test_max_body_from_the_environment(tmp_path: Path) -> None:
    text = "targets:\n  staging:\n    base_url: https://x\n    max_body: ${MAX_BODY}\n"
    config = load_text(tmp_path, text)
    assert config.resolve_target("staging", {"MAX_BODY": "2MB"}).max_body == 2 * 1024**2


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("huge", "expected a size such as 512KB, 16MB or 1GB (or a number of bytes), got"),
        ("0", "a size must be at least 1 byte, got 0"),
        ("-1MB", "expected a size such as 512KB"),
        ("1TB", "expected a size such as 512KB"),
        ("1.5", "expected a size such as 512KB"),
        ("true", "expected a size such as 512KB"),
        ("[1MB]", "expected a size such as 512KB"),
    ],
)
def test_bad_max_body_names_file_line_and_key(tmp_path: Path, written: str, expected: str) -> None:
    path = write(
        tmp_path,
        "targets:\n  staging:\n    base_url: https://x\n    timeout: 2s\n"
        f"    max_body: {written}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:5: targets.staging.max_body: {expected}")
    assert (info.value.line, info.value.key) == (5, "targets.staging.max_body")


def test_max_body_misspelt_is_an_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  staging:\n    base_url: https://x\n    max_bodyy: 1MB\n")
    with pytest.raises(ConfigError, match="max_body") as info:
        load_config(path)
    assert info.value.line == 4
