"""billing's copy of the API keys comes from apikeys' events on Kafka; a spend made with
a key whose `apikey.created` has not arrived yet waits for it, bounded, as for a
workspace, and past the bound is 503 `not-ready-yet` with nothing written."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import RawEnvelope
from contracts.events.apikeys import ApiKeyRevoked, ApiKeySuspended, RevocationReason
from contracts.events.identity import BillingMode
from contracts.topics import Topic
from services.billing.app import create_app
from shared.settings import ServiceName, Settings
from shared.testing import eventually
from tests.integration.billing.conftest import (
    BillingDriver,
    Workspace,
    billing_settings,
    envelope_of,
    key_created,
)

pytestmark = pytest.mark.integration

SHORT_BOUND_SECONDS = 0.3


@pytest.fixture
async def impatient(settings: Settings, admin_engine: AsyncEngine) -> AsyncIterator[BillingDriver]:
    """billing with a short read-your-writes bound, for what happens past it."""
    app = create_app(
        billing_settings(settings, read_your_writes_timeout_seconds=SHORT_BOUND_SECONDS)
    )
    yield BillingDriver(app=app, admin_engine=admin_engine, secret=settings.internal_secret)
    await app.state.runtime.stop()


async def timed_spend(
    driver: BillingDriver, workspace: Workspace, key_id: uuid.UUID
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await driver.spend(workspace, "image_creation", 1, api_key_id=key_id)
    return response, time.monotonic() - started


async def test_a_spend_with_a_key_whose_event_arrives_300_ms_later_succeeds(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=100)
    created = key_created(root, monthly_credit_limit=10)

    async def arrives_later() -> None:
        await asyncio.sleep(0.3)
        await driver.deliver(created, root_id=root.root_id)

    (response, waited), _ = await asyncio.gather(
        timed_spend(driver, root, created.key_id), arrives_later()
    )

    assert response.status_code == 201, response.text
    assert 0.3 <= waited < 1.5
    assert await driver.key_spent(created.key_id) == 2
    assert await driver.balance(root, "api_credits") == 98


async def test_a_spend_whose_workspace_and_key_both_arrive_later_waits_for_both(
    driver: BillingDriver,
) -> None:
    root_id = uuid.uuid4()
    root = Workspace(root_id, root_id, None, root_id, BillingMode.OWN)
    created = key_created(root)

    async def key_then_workspace() -> None:
        await asyncio.sleep(0.2)
        await driver.deliver(created, root_id=root.root_id)
        await asyncio.sleep(0.2)
        await driver.announce(root)

    (response, waited), _ = await asyncio.gather(
        timed_spend(driver, root, created.key_id), key_then_workspace()
    )

    # The default plan grants no API credits: what matters is that the spend was
    # answered once both had arrived, not 503.
    assert response.status_code == 402, response.text
    assert response.json()["type"] == "insufficient-credits"
    assert 0.4 <= waited < 1.5


async def test_a_spend_with_a_key_that_never_arrives_is_not_ready_yet_and_writes_nothing(
    impatient: BillingDriver,
) -> None:
    root = await impatient.root(api_credits=100)
    created = key_created(root, monthly_credit_limit=10)

    response, waited = await timed_spend(impatient, root, created.key_id)

    assert response.status_code == 503, response.text
    assert response.json()["type"] == "not-ready-yet"
    assert str(created.key_id) in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    assert waited >= SHORT_BOUND_SECONDS
    assert await impatient.balance(root, "api_credits") == 100
    await impatient.deliver(created, root_id=root.root_id)
    assert await impatient.key_spent(created.key_id) == 0


# Through Kafka --------------------------------------------------------------------------


async def key_row(admin_engine: AsyncEngine, key_id: uuid.UUID) -> dict[str, object] | None:
    async with admin_engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    text(
                        "SELECT workspace_id, monthly_credit_limit, suspended, revoked_at"
                        " FROM billing.api_keys WHERE key_id = :k"
                    ),
                    {"k": key_id},
                )
            )
            .mappings()
            .one_or_none()
        )
    return None if row is None else dict(row)


async def inbox_rows(admin_engine: AsyncEngine, event_id: uuid.UUID) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM billing.inbox WHERE event_id = :e"), {"e": event_id}
        )
    return int(count or 0)


async def test_key_events_published_on_kafka_build_billings_copy_each_applied_once(
    driver: BillingDriver, settings: Settings, admin_engine: AsyncEngine
) -> None:
    root = await driver.root(api_credits=100)
    created = envelope_of(key_created(root, monthly_credit_limit=4), root_id=root.root_id)
    key_id = uuid.UUID(created.data["key_id"])
    producer = AIOKafkaProducer(
        **settings.kafka_for(ServiceName.APIKEYS).client_options(),
        acks="all",
        enable_idempotence=True,
    )

    async def publish(envelope: RawEnvelope) -> None:
        await producer.send_and_wait(
            Topic.APIKEYS_KEY.value,
            envelope.model_dump_json().encode(),
            key=str(root.root_id).encode(),
        )

    async def key_state(column: str) -> bool | None:
        row = await key_row(admin_engine, key_id)
        return True if row is not None and row[column] else None

    await producer.start()
    await driver.runtime.start()  # the fixture stops it
    try:
        await publish(created)
        stored = await eventually(
            lambda: key_row(admin_engine, key_id), timeout=30, what="the key's copy"
        )
        spend = await driver.spend(root, "image_creation", 2, api_key_id=key_id)
        await publish(created)  # Kafka delivers it again
        await publish(
            envelope_of(
                ApiKeySuspended(key_id=key_id, workspace_id=root.id, root_id=root.root_id),
                root_id=root.root_id,
            )
        )
        await eventually(lambda: key_state("suspended"), timeout=30, what="the suspension")
        while_suspended = await driver.spend(root, "image_creation", 1, api_key_id=key_id)
        await publish(
            envelope_of(
                ApiKeyRevoked(
                    key_id=key_id,
                    workspace_id=root.id,
                    root_id=root.root_id,
                    effective_at=datetime.now(UTC),
                    reason=RevocationReason.REVOKED,
                ),
                root_id=root.root_id,
            )
        )
        await eventually(lambda: key_state("revoked_at"), timeout=30, what="the revocation")
    finally:
        await producer.stop()

    assert stored == {
        "workspace_id": root.id,
        "monthly_credit_limit": 4,
        "suspended": False,
        "revoked_at": None,
    }
    assert spend.status_code == 201, spend.text
    assert while_suspended.status_code == 403, while_suspended.text
    assert await inbox_rows(admin_engine, created.event_id) == 1
    assert await driver.key_spent(key_id) == 4
    assert await driver.balance(root, "api_credits") == 96
