"""The transactional outbox.

A command stages its events through the same session as its state change, so
both commit or neither does. The relay, running in the service process, claims
unpublished rows in id order, publishes them with an idempotent `acks=all`
producer and marks them published in the same database transaction. If the
process dies between publishing and marking, the rows are published again on
restart; consumers drop the repeat through their inbox.

The relay publishes in lanes. Every row carries a hash of its message key,
computed by PostgreSQL as the row is inserted, and its lane is that hash modulo
the number of lanes: a key always falls in the same lane. A lane is claimed for
one batch at a time with its own transaction-scoped advisory lock (per schema
and lane), so it has one publisher at a time, publishing in id order, and a
key's events keep their commit order (which is their id order, see
`Outbox.stage`). Each relay tries every lane and publishes those no other relay
holds: one relay alone publishes everything, several replicas share the lanes,
and the lanes of one process publish in parallel.

Every relay of a service should run the same number of lanes. A rolling restart
that changes it keeps each key's order all the same: rows are claimed with a
row lock that waits (not SKIP LOCKED), in id order, so two relays whose lanes
disagree on a key take turns on its rows instead of passing each other; they
only publish less in parallel until they agree.

Each inserted row notifies its key hash at commit (PostgreSQL sends one
notification per key and transaction), and the relay wakes that key's lane
only; a short poll covers a notification that was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope, EventPayload, new_envelope
from shared import metrics
from shared.db import Database, plain_url, tls_arguments
from shared.logging import correlation_id_var
from shared.record_batches import RecordBatches
from shared.settings import KafkaConnection
from shared.tracing import publishing, staged_context

logger = logging.getLogger(__name__)

RETENTION = timedelta(days=7)
CLEANUP_INTERVAL = timedelta(hours=1)

KEY_HASH_SQL = "hashtext(message_key) & 2147483647"
"""A row's key hash, never negative so that modulo the number of lanes is its lane."""


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("message_key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        # The envelope exactly as it is published, serialised once at commit time.
        Column("envelope", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        # Kafka headers the row is published with besides its content type (the trace
        # context of the request or event that staged it).
        Column("headers", JSONB, nullable=True),
        # Computed by PostgreSQL, so that every writer and every relay agree on a key's lane.
        Column("key_hash", Integer, Computed(KEY_HASH_SQL, persisted=True), nullable=False),
    )
    Index(
        "ix_outbox_unpublished",
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
    )
    return table


def notify_channel(schema: str) -> str:
    return f"atrium_outbox_{schema}"


def create_notify_trigger_sql(schema: str) -> list[str]:
    """The notification before lanes (revision 0001 of each service, and the way back
    from lanes): one per insert statement, waking every relay."""
    return [
        f"""
        CREATE FUNCTION "{schema}".notify_outbox() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{notify_channel(schema)}', '');
            RETURN NULL;
        END
        $$
        """,
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".notify_outbox()
        """,
    ]


def drop_notify_trigger_sql(schema: str) -> list[str]:
    return [
        f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox',
        f'DROP FUNCTION IF EXISTS "{schema}".notify_outbox()',
    ]


def create_lane_notify_trigger_sql(schema: str) -> list[str]:
    """DDL that makes every inserted row notify its key hash at commit, so that a relay
    wakes only the lane concerned."""
    return [
        f"""
        CREATE FUNCTION "{schema}".notify_outbox() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{notify_channel(schema)}', NEW.key_hash::text);
            RETURN NULL;
        END
        $$
        """,
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH ROW EXECUTE FUNCTION "{schema}".notify_outbox()
        """,
    ]


def add_outbox_lanes_sql(schema: str) -> list[str]:
    """DDL that takes an outbox from one relay at a time to lanes. Rows already there,
    published or not, get their key hash as the column is added, so the relays publish
    what was waiting at the upgrade in its lane."""
    return [
        f'ALTER TABLE "{schema}".outbox ADD COLUMN key_hash integer NOT NULL'
        f" GENERATED ALWAYS AS ({KEY_HASH_SQL}) STORED",
        *drop_notify_trigger_sql(schema),
        *create_lane_notify_trigger_sql(schema),
    ]


def remove_outbox_lanes_sql(schema: str) -> list[str]:
    return [
        *drop_notify_trigger_sql(schema),
        *create_notify_trigger_sql(schema),
        f'ALTER TABLE "{schema}".outbox DROP COLUMN key_hash',
    ]


class Outbox:
    """Stages events in the caller's transaction."""

    def __init__(self, table: Table, *, producer: str) -> None:
        self.table = table
        self.producer = producer

    async def stage(
        self,
        session: AsyncSession,
        payload: EventPayload,
        *,
        root_id: UUID,
        workspace_id: UUID | None,
        actor: str | None,
        causation_id: UUID | None = None,
    ) -> Envelope[EventPayload]:
        """Stage one event, keyed by `root_id`; it is published once the caller commits.

        Stage after taking the locks that serialize the change (the workspace's row,
        the seat pool's, the balances'...), never before. The relay publishes a key's
        events in outbox id order, and the id is drawn when the event is staged: under
        the lock, a command on the same key that commits earlier has staged earlier,
        so id order is commit order. Staged before the lock, a command can draw a
        smaller id than one that overtakes it at the lock and commits first, and both
        events then reach consumers in the opposite order of their changes.
        """
        envelope = new_envelope(
            payload,
            producer=self.producer,
            root_id=root_id,
            workspace_id=workspace_id,
            actor=actor,
            correlation_id=correlation_id_var.get(),
            causation_id=causation_id,
        )
        await session.execute(
            self.table.insert().values(
                event_id=envelope.event_id,
                topic=payload.topic.value,
                message_key=str(root_id),
                event_type=envelope.type,
                envelope=envelope.model_dump_json(),
                headers=staged_context(),
            ),
        )
        return envelope


class OutboxRelay:
    """Publishes a service's outbox in `lanes` lanes, each its own task (see the module's
    documentation); one more task keeps the LISTEN connection up and deletes old rows."""

    def __init__(
        self,
        database: Database,
        table: Table,
        *,
        kafka: KafkaConnection,
        lanes: int = 4,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        """`stop_grace_seconds`: how long stopping waits for the batches being published."""
        self.database = database
        self.table = table
        self.kafka = kafka
        self.lanes = lanes
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.stop_grace_seconds = stop_grace_seconds
        self._wakes = [asyncio.Event() for _ in range(lanes)]
        self._producer: AIOKafkaProducer | None = None
        self._producer_starting = asyncio.Lock()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lanes: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._lock_space = f"atrium.outbox.{database.schema}"
        # The whole batch in one statement with one array parameter, prepared once.
        self._mark_published = (
            update(table)
            .where(table.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
            .values(published_at=func.now())
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.database.schema}")

    async def stop(self) -> None:
        """Let each lane finish the batch it is publishing, for `stop_grace_seconds` at most
        (a batch cut short is published again, by whichever relay takes the lane next),
        then stop."""
        self._stopping.set()
        self._wake_every_lane()
        if self._lanes:
            _, publishing = await asyncio.wait(self._lanes, timeout=self.stop_grace_seconds)
            if publishing:
                logger.warning("outbox: %d lanes cut short by the stop", len(publishing))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()
        if self._producer is not None:
            await self._discard_producer(self._producer)

    async def ping(self) -> None:
        producer = await self._ensure_producer()
        await producer.client.fetch_all_metadata()

    async def publish_pending(self) -> int:
        """Publish one batch in every lane no other relay holds; returns how many events
        were published."""
        published = await asyncio.gather(*(self.publish_lane(lane) for lane in range(self.lanes)))
        return sum(published)

    async def publish_lane(self, lane: int) -> int:
        """Publish the lane's next batch, unless another relay is publishing the lane;
        returns how many events were published."""
        producer = await self._ensure_producer()
        outbox = self.table
        async with self.database.transaction() as session:
            holds_lane = await session.scalar(
                select(func.pg_try_advisory_xact_lock(func.hashtext(self._lock_space), lane)),
            )
            if not holds_lane:
                return 0
            rows = (
                await session.execute(
                    select(
                        outbox.c.id,
                        outbox.c.event_id,
                        outbox.c.topic,
                        outbox.c.message_key,
                        outbox.c.event_type,
                        outbox.c.envelope,
                        outbox.c.headers,
                    )
                    .where(
                        outbox.c.published_at.is_(None),
                        outbox.c.key_hash % self.lanes == lane,
                    )
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                    # Waits for a row another relay holds rather than skipping it: when
                    # two relays disagree on the number of lanes, this is what keeps them
                    # from publishing a key's later rows before its earlier ones.
                    .with_for_update(),
                )
            ).all()
            if not rows:
                return 0
            with metrics.RELAY_PUBLISH_SECONDS.labels(self.database.schema).time():
                await self._send(producer, rows)
            await session.execute(self._mark_published, {"ids": [row.id for row in rows]})
        metrics.count_published(self.database.schema, (row.topic for row in rows))
        return len(rows)

    async def delete_published_before(self, age: timedelta) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                self.table.delete().where(
                    self.table.c.published_at < func.now() - age,
                ),
            )

    async def _send(
        self,
        producer: AIOKafkaProducer,
        rows: Sequence[Row[int, UUID, str, str, str, str, dict[str, str] | None]],
    ) -> None:
        """Send the rows in order and return once Kafka acknowledged every one, each in
        its own span (`shared.tracing.publishing`), in batches built here
        (`shared.record_batches`)."""
        try:
            batches = RecordBatches(producer)
            with contextlib.ExitStack() as spans:
                for row in rows:
                    publication = spans.enter_context(
                        publishing(
                            topic=row.topic,
                            message_key=row.message_key,
                            event_id=row.event_id,
                            event_type=row.event_type,
                            row_headers=row.headers,
                        )
                    )
                    await batches.add(
                        row.topic,
                        key=row.message_key.encode(),
                        value=row.envelope.encode(),
                        headers=[("content-type", b"application/json"), *publication.headers],
                        on_handed_over=publication.follow,
                    )
                await batches.close()
            await asyncio.gather(*batches.deliveries)
        except Exception:
            await self._discard_producer(producer)
            raise

    async def _run(self) -> None:
        """Keeps the LISTEN connection up and deletes old rows. The lanes start once it
        first listens, so that no notification falls between a lane's first look and its
        first wait."""
        next_cleanup = time.monotonic()
        try:
            while True:
                try:
                    if await self._ensure_listener():
                        # Notifications sent while nobody listened are lost: look everywhere.
                        self._wake_every_lane()
                    if not self._lanes:
                        self._lanes = [
                            asyncio.create_task(
                                self._keep_publishing(lane),
                                name=f"outbox-lane-{self.database.schema}-{lane}",
                            )
                            for lane in range(self.lanes)
                        ]
                    if time.monotonic() >= next_cleanup:
                        await self.delete_published_before(RETENTION)
                        next_cleanup = time.monotonic() + CLEANUP_INTERVAL.total_seconds()
                except Exception:
                    logger.warning("outbox relay housekeeping failed; retrying", exc_info=True)
                await asyncio.sleep(self.poll_seconds)
        finally:
            for task in self._lanes:
                task.cancel()
            await asyncio.gather(*self._lanes, return_exceptions=True)

    async def _keep_publishing(self, lane: int) -> None:
        wake = self._wakes[lane]
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                # Cleared before looking, so that a notification arriving while a batch
                # is published wakes the next round instead of being lost.
                wake.clear()
                while (
                    await self.publish_lane(lane) == self.batch_size and not self._stopping.is_set()
                ):
                    pass
                backoff = 0.1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.poll_seconds)
            except Exception:
                logger.warning(
                    "outbox lane %d failed; retrying in %.1fs", lane, backoff, exc_info=True
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, 5.0)

    async def _discard_producer(self, failed: AIOKafkaProducer) -> None:
        """A producer that failed may hold a broken idempotence sequence: the lanes start
        afresh on a new one. Lanes that failed with the same producer discard it once."""
        if failed is self._producer:
            self._producer = None
            await _stop_quietly(failed)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._producer_starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.kafka.client_options(),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    # A lane hands over up to a batch of rows at once: records of a
                    # partition go in batches of up to this many bytes (a few hundred
                    # events, not aiokafka's default of about twenty), so a burst takes a
                    # few produce requests rather than hundreds. Below the broker's
                    # default limit of a record batch (1 MiB).
                    max_batch_size=PRODUCER_BATCH_BYTES,
                    request_timeout_ms=10_000,
                    client_id=f"atrium-{self.database.schema}-relay",
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def _ensure_listener(self) -> bool:
        """Connect the LISTEN connection if it is not; returns whether it just did."""
        if self._listener is not None and not self._listener.is_closed():
            return False
        await self._close_listener()
        url = self.database.url
        connection = await asyncpg.connect(plain_url(url), **tls_arguments(url))
        await connection.add_listener(notify_channel(self.database.schema), self._on_notify)
        self._listener = connection
        return True

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None

    def _on_notify(self, _connection: object, _pid: int, _channel: str, key_hash: str) -> None:
        self._wakes[int(key_hash) % self.lanes].set()

    def _wake_every_lane(self) -> None:
        for wake in self._wakes:
            wake.set()


PRODUCER_BATCH_BYTES = 256 * 1024

PRODUCER_STOP_SECONDS = 10.0
"""A producer's stop waits for what it still has in flight; a broker that never answers
must not hold a relay's shutdown (or a lane's recovery) forever. What was in flight is
still unmarked in the outbox and is published again."""


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout=PRODUCER_STOP_SECONDS)
