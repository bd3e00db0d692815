"""Live metrics: the load's measurements go out while it runs, through Locust's own
OpenTelemetry support (``locust.opentelemetry.setup_opentelemetry``), when the plan asks for it
(``LoadPlan.otel``: ``gate.load.otel``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` in the environment).

Every process sets it up the same way: a local run's and each worker's record the requests
(Locust's histogram ``locust.client.duration``), a master records none but exports Locust's
``locust.users.count``. What the gate changes in OpenTelemetry's defaults, each only when the
user's environment leaves the variable unset (docs/load-engine.md, "Live metrics"):

- ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``, not Locust's ``grpc``: the extra
  ``pytest-stagegate[otel]`` installs the OTLP/HTTP exporter only (gRPC's pulls grpcio);
- ``OTEL_METRIC_EXPORT_INTERVAL``: 5 s (``defaults.OTEL_EXPORT_INTERVAL``), not 60 s, which is
  longer than most gates; and the last export is flushed when the load ends
  (``LiveMetrics.stop``, within ``defaults.OTEL_FLUSH_TIMEOUT``: the child leaves with
  ``os._exit``, so OpenTelemetry's own exit hook never runs);
- ``OTEL_TRACES_EXPORTER``: ``none`` always, also where the user set it (a warning says so):
  Locust's auto-instrumentation of requests/urllib3 puts each request's full URL
  (``http.url``, with a password or a token in the query) into spans no redactor sees;
- ``OTEL_LOGS_EXPORTER``: ``none`` where unset: a user who turns logs on gets them redacted (a
  filter on OpenTelemetry's log handler);
- ``OTEL_RESOURCE_ATTRIBUTES``: ``service.instance.id`` is the process's (mode and pid), so
  the workers' histograms stay apart in a backend instead of overwriting one another.

Request names are redacted before they become an attribute (Locust's listener is wrapped), as
they are in the result; the exporter's headers (``OTEL_EXPORTER_OTLP_HEADERS``, which may hold
a token) are never logged, and their values join the redactor (``header_values``).
"""

# Locust's events are untyped.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ... import defaults
from ..plan import LoadPlan

__all__ = ["LiveMetrics", "endpoint_label", "header_values", "otel_environment"]

log = logging.getLogger("pytest_stagegate.load")

Redact = Callable[[str], str]


def otel_environment(environ: Mapping[str, str], mode: str, pid: int) -> dict[str, str]:
    """The variables to set before Locust reads them: only those ``environ`` leaves unset."""
    out: dict[str, str] = {}
    if not (
        environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    ):
        out["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    if not environ.get("OTEL_METRIC_EXPORT_INTERVAL"):
        out["OTEL_METRIC_EXPORT_INTERVAL"] = str(int(defaults.OTEL_EXPORT_INTERVAL * 1000))
    # traces always off, whatever the user set: Locust's auto-instrumentation of requests and
    # urllib3 would put every request's full URL (http.url: a password, a token in the query)
    # into spans that no redactor sees. Logs only where unset: a user's go out redacted.
    out["OTEL_TRACES_EXPORTER"] = "none"
    if not environ.get("OTEL_LOGS_EXPORTER"):
        out["OTEL_LOGS_EXPORTER"] = "none"
    attributes = environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if "service.instance.id=" not in attributes:
        instance = f"service.instance.id=stagegate-{mode}-{pid}"
        out["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{instance}" if attributes else instance
    return out


def header_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the exporter's headers (``key=value,key2=value2``, URL-encoded), which
    may hold a token: secrets of the run."""
    values: list[str] = []
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"):
        for pair in environ.get(name, "").split(","):
            _, sep, value = pair.partition("=")
            value = unquote(value.strip())
            if sep and value:
                values.append(value)
    return values


def endpoint_label(environ: Mapping[str, str]) -> str:
    """Where the metrics go, for the log: scheme, host and port only (a URL's user and
    password, path and query stay out)."""
    url = environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or environ.get(
        defaults.OTEL_ENDPOINT_ENV
    )
    if not url:
        return "OpenTelemetry's default endpoint"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured endpoint"
    return f"{parts.scheme}://{host}{port}"


class _RedactNames(logging.Filter):
    """Log records the user chose to export (``OTEL_LOGS_EXPORTER``) go out redacted."""

    def __init__(self, redact: Redact) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = self._redact(record.getMessage())
            record.args = None
        except Exception:  # a record that cannot be formatted: dropped, never sent raw
            return False
        return True


class LiveMetrics:
    """Locust's OpenTelemetry export for this process; ``stop`` flushes the last export."""

    def __init__(self, meter_provider: Any, logger_provider: Any) -> None:
        self._meter_provider = meter_provider
        self._logger_provider = logger_provider

    @classmethod
    def start(
        cls,
        plan: LoadPlan,
        mode: str,
        redact: Redact,
        environ: MutableMapping[str, str] = os.environ,
    ) -> LiveMetrics | None:
        """Set up the export if the plan asks for it; None when it does not, or when
        OpenTelemetry is missing (a warning in the load log; the load runs without it)."""
        if not plan.otel:
            return None
        try:
            import locust
            from locust.opentelemetry import setup_opentelemetry
            from opentelemetry import _logs, metrics
        except ImportError as e:
            log.warning(
                "Live metrics were asked for, but OpenTelemetry is not installed (%s): the "
                "load runs without them. pip install 'pytest-stagegate[otel]'",
                e.name or e,
            )
            return None
        if environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower() != "none":
            log.warning(
                "Live metrics: OTEL_TRACES_EXPORTER is set, but the load exports no traces "
                "(its spans would carry every request's full URL unredacted); metrics only."
            )
        environ.update(otel_environment(environ, mode, os.getpid()))
        listeners = list(locust.events.request._handlers)
        if not setup_opentelemetry(plan.locustfile or "", None):
            log.warning("Live metrics: Locust's OpenTelemetry setup declined (see above).")
            return None
        # Locust's listener puts the request name in an attribute: redacted first
        handlers = locust.events.request._handlers
        for i, handler in enumerate(handlers):
            if handler not in listeners:
                handlers[i] = _redacting(handler, redact)
        for handler in logging.getLogger().handlers:
            if handler.name == "opentelemetry":
                handler.addFilter(_RedactNames(redact))
        interval = float(environ.get("OTEL_METRIC_EXPORT_INTERVAL", "0") or 0) / 1000
        log.info(
            "Live metrics: OpenTelemetry exports to %s (%s) every %g s.",
            endpoint_label(environ),
            environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL"),
            interval,
        )
        return cls(metrics.get_meter_provider(), _logs.get_logger_provider())

    def stop(self, timeout: float = defaults.OTEL_FLUSH_TIMEOUT) -> None:
        """Export what is left and shut the exporters down, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for provider in (self._meter_provider, self._logger_provider):
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is None:
                continue
            left = max(0.0, deadline - time.monotonic())
            try:
                if provider is self._meter_provider:
                    shutdown(timeout_millis=left * 1000)
                else:
                    shutdown()
            except Exception as e:  # the load's result is written already: never fail it
                log.warning("Live metrics: the last export failed: %s", type(e).__name__)


def _redacting(handler: Callable[..., Any], redact: Redact) -> Callable[..., Any]:
    def on_request(**kwargs: Any) -> Any:
        name = kwargs.get("name")
        if isinstance(name, str):
            kwargs["name"] = redact(name)
        return handler(**kwargs)

    on_request.__wrapped__ = handler  # type: ignore[attr-defined]
    return on_request
