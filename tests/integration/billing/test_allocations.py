"""Allocations: the running total a parent grants a `parent`-billed sub-workspace;
the difference moves between them in one balanced transaction."""

from __future__ import annotations

import pytest

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver

pytestmark = pytest.mark.integration


async def test_an_allocation_is_the_running_total_granted_spent_or_not(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=1_000)
    child = await driver.sub(root)

    assert (await driver.allocate(child, generative_credits=300)).status_code == 200
    assert (await driver.spend(child, "image_creation", 10)).status_code == 201  # 20 credits
    assert await driver.balance(child) == 280

    raised = await driver.allocate(child, generative_credits=400)
    assert raised.status_code == 200
    assert raised.json()["generative_credits"] == 400
    assert await driver.balance(child) == 380
    assert await driver.balance(root) == 600

    lowered = await driver.allocate(child, generative_credits=100)
    assert lowered.status_code == 200
    assert await driver.balance(child) == 80
    assert await driver.balance(root) == 900

    below = await driver.allocate(child, generative_credits=10)
    assert below.status_code == 409
    assert below.json()["type"] == "below-usage"
    assert await driver.balance(child) == 80
    assert await driver.balance(root) == 900
    assert (await driver.balances(child))["generative_credits"]["allocated"] == 100
    for workspace in (root, child):
        assert await driver.ledger_sum(workspace) == await driver.balance(workspace)


async def test_an_allocation_the_parent_cannot_cover_is_refused_and_moves_nothing(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100, api_credits=100)
    child = await driver.sub(root)

    response = await driver.allocate(child, api_credits=50, generative_credits=101)

    assert response.status_code == 409
    assert response.json()["type"] == "insufficient-balance"
    assert await driver.balance(root) == 100
    assert await driver.balance(root, "api_credits") == 100
    assert await driver.balance(child, "api_credits") == 0


async def test_avatar_slots_move_to_the_sub_workspace_and_those_in_use_cannot_be_taken_back(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=1_000)
    child = await driver.sub(root)
    assert (await driver.allocate(child, avatar_slots=2, generative_credits=500)).status_code == 200
    async with driver.client() as client:
        claimed = await client.post(
            f"/internal/v1/workspaces/{child.id}/avatar-claims",
            json={"avatar_id": "00000000-0000-4000-8000-000000000001"},
            headers={"Idempotency-Key": "avatar-1"},
            auth=driver.caller(child, role=Role.CREATOR),
        )
    assert claimed.status_code == 201

    assert (await driver.balances(root))["avatar_slots"] == {"limit": 1, "used": 0}
    assert (await driver.balances(child))["avatar_slots"] == {"limit": 2, "used": 1}
    refused = await driver.allocate(child, avatar_slots=0)
    assert refused.status_code == 409
    assert refused.json()["type"] == "below-usage"

    assert (await driver.allocate(child, avatar_slots=1)).status_code == 200
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 2, "used": 0}
    child_limits = (await driver.staged_events("limits.changed", child))[-1]
    assert child_limits["avatar_slots_limit"] == 1


async def test_a_super_admin_of_the_sub_workspace_alone_cannot_grant_itself_credits(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)

    async with driver.client() as client:
        response = await client.put(
            f"/v1/workspaces/{child.id}/allocations",
            json={"generative_credits": 100},
            auth=driver.caller(child, role=Role.SUPER_ADMIN, ancestor_super_admin=False),
        )

    assert response.status_code == 403
    assert await driver.balance(root) == 100


async def test_nothing_is_allocated_to_a_workspace_that_pays_for_itself(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root, billing_mode=BillingMode.OWN)

    response = await driver.allocate(child, generative_credits=10)

    assert response.status_code == 409
    assert response.json()["type"] == "billed-on-its-own"


async def test_every_member_reads_the_allocations(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)
    await driver.allocate(child, generative_credits=40)

    async with driver.client() as client:
        response = await client.get(
            f"/v1/workspaces/{child.id}/allocations", auth=driver.caller(child, role=Role.VIEWER)
        )

    assert response.status_code == 200
    assert response.json()["generative_credits"] == 40


@pytest.mark.parametrize(
    "body",
    [{}, {"generative_credits": -1}, {"generative_credits": "5"}, {"gold": 5}],
)
async def test_an_allocation_with_a_bad_body_is_refused_and_moves_nothing(
    driver: BillingDriver, body: dict[str, object]
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)

    async with driver.client() as client:
        response = await client.put(
            f"/v1/workspaces/{child.id}/allocations",
            json=body,
            auth=driver.caller(child, ancestor_super_admin=True),
        )

    assert response.status_code == 422
    assert response.json()["type"] == "validation-failed"
    assert await driver.balance(root) == 100
