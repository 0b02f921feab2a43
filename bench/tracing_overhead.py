"""What tracing costs a request and an event, in-process, in the same run:

* a request through a service's HTTP plumbing (request id, problem handlers, tracing)
  to a route that answers at once: without the tracing middleware (the baseline), with
  it and no endpoint configured (tracing off: what every process runs by default),
  and with spans recorded and exported in batches (to an exporter that drops them, so
  that the collector's cost is not counted);
* an event's spans, as the outbox stages it, the relay publishes it and a consumer
  applies it, tracing off and recorded, next to serialising its envelope (the baseline).

Run: `.venv/bin/python -m bench.tracing_overhead` (`--quick` for fewer rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer
from starlette.types import Message

import shared.tracing
from bench.system import percentile
from contracts.envelope import new_envelope
from contracts.events.identity import BillingMode, WorkspaceCreated
from shared.http import install_http_plumbing
from shared.tracing import (
    FASTAPI_TELEMETRY,
    RequestTracing,
    consuming,
    publishing,
    received_context,
    staged_context,
)


class DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002
        return SpanExportResult.SUCCESS


def service_app(*, traced: bool) -> FastAPI:
    app = FastAPI(telemetry=FASTAPI_TELEMETRY)
    install_http_plumbing(app, {})
    if not traced:
        app.user_middleware = [
            m
            for m in app.user_middleware
            if m.cls is not RequestTracing  # type: ignore[comparison-overlap]
        ]

    @app.get("/v1/workspaces/{workspace_id}")
    async def workspace(workspace_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(workspace_id)}

    return app


async def one_request(app: FastAPI) -> None:
    path = f"/v1/workspaces/{uuid.uuid4()}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"service"),
            (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8101),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Message) -> None:
        pass

    await app(scope, receive, send)


async def one_event() -> None:
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
    envelope = new_envelope(
        payload,
        producer="identity",
        root_id=root,
        workspace_id=root,
        actor=None,
        correlation_id=None,
    )
    envelope.model_dump_json()
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with publishing(
        topic="atrium.identity.workspace",
        message_key=str(root),
        event_id=envelope.event_id,
        event_type=envelope.type,
        row_headers=staged_context(),
    ) as publication:
        publication.follow(delivery)
    delivery.set_result(None)
    with consuming(
        topic="atrium.identity.workspace",
        event_id=envelope.event_id,
        event_type=envelope.type,
        workspace_id=root,
        trace_context=received_context(publication.headers),
    ):
        pass


async def baseline_event() -> None:
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
    new_envelope(
        payload,
        producer="identity",
        root_id=root,
        workspace_id=root,
        actor=None,
        correlation_id=None,
    ).model_dump_json()
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    delivery.set_result(None)


async def timed(step: Callable[[], Awaitable[None]], iterations: int) -> list[float]:
    durations = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        await step()
        durations.append((time.perf_counter_ns() - started) / 1000)
    return durations


def report(name: str, durations: list[float], baseline: list[float]) -> None:
    p50, p99 = percentile(durations, 50), percentile(durations, 99)
    ratio = p50 / percentile(baseline, 50)
    print(f"  {name:<40} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs   p50 x{ratio:.2f} of baseline")


async def main(rounds: int, per_round: int) -> None:
    noop_tracer = shared.tracing._tracing.tracer
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    recording: Tracer = provider.get_tracer("bench")
    plain, traced = service_app(traced=False), service_app(traced=True)

    results: dict[str, list[float]] = {}

    def add(name: str, durations: list[float]) -> None:
        results.setdefault(name, []).extend(durations)

    for _ in range(rounds):
        # Interleaved, so that the machine's other load falls on every variant alike.
        shared.tracing._tracing.tracer = noop_tracer
        add("request: no tracing middleware", await timed(lambda: one_request(plain), per_round))
        add(
            "request: tracing off",
            await timed(lambda: one_request(traced), per_round),
        )
        add("event: envelope and future only", await timed(baseline_event, per_round))
        add("event: tracing off", await timed(one_event, per_round))
        shared.tracing._tracing.tracer = recording
        add("request: traced and exported", await timed(lambda: one_request(traced), per_round))
        add("event: spans recorded and exported", await timed(one_event, per_round))
    shared.tracing._tracing.tracer = noop_tracer
    provider.shutdown()

    print(f"tracing overhead, in-process, {rounds} x {per_round} each")
    request_baseline = results["request: no tracing middleware"]
    for name in (
        "request: no tracing middleware",
        "request: tracing off",
        "request: traced and exported",
    ):
        report(name, results[name], request_baseline)
    event_baseline = results["event: envelope and future only"]
    for name in (
        "event: envelope and future only",
        "event: tracing off",
        "event: spans recorded and exported",
    ):
        report(name, results[name], event_baseline)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(
        main(rounds=3 if arguments.quick else 10, per_round=500 if arguments.quick else 2000)
    )
