"""Billing scales out: replicas in one consumer group share the stream, and a rebalance
in the middle of it loses no event and applies none twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import RawEnvelope
from contracts.events.identity import BillingMode, WorkspaceCreated
from contracts.topics import Topic
from services.billing.app import create_app
from shared.inbox import Delivery
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.testing import eventually
from tests.integration.billing.conftest import billing_settings, envelope_of

pytestmark = pytest.mark.integration

EVENTS = 300


def workspace_created() -> RawEnvelope:
    root_id = uuid.uuid4()
    return envelope_of(
        WorkspaceCreated(
            id=root_id,
            parent_id=None,
            root_id=root_id,
            billing_root_id=root_id,
            depth=0,
            name="Replica",
            billing_mode=BillingMode.OWN,
            api_access=False,
            strict_quota=True,
        ),
        root_id=root_id,
    )


async def publish(producer: AIOKafkaProducer, envelopes: list[RawEnvelope]) -> None:
    deliveries = [
        await producer.send(
            Topic.IDENTITY_WORKSPACE.value,
            envelope.model_dump_json().encode(),
            key=str(envelope.root_id).encode(),
            headers=[("content-type", b"application/json")],
        )
        for envelope in envelopes
    ]
    await asyncio.gather(*deliveries)


def count_deliveries(runtime: ServiceRuntime) -> list[uuid.UUID]:
    """The events a replica was handed, in order."""
    delivered: list[uuid.UUID] = []
    consume_batch = runtime.consumer.consume_batch

    async def counting(deliveries: Sequence[Delivery]) -> None:
        delivered.extend(delivery.envelope.event_id for delivery in deliveries)
        await consume_batch(deliveries)

    runtime.consumer.consume_batch = counting  # type: ignore[method-assign]
    return delivered


async def applied(admin_engine: AsyncEngine, envelopes: list[RawEnvelope]) -> tuple[int, int, int]:
    """Accounts opened, inbox rows, plan transactions posted, for these events."""
    async with admin_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT"
                    " (SELECT count(*) FROM billing.accounts WHERE workspace_id = ANY(:w)),"
                    " (SELECT count(*) FROM billing.inbox"
                    "  WHERE event_id = ANY(:e) AND rejection IS NULL),"
                    " (SELECT count(*) FROM billing.transactions"
                    "  WHERE workspace_id = ANY(:w) AND kind = 'plan')"
                ),
                {
                    "w": [envelope.root_id for envelope in envelopes],
                    "e": [envelope.event_id for envelope in envelopes],
                },
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_two_replicas_with_a_rebalance_mid_stream_apply_every_event_exactly_once(
    settings: Settings, admin_engine: AsyncEngine
) -> None:
    replicas: list[FastAPI] = [create_app(billing_settings(settings)) for _ in range(2)]
    runtimes: list[ServiceRuntime] = [app.state.runtime for app in replicas]
    handled = [count_deliveries(runtime) for runtime in runtimes]
    envelopes = [workspace_created() for _ in range(EVENTS)]
    producer = AIOKafkaProducer(
        **settings.kafka_for(ServiceName.IDENTITY).client_options(),
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        for runtime in runtimes:
            await runtime.start()
        sent = 0

        async def both_replicas_busy() -> bool | None:
            nonlocal sent
            if sent < EVENTS // 2:
                await publish(producer, envelopes[sent : sent + 10])
                sent += 10
            return True if all(handled) and sent >= EVENTS // 5 else None

        await eventually(both_replicas_busy, timeout=60, what="both replicas consuming")
        await runtimes[0].stop()  # the group rebalances onto the survivor mid-stream
        await publish(producer, envelopes[sent:])
        await publish(producer, envelopes[:20])  # and some arrive twice

        async def all_applied() -> tuple[int, int, int] | None:
            counts = await applied(admin_engine, envelopes)
            return counts if counts[0] == EVENTS and counts[1] == EVENTS else None

        counts = await eventually(all_applied, timeout=90, what="every event")
    finally:
        await producer.stop()
        for runtime in runtimes:
            await runtime.stop()

    assert all(handled), "both replicas took part"
    assert counts == (EVENTS, EVENTS, EVENTS)
