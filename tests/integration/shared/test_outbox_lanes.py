"""The outbox in lanes: relays share the work, every key's events still arrive in commit
order, a notification wakes only its key's lane, and a command that stages its events
after the lock that serializes it is what makes outbox order commit order.

Each test has an outbox of its own (a throwaway schema, with the DDL the services'
migrations run) and a topic of its own, so no other test's events or relays interfere.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import BigInteger, Column, Table, Text, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from infra.local_kafka import ensure_topics
from shared.db import Database, service_metadata
from shared.outbox import (
    OutboxRelay,
    add_outbox_lanes_sql,
    create_lane_notify_trigger_sql,
    outbox_table,
    remove_outbox_lanes_sql,
)
from shared.settings import KafkaConnection, Settings
from shared.testing import eventually

pytestmark = pytest.mark.integration

LANES = 4


@dataclass(frozen=True)
class Delivery:
    key: str
    event_id: uuid.UUID
    sequence: int


@dataclass(frozen=True)
class ScratchOutbox:
    """An outbox table as a service has one, rows its commands serialize on (`key_locks`),
    and a topic."""

    database: Database
    outbox: Table
    topic: str

    async def lock_key(self, session: AsyncSession, key: str, events: int = 1) -> int:
        """Take the lock that serializes commands on a key (as a workspace's or an account's
        row does in a service) and count `events` more events of the key; returns the
        sequence number of the first."""
        first: int = await session.scalar(
            text(
                "INSERT INTO key_locks (message_key, last) VALUES (:key, :events) "
                "ON CONFLICT (message_key) DO UPDATE SET last = key_locks.last + :events "
                "RETURNING last - :events + 1"
            ),
            {"key": key, "events": events},
        )
        return first

    async def stage(self, session: AsyncSession, key: str, sequences: range) -> list[uuid.UUID]:
        """What `Outbox.stage` does, for several events of one key, onto this topic."""
        event_ids = [uuid.uuid4() for _ in sequences]
        await session.execute(
            self.outbox.insert(),
            [
                {
                    "event_id": event_id,
                    "topic": self.topic,
                    "message_key": key,
                    "event_type": "test.sequenced",
                    "envelope": json.dumps(
                        {"event_id": str(event_id), "key": key, "sequence": sequence}
                    ),
                }
                for event_id, sequence in zip(event_ids, sequences, strict=True)
            ],
        )
        return event_ids

    async def command(self, key: str, events: int) -> None:
        """One change on a key, as a service makes it: the key's lock first, then its
        events."""
        async with self.database.transaction() as session:
            first = await self.lock_key(session, key, events)
            await self.stage(session, key, range(first, first + events))

    async def unpublished(self) -> int:
        async with self.database.transaction() as session:
            count = await session.scalar(
                select(func.count()).where(self.outbox.c.published_at.is_(None))
            )
        return count or 0

    def relay(
        self, settings: Settings, *, lanes: int = LANES, poll_seconds: float = 0.5
    ) -> CountingRelay:
        """A relay as another replica of the service runs one: with its own connections."""
        return CountingRelay(
            Database(self.database.url, schema=self.database.schema),
            self.outbox,
            kafka=settings.kafka_admin(),
            lanes=lanes,
            poll_seconds=poll_seconds,
        )


class CountingRelay(OutboxRelay):
    """A relay that counts, per lane, the rounds it ran and the events it published."""

    def __init__(
        self,
        database: Database,
        table: Table,
        *,
        kafka: KafkaConnection,
        lanes: int,
        poll_seconds: float,
    ) -> None:
        super().__init__(
            database,
            table,
            kafka=kafka,
            lanes=lanes,
            poll_seconds=poll_seconds,
        )
        self.rounds: Counter[int] = Counter()
        self.published: Counter[int] = Counter()

    async def publish_lane(self, lane: int) -> int:
        self.rounds[lane] += 1
        published = await super().publish_lane(lane)
        self.published[lane] += published
        return published

    async def stop(self) -> None:
        await super().stop()
        await self.database.dispose()


@pytest.fixture
async def scratch(settings: Settings, admin_engine: AsyncEngine) -> AsyncIterator[ScratchOutbox]:
    schema = f"outbox_lanes_{uuid.uuid4().hex[:8]}"
    metadata = service_metadata(schema)
    outbox = outbox_table(metadata)
    Table(
        "key_locks",
        metadata,
        Column("message_key", Text, primary_key=True),
        Column("last", BigInteger, nullable=False),
    )
    async with admin_engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.run_sync(metadata.create_all)
        for statement in create_lane_notify_trigger_sql(schema):
            await connection.execute(text(statement))
    topic = f"atrium.test.{schema}"
    await ensure_topics(
        settings.kafka_admin(),
        [topic],
        partitions=settings.kafka_topic_partitions,
        replication_factor=1,
    )
    database = Database(settings.database_url, schema=schema)
    yield ScratchOutbox(database=database, outbox=outbox, topic=topic)
    await database.dispose()
    async with admin_engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


class TopicReader:
    """Everything published on one topic, in the order each partition holds it."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            **settings.kafka_admin().client_options(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.deliveries: list[Delivery] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read_until(self, count: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while len(self.deliveries) < count:
                await self._read(timeout_ms=500)

    async def read_until_quiet(self, quiet_seconds: float = 1.0) -> None:
        """Whatever else arrives (a repeat would) until nothing has for a while."""
        while await self._read(timeout_ms=int(quiet_seconds * 1000)):
            pass

    async def _read(self, timeout_ms: int) -> int:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                message = json.loads(record.value)
                self.deliveries.append(
                    Delivery(
                        key=message["key"],
                        event_id=uuid.UUID(message["event_id"]),
                        sequence=message["sequence"],
                    )
                )
        return sum(len(records) for records in batch.values())

    def sequences_by_key(self) -> dict[str, list[int]]:
        """Each key's sequence numbers in the order they first arrived."""
        seen: set[uuid.UUID] = set()
        by_key: dict[str, list[int]] = defaultdict(list)
        for delivery in self.deliveries:
            if delivery.event_id not in seen:
                seen.add(delivery.event_id)
                by_key[delivery.key].append(delivery.sequence)
        return by_key


