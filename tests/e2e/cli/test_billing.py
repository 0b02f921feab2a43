"""Credits from the command line: purchases, allocations, balances and the usage
chart, each checked against what the API then says."""

from __future__ import annotations

import json

import httpx
import pytest

from clients.gateway import new_idempotency_key
from tests.e2e.assets.conftest import PLAN_CREDITS, Account, ok

from .conftest import Atrium

pytestmark = pytest.mark.e2e


async def balance(gateway: httpx.AsyncClient, account: Account, workspace: str) -> int:
    held = ok(
        await gateway.get(f"/v1/workspaces/{workspace}/balances", headers=account.owner.headers),
        200,
    )
    return int(held["generative_credits"]["balance"])


async def test_an_allocation_moves_credits_and_a_refused_one_prints_why(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    client = await account.sub_workspace("Client")

    allocated = await cli("allocate", client, "--generative-credits", "250", "--json")

    assert allocated.exit_code == 0, allocated.output
    assert json.loads(allocated.stdout)["generative_credits"] == 250
    assert await balance(gateway, account, client) == 250
    assert await balance(gateway, account, account.root_id) == PLAN_CREDITS - 250

    refused = await cli("allocate", client, "--generative-credits", str(PLAN_CREDITS + 1))

    assert refused.exit_code == 1
    assert refused.stdout == ""
    left = PLAN_CREDITS - 250
    assert f"the parent has {left} left to allocate, not {left + 1}." in refused.stderr
    assert await balance(gateway, account, client) == 250


async def test_a_purchase_adds_credits_that_the_balances_then_show(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    bought = await cli("purchase", account.root_id, "api_credits", "700")

    assert bought.exit_code == 0, bought.output
    assert "Bought 700 api_credits: balance now 700" in bought.stdout
    shown = await cli("balances", account.root_id)
    as_json = await cli("balances", account.root_id, "--json")
    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    held = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/balances", headers=account.owner.headers
        ),
        200,
    )
    assert held["api_credits"]["balance"] == 700
    printed = json.loads(as_json.stdout)
    for pool in ("generative_credits", "api_credits", "avatar_slots"):
        assert printed[pool] == held[pool]
    rows = {
        cells[0]: cells
        for line in shown.stdout.splitlines()
        if len(cells := [cell.strip() for cell in line.split("│")[1:-1]]) == 5
    }
    assert rows["api_credits"][1] == "700"
    assert rows["generative_credits"][1] == str(PLAN_CREDITS)
    assert rows["seats"][4] == str(held["seats"]["limit"])


async def spend(
    gateway: httpx.AsyncClient, account: Account, operation: str, quantity: int
) -> None:
    ok(
        await gateway.post(
            f"/v1/workspaces/{account.root_id}/spend",
            json={"operation": operation, "quantity": quantity},
            headers={**account.owner.headers, "idempotency-key": new_idempotency_key()},
        ),
        201,
    )


async def test_usage_by_operation_is_a_bar_chart_with_its_numbers(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    await spend(gateway, account, "video_generation", 4)
    await spend(gateway, account, "image_creation", 5)

    shown = await cli("usage", account.root_id, "--by", "operation")
    as_json = await cli("usage", account.root_id, "--by", "operation", "--json")

    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    report = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/usage?group_by=operation",
            headers=account.owner.headers,
        ),
        200,
    )
    assert json.loads(as_json.stdout) == report
    spent = {item["key"]: item["credits"] for item in report["items"]}
    bars = {
        cells[0]: cells
        for line in shown.stdout.splitlines()
        if len(cells := [cell.strip() for cell in line.split("│")[1:-1]]) == 4
    }
    for operation in ("video_generation", "image_creation"):
        assert bars[operation][2] == str(spent[operation])
    larger, smaller = sorted(spent, key=spent.__getitem__, reverse=True)
    assert len(bars[larger][1]) > len(bars[smaller][1]) > 0
    assert bars["total"][2] == str(sum(spent.values()))


async def test_usage_over_a_malformed_period_prints_the_field_error(
    cli: Atrium, account: Account
) -> None:
    refused = await cli("usage", account.root_id, "--from", "yesterday")

    assert refused.exit_code == 1
    assert "from" in refused.stderr
