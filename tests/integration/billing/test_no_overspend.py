"""No overspend under concurrency: racing spends, fall-through and allocation changes
never take a balance below zero, and the ledger always sums to the balance."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from tests.integration.billing.conftest import BillingDriver, Workspace

pytestmark = pytest.mark.integration

SPENDS = 64


async def spend_concurrently(
    driver: BillingDriver, workspace: Workspace, count: int, *, key: str | None = None
) -> Counter[int]:
    async with driver.client() as client:
        responses = await asyncio.gather(
            *(
                driver.spend(workspace, "image_creation", 5, key=key, client=client)  # 10 each
                for _ in range(count)
            )
        )
    return Counter(response.status_code for response in responses)


async def test_64_racing_spends_against_a_balance_for_k_of_them_let_exactly_k_through(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=10 * 23 + 7)

    outcome = await spend_concurrently(driver, root, SPENDS)

    assert outcome == {201: 23, 402: SPENDS - 23}
    assert await driver.balance(root) == 7
    assert await driver.ledger_sum(root) == 7


async def test_racing_spends_that_fall_through_to_the_parent_never_overspend_either(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=10 * 20 + 3)
    child = await driver.sub(root, strict_quota=False)
    await driver.allocate(child, generative_credits=10 * 5 + 4)  # the parent keeps 149
    # The parent spends from its own pool at the same time.

    in_child, in_root = await asyncio.gather(
        spend_concurrently(driver, child, SPENDS - 16), spend_concurrently(driver, root, 16)
    )
    outcome = in_child + in_root

    # 54 + 149 = 203 credits: 20 spends of 10, 3 left somewhere.
    assert outcome == {201: 20, 402: SPENDS - 20}
    assert await driver.balance(child) + await driver.balance(root) == 3
    for workspace in (root, child):
        assert await driver.ledger_sum(workspace) == await driver.balance(workspace)


async def test_spends_racing_allocation_changes_never_overspend(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=1_000)
    child = await driver.sub(root)
    await driver.allocate(child, generative_credits=200)

    async def reallocate() -> list[int]:
        statuses = []
        for target in (400, 150, 600, 100, 300, 50, 500):
            statuses.append((await driver.allocate(child, generative_credits=target)).status_code)
        return statuses

    outcome, statuses = await asyncio.gather(
        spend_concurrently(driver, child, SPENDS), reallocate()
    )

    spent = 10 * outcome[201]
    assert outcome[201] + outcome[402] == SPENDS
    assert set(statuses) <= {200, 409}
    child_balance = await driver.balance(child)
    root_balance = await driver.balance(root)
    assert child_balance + root_balance == 1_000 - spent
    allocated = (await driver.balances(child))["generative_credits"]["allocated"]
    assert allocated - child_balance == spent
    for workspace in (root, child):
        assert await driver.ledger_sum(workspace) == await driver.balance(workspace)


async def test_one_spend_retried_10_times_at_once_with_one_key_has_one_effect(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    key = str(uuid.uuid4())

    async with driver.client() as client:
        responses = await asyncio.gather(
            *(driver.spend(root, "image_creation", 5, key=key, client=client) for _ in range(10))
        )

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["transaction_id"] for response in responses}) == 1
    assert await driver.balance(root) == 90
    assert await driver.ledger_sum(root) == 90
