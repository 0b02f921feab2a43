"""billing opens an account for every workspace identity announces."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import RawEnvelope
from contracts.permissions import Role
from services.billing.app import create_app
from services.billing.settings import BillingSettings
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.testing import SignedAs, as_delivered, root_created
from tests.integration.billing.conftest import BillingDriver, billing_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def billing(settings: Settings) -> AsyncIterator[FastAPI]:
    billing_settings = BillingSettings(
        **settings.model_copy(
            update={
                "outbox_relay_enabled": False,
                "default_plan_seats": 7,
                "default_plan_avatar_slots": 2,
            }
        ).model_dump()
    )
    app = create_app(billing_settings)
    yield app
    await app.state.runtime.stop()


def root_announced() -> RawEnvelope:
    payload = root_created()
    return as_delivered(
        payload, root_id=payload.root_id, workspace_id=payload.id, actor="user:founder"
    )


async def balances(app: FastAPI, workspace_id: object) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billing"
    ) as client:
        return await client.get(
            f"/v1/workspaces/{workspace_id}/balances",
            auth=SignedAs("founder", role=Role.VIEWER),
        )


async def test_a_new_root_workspace_opens_on_the_configured_default_plan(billing: FastAPI) -> None:
    runtime: ServiceRuntime = billing.state.runtime
    event = root_announced()

    await runtime.consumer.consume(event)

    response = await balances(billing, event.root_id)
    assert response.status_code == 200
    assert response.json() == {
        "generative_credits": {"balance": 0, "allocated": 0},
        "api_credits": {"balance": 0, "allocated": 0},
        "avatar_slots": {"limit": 2, "used": 0},
        "seats": {"limit": 7, "used": 0},
    }


async def test_the_same_workspace_announced_twice_opens_one_account(billing: FastAPI) -> None:
    runtime: ServiceRuntime = billing.state.runtime
    event = root_announced()

    await runtime.consumer.consume(event)
    await runtime.consumer.consume(event)
    twin = RawEnvelope.model_validate({**event.model_dump(), "event_id": uuid.uuid4()})
    await runtime.consumer.consume(twin)

    response = await balances(billing, event.root_id)
    assert response.status_code == 200
    assert response.json()["seats"] == {"limit": 7, "used": 0}


async def test_a_plan_with_opening_credits_posts_them_as_a_balanced_transaction(
    settings: Settings, admin_engine: AsyncEngine
) -> None:
    app = create_app(billing_settings(settings, default_plan_generative_credits=500))
    driver = BillingDriver(app=app, admin_engine=admin_engine, secret=settings.internal_secret)
    try:
        root = await driver.root()

        assert await driver.balance(root) == 500
        assert await driver.ledger_sum(root) == 500
        async with driver.client() as client:
            ledger = await client.get(f"/v1/workspaces/{root.id}/ledger", auth=driver.caller(root))
        kinds = {(item["kind"], item["pool"], item["amount"]) for item in ledger.json()["items"]}
        assert ("plan", "generative_credits", 500) in kinds
    finally:
        await app.state.runtime.stop()


async def test_a_billing_root_announces_its_plan_limits_and_a_sub_workspace_its_empty_ones(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    child = await driver.sub(root)

    [root_limits] = await driver.staged_events("limits.changed", root)
    [child_limits] = await driver.staged_events("limits.changed", child)

    assert root_limits == {
        "workspace_id": str(root.id),
        "root_id": str(root.id),
        "billing_root_id": str(root.id),
        "seats_limit": 7,
        "seats_cap": None,
        "avatar_slots_limit": 2,
    }
    assert child_limits["seats_limit"] is None
    assert child_limits["avatar_slots_limit"] == 0
    assert child_limits["billing_root_id"] == str(root.id)


async def test_a_parent_billed_sub_workspace_opens_with_nothing_of_its_own(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    child = await driver.sub(root)

    assert await driver.balances(child) == {
        "generative_credits": {"balance": 0, "allocated": 0},
        "api_credits": {"balance": 0, "allocated": 0},
        "avatar_slots": {"limit": 0, "used": 0},
        "seats": {"limit": 7, "used": 0},
    }
