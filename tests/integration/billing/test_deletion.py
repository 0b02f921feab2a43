"""Deletion: a deleted workspace's unspent credits and capacity go back to its parent
in one balanced transaction; its account closes; repeated delivery is harmless."""

from __future__ import annotations

import uuid

import pytest

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver, Workspace

pytestmark = pytest.mark.integration


async def test_a_deleted_sub_workspace_returns_its_unspent_credits_and_avatar_slots(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=1_000, api_credits=50)
    child = await driver.sub(root)
    await driver.allocate(child, generative_credits=300, api_credits=50, avatar_slots=2)
    await driver.spend(child, "video_generation", 2)  # 20
    async with driver.client() as client:
        claimed = await client.post(
            f"/internal/v1/workspaces/{child.id}/avatar-claims",
            json={"avatar_id": str(uuid.uuid4())},
            headers={"Idempotency-Key": "a"},
            auth=driver.caller(child, role=Role.CREATOR),
        )
    assert claimed.status_code == 201  # 100 credits, one slot

    await driver.delete(child)

    root_balances = await driver.balances(root)
    assert root_balances["generative_credits"]["balance"] == 700 + 180
    assert root_balances["api_credits"]["balance"] == 50
    assert root_balances["avatar_slots"] == {"limit": 3, "used": 0}
    reclaim = (await driver.staged_events("transaction.posted", child))[-1]
    assert reclaim["kind"] == "reclaim"
    for pool in ("generative_credits", "api_credits", "avatar_slots"):
        assert sum(line["amount"] for line in reclaim["lines"] if line["pool"] == pool) == 0
        assert await driver.ledger_sum(child, pool) == 0
        assert await driver.ledger_sum(root, pool) == await driver.stored_balance(root, pool)
    assert (await driver.staged_events("limits.changed", root))[-1]["avatar_slots_limit"] == 3
    assert (await driver.spend(child)).status_code == 404


async def test_a_deletion_delivered_again_changes_nothing_more(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)
    await driver.allocate(child, generative_credits=40)
    deleted = driver.deleted(child)

    first = await driver.deliver(deleted, root_id=root.root_id)
    await driver.runtime.consumer.consume(first)
    await driver.deliver(deleted, root_id=root.root_id)

    assert await driver.balance(root) == 100
    assert await driver.ledger_sum(root) == 100


async def test_a_deleted_workspace_that_paid_for_itself_returns_its_credits_not_its_plan(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    agency = await driver.sub(root, billing_mode=BillingMode.OWN)
    await driver.purchase(agency, "generative_credits", 30)

    await driver.delete(agency)

    root_balances = await driver.balances(root)
    assert root_balances["generative_credits"]["balance"] == 130
    assert root_balances["avatar_slots"]["limit"] == 3
    assert await driver.ledger_sum(agency, "seats") == 0


async def test_a_deletion_that_arrives_before_the_creation_leaves_no_account_open(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child_id = uuid.uuid4()
    child = Workspace(child_id, root.root_id, root.id, root.id, BillingMode.PARENT)

    await driver.delete(child)
    await driver.announce(child)

    assert (await driver.spend(child)).status_code == 404
    assert (await driver.allocate(child, generative_credits=10)).status_code == 404
    assert await driver.balance(root) == 100
