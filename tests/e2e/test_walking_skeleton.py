"""A workspace created at the gateway reaches billing through identity's outbox,
Kafka and billing's inbox, and nothing is lost or applied twice on the way."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import Topic
from infra.sandbox import Sandbox
from services.billing import models as billing_models
from services.identity import models as identity_models
from shared.development_tokens import development_token
from shared.settings import ServiceName, Settings, get_settings
from shared.testing import eventually

from .conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]


def as_user(user_id: str) -> dict[str, str]:
    token = development_token(f"{user_id}@example.test", get_settings())
    return {"authorization": f"Bearer {token}"}


async def create_workspace(base_url: str, name: str, user: str = "founder") -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.post("/v1/workspaces", json={"name": name}, headers=as_user(user))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def billing_account_count(admin_engine: AsyncEngine, workspace_id: object) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(billing_models.accounts)
            .where(billing_models.accounts.c.workspace_id == uuid.UUID(str(workspace_id)))
        )
    return int(count or 0)


async def balances_when_open(
    base_url: str, workspace_id: object, user: str = "founder", timeout: float = 20
) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def probe() -> dict[str, object] | None:
            response = await client.get(
                f"/v1/workspaces/{workspace_id}/balances", headers=as_user(user)
            )
            return dict(response.json()) if response.status_code == 200 else None

        return await eventually(probe, timeout=timeout, what=f"billing account of {workspace_id}")


async def test_every_service_is_ready(system: RunningSystem) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for service in (system.identity, system.billing, system.gateway):
            response = await client.get(f"{service.url}/readyz")
            assert response.status_code == 200, (service.service, response.text)


async def test_creating_a_workspace_opens_its_billing_account_on_the_default_plan(
    system: RunningSystem,
) -> None:
    started = time.perf_counter()
    workspace = await create_workspace(system.gateway.url, "Acme")

    balances = await balances_when_open(system.gateway.url, workspace["id"])
    print(f"workspace created → billing account open: {time.perf_counter() - started:.3f}s")

    assert balances["generative_credits"] == {"balance": 0, "allocated": 0}
    assert balances["api_credits"] == {"balance": 0, "allocated": 0}
    assert balances["avatar_slots"] == {"limit": 3, "used": 0}
    assert balances["seats"] in ({"limit": 5, "used": 0}, {"limit": 5, "used": 1})

    async def founder_seat_counted() -> dict[str, object] | None:
        seen = await balances_when_open(system.gateway.url, workspace["id"])
        return seen if seen["seats"] == {"limit": 5, "used": 1} else None

    await eventually(founder_seat_counted, what="billing to learn the founder takes a seat")


async def test_an_event_delivered_again_has_no_second_effect(
    system: RunningSystem, settings: Settings, admin_engine: AsyncEngine
) -> None:
    workspace = await create_workspace(system.gateway.url, "Delivered twice")
    await balances_when_open(system.gateway.url, workspace["id"])
    async with admin_engine.connect() as connection:
        event_id, envelope = (
            await connection.execute(
                select(identity_models.outbox.c.event_id, identity_models.outbox.c.envelope).where(
                    identity_models.outbox.c.message_key == str(workspace["id"]),
                    identity_models.outbox.c.event_type == "workspace.created",
                )
            )
        ).one()

    # identity's own principal: the only one that may write its topic.
    producer = AIOKafkaProducer(**settings.kafka_for(ServiceName.IDENTITY).client_options())
    await producer.start()
    try:
        delivered = await producer.send_and_wait(
            Topic.IDENTITY_WORKSPACE.value,
            envelope.encode(),
            key=str(workspace["id"]).encode(),
            headers=[("content-type", b"application/json")],
        )
    finally:
        await producer.stop()
    await billing_consumed_past(settings, delivered.topic, delivered.partition, delivered.offset)

    assert await billing_account_count(admin_engine, workspace["id"]) == 1
    async with admin_engine.connect() as connection:
        recorded = await connection.scalar(
            select(func.count())
            .select_from(billing_models.inbox)
            .where(billing_models.inbox.c.event_id == event_id)
        )
    assert recorded == 1


async def billing_consumed_past(
    settings: Settings, topic: str, partition: int, offset: int
) -> None:
    """Wait until billing's consumer group has committed past `offset`."""
    admin = AIOKafkaAdminClient(**settings.kafka_admin().client_options())
    await admin.start()
    try:

        async def committed() -> bool | None:
            offsets = await admin.list_consumer_group_offsets("atrium.billing")
            for topic_partition, metadata in offsets.items():
                if (topic_partition.topic, topic_partition.partition) == (topic, partition):
                    return True if metadata.offset > offset else None
            return None

        await eventually(committed, timeout=20, what="billing to consume the repeated event")
    finally:
        await admin.close()


