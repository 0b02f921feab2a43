"""The runtime of one service process: its FastAPI app, its Kafka consumers and its
outbox relay, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Table

from shared.db import Database
from shared.http import ReadinessCheck, install_http_plumbing
from shared.http_protocol import HttpLimits, guarded_protocol
from shared.idempotency import IdempotencyKeys, ResponseSeal
from shared.inbox import EventConsumer, Inbox, RetryPolicy
from shared.lifecycle import (
    IN_FLIGHT_GRACE_SECONDS,
    STARTUP_FAILURE,
    WORK_IN_HAND_GRACE_SECONDS,
    GracefulServer,
    check_not_stopping,
    shared_socket,
)
from shared.logging import configure_logging
from shared.metrics import ServiceSamples, install_metrics
from shared.outbox import Outbox, OutboxRelay
from shared.read_your_writes import Arrivals
from shared.retention import DELETE_EVERY_SECONDS, Retention, expiring_records
from shared.settings import KafkaConnection, ServiceName, Settings
from shared.tracing import FASTAPI_TELEMETRY, start_tracing, stop_tracing
from shared.unit_of_work import UnitsOfWork

logger = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 5
"""How long a service keeps an idle connection open for the client's next request. A
client that pools connections (the gateway) must let go of idle ones sooner, or it may
send a request on a connection the service is closing."""


@dataclass
class ServiceRuntime:
    """What a service's handlers and consumers work with."""

    name: ServiceName
    settings: Settings
    database: Database
    outbox: Outbox
    relay: OutboxRelay
    inbox: Inbox
    consumer: EventConsumer
    arrivals: Arrivals
    units_of_work: UnitsOfWork
    retention: Retention
    broker: KafkaBroker = field(init=False)
    _periodic: list[tuple[str, float, Callable[[], Awaitable[object]]]] = field(
        default_factory=list, init=False
    )
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list, init=False)
    _tracing: TracerProvider | None = field(default=None, init=False)

    @classmethod
    def create(
        cls,
        name: ServiceName,
        settings: Settings,
        *,
        outbox_table: Table,
        inbox_table: Table,
        idempotency_table: Table | None = None,
        idempotency_seal: ResponseSeal | None = None,
    ) -> ServiceRuntime:
        """`idempotency_seal` seals the responses the service stores for retries (those
        that hold a secret)."""
        assert outbox_table.schema == name.value, "a service's tables live in its own schema"
        settings.check_secrets(name)
        database = Database(settings.database_url_for(name), schema=name.value)
        inbox = Inbox(database, inbox_table)
        outbox = Outbox(outbox_table, producer=name.value)
        keys = (
            None
            if idempotency_table is None
            else IdempotencyKeys(idempotency_table, seal=idempotency_seal)
        )
        arrivals = Arrivals(database, timeout_seconds=settings.read_your_writes_timeout_seconds)
        return cls(
            name=name,
            settings=settings,
            database=database,
            outbox=outbox,
            relay=OutboxRelay(
                database,
                outbox_table,
                kafka=settings.kafka_for(name),
                lanes=settings.outbox_lanes,
                poll_seconds=settings.outbox_poll_seconds,
                batch_size=settings.outbox_batch_size,
                stop_grace_seconds=WORK_IN_HAND_GRACE_SECONDS,
            ),
            inbox=inbox,
            consumer=EventConsumer(
                service=name.value, inbox=inbox, policy=RetryPolicy.from_settings(settings)
            ),
            arrivals=arrivals,
            units_of_work=UnitsOfWork(database, outbox, keys, arrivals),
            retention=Retention(
                database,
                expiring_records(inbox_table.metadata),
                days=settings.retention_days,
            ),
        )

    def __post_init__(self) -> None:
        self.broker = kafka_broker(
            self.settings.kafka_for(self.name), client_id=f"atrium-{self.name.value}"
        )
        self.every(
            self.settings.inbox_retry_poll_seconds, "inbox-retries", self.consumer.retry_parked
        )
        self.every(DELETE_EVERY_SECONDS, "retention", self.retention.delete_expired)
        samples = ServiceSamples(
            self.name.value,
            self.database,
            outbox=self.relay.table,
            parked_events=self.inbox.parked.table,
            consumers=self.consumer.kafka_consumers,
        )
        self.every(self.settings.metrics_sample_seconds, "metrics", samples.sample)

    def every(self, seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run `job` every `seconds` while the service runs (a failure is logged and the
        job runs again next time)."""
        self._periodic.append((name, seconds, job))

    async def _repeat(
        self, name: str, seconds: float, job: Callable[[], Awaitable[object]]
    ) -> None:
        while not self._stopping.is_set():
            try:
                await job()
            except Exception:
                logger.exception("periodic job %s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def on_stop(self, close: Callable[[], Awaitable[object]]) -> None:
        """Run `close` when the service stops, after its periodic jobs (a client the
        service's handlers share, for example)."""
        self._closers.append(close)

    async def start(self) -> None:
        self._tracing = start_tracing(self.name.value, self.settings)
        self._tasks = [
            asyncio.create_task(self._repeat(name, seconds, job), name=name)
            for name, seconds, job in self._periodic
        ]
        if self.consumer.topics:
            self.consumer.subscribe(self.broker)
            await self.broker.start()
        if self.settings.outbox_relay_enabled:
            await self.relay.start()

    async def stop(self) -> None:
        """Finish the work in hand, each for `WORK_IN_HAND_GRACE_SECONDS` at most, then
        let go of every connection: the consumers finish their batch and commit its
        offsets, the relay its batch, a periodic job that runs its run, all at once."""
        self._stopping.set()
        await asyncio.gather(
            self.broker.stop(),
            self.relay.stop(),
            self._stop_periodic(),
        )
        for close in self._closers:
            await close()
        await self.arrivals.close()
        await self.database.dispose()
        await stop_tracing(self._tracing)

    async def _stop_periodic(self) -> None:
        if not self._tasks:
            return
        _, running = await asyncio.wait(self._tasks, timeout=WORK_IN_HAND_GRACE_SECONDS)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {
            "process": check_not_stopping,
            "postgres": self.database.ping,
            "kafka": self.relay.ping,
        }


METADATA_MAX_AGE_MS = 10_000
"""How old a Kafka client's view of the topics may grow before it asks again. A group's
partitions are handed out from its leader's view: a process that started while Kafka
was coming back could see a topic without its partitions, and its group then consumed
nothing of that topic until the next refresh (aiokafka's default: 5 minutes). A refresh
that finds the partitions makes the group rebalance, so this bounds that gap."""


def kafka_broker(kafka: KafkaConnection, *, client_id: str) -> KafkaBroker:
    """A FastStream broker that connects as `kafka`'s principal."""
    return KafkaBroker(
        kafka.bootstrap_servers,
        security=_broker_security(kafka),
        client_id=client_id,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        log_level=logging.DEBUG,
        # How long stopping waits for the batch a subscriber is applying.
        graceful_timeout=WORK_IN_HAND_GRACE_SECONDS,
    )


def _broker_security(kafka: KafkaConnection) -> BaseSecurity:
    if kafka.sasl_mechanism is None:
        return BaseSecurity(ssl_context=kafka.ssl_context())
    mechanisms: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    return mechanisms[kafka.sasl_mechanism](
        username=kafka.username or "",
        password=kafka.password or "",
        ssl_context=kafka.ssl_context(),
        use_ssl=kafka.uses_tls,
    )


def create_service_app(runtime: ServiceRuntime, *routers: APIRouter) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"Atrium {runtime.name.value}",
        version="1.0.0",
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.settings = runtime.settings
    install_http_plumbing(app, runtime.readiness_checks())
    install_metrics(app, service=runtime.name.value)
    for router in routers:
        app.include_router(router)
    return app


def serve(
    app: FastAPI,
    service: ServiceName,
    settings: Settings,
    *,
    max_connections_per_address: int | None = None,
) -> None:
    """Run one process of a service in the foreground on the host and port of its URL,
    beside any other process of the service there (`shared.lifecycle`), with the
    deadlines and limits of `shared.http_protocol`; `max_connections_per_address` caps
    what one client address may hold open in this process (for the public edge)."""
    configure_logging(service.value, level=settings.log_level, as_json=settings.log_json)
    address = urlsplit(settings.base_url_for(service))
    limits = HttpLimits(
        header_timeout_seconds=settings.http_header_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        max_header_bytes=settings.http_max_header_bytes,
        max_connections_per_address=max_connections_per_address,
    )
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        # The client's address is the connection's own. uvicorn would otherwise take it
        # from `X-Forwarded-For` when the peer is 127.0.0.1, and a local client could
        # then name any address it likes to the per-address limits.
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=IN_FLIGHT_GRACE_SECONDS,
    )
    sock = shared_socket(address.hostname or "127.0.0.1", address.port or 80)
    logger.info("%s listens on %s once started", service.value, settings.base_url_for(service))
    server = GracefulServer(config, drain_seconds=settings.stop_drain_seconds)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)
