"""What an operator scrapes from every service at `GET /metrics` (Prometheus text
exposition): HTTP requests and their latency by route template, the consumers' lag,
the events applied, retried and parked, the outbox's backlog and the relay's publishing.

Every metric is named `atrium_…` and labelled with the `service` that reports it. Label
values are bounded: a route is its template (`/v1/workspaces/{workspace_id}`), never
the path a client sent, and a path no route matches is `unmatched`.

Several processes of one service may share one port. When `PROMETHEUS_MULTIPROC_DIR`
is set (`atrium-infra run` gives each service a directory of its own), every process
writes its values there and a scrape of any of them sums the counters and histograms
of all, and takes the largest value of each gauge among the processes alive: a
gauge here is a fact about the service's database or about one partition, which every
process reports alike, or reports as 0 when it is not the one consuming it. Without the
variable each process reports its own (in compose, each replica is scraped on its own).
The variable must be set before the process starts: prometheus-client reads it at
import.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import Table, func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import Database
from shared.inbox.tables import ParkedState

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
"""The route of a request that no route matched."""
ROUTE_TEMPLATE = "atrium.route_template"
"""Where an application that routes by itself (the gateway) names a request's route."""

# A `…_created` series beside every counter and histogram doubles what Prometheus stores
# for nothing a dashboard reads; the multiprocess collector never reports them either.
disable_created_metrics()  # type: ignore[no-untyped-call]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as label values; any other is `other` (a client chooses the method)."""

# HTTP -------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "atrium_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "atrium_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["service", "route", "method"],
)

# Consuming events -------------------------------------------------------------------

CONSUMER_LAG = Gauge(
    "atrium_consumer_lag",
    "Records of a partition not yet fetched by the service's consumer (highwater minus "
    "position), sampled periodically; 0 from a process that no longer consumes it.",
    ["service", "topic", "partition"],
    multiprocess_mode="livemax",
)
EVENTS_APPLIED = Counter(
    "atrium_events_applied",
    "Events whose effect committed, with their inbox row, by event type.",
    ["service", "event_type"],
)
EVENTS_RETRIED = Counter(
    "atrium_events_retried",
    "Failed attempts at an event after which it is held to be tried again, by event type.",
    ["service", "event_type"],
)
EVENTS_PARKED = Counter(
    "atrium_events_parked",
    "Events parked for an operator (attempts exhausted, or a type or version the "
    "service's contracts do not know), by event type.",
    ["service", "event_type"],
)
PARKED_EVENTS = Gauge(
    "atrium_parked_events",
    "Events held out of the stream now, by state (`parked` waits for an operator, "
    "`retrying` and `retry_requested` for their next attempt, `queued` behind their key's "
    "first), sampled periodically.",
    ["service", "state"],
    multiprocess_mode="livemax",
)

# Publishing events ------------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "atrium_outbox_backlog",
    "Outbox rows not published yet, sampled periodically.",
    ["service"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_AGE = Gauge(
    "atrium_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not published yet (0 when there is none), sampled periodically.",
    ["service"],
    multiprocess_mode="livemax",
)
RELAY_PUBLISH_SECONDS = Histogram(
    "atrium_relay_publish_duration_seconds",
    "Time the relay takes to send a batch of outbox rows until Kafka acknowledged every one.",
    ["service"],
)
EVENTS_PUBLISHED = Counter(
    "atrium_events_published",
    "Events the relay published and marked published, by topic.",
    ["service", "topic"],
)


# Exposition -------------------------------------------------------------------------


def exposition(multiprocess_directory: str | None = None) -> bytes:
    """The text a scrape gets: this process's metrics, or, in multiprocess mode, those of
    every process writing to the directory (by default `PROMETHEUS_MULTIPROC_DIR`)."""
    directory = multiprocess_directory or os.environ.get(MULTIPROCESS_DIRECTORY)
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics_endpoint(_: Request) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def empty_multiprocess_directory(directory: Path) -> Path:
    """A service's directory for a new run: what dead processes of an earlier run wrote
    must not count."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def forget_process(directory: Path, pid: int) -> None:
    """A process of the directory's service exited: its gauges no longer count (its
    counters still do, so that totals never go down)."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


# HTTP -------------------------------------------------------------------------------


def install_metrics(app: Starlette, *, service: str) -> None:
    """`GET /metrics` (out of the API document), and every request counted and timed."""
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(HttpMetricsMiddleware, service=service)


