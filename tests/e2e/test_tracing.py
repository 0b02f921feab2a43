"""One request through the gateway that causes an event is one trace, from the gateway
through the service, its outbox relay and Kafka to every consumer of the event.

The services are processes of their own: they export their spans over OTLP/HTTP to a
small receiver this module runs, which keeps them in memory."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage

from shared.development_tokens import development_token
from shared.settings import get_settings
from shared.testing import eventually

from .conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

CONSUMERS_OF_WORKSPACE_CREATED = {
    "atrium-billing",
    "atrium-assets",
    "atrium-apikeys",
    "atrium-gateway",
}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


class SpanReceiver:
    """An OTLP/HTTP endpoint (`POST /v1/traces`, protobuf) keeping what it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=resource["service.name"],
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex() or None,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> SpanReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[SpanReceiver]:
    with SpanReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def service_environment(receiver: SpanReceiver) -> dict[str, str]:
    return {"ATRIUM_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}


async def test_creating_a_workspace_is_one_trace_from_the_gateway_to_every_consumer_of_its_event(
    system: RunningSystem, receiver: SpanReceiver
) -> None:
    request_id = f"trace-{uuid.uuid4().hex}"
    token = development_token("tracer@example.test", get_settings())
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        response = await client.post(
            "/v1/workspaces",
            json={"name": "Traced"},
            headers={
                "authorization": f"Bearer {token}",
                "x-request-id": request_id,
            },
        )
    assert response.status_code == 201, response.text

    async def whole_trace() -> list[ReceivedSpan] | None:
        spans = receiver.received()
        edge = [s for s in spans if s.attributes.get("atrium.request_id") == request_id]
        entry = [s for s in edge if s.service == "atrium-gateway"]
        if not entry:
            return None
        trace = [s for s in spans if s.trace_id == entry[0].trace_id]
        consumers = {
            s.service
            for s in trace
            if s.kind == SpanMessage.SPAN_KIND_CONSUMER
            and s.attributes.get("atrium.event.type") == "workspace.created"
        }
        return trace if consumers >= CONSUMERS_OF_WORKSPACE_CREATED else None

    trace = await eventually(whole_trace, timeout=20, what="the request's whole trace")
    by_id = {span.span_id: span for span in trace}

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_span_id in by_id, f"{span.name} of {span.service} lost its parent"
        return by_id[span.parent_span_id]

    def one(service: str, kind: int, **attributes: Any) -> ReceivedSpan:
        [span] = [
            s
            for s in trace
            if s.service == service
            and s.kind == kind
            and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]
        return span

    gateway = one("atrium-gateway", SpanMessage.SPAN_KIND_SERVER)
    assert gateway.name == "POST /v1/workspaces"
    assert gateway.parent_span_id is None
    assert gateway.attributes["http.response.status_code"] == 201

    identity = one(
        "atrium-identity", SpanMessage.SPAN_KIND_SERVER, **{"http.route": "/v1/workspaces"}
    )
    assert identity.name == "POST /v1/workspaces"
    forward = parent(identity)
    assert (forward.service, forward.kind) == ("atrium-gateway", SpanMessage.SPAN_KIND_CLIENT)
    assert parent(forward) == gateway

    relay = one(
        "atrium-identity",
        SpanMessage.SPAN_KIND_PRODUCER,
        **{"atrium.event.type": "workspace.created"},
    )
    assert relay.name == "publish atrium.identity.workspace"
    assert parent(relay) == identity
    event_id = relay.attributes["messaging.message.id"]

    for service in CONSUMERS_OF_WORKSPACE_CREATED:
        consumer = one(
            service, SpanMessage.SPAN_KIND_CONSUMER, **{"messaging.message.id": event_id}
        )
        assert consumer.name == "process atrium.identity.workspace"
        assert parent(consumer) == relay

    about_the_event = {
        s.trace_id
        for s in receiver.received()
        if s.attributes.get("messaging.message.id") == event_id
    }
    assert about_the_event == {gateway.trace_id}, "one trace, not one per process"
