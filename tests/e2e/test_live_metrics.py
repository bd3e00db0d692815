"""Live metrics: with OTEL_EXPORTER_OTLP_ENDPOINT set, the load's measurements go out through
Locust's own OpenTelemetry support while it runs, to a real OTLP/HTTP receiver on 127.0.0.1
(tests/otlp_receiver.py) that decodes what arrives. A 2 s load still exports: the child flushes
at its end. The exporter's header token shows nowhere the run writes."""

from __future__ import annotations

import importlib.util
import json
import secrets
from collections.abc import Callable, Iterator, Mapping

import pytest

from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, Route

MISSING = [
    name
    for name in (
        "opentelemetry.sdk",
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry.proto",
    )
    if importlib.util.find_spec(name.split(".")[0]) is None
    or importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"OpenTelemetry is not installed ({', '.join(MISSING)}): pip install "
    "'pytest-stagegate[otel]' opentelemetry-proto (both in the test extra)",
)

if not MISSING:
    from tests.otlp_receiver import OTLPReceiver


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as started:
        yield started


def test_the_loads_requests_arrive_at_the_otlp_endpoint(
    pytester: pytest.Pytester,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "otel" + secrets.token_hex(12)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{token}")
    for name in ("OTEL_METRIC_EXPORT_INTERVAL", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    server = serve({"/": Route(), "/boom": Route(status=500)})
    write_stagegate(
        pytester,
        server.url,
        gate={"load": {"duration": "2s", "requests": ["GET /", "GET /boom"]}},
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate")
    assert result.ret == 1, result.stdout.str()  # /boom fails; what arrived is the point

    verdict = json.loads((pytester.path / "stagegate-verdict.json").read_text())
    judged = {e["name"]: e["requests"] for e in verdict["gate"]["endpoints"]}
    counts = receiver.histogram_counts("locust.client.duration")
    # every request Locust fired an event for, warm-up (none here) and all: at least the judged
    for name in ("GET /", "GET /boom"):
        assert counts.get(name, 0) >= judged[name] > 0, (counts, judged)
    assert sum(counts.values()) <= server.total  # no request counted twice
    assert "locust.users.count" in receiver.metric_names()
    # the gate's defaults: OTLP over HTTP to /v1/metrics, no traces or logs, a process's own id
    assert set(receiver.paths()) == {"/v1/metrics"}
    assert all(
        r["service.instance.id"].startswith("stagegate-local-")
        for r in receiver.resource_attributes()
    )
    # the exporter sent its header; nothing the run wrote shows it
    assert all(
        headers.get("authorization") == f"Bearer {token}" for _, headers in receiver.requests
    )
    written = [result.stdout.str(), result.stderr.str()]
    written += [p.read_text() for p in pytester.path.glob("stagegate-*") if p.is_file()]
    assert written and not any(token in text for text in written)
    log = (pytester.path / "stagegate-load.log").read_text()
    assert f"Live metrics: OpenTelemetry exports to {receiver.url} (http/protobuf) every 5 s" in log
