"""The inbox: an event's effect happens once, however often Kafka delivers it, and a
batch of events is applied together unless one of them fails."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import func, select

from shared.inbox import Delivery, InboxEntry, InboxOutcome, ParkedState
from shared.settings import Settings
from shared.testing import eventually
from tests.integration.shared.conftest import (
    MiniService,
    Watching,
    created,
    publish,
    running,
    topic_of,
)

pytestmark = pytest.mark.integration


async def test_the_same_event_delivered_twice_through_kafka_has_one_effect(
    settings: Settings, service: MiniService
) -> None:
    envelope = created()
    consumer = Watching(service, roots={envelope.root_id})
    async with running(consumer, settings):
        await publish(settings, [envelope, envelope])

        async def both_delivered() -> bool | None:
            return True if consumer.delivered.count(envelope.event_id) == 2 else None

        await eventually(both_delivered, timeout=30, what="both deliveries")

    assert await service.applied_ids() == [envelope.event_id]


async def test_replicas_racing_on_one_event_apply_it_once(service: MiniService) -> None:
    envelope = created()
    consumer = Watching(service)
    consumer.handlers.slow = 0.2

    await asyncio.gather(*(consumer.consume(envelope) for _ in range(5)))

    assert await service.applied_ids() == [envelope.event_id]
    assert await service.parked() == []


async def test_an_effect_that_fails_is_retried_and_applied_once_without_a_redelivery(
    settings: Settings, service: MiniService
) -> None:
    envelope = created()
    consumer = Watching(service, roots={envelope.root_id})
    consumer.handlers.failing.add(envelope.event_id)
    async with running(consumer, settings):
        await publish(settings, [envelope])

        async def held() -> bool | None:
            return True if await service.parked() else None

        await eventually(held, timeout=30, what="the failed event to be held")
        consumer.handlers.failing.clear()

        async def applied() -> bool | None:
            return True if await service.applied_ids() else None

        await eventually(applied, timeout=30, what="the retried effect")

    assert await service.applied_ids() == [envelope.event_id]
    assert consumer.delivered == [envelope.event_id], "Kafka moved on; the retry was ours"
    assert await service.parked() == []


async def test_messages_that_break_the_contract_are_set_aside_and_do_not_block_the_next(
    settings: Settings, service: MiniService
) -> None:
    good = created()
    broken = json.loads(good.model_dump_json())
    broken["event_id"] = str(uuid.uuid4())
    del broken["data"]["name"]
    consumer = Watching(service, roots={good.root_id})
    async with running(consumer, settings):
        # One partition, so that the valid event is the next after the broken ones.
        await publish(
            settings,
            [b"\x00 this is not an envelope", json.dumps(broken).encode(), good],
            partition=0,
        )

        async def good_applied() -> bool | None:
            return True if await service.applied_ids() else None

        await eventually(good_applied, timeout=30, what="the valid event after the broken one")

    assert await service.applied_ids() == [good.event_id]
    async with service.database.transaction() as session:
        inbox = service.inbox.table
        set_aside = (
            await session.execute(
                select(inbox.c.outcome, inbox.c.rejection).where(
                    inbox.c.event_id == uuid.UUID(broken["event_id"])
                )
            )
        ).one()
        unreadable = await session.scalar(
            select(func.count()).select_from(inbox).where(inbox.c.event_type == "unreadable")
        )
    assert set_aside.outcome == InboxOutcome.REJECTED
    assert "name" in set_aside.rejection
    assert unreadable is not None
    assert unreadable >= 1


async def test_a_batch_with_one_failing_event_applies_the_others_once_and_holds_that_one(
    service: MiniService,
) -> None:
    envelopes = [created() for _ in range(6)]
    failing = envelopes[3]
    batch = [Delivery(topic_of(envelope), envelope) for envelope in envelopes]
    consumer = Watching(service)
    consumer.handlers.failing.add(failing.event_id)

    await consumer.consume_batch(batch)

    others = [envelope.event_id for envelope in envelopes if envelope is not failing]
    assert await service.applied_ids() == others
    (held,) = await service.parked()
    assert (held.event_id, held.state, held.attempts) == (
        failing.event_id,
        ParkedState.RETRYING,
        1,
    )
    assert "the handler has a bug" in (held.last_error or "")

    await consumer.consume_batch(batch)  # Kafka delivers the batch again

    assert await service.applied_ids() == others
    assert [event.event_id for event in await service.parked()] == [failing.event_id]


async def test_a_redelivered_batch_has_no_second_effect(service: MiniService) -> None:
    envelopes = [created() for _ in range(20)]
    batch = [Delivery(topic_of(envelope), envelope) for envelope in envelopes]
    consumer = Watching(service)

    await consumer.consume_batch(batch)
    await consumer.consume_batch(batch)
    await consumer.consume_batch(batch[5:] + batch[:5])

    assert await service.applied_ids() == [envelope.event_id for envelope in envelopes]
    assert sum(len(times) for times in consumer.handlers.attempts.values()) == 20


async def test_an_event_twice_in_one_batch_is_applied_once(service: MiniService) -> None:
    envelopes = [created() for _ in range(4)]
    twice = envelopes[1]
    batch = [Delivery(topic_of(envelope), envelope) for envelope in [*envelopes, twice]]
    consumer = Watching(service)

    await consumer.consume_batch(batch)

    assert await service.applied_ids() == [envelope.event_id for envelope in envelopes]
    assert len(consumer.handlers.attempts[twice.event_id]) == 1
    assert await service.parked() == []


async def test_recording_a_batch_with_an_event_twice_and_one_already_recorded_records_each_once(
    service: MiniService,
) -> None:
    earlier, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with service.database.transaction() as session:
        await service.inbox.record(session, [InboxEntry(earlier, "workspace.created")])

    async with service.database.transaction() as session:
        recorded = await service.inbox.record(
            session,
            [
                InboxEntry(first, "workspace.created"),
                InboxEntry(earlier, "workspace.created"),
                InboxEntry(second, "workspace.updated", InboxOutcome.REJECTED, "no name"),
                InboxEntry(first, "workspace.created"),
            ],
        )

    assert recorded == {first, second}
    inbox = service.inbox.table
    async with service.database.transaction() as session:
        rows = (
            await session.execute(
                select(inbox.c.event_id, inbox.c.event_type, inbox.c.outcome, inbox.c.rejection)
            )
        ).all()
    assert sorted(rows) == sorted(
        [
            (earlier, "workspace.created", InboxOutcome.APPLIED, None),
            (first, "workspace.created", InboxOutcome.APPLIED, None),
            (second, "workspace.updated", InboxOutcome.REJECTED, "no name"),
        ]
    )
