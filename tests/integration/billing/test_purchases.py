"""Purchases: Super Admins of billing roots buy credits and capacity through the
payment provider; idempotent by `Idempotency-Key`; strict bodies."""

from __future__ import annotations

import pytest

from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver

pytestmark = pytest.mark.integration


async def test_a_super_admin_of_a_billing_root_buys_credits_through_the_manual_provider(
    driver: BillingDriver,
) -> None:
    root = await driver.root()

    response = await driver.purchase(root, "generative_credits", 1_000)

    receipt = response.json()
    assert receipt["pool"] == "generative_credits"
    assert receipt["quantity"] == 1_000
    assert receipt["balance_after"] == 1_000
    assert receipt["payment_provider"] == "manual"
    assert receipt["payment_reference"].startswith("manual:")
    assert await driver.balance(root) == 1_000
    assert await driver.ledger_sum(root) == 1_000
    posted = (await driver.staged_events("transaction.posted", root))[-1]
    assert posted["kind"] == "purchase"
    assert sorted(line["amount"] for line in posted["lines"]) == [-1_000, 1_000]


async def test_a_purchase_in_a_parent_billed_sub_workspace_is_refused(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    child = await driver.sub(root)

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{child.id}/purchases",
            json={"pool": "generative_credits", "quantity": 10},
            auth=driver.caller(child),
        )

    assert response.status_code == 409
    assert response.json()["type"] == "not-a-billing-root"
    assert await driver.balance(child) == 0


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.CREATOR, Role.VIEWER])
async def test_only_a_super_admin_makes_purchases(driver: BillingDriver, role: Role) -> None:
    root = await driver.root()

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{root.id}/purchases",
            json={"pool": "generative_credits", "quantity": 10},
            auth=driver.caller(root, role=role),
        )

    assert response.status_code == 403
    assert response.json()["type"] == "forbidden"
    assert await driver.balance(root) == 0


async def test_a_purchase_retried_with_its_key_is_made_once(driver: BillingDriver) -> None:
    root = await driver.root()
    headers = {"Idempotency-Key": "order-1"}

    async with driver.client() as client:
        first, second = [
            await client.post(
                f"/v1/workspaces/{root.id}/purchases",
                json={"pool": "api_credits", "quantity": 50},
                headers=headers,
                auth=driver.caller(root),
            )
            for _ in range(2)
        ]
        reused = await client.post(
            f"/v1/workspaces/{root.id}/purchases",
            json={"pool": "api_credits", "quantity": 51},
            headers=headers,
            auth=driver.caller(root),
        )

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert reused.status_code == 422
    assert reused.json()["type"] == "idempotency-key-reused"
    assert await driver.balance(root, "api_credits") == 50


async def test_buying_avatar_slots_and_seats_raises_the_limits_and_announces_them(
    driver: BillingDriver,
) -> None:
    root = await driver.root()

    await driver.purchase(root, "avatar_slots", 2)
    await driver.purchase(root, "seats", 10)

    balances = await driver.balances(root)
    assert balances["avatar_slots"] == {"limit": 5, "used": 0}
    assert balances["seats"]["limit"] == 15
    latest = (await driver.staged_events("limits.changed", root))[-1]
    assert (latest["seats_limit"], latest["avatar_slots_limit"]) == (15, 5)


@pytest.mark.parametrize(
    "body",
    [
        {"pool": "generative_credits", "quantity": 0},
        {"pool": "generative_credits", "quantity": -5},
        {"pool": "generative_credits", "quantity": "5"},
        {"pool": "generative_credits", "quantity": 1.5},
        {"pool": "gold", "quantity": 5},
        {"pool": "generative_credits"},
        {"pool": "generative_credits", "quantity": 5, "discount": 1},
    ],
)
async def test_a_purchase_with_a_bad_body_is_refused_with_field_errors_and_writes_nothing(
    driver: BillingDriver, body: dict[str, object]
) -> None:
    root = await driver.root()

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{root.id}/purchases", json=body, auth=driver.caller(root)
        )

    assert response.status_code == 422
    assert response.json()["type"] == "validation-failed"
    assert response.json()["errors"]
    assert await driver.ledger_sum(root) == 0
