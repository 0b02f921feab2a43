"""The inbox: an event's effect happens once, however often Kafka delivers it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.identity import WorkspaceCreated
from contracts.topics import Topic
from services.billing import models
from shared.db import Database
from shared.inbox import EventConsumer, Inbox
from shared.settings import ServiceName, Settings
from shared.testing import as_delivered, eventually, root_created

pytestmark = pytest.mark.integration


@pytest.fixture
async def billing_database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    yield database
    await database.dispose()


def workspace_created_envelope() -> RawEnvelope:
    payload = root_created()
    return as_delivered(payload, root_id=payload.root_id, workspace_id=payload.id)


class RecordingConsumer:
    """An EventConsumer whose WorkspaceCreated handler records each time it ran, and
    which counts every delivery it was handed. It reads the topic from the beginning,
    so it passes over every account but the one under test (before the inbox sees
    them: the inbox table is billing's)."""

    def __init__(self, database: Database, root_id: uuid.UUID, *, fail_first: int = 0) -> None:
        self.inbox = Inbox(database, models.inbox)
        self.consumer = EventConsumer(service=f"test-{uuid.uuid4().hex[:8]}", inbox=self.inbox)
        self.effects: list[uuid.UUID] = []
        self.deliveries: list[uuid.UUID] = []
        self.failures_left = fail_first

        @self.consumer.on(WorkspaceCreated)
        async def record(_: AsyncSession, event: WorkspaceCreated, __: RawEnvelope) -> None:
            if self.failures_left:
                self.failures_left -= 1
                msg = "the database hiccuped"
                raise ConnectionError(msg)
            self.effects.append(event.id)

        original = self.consumer.consume

        async def counting(envelope: RawEnvelope) -> None:
            if envelope.root_id != root_id:
                return
            self.deliveries.append(envelope.event_id)
            await original(envelope)

        self.consumer.consume = counting  # type: ignore[method-assign]


async def publish_raw(settings: Settings, *payloads: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for payload in payloads:
            await producer.send_and_wait(
                Topic.IDENTITY_WORKSPACE.value,
                payload,
                key=key,
                headers=[("content-type", b"application/json")],
            )
    finally:
        await producer.stop()


async def inbox_row(database: Database, event_id: uuid.UUID) -> dict[str, object] | None:
    async with database.transaction() as session:
        row = (
            (await session.execute(select(models.inbox).where(models.inbox.c.event_id == event_id)))
            .mappings()
            .one_or_none()
        )
    return None if row is None else dict(row)


async def run_consumer(settings: Settings, recording: RecordingConsumer) -> KafkaBroker:
    broker = KafkaBroker(settings.kafka_bootstrap_servers)
    recording.consumer.subscribe(broker)
    await broker.start()
    return broker


async def test_the_same_event_delivered_twice_through_kafka_has_one_effect(
    settings: Settings, billing_database: Database
) -> None:
    envelope = workspace_created_envelope()
    recording = RecordingConsumer(billing_database, envelope.root_id)
    message = envelope.model_dump_json().encode()
    broker = await run_consumer(settings, recording)
    try:
        await publish_raw(settings, message, message, key=str(envelope.root_id).encode())

        async def both_delivered() -> bool | None:
            return True if recording.deliveries.count(envelope.event_id) == 2 else None

        await eventually(both_delivered, timeout=30, what="both deliveries")
    finally:
        await broker.stop()

    assert recording.effects == [uuid.UUID(envelope.data["id"])]
    assert await inbox_row(billing_database, envelope.event_id) is not None


async def test_two_consumers_racing_on_one_event_apply_it_once(
    billing_database: Database,
) -> None:
    inbox = Inbox(billing_database, models.inbox)
    envelope = workspace_created_envelope()
    effects = []

    async def slow_effect(_: AsyncSession) -> None:
        await asyncio.sleep(0.2)
        effects.append(envelope.event_id)

    applied = await asyncio.gather(*(inbox.process(envelope, slow_effect) for _ in range(5)))

    assert sorted(applied) == [False, False, False, False, True]
    assert effects == [envelope.event_id]


async def test_an_effect_that_fails_is_retried_and_applied_once(
    settings: Settings, billing_database: Database
) -> None:
    envelope = workspace_created_envelope()
    recording = RecordingConsumer(billing_database, envelope.root_id, fail_first=1)
    broker = await run_consumer(settings, recording)
    try:
        await publish_raw(
            settings, envelope.model_dump_json().encode(), key=str(envelope.root_id).encode()
        )

        async def applied() -> bool | None:
            return True if recording.effects else None

        await eventually(applied, timeout=30, what="the retried effect")
    finally:
        await broker.stop()

    assert recording.deliveries.count(envelope.event_id) == 2
    assert len(recording.effects) == 1


async def test_messages_that_break_the_contract_are_set_aside_and_do_not_block_the_next(
    settings: Settings, billing_database: Database
) -> None:
    good = workspace_created_envelope()
    recording = RecordingConsumer(billing_database, good.root_id)
    broken = json.loads(good.model_dump_json())
    broken["event_id"] = str(uuid.uuid4())
    del broken["data"]["name"]
    broker = await run_consumer(settings, recording)
    try:
        await publish_raw(
            settings,
            b"\x00 this is not an envelope",
            json.dumps(broken).encode(),
            good.model_dump_json().encode(),
            key=str(good.root_id).encode(),
        )

        async def good_applied() -> bool | None:
            return True if recording.effects else None

        await eventually(good_applied, timeout=30, what="the valid event after the broken one")
    finally:
        await broker.stop()

    set_aside = await inbox_row(billing_database, uuid.UUID(broken["event_id"]))
    assert set_aside is not None
    assert "name" in str(set_aside["rejection"])
    assert len(recording.effects) == 1
    async with billing_database.transaction() as session:
        unreadable = await session.scalar(
            select(func.count())
            .select_from(models.inbox)
            .where(models.inbox.c.event_type == "unreadable")
        )
    assert unreadable is not None
    assert unreadable >= 1
