"""A tiny OTLP/HTTP receiver on 127.0.0.1 for tests: it takes what an OpenTelemetry exporter
sends (``POST /v1/metrics``, ``/v1/traces``, ``/v1/logs``; protobuf, gzip or not), decodes the
metrics with opentelemetry-proto and counts them. Real sockets, no mock::

    from tests.otlp_receiver import OTLPReceiver

    with OTLPReceiver() as receiver:           # on a free port, stopped on exit
        receiver.url                          # OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:41234"
        receiver.histogram_counts("locust.client.duration")   # {name attribute: count}
        receiver.requests                     # [(path, headers)] of every POST received

Histograms are cumulative (the OTLP exporters' default temporality): each export carries the
count so far per series, a series being the resource's ``service.instance.id`` and the point's
attributes. ``histogram_counts`` keeps each series' latest count and adds the series up per
attribute (one per load process: a local run, each worker).

Needs opentelemetry-proto (installed with the exporter, in the ``test`` extra).
"""

from __future__ import annotations

import gzip
import threading
from collections import defaultdict
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

__all__ = ["OTLPReceiver"]


class OTLPReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._received(self.path, dict(self.headers.items()), body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _received(self, path: str, headers: Mapping[str, str], body: bytes) -> None:
        with self._lock:
            self.requests.append((path, dict(headers)))
            if path.rstrip("/").endswith("/v1/metrics"):
                message = ExportMetricsServiceRequest()
                message.ParseFromString(body)
                self.metrics.append(message)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def metric_names(self) -> set[str]:
        with self._lock:
            return {
                metric.name
                for message in self.metrics
                for rm in message.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
            }

    def histogram_counts(self, metric: str, attribute: str = "name") -> dict[str, int]:
        """``metric``'s count per value of the point attribute ``attribute``: each series'
        latest cumulative count, the series (one per process) added up."""
        latest: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        with self._lock:
            for message in self.metrics:
                for rm in message.resource_metrics:
                    resource = _attributes(rm.resource.attributes)
                    instance = resource.get("service.instance.id", "")
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            if m.name != metric or not m.HasField("histogram"):
                                continue
                            for point in m.histogram.data_points:
                                attrs = _attributes(point.attributes)
                                key = (
                                    instance,
                                    attrs.get(attribute, ""),
                                    tuple(sorted(attrs.items())),
                                )
                                latest[key] = int(point.count)  # later exports come later
        counts: dict[str, int] = defaultdict(int)
        for (_, value, _), count in latest.items():
            counts[value] += count
        return dict(counts)

    def resource_attributes(self) -> list[dict[str, str]]:
        with self._lock:
            return [
                _attributes(rm.resource.attributes)
                for message in self.metrics
                for rm in message.resource_metrics
            ]


def _attributes(pairs: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = str(getattr(value, kind)) if kind else ""
    return out
