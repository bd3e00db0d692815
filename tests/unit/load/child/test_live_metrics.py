"""Live metrics' pure parts (load/child/live_metrics.py, load/plan.py, config's gate.load.otel):
when they go out, what the child changes in OpenTelemetry's defaults (only what the user left
unset), the redaction of request names and of the exporter's headers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate import defaults
from pytest_stagegate._redact import Redactor
from pytest_stagegate.config import ConfigError, load_config
from pytest_stagegate.load import plan as plan_module
from pytest_stagegate.load.child.live_metrics import (
    _redacting,
    endpoint_label,
    header_values,
    otel_environment,
)
from pytest_stagegate.load.plan import otel_missing, otel_wanted, plan_for

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    ("setting", "environ", "wanted"),
    [
        (None, {}, False),
        (None, ENDPOINT, True),
        (None, {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://h:4318/v1/metrics"}, True),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        (True, {}, True),  # OpenTelemetry's default endpoint, localhost:4318
        (False, ENDPOINT, False),  # gate.load.otel: false wins over the environment
    ],
)
def test_when_live_metrics_go_out(
    setting: bool | None, environ: dict[str, str], wanted: bool
) -> None:
    assert otel_wanted(setting, environ) is wanted


def config(tmp_path: Path, load: str) -> Path:
    path = tmp_path / defaults.CONFIG_FILE
    text = f"""\
    targets:
      staging: {{base_url: "http://127.0.0.1:9"}}
      prod: {{base_url: "http://127.0.0.1:9"}}
    gate:
      load:
        requests: ["GET /"]
        {load}
      targets:
        prod:
          load: {{otel: false}}
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_otel_key_per_target_and_into_the_plan(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, "otel: true"))
    staging, prod = (loaded.gate_settings(name) for name in ("staging", "prod"))
    assert staging.load.otel is True and prod.load.otel is False
    target = loaded.resolve_target("staging", {})
    assert plan_for(target, staging, environ={}).otel is True
    assert plan_for(target, prod, environ=ENDPOINT).otel is False
    unset = load_config(config(tmp_path, "users: 1")).gate_settings("staging")
    assert unset.load.otel is None
    assert plan_for(target, unset, environ=ENDPOINT).otel is True
    assert plan_for(target, unset, environ={}).otel is False
    plan = plan_for(target, unset, environ=ENDPOINT)
    assert type(plan).from_json(plan.to_json()).otel is True


def test_a_bad_otel_value_names_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config(tmp_path, "otel: maybe"))
    message = str(info.value)
    assert "gate.load.otel" in message and ":7" in message


def test_the_childs_defaults_leave_what_the_user_set() -> None:
    mine = otel_environment({}, "worker", 42)
    assert mine == {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=stagegate-worker-42",
    }
    users = {
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",  # never kept: spans would carry URLs unredacted
        "OTEL_RESOURCE_ATTRIBUTES": "team=shop",
    }
    assert otel_environment(users, "local", 7) == {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_RESOURCE_ATTRIBUTES": "team=shop,service.instance.id=stagegate-local-7",
    }
    own_id = {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=mine"}
    assert "OTEL_RESOURCE_ATTRIBUTES" not in otel_environment(own_id, "local", 7)


def test_the_exporters_header_values_are_secrets_and_the_endpoint_shows_without_them() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20tok-123456789, x-team=shop",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "api-key=k3y-abcdefgh",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:pa55word@otel.example:4318/base?x=1",
    }
    assert header_values(environ) == ["Bearer tok-123456789", "shop", "k3y-abcdefgh"]
    assert endpoint_label(environ) == "https://otel.example:4318"
    assert endpoint_label({}) == "OpenTelemetry's default endpoint"


def test_request_names_reach_locusts_listener_redacted() -> None:
    seen: list[dict[str, Any]] = []

    def listener(**kwargs: Any) -> None:
        seen.append(kwargs)

    wrapped = _redacting(listener, Redactor(["s3cr3t-token-value"]))
    wrapped(name="GET /a?key=s3cr3t-token-value", response_time=1.5, exception=None)
    assert seen == [{"name": "GET /a?key=***", "response_time": 1.5, "exception": None}]


def test_missing_opentelemetry_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "OTEL_MODULES", ("json", "no_such_module_stagegate.sdk"))
    assert otel_missing() == "no_such_module_stagegate.sdk"
    monkeypatch.setattr(plan_module, "OTEL_MODULES", ("json",))
    assert otel_missing() is None


def test_the_gate_warns_once_when_opentelemetry_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_stagegate.config import GateSettings, LoadSettings
    from pytest_stagegate.plugin.gate import _warn_otel_missing

    lines: list[str] = []
    monkeypatch.setattr(plan_module, "OTEL_MODULES", ("no_such_module_stagegate.sdk",))
    _warn_otel_missing(GateSettings(), lines.append)
    _warn_otel_missing(GateSettings(load=LoadSettings(otel=True)), lines.append)
    assert lines == [
        "stagegate: warning: live metrics were asked for (OTEL_EXPORTER_OTLP_ENDPOINT is set), "
        "but OpenTelemetry is not installed (no_such_module_stagegate.sdk is missing): pip "
        "install 'pytest-stagegate[otel]'. The gate runs without them.",
        "stagegate: warning: live metrics were asked for (gate.load.otel: true), but "
        "OpenTelemetry is not installed (no_such_module_stagegate.sdk is missing): pip install "
        "'pytest-stagegate[otel]'. The gate runs without them.",
    ]
    monkeypatch.setattr(plan_module, "OTEL_MODULES", ("json",))
    _warn_otel_missing(GateSettings(), lines.append)
    assert len(lines) == 2
