"""Spending: priced per operation, all or nothing, idempotent by key; API keys pay with
API credits and people with generative credits; a sub-workspace without a strict
quota falls through to its parent's pool."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("operation", "quantity", "price"),
    [
        ("avatar_fee", 1, 100),
        ("video_generation", 3, 30),
        ("image_creation", 4, 8),
        ("translation", 2, 10),
        ("api_call", 7, 0),
    ],
)
async def test_a_spend_is_priced_by_the_price_table(
    driver: BillingDriver, operation: str, quantity: int, price: int
) -> None:
    root = await driver.root(generative_credits=1_000)

    response = await driver.spend(root, operation, quantity)

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert set(receipt) == {"transaction_id", "pool", "amount", "balance_after"}
    assert receipt["pool"] == "generative_credits"
    assert receipt["amount"] == price
    assert receipt["balance_after"] == 1_000 - price
    assert await driver.ledger_sum(root) == await driver.balance(root) == 1_000 - price


async def test_an_api_key_spends_api_credits_and_a_person_generative_credits(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100, api_credits=100)

    by_key = await driver.spend(root, "translation", 1, api_key_id=await driver.create_key(root))
    by_person = await driver.spend(root, "image_creation", 1)

    assert by_key.json()["pool"] == "api_credits"
    assert by_person.json()["pool"] == "generative_credits"
    assert await driver.balance(root, "api_credits") == 95
    assert await driver.balance(root, "generative_credits") == 98


async def test_a_spend_that_the_balance_does_not_cover_is_refused_and_changes_nothing(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=25)

    response = await driver.spend(root, "video_generation", 3)

    assert response.status_code == 402
    assert response.json()["type"] == "insufficient-credits"
    assert await driver.balance(root) == 25
    assert await driver.ledger_sum(root) == 25
    assert [event["kind"] for event in await driver.staged_events("transaction.posted", root)] == [
        "plan",
        "purchase",
    ]


async def test_a_spend_retried_with_its_key_returns_the_first_result(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)

    first = await driver.spend(root, "image_creation", 5, key="render-42")
    again = await driver.spend(root, "image_creation", 5, key="render-42")
    other_body = await driver.spend(root, "image_creation", 6, key="render-42")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "idempotency-key-reused"
    assert await driver.balance(root) == 90


async def test_a_spend_without_an_idempotency_key_is_refused(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{root.id}/spend",
            json={"operation": "image_creation", "quantity": 1},
            auth=driver.caller(root, role=Role.CREATOR),
        )

    assert response.status_code == 422
    assert any("Idempotency-Key" in error["field"] for error in response.json()["errors"])
    assert await driver.balance(root) == 100


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "image_creation", "quantity": 0},
        {"operation": "image_creation", "quantity": "1"},
        {"operation": "teleport", "quantity": 1},
        {"operation": "image_creation", "quantity": 1, "price": 0},
        {"operation": "image_creation", "quantity": 1, "reference": ""},
    ],
)
async def test_a_spend_with_a_bad_body_is_refused_with_field_errors(
    driver: BillingDriver, body: dict[str, object]
) -> None:
    root = await driver.root(generative_credits=100)

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{root.id}/spend",
            json=body,
            headers={"Idempotency-Key": "k"},
            auth=driver.caller(root, role=Role.CREATOR),
        )

    assert response.status_code == 422
    assert response.json()["errors"]
    assert await driver.balance(root) == 100


async def test_a_viewer_cannot_spend(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)

    response = await driver.spend(root, role=Role.VIEWER)

    assert response.status_code == 403
    assert await driver.balance(root) == 100


async def test_a_sub_workspace_without_a_strict_quota_falls_through_to_its_parent(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root, strict_quota=False)
    await driver.allocate(child, generative_credits=10)

    response = await driver.spend(child, "video_generation", 2)  # 20: 10 own, 10 parent's

    assert response.status_code == 201
    assert response.json()["balance_after"] == 0
    assert await driver.balance(child) == 0
    assert await driver.balance(root) == 80
    for workspace in (root, child):
        assert await driver.ledger_sum(workspace) == await driver.balance(workspace)
    assert (await driver.balances(child))["generative_credits"]["allocated"] == 10


async def test_a_sub_workspace_with_a_strict_quota_spends_only_its_allocation(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root, strict_quota=True)
    await driver.allocate(child, generative_credits=10)

    response = await driver.spend(child, "video_generation", 2)

    assert response.status_code == 402
    assert await driver.balance(child) == 10
    assert await driver.balance(root) == 90


async def test_a_strict_quota_turned_off_lets_the_next_spend_fall_through(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    child = await driver.sub(root, strict_quota=True)
    assert (await driver.spend(child, "image_creation", 1)).status_code == 402

    await driver.change_settings(child, billing_mode=BillingMode.PARENT, strict_quota=False)

    assert (await driver.spend(child, "image_creation", 1)).status_code == 201
    assert await driver.balance(root) == 98


async def test_the_ledger_lists_lines_newest_first_a_page_at_a_time(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100, api_credits=10)
    for quantity in range(1, 6):
        await driver.spend(root, "image_creation", quantity)

    seen: list[int] = []
    cursor: str | None = None
    async with driver.client() as client:
        while True:
            params: dict[str, str | int] = {"pool": "generative_credits", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (
                await client.get(
                    f"/v1/workspaces/{root.id}/ledger", params=params, auth=driver.caller(root)
                )
            ).json()
            seen += [item["amount"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        forbidden = await client.get(
            f"/v1/workspaces/{root.id}/ledger", auth=driver.caller(root, role=Role.DEVELOPER)
        )
        too_many = await client.get(
            f"/v1/workspaces/{root.id}/ledger", params={"limit": 201}, auth=driver.caller(root)
        )

    assert seen == [-10, -8, -6, -4, -2, 100]
    assert forbidden.status_code == 403
    assert too_many.status_code == 422


async def test_usage_adds_up_spending_by_day_operation_and_api_key(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100, api_credits=100)
    key = await driver.create_key(root)
    await driver.spend(root, "image_creation", 2)
    await driver.spend(root, "image_creation", 1)
    await driver.spend(root, "translation", 1, api_key_id=key)

    async def usage(group_by: str, role: Role = Role.SUPER_ADMIN) -> tuple[int, Any]:
        async with driver.client() as client:
            response = await client.get(
                f"/v1/workspaces/{root.id}/usage",
                params={"group_by": group_by, "from": "2000-01-01T00:00:00Z", "to": "2999-01-01"},
                auth=driver.caller(root, role=role),
            )
        return response.status_code, response.json().get("items")

    status, by_day = await usage("day")
    assert status == 200
    assert [(item["credits"], item["count"]) for item in by_day] == [(11, 3)]
    assert (await usage("operation"))[1] == [
        {"key": "image_creation", "credits": 6, "count": 2},
        {"key": "translation", "credits": 5, "count": 1},
    ]
    status, by_key = await usage("api_key", Role.DEVELOPER)
    assert status == 200
    assert {"key": str(key), "credits": 5, "count": 1} in by_key
    assert (await usage("operation", Role.DEVELOPER))[0] == 403
    assert (await usage("api_key", Role.CREATOR))[0] == 403


async def test_usage_counts_only_the_spends_inside_the_period(driver: BillingDriver) -> None:
    root = await driver.root(generative_credits=100)
    await driver.spend(root, "image_creation", 1)

    async with driver.client() as client:
        before = await client.get(
            f"/v1/workspaces/{root.id}/usage",
            params={"group_by": "operation", "to": "2000-01-01T00:00:00+00:00"},
            auth=driver.caller(root),
        )
        bad_grouping = await client.get(
            f"/v1/workspaces/{root.id}/usage",
            params={"group_by": "week"},
            auth=driver.caller(root),
        )

    assert before.status_code == 200
    assert before.json() == {"group_by": "operation", "items": []}
    assert bad_grouping.status_code == 422


async def test_a_spend_that_takes_credits_below_the_threshold_announces_it_once(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=130)

    await driver.spend(root, "video_generation", 2)  # 110: still above 100
    await driver.spend(root, "video_generation", 2)  # 90: below
    await driver.spend(root, "video_generation", 2)  # 70: already below

    assert await driver.staged_events("credits.low", root) == [
        {
            "workspace_id": str(root.id),
            "root_id": str(root.id),
            "pool": "generative_credits",
            "balance": 90,
            "threshold": 100,
        }
    ]
