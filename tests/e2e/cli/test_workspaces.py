"""`atrium tree`: the account as the tree a person sees, with each workspace's
settings, seats and balances as the API gives them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from contracts.permissions import Role
from tests.e2e.assets.conftest import PLAN_CREDITS, Account, ok

from .conftest import Atrium

pytestmark = pytest.mark.e2e


async def test_the_tree_shows_each_workspace_with_its_seats_and_balances_as_the_api_does(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    client = await account.sub_workspace("Client A")
    await account.join(client, Role.CREATOR)
    ok(
        await gateway.put(
            f"/v1/workspaces/{client}/allocations",
            json={"generative_credits": 300},
            headers=account.owner.headers,
        ),
        200,
    )

    shown = await cli("tree", account.root_id)

    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    root_at = next(i for i, line in enumerate(lines) if account.root_id in line)
    client_at = next(i for i, line in enumerate(lines) if client in line)
    assert "Agency" in lines[root_at]
    assert "Client A" in lines[client_at]
    assert client_at > root_at
    assert (
        f"billing own · API access on · seats 2 used, 0 pending, limit 50 · generative "
        f"credits {PLAN_CREDITS - 300} · API credits 0"
    ) in lines[root_at + 1]
    assert "billing parent · API access off" in lines[client_at + 1]
    assert "generative credits 300 · API credits 0" in lines[client_at + 1]

    as_json = await cli("tree", "--json")

    assert as_json.exit_code == 0, as_json.output
    [root] = json.loads(as_json.stdout)
    headers = account.owner.headers
    assert {key: root[key] for key in ("id", "name", "billing_mode", "api_access")} == {
        key: ok(await gateway.get(f"/v1/workspaces/{account.root_id}", headers=headers), 200)[key]
        for key in ("id", "name", "billing_mode", "api_access")
    }
    balances = ok(
        await gateway.get(f"/v1/workspaces/{account.root_id}/balances", headers=headers), 200
    )
    for pool in ("generative_credits", "api_credits"):
        assert root["balances"][pool] == balances[pool]
    [sub] = root["sub_workspaces"]
    assert sub["id"] == client
    assert sub["seats"] == ok(
        await gateway.get(f"/v1/workspaces/{client}/seats", headers=headers), 200
    )
    assert sub["sub_workspaces"] == []


async def test_a_workspace_is_found_by_its_name_when_one_and_only_one_has_it(
    cli: Atrium, account: Account
) -> None:
    unique = f"Client {uuid.uuid4().hex[:8]}"
    client = await account.sub_workspace(unique)
    await account.sub_workspace("Twin")
    await account.sub_workspace("Twin")

    by_name = await cli("tree", unique, "--json")
    twins = await cli("balances", "Twin")
    nobody = await cli("balances", "Nobody")

    assert by_name.exit_code == 0, by_name.output
    assert json.loads(by_name.stdout)["id"] == client
    assert twins.exit_code == nobody.exit_code == 2
    assert "2 workspaces are named 'Twin'" in twins.stderr
    assert "no workspace you can see is named 'Nobody'" in nobody.stderr
