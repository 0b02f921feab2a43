"""The transactional outbox.

A command stages its events through the same session as its state change, so
both commit or neither does. The relay, running in the service process, claims
unpublished rows in id order, publishes them with an idempotent `acks=all`
producer and marks them published in the same database transaction. If the
process dies between publishing and marking, the rows are published again on
restart; consumers drop the repeat through their inbox.

Only one relay of a service publishes at a time (a transaction-scoped advisory
lock): that keeps every key's events in commit order even when the service runs
as several replicas. The others stand by and take over at once when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope, EventPayload, new_envelope
from shared.db import Database, plain_url, tls_arguments
from shared.logging import correlation_id_var

logger = logging.getLogger(__name__)

RETENTION = timedelta(days=7)
CLEANUP_INTERVAL = timedelta(hours=1)


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
    """DDL that makes every insert into the outbox wake the relay at commit."""
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
            ),
        )
        return envelope


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        table: Table,
        *,
        bootstrap_servers: str,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.database = database
        self.table = table
        self.bootstrap_servers = bootstrap_servers
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock_name = f"atrium.outbox.{database.schema}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.database.schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()
        await self._discard_producer()

    async def ping(self) -> None:
        producer = await self._ensure_producer()
        await producer.client.fetch_all_metadata()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        producer = await self._ensure_producer()
        outbox = self.table
        async with self.database.transaction() as session:
            holds_lock = await session.scalar(
                select(func.pg_try_advisory_xact_lock(func.hashtext(self._lock_name))),
            )
            if not holds_lock:
                return 0
            rows = (
                await session.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.envelope)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True),
                )
            ).all()
            if not rows:
                return 0
            # send() only enqueues, in order; the idempotent producer keeps that order
            # per partition. Marking happens only once every send is acknowledged.
            deliveries = [
                await producer.send(
                    row.topic,
                    value=row.envelope.encode(),
                    key=row.message_key.encode(),
                    headers=[("content-type", b"application/json")],
                )
                for row in rows
            ]
            await asyncio.gather(*deliveries)
            await session.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now()),
            )
        return len(rows)

    async def delete_published_before(self, age: timedelta) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                self.table.delete().where(
                    self.table.c.published_at < func.now() - age,
                ),
            )

    async def _run(self) -> None:
        backoff = 0.1
        next_cleanup = time.monotonic()
        while True:
            try:
                await self._ensure_listener()
                # Cleared before looking, so that a notification arriving while a batch
                # is published wakes the next round instead of being lost.
                self._wake.clear()
                while await self.publish_pending() == self.batch_size:
                    pass
                backoff = 0.1
                if time.monotonic() >= next_cleanup:
                    await self.delete_published_before(RETENTION)
                    next_cleanup = time.monotonic() + CLEANUP_INTERVAL.total_seconds()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                await self._discard_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _discard_producer(self) -> None:
        """A producer that failed may hold a broken idempotence sequence: start afresh."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                linger_ms=2,
                request_timeout_ms=10_000,
                client_id=f"atrium-{self.database.schema}-relay",
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        await self._close_listener()
        url = self.database.url
        connection = await asyncpg.connect(plain_url(url), **tls_arguments(url))
        await connection.add_listener(notify_channel(self.database.schema), self._on_notify)
        self._listener = connection

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()
