"""The inbox: effectively-once effects on top of at-least-once delivery.

A consumed event's effect and the record of its `event_id` commit in one
transaction. A redelivered event finds its id already recorded and has no
second effect; two replicas racing on one event serialise on the id's unique
index, and the loser sees it recorded.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventPayload, RawEnvelope
from contracts.events import payload_class
from contracts.topics import Topic
from shared.db import Database
from shared.logging import correlation

logger = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT", bound=EventPayload)
EventHandler = Callable[[AsyncSession, Any, RawEnvelope], Awaitable[None]]

REDELIVERY_DELAY_SECONDS = 1.0
BATCH_SIZE = 100


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column(
            "rejection",
            Text,
            nullable=True,
            comment="Why an event that breaks its contract was set aside instead of applied.",
        ),
    )


class Inbox:
    def __init__(self, database: Database, table: Table) -> None:
        self.database = database
        self.table = table

    async def reject(self, envelope: RawEnvelope, reason: str) -> None:
        """Set aside an event that can never be applied (its payload breaks the contract),
        so that it neither blocks its partition nor vanishes."""
        async with self.database.transaction() as session:
            await session.execute(
                insert(self.table)
                .values(event_id=envelope.event_id, event_type=envelope.type, rejection=reason)
                .on_conflict_do_nothing(index_elements=[self.table.c.event_id]),
            )

    async def reject_unreadable(self, synthetic_id: uuid.UUID, position: str) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                insert(self.table)
                .values(event_id=synthetic_id, event_type="unreadable", rejection=position)
                .on_conflict_do_nothing(index_elements=[self.table.c.event_id]),
            )

    async def process(
        self,
        envelope: RawEnvelope,
        effect: Callable[[AsyncSession], Awaitable[None]],
    ) -> bool:
        """Apply `effect` once for this event; False when it had already been applied."""
        async with self.database.transaction() as session:
            recorded = await session.execute(
                insert(self.table)
                .values(event_id=envelope.event_id, event_type=envelope.type)
                .on_conflict_do_nothing(index_elements=[self.table.c.event_id])
                .returning(self.table.c.event_id),
            )
            if recorded.first() is None:
                return False
            await effect(session)
        return True


class EventConsumer:
    """A service's event handlers, subscribed in one consumer group per service.

    Offsets are committed only after the handler's transaction commits; a failure
    rewinds to the failed message, which is retried after a short pause.
    """

    def __init__(self, *, service: str, inbox: Inbox) -> None:
        self.group_id = f"atrium.{service}"
        self.inbox = inbox
        self._handlers: dict[type[EventPayload], EventHandler] = {}

    def on(
        self, payload: type[PayloadT]
    ) -> Callable[
        [Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]]],
        Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]],
    ]:
        def register(
            handler: Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]],
        ) -> Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]]:
            self._handlers[payload] = handler
            return handler

        return register

    @property
    def topics(self) -> list[Topic]:
        return sorted({payload.topic for payload in self._handlers})

    async def consume(self, envelope: RawEnvelope) -> None:
        model = payload_class(envelope.type, envelope.version)
        handler = self._handlers.get(model) if model is not None else None
        if model is None or handler is None:
            return
        with correlation(envelope.correlation_id):
            try:
                payload = model.model_validate(envelope.data)
            except ValidationError as invalid:
                logger.error("rejected %s %s: %s", envelope.type, envelope.event_id, invalid)
                await self.inbox.reject(envelope, str(invalid))
                return
            try:
                await self.inbox.process(
                    envelope, lambda session: handler(session, payload, envelope)
                )
            except Exception:
                logger.exception(
                    "handling %s %s failed; it will be redelivered",
                    envelope.type,
                    envelope.event_id,
                )
                await asyncio.sleep(REDELIVERY_DELAY_SECONDS)
                raise

    async def consume_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one Kafka record. A record that is not even an envelope is set aside
        under an id derived from its position, so that it is logged once and skipped."""
        try:
            envelope = RawEnvelope.model_validate_json(record.value or b"")
        except ValidationError as unreadable:
            position = f"kafka:{record.topic}/{record.partition}/{record.offset}"
            logger.error("set aside unreadable message at %s: %s", position, unreadable)
            await self.inbox.reject_unreadable(uuid.uuid5(uuid.NAMESPACE_URL, position), position)
            return
        await self.consume(envelope)

    def subscribe(self, broker: KafkaBroker) -> None:
        """One batch subscriber per topic: the records of a batch are applied in order,
        each in its own transaction, and the offsets committed once after the batch. A
        failure rewinds every partition of the batch to its first record; what was
        already applied is recognised by the inbox."""
        for topic in self.topics:

            async def consume_batch(_: list[bytes], message: KafkaMessage) -> None:
                for record in message.raw_message:
                    await self.consume_record(record)

            broker.subscriber(
                topic.value,
                group_id=self.group_id,
                batch=True,
                max_records=BATCH_SIZE,
                decoder=_undecoded,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                title=f"{self.group_id}:{topic.value}",
            )(consume_batch)


async def _undecoded(message: StreamMessage[Any]) -> Any:
    """Leave the bodies as bytes: each record is parsed, and judged, on its own."""
    return message.body
