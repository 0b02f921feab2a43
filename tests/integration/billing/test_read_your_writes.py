"""A workspace the gateway vouched for but whose `workspace.created` has not reached
billing yet is waited for, on every workspace endpoint, and then answered; past the
bound it is 503 `not-ready-yet` and nothing is written. A deleted workspace, or one the
principal was not made for, is 404 at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.billing.app import create_app
from shared.settings import Settings
from tests.integration.billing.conftest import BillingDriver, Workspace, billing_settings

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


def unannounced_root() -> Workspace:
    root_id = uuid.uuid4()
    return Workspace(root_id, root_id, None, root_id, BillingMode.OWN)


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def announced_later(driver: BillingDriver, workspace: Workspace, after: float) -> None:
    await asyncio.sleep(after)
    await driver.announce(workspace)


async def purchases_recorded(admin_engine: AsyncEngine, workspace: Workspace) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM billing.transactions"
                " WHERE workspace_id = :w AND kind = 'purchase'"
            ),
            {"w": workspace.id},
        )
    return int(count or 0)


async def test_balances_asked_for_before_the_account_opens_are_answered_when_it_opens(
    driver: BillingDriver,
) -> None:
    root = unannounced_root()

    async with driver.client() as client:
        (response, waited), _ = await asyncio.gather(
            timed(
                client.get(
                    f"/v1/workspaces/{root.id}/balances",
                    auth=driver.caller(root, role=Role.VIEWER),
                )
            ),
            announced_later(driver, root, 0.3),
        )

    assert response.status_code == 200, response.text
    assert response.json()["avatar_slots"] == {"limit": 3, "used": 0}
    assert 0.3 <= waited < 1.5


async def test_a_purchase_made_before_the_account_opens_is_made_once_when_it_opens(
    driver: BillingDriver,
) -> None:
    root = unannounced_root()

    async with driver.client() as client:
        (response, _), _ = await asyncio.gather(
            timed(
                client.post(
                    f"/v1/workspaces/{root.id}/purchases",
                    json={"pool": "generative_credits", "quantity": 500},
                    auth=driver.caller(root),
                )
            ),
            announced_later(driver, root, 0.2),
        )

    assert response.status_code == 201, response.text
    assert response.json()["balance_after"] == 500
    assert await driver.balance(root) == await driver.ledger_sum(root) == 500


async def test_an_allocation_to_a_sub_workspace_not_opened_yet_moves_credits_once_it_opens(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child_id = uuid.uuid4()
    child = Workspace(child_id, root.root_id, root.id, root.id, BillingMode.PARENT)

    async with driver.client() as client:
        (response, _), _ = await asyncio.gather(
            timed(
                client.put(
                    f"/v1/workspaces/{child.id}/allocations",
                    json={"generative_credits": 40},
                    auth=driver.caller(child, ancestor_super_admin=True),
                )
            ),
            announced_later(driver, child, 0.2),
        )

    assert response.status_code == 200, response.text
    assert response.json()["generative_credits"] == 40
    assert await driver.balance(child) == 40
    assert await driver.balance(root) == 60


Request = Callable[[httpx.AsyncClient, Workspace, BillingDriver], Awaitable[httpx.Response]]

ENDPOINTS: dict[str, Request] = {
    "GET balances": lambda client, w, billing: client.get(
        f"/v1/workspaces/{w.id}/balances", auth=billing.caller(w, role=Role.VIEWER)
    ),
    "POST purchases": lambda client, w, billing: client.post(
        f"/v1/workspaces/{w.id}/purchases",
        json={"pool": "generative_credits", "quantity": 5},
        auth=billing.caller(w),
    ),
    "GET allocations": lambda client, w, billing: client.get(
        f"/v1/workspaces/{w.id}/allocations", auth=billing.caller(w, role=Role.VIEWER)
    ),
    "PUT allocations": lambda client, w, billing: client.put(
        f"/v1/workspaces/{w.id}/allocations",
        json={"generative_credits": 5},
        auth=billing.caller(w, ancestor_super_admin=True),
    ),
    "POST spend": lambda client, w, billing: client.post(
        f"/v1/workspaces/{w.id}/spend",
        json={"operation": "image_creation", "quantity": 1},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        auth=billing.caller(w, role=Role.CREATOR),
    ),
    "GET ledger": lambda client, w, billing: client.get(
        f"/v1/workspaces/{w.id}/ledger", auth=billing.caller(w)
    ),
    "GET usage": lambda client, w, billing: client.get(
        f"/v1/workspaces/{w.id}/usage", auth=billing.caller(w)
    ),
    "POST avatar-claims": lambda client, w, billing: client.post(
        f"/internal/v1/workspaces/{w.id}/avatar-claims",
        json={"avatar_id": str(uuid.uuid4())},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        auth=billing.caller(w, role=Role.CREATOR),
    ),
    "DELETE avatar-claims": lambda client, w, billing: client.delete(
        f"/internal/v1/workspaces/{w.id}/avatar-claims/{uuid.uuid4()}",
        auth=billing.caller(w, role=Role.CREATOR),
    ),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_every_workspace_endpoint_answers_not_ready_yet_past_the_bound(
    impatient: BillingDriver, endpoint: str
) -> None:
    workspace = unannounced_root()

    async with impatient.client() as client:
        response, waited = await timed(ENDPOINTS[endpoint](client, workspace, impatient))

    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "not-ready-yet"
    assert response.headers["retry-after"] == "1"
    assert waited >= SHORT_BOUND_SECONDS


async def test_a_purchase_refused_as_not_ready_yet_wrote_nothing_and_its_retry_is_made_once(
    impatient: BillingDriver, admin_engine: AsyncEngine
) -> None:
    root = unannounced_root()
    purchase = {"pool": "generative_credits", "quantity": 70}
    headers = {"Idempotency-Key": "order-before-the-account"}

    async with impatient.client() as client:
        refused = await client.post(
            f"/v1/workspaces/{root.id}/purchases",
            json=purchase,
            headers=headers,
            auth=impatient.caller(root),
        )
        await impatient.announce(root)
        assert await purchases_recorded(admin_engine, root) == 0
        assert await impatient.balance(root) == 0
        retried = await client.post(
            f"/v1/workspaces/{root.id}/purchases",
            json=purchase,
            headers=headers,
            auth=impatient.caller(root),
        )

    assert refused.status_code == 503
    assert retried.status_code == 201, retried.text
    assert await impatient.balance(root) == 70
    assert await purchases_recorded(admin_engine, root) == 1


async def test_a_deleted_workspace_is_not_found_at_once(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)
    await driver.delete(child)

    response, waited = await timed(driver.spend(child))

    assert response.status_code == 404
    assert waited < 1.0


async def test_a_principal_made_for_another_workspace_is_not_found_at_once(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    elsewhere = unannounced_root()

    async with driver.client() as client:
        response, waited = await timed(
            client.get(f"/v1/workspaces/{elsewhere.id}/balances", auth=driver.caller(root))
        )

    assert response.status_code == 404
    assert response.json()["type"] == "not-found"
    assert waited < 1.0
