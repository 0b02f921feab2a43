"""Seat usage and seat caps from identity, and settings that act from their change on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.events.identity import BillingMode, SeatsCapChanged, SeatsUsageChanged
from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver, Workspace, envelope_of

pytestmark = pytest.mark.integration


async def test_the_seat_pool_usage_follows_identity(driver: BillingDriver) -> None:
    root = await driver.root()

    await driver.deliver(
        SeatsUsageChanged(billing_root_id=root.id, root_id=root.id, used=3, pending=1),
        root_id=root.id,
    )

    assert (await driver.balances(root))["seats"] == {"limit": 5, "used": 3}


async def test_seat_usage_for_a_workspace_not_known_yet_is_applied_once_it_is_known(
    driver: BillingDriver,
) -> None:
    root_id = uuid.uuid4()
    early = envelope_of(
        SeatsUsageChanged(billing_root_id=root_id, root_id=root_id, used=2, pending=0),
        root_id=root_id,
    )

    await driver.runtime.consumer.consume(early)
    async with driver.runtime.database.transaction() as session:
        held = await driver.runtime.inbox.parked.find(session, early.event_id)
    assert held is not None
    assert "before its account" in (held.last_error or "")
    root = Workspace(root_id, root_id, None, root_id, BillingMode.OWN)
    await driver.announce(root)
    await driver.runtime.consumer.retry_parked()

    assert (await driver.balances(root))["seats"] == {"limit": 5, "used": 2}


async def test_a_sub_workspace_that_starts_paying_for_itself_starts_on_the_default_plan(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)
    await driver.allocate(child, generative_credits=40)

    await driver.change_settings(child, billing_mode=BillingMode.OWN, strict_quota=True)

    balances = await driver.balances(child)
    assert balances["seats"]["limit"] == 5
    assert balances["avatar_slots"]["limit"] == 3
    assert balances["generative_credits"]["balance"] == 40
    assert (await driver.purchase(child, "generative_credits", 10)).status_code == 201
    limits = (await driver.staged_events("limits.changed", child))[-1]
    assert (limits["billing_root_id"], limits["seats_limit"]) == (str(child.id), 5)


async def test_a_workspace_that_goes_back_to_its_parents_bill_hands_back_its_plan_seats(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root, billing_mode=BillingMode.OWN)
    await driver.purchase(child, "generative_credits", 30)

    await driver.change_settings(child, billing_mode=BillingMode.PARENT, strict_quota=True)

    assert await driver.ledger_sum(child, "seats") == 0
    assert (await driver.balances(child))["generative_credits"] == {
        "balance": 30,
        "allocated": 30,
    }
    lowered = await driver.allocate(child, generative_credits=0)
    assert lowered.status_code == 200
    assert await driver.balance(root) == 130


async def test_a_seat_cap_is_identitys_and_billing_keeps_a_copy_of_it(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    child = await driver.sub(root)

    await driver.deliver(
        SeatsCapChanged(
            workspace_id=child.id, root_id=root.id, billing_root_id=root.id, seats_cap=2
        ),
        root_id=root.id,
    )

    async with driver.client() as client:
        allocations = await client.get(
            f"/v1/workspaces/{child.id}/allocations", auth=driver.caller(child, role=Role.VIEWER)
        )
    assert allocations.json()["seats"] == 2
    assert (await driver.balances(child))["seats"] == {"limit": 2, "used": 0}


async def test_a_seat_cap_is_not_set_through_allocations(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root)

    response = await driver.allocate(child, seats=2, generative_credits=10)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "seats"
    assert "PUT /v1/workspaces/{id}/seats" in error["message"]
    assert await driver.balance(child) == 0
    assert (await driver.balances(child))["seats"]["limit"] == 5


async def usage_by_key(driver: BillingDriver, workspace: Workspace, **caller: Any) -> int:
    async with driver.client() as client:
        response = await client.get(
            f"/v1/workspaces/{workspace.id}/usage",
            params={"group_by": "api_key"},
            auth=driver.caller(workspace, **caller),
        )
    if response.status_code == 409:
        assert response.json()["type"] == "api-access-disabled"
    return response.status_code


async def test_api_usage_of_a_workspace_without_api_access_is_closed_to_its_own_members(
    driver: BillingDriver,
) -> None:
    root = await driver.root()
    child = await driver.sub(root, api_access=False)

    assert await usage_by_key(driver, child, role=Role.DEVELOPER) == 409
    assert await usage_by_key(driver, child, role=Role.SUPER_ADMIN) == 409
    assert await usage_by_key(driver, child, role=Role.VIEWER) == 403
    assert await usage_by_key(driver, child, ancestor_super_admin=True) == 200
    assert await usage_by_key(driver, root, role=Role.DEVELOPER) == 200


async def test_api_access_acts_on_api_usage_from_the_change_on(driver: BillingDriver) -> None:
    root = await driver.root()
    child = await driver.sub(root)
    assert await usage_by_key(driver, child, role=Role.DEVELOPER) == 200

    await driver.change_settings(
        child, billing_mode=BillingMode.PARENT, strict_quota=True, api_access=False
    )
    closed = await usage_by_key(driver, child, role=Role.DEVELOPER)
    await driver.change_settings(
        child, billing_mode=BillingMode.PARENT, strict_quota=True, api_access=True
    )
    reopened = await usage_by_key(driver, child, role=Role.DEVELOPER)

    assert (closed, reopened) == (409, 200)
