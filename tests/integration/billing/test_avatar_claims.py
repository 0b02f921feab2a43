"""The internal avatar-claim endpoint: an avatar takes a slot and is charged the avatar
fee in one transaction; neither happens without the other."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver, Workspace

pytestmark = pytest.mark.integration


async def claim(
    driver: BillingDriver,
    workspace: Workspace,
    avatar_id: uuid.UUID,
    *,
    key: str | None = None,
    **caller: Any,
) -> httpx.Response:
    async with driver.client() as client:
        return await client.post(
            f"/internal/v1/workspaces/{workspace.id}/avatar-claims",
            json={"avatar_id": str(avatar_id)},
            headers={"Idempotency-Key": key or str(avatar_id)},
            auth=driver.caller(workspace, **({"role": Role.CREATOR} | caller)),
        )


async def release(
    driver: BillingDriver, workspace: Workspace, avatar_id: uuid.UUID
) -> httpx.Response:
    async with driver.client() as client:
        return await client.delete(
            f"/internal/v1/workspaces/{workspace.id}/avatar-claims/{avatar_id}",
            auth=driver.caller(workspace, role=Role.CREATOR),
        )


async def test_an_avatar_takes_a_slot_and_pays_the_avatar_fee_in_one_transaction(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=250)
    avatar = uuid.uuid4()

    response = await claim(driver, root, avatar)

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["avatar_id"] == str(avatar)
    assert (receipt["pool"], receipt["fee"], receipt["balance_after"]) == (
        "generative_credits",
        100,
        150,
    )
    assert receipt["avatar_slots"] == {"limit": 3, "used": 1}
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 3, "used": 1}
    posted = (await driver.staged_events("transaction.posted", root))[-1]
    assert posted["kind"] == "avatar_claim"
    assert {line["pool"] for line in posted["lines"]} == {"avatar_slots", "generative_credits"}
    assert await driver.ledger_sum(root) == await driver.balance(root) == 150


async def test_without_a_free_slot_no_fee_is_charged(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=1_000)
    for _ in range(3):
        assert (await claim(driver, root, uuid.uuid4())).status_code == 201

    response = await claim(driver, root, uuid.uuid4())

    assert response.status_code == 409
    assert response.json()["type"] == "avatar-slot-limit"
    assert await driver.balance(root) == 700
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 3, "used": 3}


async def test_without_the_fee_no_slot_is_taken(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=99)

    response = await claim(driver, root, uuid.uuid4())

    assert response.status_code == 402
    assert response.json()["type"] == "insufficient-credits"
    assert await driver.balance(root) == 99
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 3, "used": 0}


async def test_a_claim_retried_with_its_key_takes_one_slot_and_one_fee(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=1_000)
    avatar = uuid.uuid4()

    first = await claim(driver, root, avatar, key="create-avatar-1")
    again = await claim(driver, root, avatar, key="create-avatar-1")
    other_key = await claim(driver, root, avatar, key="create-avatar-2")

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert other_key.status_code == 409
    assert other_key.json()["type"] == "avatar-already-claimed"
    assert await driver.balance(root) == 900
    assert (await driver.balances(root))["avatar_slots"]["used"] == 1


async def test_an_api_key_pays_the_avatar_fee_with_api_credits(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=1_000, api_credits=100)

    key_id = await driver.create_key(root)

    response = await claim(driver, root, uuid.uuid4(), api_key_id=key_id)

    assert response.status_code == 201
    assert response.json()["pool"] == "api_credits"
    assert await driver.balance(root, "api_credits") == 0


async def test_releasing_frees_the_slot_keeps_the_fee_and_is_harmless_when_repeated(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=1_000)
    avatar = uuid.uuid4()
    await claim(driver, root, avatar)

    responses = [await release(driver, root, avatar) for _ in range(3)]
    never_claimed = await release(driver, root, uuid.uuid4())

    assert [response.status_code for response in responses] == [204, 204, 204]
    assert never_claimed.status_code == 204
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 3, "used": 0}
    assert await driver.balance(root) == 900
    assert await driver.ledger_sum(root, "avatar_slots") == 3


async def test_a_viewer_cannot_claim_an_avatar_slot(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=1_000)

    response = await claim(driver, root, uuid.uuid4(), role=Role.VIEWER)

    assert response.status_code == 403
    assert (await driver.balances(root))["avatar_slots"]["used"] == 0
