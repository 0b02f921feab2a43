"""Seat usage from identity, and settings that act from their change on."""

from __future__ import annotations

import uuid

import pytest

from contracts.events.identity import BillingMode, SeatsUsageChanged
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
