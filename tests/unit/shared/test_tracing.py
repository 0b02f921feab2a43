"""A trace goes on from process to process: a service continues the one it is sent,
an event carries the context it was staged in to Kafka and on to its consumer, and a
log line names the trace it was written in."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import MetaData

from contracts.events.identity import BillingMode, WorkspaceCreated
from shared.http import install_http_plumbing
from shared.logging import JsonFormatter, PlainFormatter
from shared.outbox import Outbox, outbox_table
from shared.settings import Settings
from shared.tracing import (
    calling,
    consuming,
    publishing,
    received_context,
    staged_context,
    start_tracing,
    traces_endpoint,
)

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-01"


def traceparent_of(span: ReadableSpan | trace.Span) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def service_app(*, public_edge: bool = False) -> tuple[FastAPI, list[dict[str, str] | None]]:
    """An app with the shared plumbing, and what its handler would stage an event with."""
    app = FastAPI()
    staged: list[dict[str, str] | None] = []
    install_http_plumbing(app, {}, public_edge=public_edge)

    @app.get("/v1/workspaces/{workspace_id}/things")
    async def things(workspace_id: uuid.UUID) -> dict[str, str]:
        staged.append(staged_context())
        return {"workspace": str(workspace_id)}

    return app, staged


async def get(app: FastAPI, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path, headers=headers)


async def test_a_service_continues_the_trace_it_is_sent_in_a_span_named_by_its_route(
    recorded_spans: InMemorySpanExporter,
) -> None:
    app, staged = service_app()
    workspace_id = uuid.uuid4()

    response = await get(app, f"/v1/workspaces/{workspace_id}/things", {"traceparent": TRACEPARENT})

    assert response.status_code == 200
    [span] = recorded_spans.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /v1/workspaces/{workspace_id}/things"
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == PARENT_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/workspaces/{workspace_id}/things"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["atrium.workspace_id"] == str(workspace_id)
    assert span.attributes["atrium.request_id"] == response.headers["x-request-id"]
    assert staged == [{"traceparent": traceparent_of(span)}]


async def test_the_public_edge_starts_a_trace_of_its_own_and_links_the_callers(
    recorded_spans: InMemorySpanExporter,
) -> None:
    app, _ = service_app(public_edge=True)

    await get(app, f"/v1/workspaces/{uuid.uuid4()}/things", {"traceparent": TRACEPARENT})

    [span] = recorded_spans.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id != TRACE_ID
    [link] = span.links
    assert (link.context.trace_id, link.context.span_id) == (TRACE_ID, PARENT_SPAN_ID)


async def test_a_server_error_marks_its_span_failed(recorded_spans: InMemorySpanExporter) -> None:
    app = FastAPI()
    install_http_plumbing(app, {})

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        assert (await client.get("/broken")).status_code == 500

    [span] = recorded_spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


async def test_health_checks_are_not_traced(recorded_spans: InMemorySpanExporter) -> None:
    app, _ = service_app()

    assert (await get(app, "/healthz", {"traceparent": TRACEPARENT})).status_code == 200
    assert recorded_spans.get_finished_spans() == ()


def test_a_call_to_another_service_sends_its_client_spans_context(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with calling("billing", "POST") as call:
        call.answered(201)

    [span] = recorded_spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert span.name == "POST billing"
    assert call.headers == {"traceparent": traceparent_of(span)}


class RecordingSession:
    """Stands for the caller's session: keeps the statements it is given."""

    def __init__(self) -> None:
        self.parameters: list[dict[str, Any]] = []

    async def execute(self, statement: Any) -> None:
        self.parameters.append(statement.compile().params)


