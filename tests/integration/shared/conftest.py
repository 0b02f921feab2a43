"""A consuming service in miniature for the inbox's tests: a schema of its own with the
shared inbox tables and an `effects` table its handlers write to, so that one test's
held events are never another's and an effect is seen only once committed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.envelope import EventPayload, RawEnvelope
from contracts.events.identity import SeatsUsageChanged, WorkspaceCreated, WorkspaceUpdated
from shared.db import Database, service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import (
    Delivery,
    EventConsumer,
    EventNotYetApplicableError,
    Inbox,
    ParkedEvent,
    RetryPolicy,
    inbox_table,
)
from shared.service import kafka_broker
from shared.settings import Settings
from shared.testing import as_delivered, root_created

FAST = RetryPolicy(
    max_attempts=3,
    backoff_base=timedelta(seconds=0.05),
    not_yet_applicable_for=timedelta(seconds=5),
)


@dataclass(frozen=True)
class Effect:
    event_id: uuid.UUID
    event_type: str
    applied_at: datetime


@dataclass
class MiniService:
    database: Database
    inbox: Inbox
    metadata: MetaData
    effects: Table

    async def applied(self) -> list[Effect]:
        """The committed effects, in the order they were applied."""
        async with self.database.transaction() as session:
            rows = await session.execute(
                select(
                    self.effects.c.event_id, self.effects.c.event_type, self.effects.c.applied_at
                ).order_by(self.effects.c.position)
            )
        return [Effect(*row) for row in rows]

    async def applied_ids(self) -> list[uuid.UUID]:
        return [effect.event_id for effect in await self.applied()]

    async def parked(self) -> list[ParkedEvent]:
        async with self.database.transaction() as session:
            return await self.inbox.parked.listing(session)


@pytest.fixture
async def service(settings: Settings, admin_engine: AsyncEngine) -> AsyncIterator[MiniService]:
    schema = f"inbox_test_{uuid.uuid4().hex[:10]}"
    metadata = service_metadata(schema)
    table = inbox_table(metadata)
    idempotency_table(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("position", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("root_id", Uuid, nullable=False),
        Column(
            "applied_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=text("clock_timestamp()"),
        ),
    )
    async with admin_engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.run_sync(metadata.create_all)
    database = Database(settings.database_url, schema=schema)
    yield MiniService(database, Inbox(database, table), metadata, effects)
    await database.dispose()
    async with admin_engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@dataclass
class Handlers:
    """The test's handlers. Each writes its effect in the event's transaction, and can be
    told to fail; a seat count waits for its account's `workspace.created`."""

    effects: Table
    failing: set[uuid.UUID] = field(default_factory=set)
    attempts: defaultdict[uuid.UUID, list[datetime]] = field(
        default_factory=lambda: defaultdict(list)
    )
    slow: float = 0.0

    def register(self, consumer: EventConsumer) -> None:
        @consumer.on(WorkspaceCreated)
        async def created(session: AsyncSession, event: WorkspaceCreated, e: RawEnvelope) -> None:
            await self.apply(session, e)

        @consumer.on(WorkspaceUpdated)
        async def updated(session: AsyncSession, event: WorkspaceUpdated, e: RawEnvelope) -> None:
            await self.apply(session, e)

        @consumer.on(SeatsUsageChanged)
        async def seats(session: AsyncSession, event: SeatsUsageChanged, e: RawEnvelope) -> None:
            opened = await session.scalar(
                select(func.count())
                .select_from(self.effects)
                .where(
                    self.effects.c.event_type == WorkspaceCreated.event_type,
                    self.effects.c.root_id == event.root_id,
                )
            )
            if not opened:
                msg = f"seats of {event.root_id} before its account"
                raise EventNotYetApplicableError(msg)
            await self.apply(session, e)

    async def apply(self, session: AsyncSession, envelope: RawEnvelope) -> None:
        self.attempts[envelope.event_id].append(datetime.now(UTC))
        if self.slow:
            await asyncio.sleep(self.slow)
        if envelope.event_id in self.failing:
            msg = "the handler has a bug"
            raise RuntimeError(msg)
        await session.execute(
            insert(self.effects).values(
                event_id=envelope.event_id, event_type=envelope.type, root_id=envelope.root_id
            )
        )


