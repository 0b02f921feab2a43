"""The outbox relay: nothing committed is lost, nothing rolled back is published,
and every key's events arrive in the order they were committed."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from contracts.envelope import RawEnvelope
from contracts.topics import Topic
from infra.sandbox import Sandbox
from services.identity import models
from shared.db import Database
from shared.outbox import Outbox, OutboxRelay
from shared.settings import ServiceName, Settings
from shared.testing import root_created

pytestmark = pytest.mark.integration


@pytest.fixture
async def identity_database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url_for(ServiceName.IDENTITY), schema="identity")
    yield database
    await database.dispose()


async def stage(database: Database, outbox: Outbox, root_id: uuid.UUID, name: str) -> uuid.UUID:
    async with database.transaction() as session:
        envelope = await outbox.stage(
            session,
            root_created(root_id, name=name),
            root_id=root_id,
            workspace_id=root_id,
            actor="system",
        )
    return envelope.event_id


async def read_topic(
    settings: Settings, keys: set[str], expected: int, timeout: float = 60
) -> dict[str, list[RawEnvelope]]:
    """Every message of the given keys on the workspace topic, from the beginning, until
    `expected` distinct events have arrived."""
    consumer = AIOKafkaConsumer(
        Topic.IDENTITY_WORKSPACE.value,
        **settings.kafka_admin().client_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    by_key: dict[str, list[RawEnvelope]] = defaultdict(list)
    try:
        async with asyncio.timeout(timeout):
            while len({e.event_id for v in by_key.values() for e in v}) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        key = record.key.decode()
                        if key in keys:
                            by_key[key].append(RawEnvelope.model_validate_json(record.value))
    finally:
        await consumer.stop()
    return by_key


async def test_a_committed_event_is_published_and_marked(
    settings: Settings, identity_database: Database
) -> None:
    outbox = Outbox(models.outbox, producer="identity")
    root_id = uuid.uuid4()
    event_id = await stage(identity_database, outbox, root_id, "published")
    relay = OutboxRelay(
        identity_database, models.outbox, kafka=settings.kafka_for(ServiceName.IDENTITY)
    )
    try:
        while await relay.publish_pending():
            pass
    finally:
        await relay.stop()

    delivered = await read_topic(settings, {str(root_id)}, expected=1)
    [envelope] = delivered[str(root_id)]
    assert envelope.event_id == event_id
    assert envelope.type == "workspace.created"
    assert envelope.data["name"] == "published"
    async with identity_database.transaction() as session:
        published_at = await session.scalar(
            select(models.outbox.c.published_at).where(models.outbox.c.event_id == event_id)
        )
    assert published_at is not None


async def test_a_rolled_back_command_stages_nothing(identity_database: Database) -> None:
    outbox = Outbox(models.outbox, producer="identity")
    root_id = uuid.uuid4()

    class CommandFailedError(Exception):
        pass

    with pytest.raises(CommandFailedError):
        async with identity_database.transaction() as session:
            await outbox.stage(
                session,
                root_created(root_id, name="never"),
                root_id=root_id,
                workspace_id=root_id,
                actor="system",
            )
            raise CommandFailedError

    async with identity_database.transaction() as session:
        staged = await session.scalar(
            select(func.count()).where(models.outbox.c.message_key == str(root_id))
        )
    assert staged == 0


async def test_events_written_while_kafka_is_down_all_arrive_in_commit_order_per_key(
    atrium: Sandbox, settings: Settings, identity_database: Database
) -> None:
    outbox = Outbox(models.outbox, producer="identity")
    roots = [uuid.uuid4() for _ in range(3)]
    relay = OutboxRelay(
        identity_database,
        models.outbox,
        kafka=settings.kafka_for(ServiceName.IDENTITY),
        poll_seconds=0.2,
        batch_size=7,
    )
    await asyncio.to_thread(atrium.kafka.stop)
    try:
        await relay.start()
        committed: dict[str, list[uuid.UUID]] = defaultdict(list)
        for sequence in range(30):
            root_id = roots[sequence % len(roots)]
            event_id = await stage(identity_database, outbox, root_id, f"event {sequence}")
            committed[str(root_id)].append(event_id)
        await asyncio.sleep(1)  # the relay tries, and fails, while Kafka is away
    finally:
        await asyncio.to_thread(atrium.kafka.start)

    try:
        delivered = await read_topic(settings, set(committed), expected=30)
    finally:
        await relay.stop()

    for key, event_ids in committed.items():
        first_deliveries = list(dict.fromkeys(envelope.event_id for envelope in delivered[key]))
        assert first_deliveries == event_ids


async def published_flags(database: Database, root_id: uuid.UUID) -> list[bool]:
    """Whether each of the key's rows is marked published, in outbox order."""
    async with database.transaction() as session:
        marked = await session.scalars(
            select(models.outbox.c.published_at.is_not(None))
            .where(models.outbox.c.message_key == str(root_id))
            .order_by(models.outbox.c.id)
        )
    return list(marked)


async def test_a_published_batch_is_marked_whole_and_the_rows_after_it_wait_for_the_next(
    settings: Settings, identity_database: Database
) -> None:
    outbox = Outbox(models.outbox, producer="identity")
    relay = OutboxRelay(
        identity_database,
        models.outbox,
        kafka=settings.kafka_for(ServiceName.IDENTITY),
        lanes=1,
        batch_size=5,
    )
    root_id = uuid.uuid4()
    try:
        while await relay.publish_pending():  # what earlier tests left
            pass
        staged = [await stage(identity_database, outbox, root_id, f"e{n}") for n in range(12)]

        first = await relay.publish_lane(0)
        after_first = await published_flags(identity_database, root_id)
        rest = [await relay.publish_lane(0) for _ in range(3)]
    finally:
        await relay.stop()

    assert first == 5
    assert after_first == [True] * 5 + [False] * 7
    assert rest == [5, 2, 0]
    assert await published_flags(identity_database, root_id) == [True] * 12
    delivered = await read_topic(settings, {str(root_id)}, expected=12)
    assert list(dict.fromkeys(e.event_id for e in delivered[str(root_id)])) == staged


async def test_a_batch_larger_than_a_kafka_record_batch_arrives_whole_in_order_per_key(
    settings: Settings, identity_database: Database
) -> None:
    outbox = Outbox(models.outbox, producer="identity")
    roots = [uuid.uuid4() for _ in range(3)]
    committed: dict[str, list[uuid.UUID]] = defaultdict(list)
    async with identity_database.transaction() as session:
        # 500 events of a key take more than one record batch of its partition.
        for sequence in range(1_500):
            root_id = roots[sequence % len(roots)]
            envelope = await outbox.stage(
                session,
                root_created(root_id, name=f"event {sequence}"),
                root_id=root_id,
                workspace_id=root_id,
                actor="system",
            )
            committed[str(root_id)].append(envelope.event_id)
    relay = OutboxRelay(
        identity_database,
        models.outbox,
        kafka=settings.kafka_for(ServiceName.IDENTITY),
        lanes=1,
        batch_size=2_000,
    )
    try:
        while await relay.publish_pending():
            pass
    finally:
        await relay.stop()

    delivered = await read_topic(settings, set(committed), expected=1_500)
    for key, event_ids in committed.items():
        assert list(dict.fromkeys(envelope.event_id for envelope in delivered[key])) == event_ids
    for root_id in roots:
        assert await published_flags(identity_database, root_id) == [True] * 500
