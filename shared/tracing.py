"""Traces across HTTP and Kafka (OpenTelemetry), exported over OTLP/HTTP when an
endpoint is configured.

How one trace travels through the system:

* The gateway starts a trace for each public request, in a SERVER span named by its
  method and route template. A `traceparent` the public client sent is not continued
  (a caller must not choose the system's trace ids, nor whether they are sampled): it
  is added to the span as a link.
* Every call to a service (the gateway's forward, its questions to identity and
  apikeys, assets' to billing and identity) is a CLIENT span, whose context travels
  in W3C `traceparent`/`tracestate` headers; the service's middleware continues it in
  a SERVER span named by its own route template.
* An event staged during a span keeps that span's context in its outbox row
  (`headers`). The relay publishes each event in a PRODUCER span, a child of that
  context, from the send until Kafka acknowledges it, and sends the span's context in
  the record's headers.
* A consumer applies each event in a CONSUMER span, a child of its producer span.
  Events of a batch commit in one transaction, but each has its own span around its
  handler (so that each continues its own trace); a batch that fails is applied again
  one event at a time, and those events then show a second span. An event retried
  from `parked_events` has lost its context (the table does not keep it) and starts
  a trace of its own.
* Log lines carry `trace_id` and `span_id` when a span is current (`shared.logging`).

Health and metrics endpoints are not traced. Without an endpoint nothing is traced:
every hook here returns at once, and no trace context is sent on or kept.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import request_id_var
from shared.settings import Settings

TRACE_CONTEXT_HEADERS = frozenset({"traceparent", "tracestate"})
"""The W3C trace context: what carries a trace from one process to the next."""
TRACES_PATH = "/v1/traces"
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Polled all the time by supervisors and scrapers: traces of them would drown the rest."""
ROUTE_SCOPE_KEY = "atrium.route"
WORKSPACE_SCOPE_KEY = "atrium.workspace_id"

FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False}
"""Every app's `FastAPI(telemetry=...)`. FastAPI's own request spans are off: they would
come on top of `RequestTracing`'s, they continue whatever trace a caller sends (also at
the public edge), and they cannot name the gateway's requests, which it routes itself."""

_propagator = TraceContextTextMapPropagator()


@dataclass
class _Tracing:
    tracer: Tracer | None = None
    """The tracer of the provider `start_tracing` installed; None: tracing is off."""


_tracing = _Tracing()


# The process's provider --------------------------------------------------------------


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans are sent: `ATRIUM_OTLP_ENDPOINT`, else the standard OpenTelemetry
    variables; None when no endpoint is configured (then nothing is traced)."""
    if settings.otlp_endpoint:
        return settings.otlp_endpoint.rstrip("/") + TRACES_PATH
    if explicit := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return explicit
    if base := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + TRACES_PATH
    return None


def start_tracing(service: str, settings: Settings) -> TracerProvider | None:
    """Install the process's tracer provider, exporting in batches to the configured
    endpoint; None when there is no endpoint, or when a provider is installed already
    (a process runs one service)."""
    endpoint = traces_endpoint(settings)
    if endpoint is None or isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": f"atrium-{service}",
                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _tracing.tracer = provider.get_tracer("atrium")
    return provider


async def stop_tracing(provider: TracerProvider | None) -> None:
    """Export what is still buffered, then stop (the export blocks: off the loop)."""
    if provider is not None:
        _tracing.tracer = None
        await asyncio.to_thread(provider.shutdown)


# HTTP ---------------------------------------------------------------------------------


class RequestTracing:
    """A SERVER span around each HTTP request, named by its method and route template.

    A service continues the trace of the `traceparent` it is sent (the gateway's, or a
    service's that calls it). The public edge (`continue_callers_trace=False`) starts a
    trace of its own and links the caller's."""

    def __init__(self, app: ASGIApp, *, continue_callers_trace: bool = True) -> None:
        self.app = app
        self.continue_callers_trace = continue_callers_trace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracing.tracer
        if tracer is None or scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        sent = _trace_context_of(scope["headers"])
        links: Sequence[Link]
        if self.continue_callers_trace:
            parent, links = _propagator.extract(sent), ()
        else:
            callers = trace.get_current_span(_propagator.extract(sent)).get_span_context()
            parent, links = Context(), ((Link(callers),) if callers.is_valid else ())
        method = scope["method"]
        with tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            links=links,
            attributes={"http.request.method": method},
        ) as span:

            async def send_noting_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                _describe_server_span(span, scope)


def describe_request(scope: Scope, *, route: str, workspace_id: UUID | None) -> None:
    """Name the request's span by `route` (a template), where the application routes
    requests itself rather than by the framework's route table (the gateway)."""
    scope[ROUTE_SCOPE_KEY] = route
    if workspace_id is not None:
        scope[WORKSPACE_SCOPE_KEY] = str(workspace_id)


