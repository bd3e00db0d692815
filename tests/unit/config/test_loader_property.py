"""Whatever is in stagegate.yaml, load_config returns a Config or raises ConfigError, and so do
resolving a target and reading its gate settings: never a traceback from deep inside."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_stagegate._redact import MIN_DISTINCT
from pytest_stagegate.config import CONFIG_FILENAME, Config, ConfigError, load_config

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TARGET_NAMES = ["local", "staging", "production"]
# The keys of a target (and of its ready and version checks).
TARGET_KEYS = [
    "base_url",
    "headers",
    "timeout",
    "ready",
    "version",
    "vars",
    "protected",
    "allow_load",
    "verify_tls",
    "max_body",
    "path",
    "expect",
    "field",
]
# Keys of every level, so that random documents often get past "unknown key".
KEYS = [
    *TARGET_NAMES,
    *TARGET_KEYS,
    "interval",
    "load",
    "budgets",
    "targets",
    "min_samples",
    "saturation_cpu",
    "run_after_critical_failure",
    "flaky_blocks",
    "users",
    "spawn_rate",
    "duration",
    "warmup",
    "wait",
    "user_class",
    "requests",
    "locustfile",
    "abort",
    "enabled",
    "error_rate",
    "min_requests",
    "latency_factor",
    "latency_for",
    "grace",
    "method",
    "name",
    "weight",
    "json",
    "expect_status",
    "total",
    "GET /a",
    "p95",
    "p99.9",
    "p101",
    "avg",
    "max",
    "min_rps",
    "p95_regression",
]
WORDS = [
    "10s",
    "250ms",
    "1.5s",
    "2m",
    "0",
    "-1s",
    "1%",
    "150%",
    "90%",
    "fast",
    "http",
    "GET /a",
    "FETCH /a",
    "/healthz",
    "healthz",
    "https://x.example.com",
    "http://127.0.0.1:8000/",
    "ftp://x",
    "${X}",
    "${X:-1s}",
    "${Y:-true}",
    "Bearer ${TOKEN}",
    "$$",
    "$X",
    "${",
    "${1}",
    "${A:-${B}}",
    "true",
    "perf/l.py",
    "nope.py",
    "a\nb",
    # sizes (max_body): valid, and not
    "16MB",
    "512KiB",
    "1.5KB",
    "1TB",
    "0B",
    "-1KB",
    "16 M",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-2, 2), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=16,
)
# Shaped like a configuration, so that the deeper validation is reached, not only the top.
target = st.dictionaries(st.sampled_from(TARGET_KEYS), values, max_size=5).map(
    lambda t: {"base_url": "https://x.example.com", **t}
)
load = st.dictionaries(
    st.sampled_from(KEYS[KEYS.index("users") : KEYS.index("total") + 1]), values, max_size=5
)
gate_part = st.fixed_dictionaries(
    {},
    optional={
        "load": load,
        "budgets": st.dictionaries(
            st.sampled_from(["total", "GET /a", "x"]),
            st.dictionaries(st.sampled_from(KEYS[-8:]), values, max_size=3),
            max_size=2,
        ),
        "min_samples": values,
        "saturation_cpu": values,
        "flaky_blocks": values,
    },
)
documents = st.fixed_dictionaries(
    {"targets": st.dictionaries(st.sampled_from(TARGET_NAMES), target, min_size=1, max_size=3)},
    optional={
        "gate": gate_part.flatmap(
            lambda g: st.fixed_dictionaries(
                {},
                optional={"targets": st.dictionaries(st.sampled_from(TARGET_NAMES), gate_part)},
            ).map(lambda t: {**g, **t})
        ),
        "version": values,
    },
)
environs = st.dictionaries(
    st.sampled_from(["X", "Y", "TOKEN", "STAGING_TOKEN", "GIT_SHA"]), st.text(max_size=8)
)

EXAMPLE = (Path(__file__).parent / "test_loader.py").read_text(encoding="utf-8")
EXAMPLE = EXAMPLE.split('CONTRACT_EXAMPLE = """\\\n', 1)[1].split('"""', 1)[0]

_counter = itertools.count()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("property")
    (path / "perf").mkdir()
    (path / "perf" / "l.py").write_text("")
    return path


def check(directory: Path, text: str, environ: dict[str, str]) -> None:
    path = directory / f"{next(_counter)}-{CONFIG_FILENAME}"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as error:
        assert str(error).startswith(str(path))
        return
    assert isinstance(config, Config)
    for name in config.target_names:
        try:
            resolved = config.resolve_target(name, environ)
        except ConfigError as error:
            for key, secret in environ.items():
                # A secret of one character is also in the rest of the message by chance.
                if len(secret) > 3 and secret not in text and secret in str(error):
                    # ... and so is a longer one in the message's own words ("ult " in
                    # "default"): it leaked only if the message loses it when the value changes
                    other = {**environ, key: "\N{SNOWMAN}" * len(secret)}
                    with pytest.raises(ConfigError) as again:
                        config.resolve_target(name, other)
                    assert secret in str(again.value), f"{secret!r} leaked: {error}"
        else:
            for secret in resolved.secrets:
                # The documented rule (_redact): a secret of fewer than MIN_DISTINCT distinct
                # characters ("0000") cannot be masked, and the run warns about it instead.
                if len(set(secret)) >= MIN_DISTINCT:
                    assert secret not in repr(resolved)
                else:
                    assert resolved.redactor.unmaskable
        config.gate_settings(name)


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(document=documents, environ=environs)
def test_shaped_documents(directory: Path, document: Any, environ: dict[str, str]) -> None:
    check(directory, dump(document), environ)


@SETTINGS
@given(document=values)
def test_any_yaml_value(directory: Path, document: Any) -> None:
    check(directory, dump(document), {})


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text(directory: Path, text: str) -> None:
    check(directory, text, {})


@SETTINGS
@given(
    start=st.integers(0, len(EXAMPLE)),
    length=st.integers(0, 40),
    insert=st.text(alphabet=" \t\n:-[]{}'\"#&*!|>%@`$,?", max_size=5),
    environ=environs,
)
def test_damaged_example(
    directory: Path, start: int, length: int, insert: str, environ: dict[str, str]
) -> None:
    check(directory, EXAMPLE[:start] + insert + EXAMPLE[start + length :], environ)


@SETTINGS
@given(
    max_body=st.one_of(
        scalars,
        st.integers(-2, 2),
        st.builds(
            "{}{}{}".format,
            st.one_of(st.integers(-1, 2048).map(str), st.sampled_from(["0.5", ".5", "1.5", "1e3"])),
            st.sampled_from(["", " "]),
            st.sampled_from(["", "B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "kb", "TB", "M"]),
        ),
    )
)
def test_max_body_is_a_size_of_at_least_a_byte_or_an_error_naming_it(
    directory: Path, max_body: Any
) -> None:
    text = dump({"targets": {"local": {"base_url": "https://x.example.com", "max_body": max_body}}})
    path = directory / f"{next(_counter)}-{CONFIG_FILENAME}"
    path.write_text(text, encoding="utf-8")
    try:
        target = load_config(path).resolve_target("local", {})
    except ConfigError as error:
        message = str(error)
        assert message.startswith(f"{path}:4: targets.local.max_body: "), message
        if "$" not in str(max_body):  # else: an environment substitution's own error
            assert "512KB, 16MB or 1GB" in message or "at least 1 byte" in message, message
    else:
        assert type(target.max_body) is int and target.max_body >= 1
