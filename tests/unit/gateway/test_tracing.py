"""The gateway starts the trace of each public request and hands it on to the service
it forwards to; a public client's trace context is linked, never passed on."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.permissions import Role
from services.gateway.projections import Membership, WorkspaceNode

from .conftest import InProcessGateway
from .support import StubUpstream, bearer

WORKSPACE = uuid.uuid4()
CLIENT_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CLIENTS_TRACEPARENT = f"00-{CLIENT_TRACE_ID:032x}-00f067aa0ba902b7-01"


def seed(in_process: InProcessGateway) -> None:
    in_process.gateway.projection.load(
        [WorkspaceNode(WORKSPACE, None, WORKSPACE, api_access=True)],
        [Membership(WORKSPACE, "ann", Role.SUPER_ADMIN)],
    )


async def test_a_forwarded_request_continues_the_gateways_own_trace_in_the_service(
    in_process: InProcessGateway, stub: StubUpstream, recorded_spans: InMemorySpanExporter
) -> None:
    seed(in_process)

    response = await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances",
        headers={**bearer("ann"), "traceparent": CLIENTS_TRACEPARENT, "tracestate": "x=1"},
    )

    assert response.status_code == 200
    client_span, server_span = recorded_spans.get_finished_spans()
    assert server_span.kind is SpanKind.SERVER
    assert server_span.name == "GET /v1/workspaces/{workspace_id}/balances"
    assert server_span.parent is None
    assert server_span.context.trace_id != CLIENT_TRACE_ID
    assert [link.context.trace_id for link in server_span.links] == [CLIENT_TRACE_ID]
    assert server_span.attributes is not None
    assert server_span.attributes["atrium.workspace_id"] == str(WORKSPACE)
    assert server_span.attributes["http.response.status_code"] == 200
    assert client_span.kind is SpanKind.CLIENT
    assert client_span.parent is not None
    assert client_span.parent.span_id == server_span.context.span_id
    [forwarded] = stub.forwarded
    assert forwarded.headers["traceparent"].split("-")[1:3] == [
        f"{server_span.context.trace_id:032x}",
        f"{client_span.context.span_id:016x}",
    ]
    assert "tracestate" not in forwarded.headers


async def test_without_tracing_a_clients_trace_context_goes_no_further(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed(in_process)

    await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances",
        headers={**bearer("ann"), "traceparent": CLIENTS_TRACEPARENT, "tracestate": "x=1"},
    )

    [forwarded] = stub.forwarded
    assert "traceparent" not in forwarded.headers
    assert "tracestate" not in forwarded.headers