def _describe_server_span(span: Span, scope: Scope) -> None:
    framework_route = scope.get("route")
    route = scope.get(ROUTE_SCOPE_KEY) or getattr(framework_route, "path", None)
    if route is not None:
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
    workspace_id = scope.get(WORKSPACE_SCOPE_KEY) or scope.get("path_params", {}).get(
        "workspace_id"
    )
    if workspace_id is not None:
        span.set_attribute("atrium.workspace_id", str(workspace_id))
    if (request_id := request_id_var.get()) is not None:
        span.set_attribute("atrium.request_id", request_id)


def _trace_context_of(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name.decode("latin-1").lower() in TRACE_CONTEXT_HEADERS
    }


@dataclass(frozen=True, slots=True)
class OutgoingCall:
    """A call to another service, in its CLIENT span."""

    span: Span
    headers: dict[str, str]
    """The trace context to send with the call."""

    def answered(self, status: int) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))


@contextmanager
def calling(service: str, method: str) -> Iterator[OutgoingCall]:
    """A CLIENT span around one call to `service`; send `headers` with the call."""
    tracer = _tracing.tracer
    if tracer is None:
        yield OutgoingCall(INVALID_SPAN, {})
        return
    with tracer.start_as_current_span(
        f"{method} {service}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "atrium.upstream": service},
    ) as span:
        headers: dict[str, str] = {}
        _propagator.inject(headers)
        yield OutgoingCall(span, headers)


# Kafka ------------------------------------------------------------------------------


def staged_context() -> dict[str, str] | None:
    """The current span's context, for an event staged now (its outbox row's
    `headers`); None outside any span."""
    if _tracing.tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier or None


@dataclass(slots=True)
class Publication:
    """One event on its way to Kafka, in its PRODUCER span."""

    span: Span
    headers: list[tuple[str, bytes]]
    """The record's headers besides its content type: the row's, with this span's
    context in place of the staged one."""
    followed: bool = field(default=False, init=False)

    def follow(self, delivery: asyncio.Future[Any]) -> None:
        """End the span when Kafka has acknowledged the record (or refused it)."""
        self.followed = True
        delivery.add_done_callback(self._delivered)

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            self.span.set_status(Status(StatusCode.ERROR, "cancelled"))
        elif (failure := delivery.exception()) is not None:
            self.span.record_exception(failure)
            self.span.set_status(Status(StatusCode.ERROR))
        self.span.end()


@contextmanager
def publishing(
    *,
    topic: str,
    message_key: str,
    event_id: UUID,
    event_type: str,
    row_headers: Mapping[str, str] | None,
) -> Iterator[Publication]:
    """A PRODUCER span for one outbox row, a child of the context it was staged in."""
    staged = dict(row_headers or {})
    carrier = {name: value for name, value in staged.items() if name not in TRACE_CONTEXT_HEADERS}
    tracer = _tracing.tracer
    if tracer is None:
        yield Publication(INVALID_SPAN, [(name, value.encode()) for name, value in carrier.items()])
        return
    span = tracer.start_span(
        f"publish {topic}",
        context=_propagator.extract(staged),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": message_key,
            "messaging.message.id": str(event_id),
            "atrium.event.type": event_type,
        },
    )
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    publication = Publication(span, [(name, value.encode()) for name, value in carrier.items()])
    try:
        yield publication
    except BaseException as failure:
        span.record_exception(failure)
        span.set_status(Status(StatusCode.ERROR))
        span.end()
        raise
    if not publication.followed:
        span.end()


def received_context(
    headers: Sequence[tuple[str, bytes | None]],
) -> tuple[tuple[str, str], ...]:
    """The trace context a Kafka record carries in its headers (a header may be null)."""
    return tuple(
        (name, value.decode("latin-1"))
        for name, value in headers
        if name.lower() in TRACE_CONTEXT_HEADERS and value is not None
    )


@contextmanager
def consuming(
    *,
    topic: str,
    event_id: UUID,
    event_type: str,
    workspace_id: UUID | None,
    trace_context: Sequence[tuple[str, str]],
) -> Iterator[None]:
    """A CONSUMER span around one event's handler, a child of its producer span."""
    tracer = _tracing.tracer
    if tracer is None:
        yield
        return
    attributes: dict[str, str] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.message.id": str(event_id),
        "atrium.event.type": event_type,
    }
    if workspace_id is not None:
        attributes["atrium.workspace_id"] = str(workspace_id)
    with tracer.start_as_current_span(
        f"process {topic}",
        context=_propagator.extract(dict(trace_context)),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield
