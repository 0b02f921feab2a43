"""A spend made with an API key draws API credits and keeps within the key's monthly
credit limit, in the same transaction as the workspace's balances: past the limit it is
402 `key-credit-limit-reached` and nothing changes; a revoked, expired or suspended key
is refused; the budget starts again each UTC calendar month."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from contracts.events.apikeys import (
    ApiKeyRestored,
    ApiKeyRevoked,
    ApiKeySuspended,
    RevocationReason,
)
from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver, Workspace, key_created

pytestmark = pytest.mark.integration

IMAGE = 2
"""The default price of `image_creation`, per image."""
RACERS = 50


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == slug


async def spend_with_key(
    driver: BillingDriver,
    workspace: Workspace,
    key_id: uuid.UUID,
    images: int = 1,
    *,
    idempotency_key: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    return await driver.spend(
        workspace, "image_creation", images, key=idempotency_key, client=client, api_key_id=key_id
    )


async def race(
    driver: BillingDriver, workspace: Workspace, key_id: uuid.UUID, count: int, images: int
) -> Counter[int]:
    async with driver.client() as client:
        responses = await asyncio.gather(
            *(
                spend_with_key(driver, workspace, key_id, images, client=client)
                for _ in range(count)
            )
        )
    return Counter(response.status_code for response in responses)


async def spends_recorded(driver: BillingDriver, workspace: Workspace) -> int:
    async with driver.admin_engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM billing.transactions"
                " WHERE workspace_id = :w AND kind = 'spend'"
            ),
            {"w": workspace.id},
        )
    return int(count or 0)


def revoked(workspace: Workspace, key_id: uuid.UUID, *, at: datetime) -> ApiKeyRevoked:
    return ApiKeyRevoked(
        key_id=key_id,
        workspace_id=workspace.id,
        root_id=workspace.root_id,
        effective_at=at,
        reason=RevocationReason.REVOKED,
    )


def suspended(workspace: Workspace, key_id: uuid.UUID) -> ApiKeySuspended:
    return ApiKeySuspended(key_id=key_id, workspace_id=workspace.id, root_id=workspace.root_id)


def restored(workspace: Workspace, key_id: uuid.UUID) -> ApiKeyRestored:
    return ApiKeyRestored(key_id=key_id, workspace_id=workspace.id, root_id=workspace.root_id)


# Within and past the limit ------------------------------------------------------------


async def test_a_spend_within_the_keys_limit_draws_api_credits_and_counts_against_the_key(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root, monthly_credit_limit=10)

    response = await spend_with_key(driver, root, key_id, images=3)

    assert response.status_code == 201, response.text
    assert response.json()["pool"] == "api_credits"
    assert response.json()["amount"] == 6
    assert response.json()["balance_after"] == 994
    assert await driver.key_spent(key_id) == 6
    assert await driver.balance(root, "generative_credits") == 0


async def test_a_spend_past_the_keys_limit_is_refused_and_changes_nothing(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root, monthly_credit_limit=10)
    assert (await spend_with_key(driver, root, key_id, images=3)).status_code == 201

    refused = await spend_with_key(driver, root, key_id, images=3)  # 6 + 6 > 10

    assert_problem(refused, 402, "key-credit-limit-reached")
    assert await driver.key_spent(key_id) == 6
    assert await driver.balance(root, "api_credits") == 994
    assert await driver.ledger_sum(root, "api_credits") == 994
    assert await spends_recorded(driver, root) == 1
    # What is left of the limit can still be spent, to the last credit.
    assert (await spend_with_key(driver, root, key_id, images=2)).status_code == 201
    assert await driver.key_spent(key_id) == 10


async def test_a_key_without_a_limit_only_draws_the_workspaces_api_credits(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=100, generative_credits=500)
    key_id = await driver.create_key(root)

    spent = await spend_with_key(driver, root, key_id, images=40)
    short = await spend_with_key(driver, root, key_id, images=11)

    assert spent.status_code == 201, spent.text
    assert_problem(short, 402, "insufficient-credits")
    assert await driver.balance(root, "api_credits") == 20
    assert await driver.balance(root, "generative_credits") == 500
    assert await driver.key_spent(key_id) == 80


async def test_a_limit_of_zero_lets_only_free_operations_through(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, monthly_credit_limit=0)

    free = await driver.spend(root, "api_call", 5, api_key_id=key_id)
    paid = await spend_with_key(driver, root, key_id)

    assert free.status_code == 201, free.text
    assert free.json()["amount"] == 0
    assert_problem(paid, 402, "key-credit-limit-reached")
    assert await driver.balance(root, "api_credits") == 100


async def test_a_person_spending_in_the_same_workspace_is_not_held_to_a_keys_limit(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=100, generative_credits=100)
    key_id = await driver.create_key(root, monthly_credit_limit=2)
    assert (await spend_with_key(driver, root, key_id)).status_code == 201

    by_a_person = await driver.spend(root, "image_creation", 10)

    assert by_a_person.status_code == 201, by_a_person.text
    assert by_a_person.json()["pool"] == "generative_credits"
    assert await driver.key_spent(key_id) == 2


async def test_a_retried_spend_with_a_key_counts_once_against_its_limit(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, monthly_credit_limit=10)

    async with driver.client() as client:
        responses = await asyncio.gather(
            *(
                spend_with_key(
                    driver, root, key_id, images=4, idempotency_key="run-42", client=client
                )
                for _ in range(5)
            )
        )

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["transaction_id"] for response in responses}) == 1
    assert await driver.key_spent(key_id) == 8
    assert await driver.balance(root, "api_credits") == 92


# The month -----------------------------------------------------------------------------


async def test_the_budget_counts_per_utc_calendar_month_and_starts_again_in_the_next(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root, monthly_credit_limit=10)
    assert (await spend_with_key(driver, root, key_id, images=5)).status_code == 201
    assert_problem(await spend_with_key(driver, root, key_id), 402, "key-credit-limit-reached")
    async with driver.admin_engine.begin() as connection:
        months = (
            await connection.execute(
                text("SELECT month, spent FROM billing.api_key_spending WHERE budget_id = :k"),
                {"k": key_id},
            )
        ).all()
        # The month is the UTC one, whatever the session's time zone.
        this_month = datetime.now(UTC).date().replace(day=1)
        assert [tuple(row) for row in months] == [(this_month, 10)]
        # The clock moves on a month: what was spent is last month's.
        previous = (this_month - timedelta(days=1)).replace(day=1)
        await connection.execute(
            text("UPDATE billing.api_key_spending SET month = :m WHERE budget_id = :k"),
            {"m": previous, "k": key_id},
        )

    again = await spend_with_key(driver, root, key_id, images=5)

    assert again.status_code == 201, again.text
    assert await driver.key_spent(key_id) == 10
    assert_problem(await spend_with_key(driver, root, key_id), 402, "key-credit-limit-reached")
    assert await driver.balance(root, "api_credits") == 980


async def test_spending_recorded_for_another_month_does_not_count_this_month(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root, monthly_credit_limit=10)
    next_month = (datetime.now(UTC).date().replace(day=28) + timedelta(days=4)).replace(day=1)
    async with driver.admin_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO billing.api_key_spending (budget_id, month, spent)"
                " VALUES (:k, :next, 10), (:k, :long_ago, 10)"
            ),
            {"k": key_id, "next": next_month, "long_ago": date(2020, 2, 1)},
        )

    response = await spend_with_key(driver, root, key_id, images=5)

    assert response.status_code == 201, response.text
    assert await driver.key_spent(key_id) == 10


# Keys that may not spend ----------------------------------------------------------------


async def test_a_revoked_key_is_refused_and_changes_nothing(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, monthly_credit_limit=50)
    await driver.deliver(revoked(root, key_id, at=datetime.now(UTC)), root_id=root.root_id)

    response = await spend_with_key(driver, root, key_id)

    assert_problem(response, 403, "forbidden")
    assert await driver.balance(root, "api_credits") == 100
    assert await driver.key_spent(key_id) == 0


async def test_a_key_rotated_out_spends_until_its_grace_ends(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root)
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    await driver.deliver(
        ApiKeyRevoked(
            key_id=key_id,
            workspace_id=root.id,
            root_id=root.root_id,
            effective_at=in_an_hour,
            reason=RevocationReason.ROTATED,
        ),
        root_id=root.root_id,
    )

    during_grace = await spend_with_key(driver, root, key_id)
    # Revoked outright during the grace: from now on, not an hour later.
    await driver.deliver(revoked(root, key_id, at=datetime.now(UTC)), root_id=root.root_id)
    after = await spend_with_key(driver, root, key_id)

    assert during_grace.status_code == 201, during_grace.text
    assert_problem(after, 403, "forbidden")


async def test_a_suspended_key_is_refused_until_restored(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root)
    await driver.deliver(suspended(root, key_id), root_id=root.root_id)

    while_suspended = await spend_with_key(driver, root, key_id)
    await driver.deliver(restored(root, key_id), root_id=root.root_id)
    once_restored = await spend_with_key(driver, root, key_id)

    assert_problem(while_suspended, 403, "forbidden")
    assert once_restored.status_code == 201, once_restored.text
    assert await driver.balance(root, "api_credits") == 98


async def test_a_key_created_suspended_is_refused(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, suspended=True)

    assert_problem(await spend_with_key(driver, root, key_id), 403, "forbidden")


async def test_an_expired_key_is_refused(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, expires_at=datetime.now(UTC) - timedelta(seconds=1))

    assert_problem(await spend_with_key(driver, root, key_id), 403, "forbidden")
    assert await driver.balance(root, "api_credits") == 100


async def test_a_key_of_another_workspace_is_refused(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    child = await driver.sub(root)
    await driver.allocate(child, api_credits=50)
    key_of_the_root = await driver.create_key(root)

    response = await spend_with_key(driver, child, key_of_the_root)

    assert_problem(response, 403, "forbidden")
    assert await driver.balance(child, "api_credits") == 50


# Races ----------------------------------------------------------------------------------


async def test_50_racing_spends_with_a_key_whose_limit_covers_7_let_exactly_7_through(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=100_000)
    key_id = await driver.create_key(root, monthly_credit_limit=7 * 3 * IMAGE + IMAGE)

    outcome = await race(driver, root, key_id, RACERS, images=3)

    assert outcome == {201: 7, 402: RACERS - 7}
    assert await driver.key_spent(key_id) == 7 * 3 * IMAGE
    assert await driver.balance(root, "api_credits") == 100_000 - 7 * 3 * IMAGE
    assert await driver.ledger_sum(root, "api_credits") == 100_000 - 7 * 3 * IMAGE
    assert await spends_recorded(driver, root) == 7


async def test_50_racing_spends_against_a_balance_that_covers_7_let_exactly_7_through(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=7 * 3 * IMAGE + IMAGE)
    key_id = await driver.create_key(root, monthly_credit_limit=100_000)

    outcome = await race(driver, root, key_id, RACERS, images=3)

    assert outcome == {201: 7, 402: RACERS - 7}
    assert await driver.key_spent(key_id) == 7 * 3 * IMAGE
    assert await driver.balance(root, "api_credits") == IMAGE
    assert await driver.ledger_sum(root, "api_credits") == IMAGE


async def test_a_sub_workspace_falling_through_to_its_parent_is_still_capped_by_the_key(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    child = await driver.sub(root, strict_quota=False)
    await driver.allocate(child, api_credits=10)
    key_id = await driver.create_key(child, monthly_credit_limit=30)

    outcome = await race(driver, child, key_id, 20, images=5)  # 10 each

    # The allocation pays for one, the parent's pool for two more; the key stops there.
    assert outcome == {201: 3, 402: 17}
    assert await driver.key_spent(key_id) == 30
    assert await driver.balance(child, "api_credits") == 0
    assert await driver.balance(root, "api_credits") == 1_000 - 10 - 20
    for workspace in (root, child):
        assert await driver.ledger_sum(workspace, "api_credits") == await driver.balance(
            workspace, "api_credits"
        )


async def test_a_strict_sub_workspace_stops_at_its_allocation_before_the_keys_limit(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    child = await driver.sub(root)
    await driver.allocate(child, api_credits=25)
    key_id = await driver.create_key(child, monthly_credit_limit=100)

    outcome = await race(driver, child, key_id, 20, images=5)

    assert outcome == {201: 2, 402: 18}
    assert await driver.key_spent(key_id) == 20
    assert await driver.balance(child, "api_credits") == 5
    assert await driver.balance(root, "api_credits") == 975


async def test_a_rotated_key_and_the_key_it_replaces_share_one_budget(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    old = await driver.create_key(root, monthly_credit_limit=7 * 3 * IMAGE)
    assert (await spend_with_key(driver, root, old, images=3)).status_code == 201
    new = await driver.create_key(root, monthly_credit_limit=7 * 3 * IMAGE, rotated_from=old)

    with_old, with_new = await asyncio.gather(
        race(driver, root, old, 20, images=3), race(driver, root, new, 20, images=3)
    )

    assert with_old[201] + with_new[201] == 6
    assert await driver.key_spent(new) == await driver.key_spent(old) == 7 * 3 * IMAGE
    assert await driver.balance(root, "api_credits") == 1_000 - 7 * 3 * IMAGE


# Avatar fees --------------------------------------------------------------------------


async def claim_avatar(
    driver: BillingDriver, workspace: Workspace, key_id: uuid.UUID
) -> httpx.Response:
    async with driver.client() as client:
        return await client.post(
            f"/internal/v1/workspaces/{workspace.id}/avatar-claims",
            json={"avatar_id": str(uuid.uuid4())},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            auth=driver.caller(workspace, api_key_id=key_id),
        )


async def test_an_avatar_claimed_with_a_key_pays_its_fee_within_the_keys_limit(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root, monthly_credit_limit=150)

    first = await claim_avatar(driver, root, key_id)
    second = await claim_avatar(driver, root, key_id)

    assert first.status_code == 201, first.text
    assert first.json()["pool"] == "api_credits"
    assert_problem(second, 402, "key-credit-limit-reached")
    balances = await driver.balances(root)
    assert balances["api_credits"]["balance"] == 900
    assert balances["avatar_slots"] == {"limit": 3, "used": 1}
    assert await driver.key_spent(key_id) == 100


async def test_an_avatar_claim_with_a_revoked_key_takes_no_slot(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=1_000)
    key_id = await driver.create_key(root)
    await driver.deliver(revoked(root, key_id, at=datetime.now(UTC)), root_id=root.root_id)

    assert_problem(await claim_avatar(driver, root, key_id), 403, "forbidden")
    assert (await driver.balances(root))["avatar_slots"] == {"limit": 3, "used": 0}


# Events ---------------------------------------------------------------------------------


async def test_a_redelivered_key_event_changes_nothing(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    key_id = await driver.create_key(root, monthly_credit_limit=10)
    suspension = await driver.deliver(suspended(root, key_id), root_id=root.root_id)
    await driver.deliver(restored(root, key_id), root_id=root.root_id)
    assert (await spend_with_key(driver, root, key_id, images=2)).status_code == 201

    await driver.runtime.consumer.consume(suspension)  # Kafka delivers it again

    assert (await spend_with_key(driver, root, key_id, images=2)).status_code == 201
    assert await driver.key_spent(key_id) == 8


async def test_a_redelivered_creation_leaves_the_budget_as_it_is(driver: BillingDriver) -> None:
    root = await driver.root(api_credits=100)
    created = await driver.deliver(key_created(root, monthly_credit_limit=10), root_id=root.root_id)
    key_id = uuid.UUID(created.data["key_id"])
    assert (await spend_with_key(driver, root, key_id, images=4)).status_code == 201

    await driver.runtime.consumer.consume(created)

    assert_problem(
        await spend_with_key(driver, root, key_id, images=2), 402, "key-credit-limit-reached"
    )
    assert await driver.key_spent(key_id) == 8


# What people see --------------------------------------------------------------------


async def test_usage_by_api_key_from_the_first_of_the_month_is_what_each_key_spent_of_its_limit(
    driver: BillingDriver,
) -> None:
    root = await driver.root(api_credits=1_000, generative_credits=100)
    ci = await driver.create_key(root, monthly_credit_limit=100)
    batch = await driver.create_key(root)
    await spend_with_key(driver, root, ci, images=3)
    await spend_with_key(driver, root, ci, images=1)
    await spend_with_key(driver, root, batch, images=10)
    await driver.spend(root, "image_creation", 1)  # a person's
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    async with driver.client() as client:
        response = await client.get(
            f"/v1/workspaces/{root.id}/usage",
            params={"group_by": "api_key", "from": month_start.isoformat()},
            auth=driver.caller(root, role=Role.DEVELOPER),
        )

    assert response.status_code == 200, response.text
    items = {item["key"]: item for item in response.json()["items"]}
    assert items[str(ci)] == {"key": str(ci), "credits": 8, "count": 2}
    assert items[str(batch)] == {"key": str(batch), "credits": 20, "count": 1}
    assert items[None]["credits"] == 2
    assert await driver.key_spent(ci) == 8
    assert await driver.key_spent(batch) == 20