async def stage_one() -> dict[str, Any]:
    outbox = Outbox(outbox_table(MetaData(schema="identity")), producer="identity")
    session = RecordingSession()
    root = uuid.uuid4()
    payload = WorkspaceCreated(
        id=root,
        parent_id=None,
        root_id=root,
        billing_root_id=root,
        depth=0,
        name="Acme",
        billing_mode=BillingMode.OWN,
        api_access=False,
        strict_quota=False,
    )
    await outbox.stage(session, payload, root_id=root, workspace_id=root, actor="ann")  # type: ignore[arg-type]
    [row] = session.parameters
    return row


async def test_an_event_staged_in_a_span_keeps_its_context_for_the_relay(
    recorded_spans: InMemorySpanExporter,
) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        row = await stage_one()

    assert row["headers"] == {"traceparent": traceparent_of(span)}


async def test_an_event_staged_outside_any_span_has_no_headers(
    recorded_spans: InMemorySpanExporter,
) -> None:
    assert (await stage_one())["headers"] is None


async def test_the_relay_publishes_an_event_in_a_producer_span_child_of_where_it_was_staged(
    recorded_spans: InMemorySpanExporter,
) -> None:
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with publishing(
        topic="atrium.identity.workspace",
        message_key="root",
        event_id=uuid.uuid4(),
        event_type="workspace.created",
        row_headers={"traceparent": TRACEPARENT},
    ) as publication:
        publication.follow(delivery)

    assert recorded_spans.get_finished_spans() == (), "ends when Kafka acknowledges"
    delivery.set_result(None)
    await asyncio.sleep(0)

    [span] = recorded_spans.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == PARENT_SPAN_ID
    assert publication.headers == [("traceparent", traceparent_of(span).encode())]


async def test_a_consumer_applies_an_event_in_a_span_child_of_its_producer_span(
    recorded_spans: InMemorySpanExporter,
) -> None:
    record_headers: list[tuple[str, bytes | None]] = [
        ("content-type", b"application/json"),
        ("tracestate", None),
        ("traceparent", TRACEPARENT.encode()),
    ]

    with consuming(
        topic="atrium.identity.workspace",
        event_id=uuid.uuid4(),
        event_type="workspace.created",
        workspace_id=None,
        trace_context=received_context(record_headers),
    ):
        pass

    [span] = recorded_spans.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == PARENT_SPAN_ID


def log_record() -> logging.LogRecord:
    return logging.makeLogRecord({"name": "test", "levelname": "INFO", "msg": "applied"})


def test_a_log_line_written_in_a_span_names_its_trace_and_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        line = json.loads(JsonFormatter("identity").format(log_record()))
        text = PlainFormatter("identity").format(log_record())

    context = span.get_span_context()
    trace_id, span_id = (
        trace.format_trace_id(context.trace_id),
        trace.format_span_id(context.span_id),
    )
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
    assert text.endswith(f"applied trace_id={trace_id} span_id={span_id}")


def test_a_log_line_outside_any_span_names_no_trace() -> None:
    assert "trace_id" not in json.loads(JsonFormatter("identity").format(log_record()))
    assert PlainFormatter("identity").format(log_record()).endswith("INFO applied")


def test_spans_go_to_the_configured_endpoint_and_nowhere_without_one(
    monkeypatch: Any,
) -> None:
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    settings = Settings(otlp_endpoint="http://collector:4318/")

    assert traces_endpoint(settings) == "http://collector:4318/v1/traces"
    assert traces_endpoint(Settings()) is None
    assert start_tracing("identity", Settings()) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318")
    assert traces_endpoint(Settings()) == "http://otel:4318/v1/traces"


async def test_without_an_endpoint_nothing_is_traced_nor_sent_on() -> None:
    app, staged = service_app()

    await get(app, f"/v1/workspaces/{uuid.uuid4()}/things", {"traceparent": TRACEPARENT})
    with calling("billing", "POST") as call:
        pass
    with publishing(
        topic="atrium.identity.workspace",
        message_key="root",
        event_id=uuid.uuid4(),
        event_type="workspace.created",
        row_headers=None,
    ) as publication:
        pass

    assert staged == [None]
    assert call.headers == {}
    assert publication.headers == []
