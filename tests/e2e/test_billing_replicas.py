"""billing as three processes on one address, in one consumer group, sharing the
outbox's lanes: one of them SIGKILLed while 3,000 accounts are being opened. The
other two take its partitions and its lanes over; no account is lost, none opened
twice, every event billing owes is published; and the two stop cleanly."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import new_envelope
from contracts.topics import Topic
from infra.processes import free_port
from infra.sandbox import Sandbox
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, eventually, producer_as, root_created

pytestmark = [pytest.mark.e2e, pytest.mark.own_system, pytest.mark.timeout(900)]

ACCOUNTS = 3_000
REPLICAS = 3
KILL_AFTER = 600
"""Events applied before one replica is killed: well into the stream, far from its end."""


@pytest.fixture
def billing(atrium: Sandbox, log_dir: Path) -> Iterator[ServiceProcess]:
    replicas = ServiceProcess(
        ServiceName.BILLING,
        port=free_port(),
        environment=atrium.environment,
        log_dir=log_dir,
        processes=REPLICAS,
    )
    try:
        yield replicas.start()
    finally:
        replicas.stop()


async def announce_new_accounts(settings: Settings, count: int) -> dict[uuid.UUID, uuid.UUID]:
    """`count` new accounts announced as identity does; returns each event's id by root."""
    event_ids = {}
    async with producer_as(ServiceName.IDENTITY, settings) as producer:
        for _ in range(count):
            created = root_created()
            envelope = new_envelope(
                created,
                producer="identity",
                root_id=created.id,
                workspace_id=created.id,
                actor="system",
                correlation_id=None,
            )
            await producer.send(
                created.topic.value,
                envelope.model_dump_json().encode(),
                key=str(created.id).encode(),
                headers=[("content-type", b"application/json")],
            )
            event_ids[created.id] = envelope.event_id
        await producer.flush()
    return event_ids


async def scalar(engine: AsyncEngine, sql: str, **parameters: object) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), parameters)).scalar_one()


async def rows(engine: AsyncEngine, sql: str, **parameters: object) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), parameters)]


async def limits_announced_on_kafka(settings: Settings, expected: set[uuid.UUID]) -> set[str]:
    """The ids of the events among `expected` found on `atrium.billing.limits`, read
    from the start (as an operator's tool would, not as one of billing's consumers)."""
    consumer = AIOKafkaConsumer(
        Topic.BILLING_LIMITS.value,
        **settings.kafka_admin().client_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    wanted = {str(event_id) for event_id in expected}
    found: set[str] = set()
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while not wanted <= found:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.update(
                        json.loads(record.value)["event_id"]
                        for record in records
                        if record.value is not None
                    )
    finally:
        await consumer.stop()
    return wanted & found


async def test_a_replica_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    billing: ServiceProcess, settings: Settings, admin_engine: AsyncEngine
) -> None:
    started = time.monotonic()
    event_ids = await announce_new_accounts(settings, ACCOUNTS)
    roots = [str(root) for root in event_ids]
    ours = [str(event_id) for event_id in event_ids.values()]

    async def applied() -> int:
        count = await scalar(
            admin_engine,
            "SELECT count(*) FROM billing.inbox WHERE event_id = ANY(CAST(:ids AS uuid[]))",
            ids=ours,
        )
        assert isinstance(count, int)
        return count

    async def well_into_the_stream() -> int | None:
        count = await applied()
        return count if count >= KILL_AFTER else None

    await eventually(well_into_the_stream, timeout=120, what=f"{KILL_AFTER} accounts opened")
    victim = billing.pids[1]
    billing.kill(victim)
    killed_at = await scalar(admin_engine, "SELECT now()")
    assert isinstance(killed_at, datetime)
    applied_at_the_kill = await applied()
    assert applied_at_the_kill < ACCOUNTS, "the stream was over before the kill"

    async def every_event_applied() -> bool | None:
        return True if await applied() == ACCOUNTS else None

    await eventually(every_event_applied, timeout=180, what="every account opened")
    all_applied = time.monotonic() - started

    async def every_event_published() -> bool | None:
        unpublished = await scalar(
            admin_engine,
            "SELECT count(*) FROM billing.outbox"
            " WHERE message_key = ANY(:roots) AND published_at IS NULL",
            roots=roots,
        )
        return True if unpublished == 0 else None

    await eventually(every_event_published, timeout=60, what="billing's events published")

    accounts = await scalar(
        admin_engine,
        "SELECT count(*) FROM billing.accounts WHERE root_id = ANY(CAST(:roots AS uuid[]))",
        roots=roots,
    )
    assert accounts == ACCOUNTS
    plan_grants = Counter(
        workspace
        for (workspace,) in await rows(
            admin_engine,
            "SELECT workspace_id FROM billing.transactions"
            " WHERE kind = 'plan' AND root_id = ANY(CAST(:roots AS uuid[]))",
            roots=roots,
        )
    )
    assert len(plan_grants) == ACCOUNTS
    assert set(plan_grants.values()) == {1}, "an account was granted its plan twice"
    announced = await rows(
        admin_engine,
        "SELECT message_key, event_id FROM billing.outbox"
        " WHERE message_key = ANY(:roots) AND event_type = 'limits.changed'",
        roots=roots,
    )
    assert sorted(Counter(key for key, _ in announced).values()) == [1] * ACCOUNTS
    limits_events = {event_id for _, event_id in announced}
    assert isinstance(next(iter(limits_events)), uuid.UUID)
    on_kafka = await limits_announced_on_kafka(settings, limits_events)  # type: ignore[arg-type]
    assert len(on_kafka) == ACCOUNTS

    lanes_published_after_the_kill = {
        lane
        for (lane,) in await rows(
            admin_engine,
            "SELECT DISTINCT key_hash % :lanes FROM billing.outbox"
            " WHERE message_key = ANY(:roots) AND published_at > :killed_at",
            lanes=settings.outbox_lanes,
            roots=roots,
            killed_at=killed_at,
        )
    }
    assert lanes_published_after_the_kill == set(range(settings.outbox_lanes))

    billing.stop()
    assert billing.returncodes() == [0, -9, 0]
    print(
        f"\n{ACCOUNTS} accounts over {REPLICAS} billing processes, one killed after"
        f" {applied_at_the_kill} were opened: all opened {all_applied:.1f}s after the first"
        " was announced"
    )