async def test_an_event_committed_before_identity_is_killed_is_delivered_after_restart(
    system: RunningSystem, admin_engine: AsyncEngine
) -> None:
    system.identity.stop()
    # A relay that never publishes makes "committed, not yet published" a state the test
    # can hold, instead of a window of milliseconds it would have to hit.
    system.identity.start(extra_environment={"ATRIUM_OUTBOX_RELAY_ENABLED": "false"})
    workspace = await create_workspace(system.gateway.url, "Survives a crash")
    async with admin_engine.connect() as connection:
        published_at = await connection.scalar(
            select(identity_models.outbox.c.published_at).where(
                identity_models.outbox.c.message_key == str(workspace["id"])
            )
        )
    assert published_at is None

    system.identity.kill()
    await asyncio.sleep(0.5)
    assert await billing_account_count(admin_engine, workspace["id"]) == 0

    system.identity.start()
    await balances_when_open(system.gateway.url, workspace["id"])
    assert await billing_account_count(admin_engine, workspace["id"]) == 1


async def test_workspaces_created_while_kafka_is_down_reach_billing_when_it_returns(
    system: RunningSystem, atrium: Sandbox, admin_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(atrium.kafka.stop)
    try:
        workspaces = [
            await create_workspace(system.gateway.url, f"Offline {number}") for number in range(5)
        ]
        await asyncio.sleep(1)
        for workspace in workspaces:
            assert await billing_account_count(admin_engine, workspace["id"]) == 0
    finally:
        await asyncio.to_thread(atrium.kafka.start)

    started = time.perf_counter()
    for workspace in workspaces:
        await balances_when_open(system.gateway.url, workspace["id"], timeout=90)
    print(f"Kafka back → all 5 billing accounts open: {time.perf_counter() - started:.1f}s")
    for workspace in workspaces:
        assert await billing_account_count(admin_engine, workspace["id"]) == 1


async def test_the_gateway_answers_a_problem_when_a_service_is_down(
    system: RunningSystem,
) -> None:
    workspace = await create_workspace(system.gateway.url, "Billing is away")
    system.billing.stop()
    try:
        async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
            response = await client.get(
                f"/v1/workspaces/{workspace['id']}/balances", headers=as_user("founder")
            )
            ready = await client.get("/readyz")
    finally:
        system.billing.start()
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "bad-gateway"
    assert ready.status_code == 503


async def test_a_service_called_without_the_gateway_refuses(
    system: RunningSystem, admin_engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        created = await client.post(
            f"{system.identity.url}/v1/workspaces",
            json={"name": "Sneaked in"},
            headers={**as_user("sneaky"), "x-atrium-principal": "forged.value"},
        )
        balances = await client.get(
            f"{system.billing.url}/v1/workspaces/{uuid.uuid4()}/balances", headers=as_user("x")
        )
    assert created.status_code == 401
    assert balances.status_code == 401
    async with admin_engine.connect() as connection:
        sneaked = await connection.scalar(
            select(func.count())
            .select_from(identity_models.workspaces)
            .where(identity_models.workspaces.c.name == "Sneaked in")
        )
    assert sneaked == 0


async def test_the_gateway_refuses_a_caller_without_valid_credentials(
    system: RunningSystem,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=5) as client:
        missing = await client.post("/v1/workspaces", json={"name": "No token"})
        garbage = await client.post(
            "/v1/workspaces", json={"name": "Bad"}, headers={"authorization": "Bearer nonsense"}
        )
    assert missing.status_code == garbage.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