async def write(
    scratch: ScratchOutbox, keys: list[str], *, commands: int, events: int, seed: int
) -> None:
    chooser = random.Random(seed)
    for _ in range(commands):
        await scratch.command(chooser.choice(keys), events)


async def test_two_relays_in_lanes_publish_ten_thousand_events_in_commit_order_per_key(
    settings: Settings, scratch: ScratchOutbox
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(100)]
    writers, commands, events = 10, 100, 10
    total = writers * commands * events
    relays = [scratch.relay(settings, lanes=LANES, poll_seconds=0.5) for _ in range(2)]
    async with TopicReader(settings, scratch.topic) as reader:
        for relay in relays:
            await relay.start()
        try:
            await asyncio.gather(
                *(
                    write(scratch, keys, commands=commands, events=events, seed=seed)
                    for seed in range(writers)
                )
            )
            await reader.read_until(total, timeout=60)
            await eventually(lambda: _none_left(scratch), what="every row marked published")
            await reader.read_until_quiet()
        finally:
            for relay in relays:
                await relay.stop()

    deliveries_per_event = Counter(delivery.event_id for delivery in reader.deliveries)
    assert len(deliveries_per_event) == total
    assert set(deliveries_per_event.values()) == {1}
    for key, sequences in reader.sequences_by_key().items():
        assert sequences == list(range(1, len(sequences) + 1)), key
    published_by = [relay.published.total() for relay in relays]
    assert sum(published_by) == total
    assert all(published >= total // 10 for published in published_by), published_by
    for lane in range(LANES):
        assert sum(relay.published[lane] for relay in relays) > 0, lane


async def _none_left(scratch: ScratchOutbox) -> bool | None:
    return True if await scratch.unpublished() == 0 else None


async def test_relays_that_disagree_on_the_number_of_lanes_keep_every_key_in_order(
    settings: Settings, scratch: ScratchOutbox
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(20)]
    writers, commands, events = 4, 50, 10
    total = writers * commands * events
    relays = [scratch.relay(settings, lanes=lanes) for lanes in (3, 4)]
    async with TopicReader(settings, scratch.topic) as reader:
        for relay in relays:
            await relay.start()
        try:
            await asyncio.gather(
                *(
                    write(scratch, keys, commands=commands, events=events, seed=seed)
                    for seed in range(writers)
                )
            )
            await reader.read_until(total)
        finally:
            for relay in relays:
                await relay.stop()

    assert len({delivery.event_id for delivery in reader.deliveries}) == total
    for key, sequences in reader.sequences_by_key().items():
        assert sequences == list(range(1, len(sequences) + 1)), key
    assert all(relay.published.total() > 0 for relay in relays)


async def test_a_notification_wakes_only_the_lane_of_its_key(
    settings: Settings, scratch: ScratchOutbox
) -> None:
    # Polling once a minute: within this test only a notification can wake a lane.
    relay = scratch.relay(settings, poll_seconds=60)
    await relay.start()
    try:
        await eventually(
            lambda: _true_if(all(relay.rounds[lane] >= 1 for lane in range(LANES))),
            what="every lane's first look",
        )
        await asyncio.sleep(0.2)
        rounds_before = Counter(relay.rounds)

        async with scratch.database.transaction() as session:
            [event_id] = await scratch.stage(session, str(uuid.uuid4()), range(1, 2))
            key_hash = await session.scalar(
                select(scratch.outbox.c.key_hash).where(scratch.outbox.c.event_id == event_id)
            )
        await eventually(lambda: _published(scratch, event_id), timeout=5, what="publication")
        await asyncio.sleep(0.2)
    finally:
        await relay.stop()

    assert key_hash is not None
    woken = {lane: relay.rounds[lane] - rounds_before[lane] for lane in range(LANES)}
    assert woken == {lane: int(lane == key_hash % LANES) for lane in range(LANES)}


class Change:
    """A command on a key that the test pauses where it wants: it stages its event before
    or after taking the key's lock."""

    def __init__(self, scratch: ScratchOutbox, key: str, *, stages_before_lock: bool) -> None:
        self.scratch = scratch
        self.key = key
        self.stages_before_lock = stages_before_lock
        self.at_lock = asyncio.Event()
        self.may_lock = asyncio.Event()
        self.holds_lock = asyncio.Event()
        self.may_commit = asyncio.Event()
        self.backend_pid = 0
        self.turn = 0
        self.event_ids: list[uuid.UUID] = []

    async def run(self) -> None:
        async with self.scratch.database.transaction() as session:
            self.backend_pid = await session.scalar(select(func.pg_backend_pid())) or 0
            if self.stages_before_lock:
                self.event_ids = await self.scratch.stage(session, self.key, range(1))
            self.at_lock.set()
            await self.may_lock.wait()
            # Drawn under the key's lock, which is held until commit: the order of the
            # draws is the order of the commits.
            self.turn = await self.scratch.lock_key(session, self.key)
            if not self.stages_before_lock:
                self.event_ids = await self.scratch.stage(session, self.key, range(1))
            self.holds_lock.set()
            await self.may_commit.wait()


async def overtaken_at_the_lock(
    scratch: ScratchOutbox, admin_engine: AsyncEngine, *, stages_before_lock: bool
) -> list[uuid.UUID]:
    """Two changes of one key: the first starts first, the second overtakes it at the
    key's lock and commits while the first waits for that lock. Returns the commit order."""
    key = str(uuid.uuid4())
    first, second = (Change(scratch, key, stages_before_lock=stages_before_lock) for _ in range(2))
    second.may_lock.set()
    first_run = asyncio.create_task(first.run())
    await first.at_lock.wait()
    second_run = asyncio.create_task(second.run())
    await second.holds_lock.wait()
    first.may_lock.set()
    first.may_commit.set()
    await eventually(
        lambda: _waiting_for_a_lock(admin_engine, first.backend_pid),
        what="the first change to wait for the key's lock",
    )
    second.may_commit.set()
    await asyncio.gather(first_run, second_run)
    in_commit_order = sorted((first, second), key=lambda change: change.turn)
    return [event_id for change in in_commit_order for event_id in change.event_ids]


async def published_order(settings: Settings, scratch: ScratchOutbox) -> list[uuid.UUID]:
    relay = scratch.relay(settings)
    try:
        while await relay.publish_pending():
            pass
    finally:
        await relay.stop()
    async with TopicReader(settings, scratch.topic) as reader:
        await reader.read_until(2)
    return [delivery.event_id for delivery in reader.deliveries]


async def test_changes_that_stage_after_the_key_lock_are_published_in_commit_order(
    settings: Settings, scratch: ScratchOutbox, admin_engine: AsyncEngine
) -> None:
    commit_order = await overtaken_at_the_lock(scratch, admin_engine, stages_before_lock=False)

    assert await published_order(settings, scratch) == commit_order


async def test_changes_that_stage_before_the_key_lock_can_be_published_against_commit_order(
    settings: Settings, scratch: ScratchOutbox, admin_engine: AsyncEngine
) -> None:
    """Why the rule: the first change drew the smaller outbox id but committed second."""
    commit_order = await overtaken_at_the_lock(scratch, admin_engine, stages_before_lock=True)

    assert await published_order(settings, scratch) == commit_order[::-1]


async def test_events_waiting_at_the_upgrade_to_lanes_are_all_published_in_order(
    settings: Settings, scratch: ScratchOutbox, admin_engine: AsyncEngine
) -> None:
    schema = scratch.database.schema
    async with admin_engine.begin() as connection:
        for statement in remove_outbox_lanes_sql(schema):
            await connection.execute(text(statement))
    keys = [str(uuid.uuid4()) for _ in range(10)]
    await write(scratch, keys, commands=20, events=3, seed=0)
    async with admin_engine.begin() as connection:
        for statement in add_outbox_lanes_sql(schema):
            await connection.execute(text(statement))

    relay = scratch.relay(settings)
    try:
        while await relay.publish_pending():
            pass
    finally:
        await relay.stop()
    async with TopicReader(settings, scratch.topic) as reader:
        await reader.read_until(60)

    assert relay.published.total() == 60
    assert sum(map(len, reader.sequences_by_key().values())) == 60
    for key, sequences in reader.sequences_by_key().items():
        assert sequences == list(range(1, len(sequences) + 1)), key
    lanes_that_published = {lane for lane, published in relay.published.items() if published}
    assert len(lanes_that_published) > 1, "the waiting events went to their keys' lanes"


async def _true_if(condition: bool) -> bool | None:
    return True if condition else None


async def _published(scratch: ScratchOutbox, event_id: uuid.UUID) -> bool | None:
    async with scratch.database.transaction() as session:
        published_at = await session.scalar(
            select(scratch.outbox.c.published_at).where(scratch.outbox.c.event_id == event_id)
        )
    return True if published_at is not None else None


async def _waiting_for_a_lock(admin_engine: AsyncEngine, pid: int) -> bool | None:
    async with admin_engine.connect() as connection:
        waiting = await connection.scalar(
            text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": pid},
        )
    return True if waiting else None