class Watching(EventConsumer):
    """Consumes only the accounts of its test (a topic holds the whole session's
    events), and notes every event it was handed."""

    def __init__(
        self,
        service: MiniService,
        *,
        roots: set[uuid.UUID] | None = None,
        policy: RetryPolicy = FAST,
    ) -> None:
        super().__init__(service=f"test-{uuid.uuid4().hex[:8]}", inbox=service.inbox, policy=policy)
        self.roots = roots
        self.delivered: list[uuid.UUID] = []
        self.handlers = Handlers(service.effects)
        self.handlers.register(self)

    async def consume_batch(self, deliveries: Sequence[Delivery]) -> None:
        mine = [d for d in deliveries if self.roots is None or d.envelope.root_id in self.roots]
        self.delivered += [delivery.envelope.event_id for delivery in mine]
        if mine:
            await super().consume_batch(mine)


@contextlib.asynccontextmanager
async def running(
    consumer: EventConsumer, settings: Settings | None = None, *, retry_every: float = 0.02
) -> AsyncIterator[None]:
    """The consumer at work as in a service: its retries running and, given `settings`,
    its subscriptions to Kafka."""
    broker = None
    if settings is not None:
        broker = kafka_broker(settings.kafka_admin(), client_id="atrium-tests")
        consumer.subscribe(broker)
        await broker.start()

    async def retry_forever() -> None:
        while True:
            await consumer.retry_parked()
            await asyncio.sleep(retry_every)

    retries = asyncio.create_task(retry_forever())
    try:
        yield
    finally:
        retries.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retries
        if broker is not None:
            await broker.stop()


async def publish(
    settings: Settings, envelopes: Sequence[RawEnvelope | bytes], *, partition: int | None = None
) -> dict[uuid.UUID, datetime]:
    """Send each to its payload's topic (raw bytes to the workspace topic) under its
    account's key; returns when each was sent."""
    producer = AIOKafkaProducer(
        **settings.kafka_admin().client_options(), acks="all", enable_idempotence=True
    )
    sent: dict[uuid.UUID, datetime] = {}
    await producer.start()
    try:
        for envelope in envelopes:
            if isinstance(envelope, bytes):
                topic, key, value = WorkspaceCreated.topic.value, b"raw", envelope
            else:
                topic = topic_of(envelope)
                key, value = str(envelope.root_id).encode(), envelope.model_dump_json().encode()
                sent[envelope.event_id] = datetime.now(UTC)
            await producer.send_and_wait(
                topic,
                value,
                key=key,
                partition=partition,
                headers=[("content-type", b"application/json")],
            )
    finally:
        await producer.stop()
    return sent


def topic_of(envelope: RawEnvelope) -> str:
    return {
        WorkspaceCreated.event_type: WorkspaceCreated.topic,
        WorkspaceUpdated.event_type: WorkspaceUpdated.topic,
        SeatsUsageChanged.event_type: SeatsUsageChanged.topic,
    }.get(envelope.type, WorkspaceCreated.topic).value


def delivered(payload: EventPayload, root_id: uuid.UUID) -> RawEnvelope:
    return as_delivered(payload, root_id=root_id)


def created(root_id: uuid.UUID | None = None) -> RawEnvelope:
    payload = root_created(root_id)
    return as_delivered(payload, root_id=payload.root_id, workspace_id=payload.id)


def renamed(root_id: uuid.UUID, name: str) -> RawEnvelope:
    return delivered(
        WorkspaceUpdated(id=root_id, root_id=root_id, name=name, image_url=None), root_id
    )


def seats(root_id: uuid.UUID, used: int = 2) -> RawEnvelope:
    return delivered(
        SeatsUsageChanged(billing_root_id=root_id, root_id=root_id, used=used, pending=0), root_id
    )


def with_version(envelope: RawEnvelope, version: int) -> RawEnvelope:
    """The same event as a producer with newer contracts would send it."""
    return envelope.model_copy(update={"version": version})
