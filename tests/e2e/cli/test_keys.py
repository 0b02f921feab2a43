"""API keys from the command line: the secret printed once at creation and rotation,
the list without secrets, revocation, and usage per day as a chart."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.testing import eventually
from tests.e2e.assets.conftest import Account, ok

from .conftest import Atrium

pytestmark = pytest.mark.e2e


def secret_of(printed: str) -> str:
    [key] = [line for line in printed.splitlines() if line.startswith("atr_")]
    return key


async def answers_with(gateway: httpx.AsyncClient, account: Account, key: str) -> int:
    response = await gateway.get(
        f"/v1/workspaces/{account.root_id}", headers={"authorization": f"Bearer {key}"}
    )
    return response.status_code


async def listed(gateway: httpx.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    page = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/api-keys", headers=account.owner.headers
        ),
        200,
    )
    return {key["id"]: key for key in page["items"]}


async def test_a_key_is_created_shown_once_and_listed_without_its_secret(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    created = await cli("keys", "create", account.root_id, "CI", "--rate-limit", "100")

    assert created.exit_code == 0, created.output
    assert "shown this once only" in created.stdout
    key = secret_of(created.stdout)
    assert await answers_with(gateway, account, key) == 200
    [(key_id, stored)] = (await listed(gateway, account)).items()
    assert stored["rate_limit"] == {"requests": 100, "period_seconds": 60}

    shown = await cli("keys", "list", account.root_id)

    assert shown.exit_code == 0, shown.output
    assert key not in shown.stdout
    line = next(line for line in shown.stdout.splitlines() if key_id in line)
    assert f"{key[:8]}…{key[-4:]}" in line
    assert "active" in line


async def test_a_rotated_key_replaces_the_old_one_and_a_revoked_one_is_listed_revoked(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    created = json.loads((await cli("keys", "create", account.root_id, "Bot", "--json")).stdout)

    rotated = await cli("keys", "rotate", account.root_id, created["id"])

    assert rotated.exit_code == 0, rotated.output
    new_key = secret_of(rotated.stdout)
    assert new_key != created["key"]
    assert await answers_with(gateway, account, new_key) == 200
    statuses = {key_id: key["status"] for key_id, key in (await listed(gateway, account)).items()}
    [new_id] = [key_id for key_id in statuses if key_id != created["id"]]
    assert statuses == {created["id"]: "revoked", new_id: "active"}

    revoked = await cli("keys", "revoke", account.root_id, new_id)

    assert revoked.exit_code == 0, revoked.output
    assert f"Key {new_id} revoked." in revoked.stdout
    assert (await listed(gateway, account))[new_id]["status"] == "revoked"


async def test_a_keys_usage_is_charted_per_day(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    created = json.loads((await cli("keys", "create", account.root_id, "Used", "--json")).stdout)
    for _ in range(3):
        assert await answers_with(gateway, account, created["key"]) == 200
    path = f"/v1/workspaces/{account.root_id}/api-keys/{created['id']}/usage"

    async def counted() -> dict[str, Any] | None:
        report = ok(await gateway.get(path, headers=account.owner.headers), 200)
        return report if sum(day["requests"] for day in report["items"]) == 3 else None

    report = await eventually(counted, what="the key's three requests counted")

    shown = await cli("keys", "usage", account.root_id, created["id"])
    as_json = await cli("keys", "usage", account.root_id, created["id"], "--json")

    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    assert json.loads(as_json.stdout) == report
    [day] = report["items"]
    line = next(line for line in shown.stdout.splitlines() if day["date"] in line)
    assert [cell.strip() for cell in line.split("│")[1:-1]][2:] == ["3", "0", "0"]


async def test_creating_a_key_where_api_access_is_off_is_refused(
    cli: Atrium, account: Account
) -> None:
    client = await account.sub_workspace("No API")

    refused = await cli("keys", "create", client, "Nope")

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == "API access is off for this workspace: no new keys.\n"
