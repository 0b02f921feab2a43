"""billing opens an account for every workspace identity announces."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import RawEnvelope, new_envelope
from contracts.events.identity import BillingMode, WorkspaceCreated
from services.billing.app import create_app
from services.billing.settings import BillingSettings
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.testing import SignedAs

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


def root_created() -> RawEnvelope:
    root_id = uuid.uuid4()
    envelope = new_envelope(
        WorkspaceCreated(
            id=root_id,
            parent_id=None,
            root_id=root_id,
            billing_root_id=root_id,
            depth=0,
            name="Acme",
            billing_mode=BillingMode.OWN,
            api_access=True,
            strict_quota=True,
        ),
        producer="identity",
        root_id=root_id,
        workspace_id=root_id,
        actor="user:founder",
        correlation_id=None,
    )
    return RawEnvelope.model_validate_json(envelope.model_dump_json())


async def balances(app: FastAPI, workspace_id: object) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billing"
    ) as client:
        return await client.get(f"/v1/workspaces/{workspace_id}/balances", auth=SignedAs("founder"))


async def test_a_new_root_workspace_opens_on_the_configured_default_plan(billing: FastAPI) -> None:
    runtime: ServiceRuntime = billing.state.runtime
    event = root_created()

    await runtime.consumer.consume(event)

    response = await balances(billing, event.root_id)
    assert response.status_code == 200
    assert response.json() == {
        "generative_credits": {"balance": 0, "allocated": 0},
        "api_credits": {"balance": 0, "allocated": 0},
        "avatar_slots": {"limit": 2, "used": 0},
        "seats": {"limit": 7, "used": 0},
    }


async def test_an_unknown_workspace_has_no_balances(billing: FastAPI) -> None:
    response = await balances(billing, uuid.uuid4())
    assert response.status_code == 404
    assert response.json()["type"] == "not-found"


async def test_the_same_workspace_announced_twice_opens_one_account(billing: FastAPI) -> None:
    runtime: ServiceRuntime = billing.state.runtime
    event = root_created()

    await runtime.consumer.consume(event)
    await runtime.consumer.consume(event)
    twin = RawEnvelope.model_validate({**event.model_dump(), "event_id": uuid.uuid4()})
    await runtime.consumer.consume(twin)

    response = await balances(billing, event.root_id)
    assert response.status_code == 200
    assert response.json()["seats"] == {"limit": 7, "used": 0}
