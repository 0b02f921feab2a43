"""Bad input gets a 4xx problem and changes nothing: text PostgreSQL cannot store, and
ledger cursors this API never gave out."""

from __future__ import annotations

import base64
import uuid

import pytest

from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"operation": "image_creation", "quantity": 1, "reference": "a\\u0000b"}',
        b'{"operation": "image_creation", "quantity": 1, "reference": "\\ud800"}',
        b'{"operation": "image_creation", "quantity": 1, "reference": "order \\udc00 7"}',
    ],
)
async def test_a_spend_reference_postgresql_cannot_store_is_refused_and_charges_nothing(
    driver: BillingDriver, raw_body: bytes
) -> None:
    root = await driver.root(generative_credits=100)

    async with driver.client() as client:
        response = await client.post(
            f"/v1/workspaces/{root.id}/spend",
            content=raw_body,
            headers={"content-type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
            auth=driver.caller(root, role=Role.CREATOR),
        )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [error["field"] for error in response.json()["errors"]] == ["reference"]
    assert await driver.balance(root) == 100


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of(f"[{2**70}]"),
        cursor_of("[true]"),
        cursor_of("[-1]"),
        cursor_of("[0]"),
        cursor_of("[1.0]"),
        cursor_of('["12"]'),
        cursor_of("[1e400]"),
        cursor_of("[]"),
        cursor_of("[1, 2]"),
        cursor_of("null"),
        "WyJhYmMiXQ==",
        "W3t9XQ==",
        "%%%",
    ],
)
async def test_a_ledger_cursor_this_api_never_gave_out_is_refused(
    driver: BillingDriver, cursor: str
) -> None:
    root = await driver.root(generative_credits=100)

    async with driver.client() as client:
        response = await client.get(
            f"/v1/workspaces/{root.id}/ledger", params={"cursor": cursor}, auth=driver.caller(root)
        )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_the_ledger_pages_through_with_the_cursors_it_gives_out(
    driver: BillingDriver,
) -> None:
    root = await driver.root(generative_credits=100)
    for _ in range(3):
        await driver.spend(root)

    seen: list[int] = []
    cursor = None
    async with driver.client() as client:
        while True:
            params: dict[str, str | int] = {"limit": 2, "pool": "generative_credits"}
            if cursor is not None:
                params["cursor"] = cursor
            page = await client.get(
                f"/v1/workspaces/{root.id}/ledger", params=params, auth=driver.caller(root)
            )
            assert page.status_code == 200, page.text
            seen += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break

    assert len(seen) == 4  # the purchase and three spends
    assert seen == sorted(seen, reverse=True)