def name_route(request: Request, template: str) -> None:
    """The route template a request is counted under, for an application that matches
    routes by itself behind one catch-all route."""
    request.scope[ROUTE_TEMPLATE] = template


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (the application's own
    name for it, else the path of the route Starlette matched, else `unmatched`)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = _route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(self.service, route, method).observe(
                time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    named: str | None = scope.get(ROUTE_TEMPLATE)
    if named is not None:
        return named
    route = scope.get("route")
    path: str | None = getattr(route, "path", None)
    return path or UNMATCHED


# Consuming events -------------------------------------------------------------------


def expect_events(service: str, event_types: Iterable[str]) -> None:
    """Start the event counters of the types the service handles at 0, so that a rate
    over them exists before the first event does."""
    for event_type in event_types:
        for counter in (EVENTS_APPLIED, EVENTS_RETRIED, EVENTS_PARKED):
            counter.labels(service, event_type)


def count_applied(service: str, event_types: Iterable[str]) -> None:
    for event_type, applied in collections.Counter(event_types).items():
        EVENTS_APPLIED.labels(service, event_type).inc(applied)


def count_held(service: str, event_type: str, state: ParkedState) -> None:
    """An event was taken out of the stream, or failed again, and is now in `state`:
    retried later, or parked (an event queued behind another is neither, yet)."""
    if state is ParkedState.RETRYING:
        EVENTS_RETRIED.labels(service, event_type).inc()
    elif state is ParkedState.PARKED:
        EVENTS_PARKED.labels(service, event_type).inc()


# Publishing events ------------------------------------------------------------------


def count_published(service: str, topics: Iterable[str]) -> None:
    for topic, published in collections.Counter(topics).items():
        EVENTS_PUBLISHED.labels(service, topic).inc(published)


# Sampled state ----------------------------------------------------------------------


@dataclass
class ServiceSamples:
    """The gauges read from the service's tables and its Kafka consumers, every few
    seconds (`ServiceRuntime` runs `sample`): the outbox's backlog, the events held,
    the lag of each partition this process consumes."""

    service: str
    database: Database
    outbox: Table
    parked_events: Table
    consumers: Callable[[], Iterable[AIOKafkaConsumer]]
    """The service's Kafka consumers that are running now."""
    _lagging: set[tuple[str, int]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        # Started empty, so that the relay's histogram exists before its first batch.
        RELAY_PUBLISH_SECONDS.labels(self.service)

    async def sample(self) -> None:
        await self._sample_tables()
        await self._sample_lag()

    async def _sample_tables(self) -> None:
        outbox, parked = self.outbox, self.parked_events
        async with self.database.transaction() as session:
            backlog = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0
                        ),
                    ).where(outbox.c.published_at.is_(None))
                )
            ).one()
            rows = await session.execute(
                select(parked.c.state, func.count().label("held")).group_by(parked.c.state)
            )
            held: dict[str, int] = {row.state: row.held for row in rows}
        OUTBOX_BACKLOG.labels(self.service).set(backlog[0])
        OUTBOX_OLDEST_AGE.labels(self.service).set(float(backlog[1]))
        for state in ParkedState:
            PARKED_EVENTS.labels(self.service, state.value).set(held.get(state.value, 0))

    async def _sample_lag(self) -> None:
        lagging: set[tuple[str, int]] = set()
        for consumer in self.consumers():
            for partition in consumer.assignment():
                lag = await _lag(consumer, partition)
                if lag is not None:
                    CONSUMER_LAG.labels(
                        self.service, partition.topic, str(partition.partition)
                    ).set(lag)
                    lagging.add((partition.topic, partition.partition))
        for topic, partition in self._lagging - lagging:
            CONSUMER_LAG.labels(self.service, topic, str(partition)).set(0)
        self._lagging = lagging


async def _lag(consumer: AIOKafkaConsumer, partition: TopicPartition) -> int | None:
    """None until the consumer has fetched from the partition once (the highwater comes
    with a fetch), or once the partition is taken away meanwhile."""
    try:
        highwater: int | None = consumer.highwater(partition)
        if highwater is None:
            return None
        position: int = await asyncio.wait_for(consumer.position(partition), timeout=1)
    except (AssertionError, IllegalStateError, TimeoutError):
        return None
    return max(highwater - position, 0)
