"""A sub-workspace's `api_access` and its life decide its keys: off suspends them (its
own members no longer see its API settings, a Super Admin above still does), on
restores them, deleting the workspace revokes them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.testing import eventually

from .support import Api, Person, bearer, problem_type, today

pytestmark = pytest.mark.e2e


async def set_api_access(api: Api, workspace_id: str, admin: Person, *, on: bool) -> None:
    changed = await api.client.patch(
        f"/v1/workspaces/{workspace_id}", json={"api_access": on}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["api_access"] is on


async def test_api_access_off_suspends_the_keys_and_on_restores_them(api: Api) -> None:
    owner, developer = Person.new("owner"), Person.new("dev")
    root = await api.account(owner)
    client = await api.sub_workspace(root["id"], owner)
    await api.join(client["id"], owner, developer, "developer")
    key = await api.new_key(client["id"], developer)
    spare = await api.new_key(client["id"], developer)
    assert (await api.read_with(client["id"], key["key"])).status_code == 200
    root_key = await api.new_key(root["id"], owner)

    await set_api_access(api, client["id"], owner, on=False)
    await api.refused_soon(client["id"], key["key"])

    assert (await api.read_with(client["id"], spare["key"])).status_code == 401
    assert (await api.read_with(root["id"], root_key["key"])).status_code == 200

    keys = f"/v1/workspaces/{client['id']}/api-keys"
    billing_usage = f"/v1/workspaces/{client['id']}/usage"
    by_key = {"group_by": "api_key", "from": today(), "to": today()}
    # The gateway refuses the key from its own copy of the setting; apikeys and billing
    # apply it from theirs, a moment later on a busy machine.
    await api.answers_soon(keys, developer.headers, 409)
    await api.answers_soon(billing_usage, developer.headers, 409, params=by_key)
    own_member_answers = {
        "list": await api.client.get(keys, headers=developer.headers),
        "create": await api.client.post(keys, json={"name": "No"}, headers=developer.headers),
        "rotate": await api.client.post(f"{keys}/{key['id']}/rotate", headers=developer.headers),
        "key usage": await api.usage(client["id"], developer, key["id"]),
        "workspace usage": await api.usage(client["id"], developer),
        "billing usage by key": await api.client.get(
            billing_usage, params=by_key, headers=developer.headers
        ),
    }
    for what, answer in own_member_answers.items():
        assert answer.status_code == 409, (what, answer.text)
        assert problem_type(answer) == "api-access-disabled", what

    from_above = await api.keys(client["id"], owner)
    assert {entry["status"] for entry in from_above.values()} == {"suspended"}
    assert set(from_above) == {key["id"], spare["id"]}
    assert (await api.usage(client["id"], owner, key["id"])).status_code == 200
    assert (await api.usage(client["id"], owner)).status_code == 200
    for refused in (
        await api.client.post(keys, json={"name": "No"}, headers=owner.headers),
        await api.client.post(f"{keys}/{key['id']}/rotate", headers=owner.headers),
    ):
        assert refused.status_code == 409, refused.text
        assert problem_type(refused) == "api-access-disabled"
    assert set(await api.keys(client["id"], owner)) == {key["id"], spare["id"]}

    await set_api_access(api, client["id"], owner, on=True)
    await api.accepted_soon(client["id"], key["key"])
    await api.answers_soon(keys, developer.headers, 200)

    assert (await api.read_with(client["id"], spare["key"])).status_code == 200
    restored = await api.keys(client["id"], developer)
    assert {entry["status"] for entry in restored.values()} == {"active"}


async def test_a_revoked_key_stays_revoked_when_api_access_comes_back(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    client = await api.sub_workspace(root["id"], owner)
    key = await api.new_key(client["id"], owner)
    kept = await api.new_key(client["id"], owner)
    revoked = await api.client.delete(
        f"/v1/workspaces/{client['id']}/api-keys/{key['id']}", headers=owner.headers
    )
    assert revoked.status_code == 204

    await set_api_access(api, client["id"], owner, on=False)
    await api.refused_soon(client["id"], kept["key"])
    await set_api_access(api, client["id"], owner, on=True)
    await api.accepted_soon(client["id"], kept["key"])

    async def restored_by_apikeys() -> dict[str, Any] | None:
        listed = await api.keys(client["id"], owner)
        return listed if listed[kept["id"]]["status"] == "active" else None

    listed = await eventually(restored_by_apikeys, what="apikeys to restore the kept key")
    assert listed[key["id"]]["status"] == "revoked"
    assert (await api.read_with(client["id"], key["key"])).status_code == 401


async def test_deleting_the_workspace_revokes_its_keys(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    client = await api.sub_workspace(root["id"], owner)
    key = await api.new_key(client["id"], owner)
    root_key = await api.new_key(root["id"], owner)
    assert (await api.read_with(client["id"], key["key"])).status_code == 200

    deleted = await api.client.delete(f"/v1/workspaces/{client['id']}", headers=owner.headers)
    assert deleted.status_code == 202, deleted.text

    async def refused_everywhere() -> bool | None:
        response = await api.client.get(
            f"/v1/workspaces/{client['id']}/balances", headers=bearer(key["key"])
        )
        return True if response.status_code == 401 else None

    await eventually(refused_everywhere, timeout=15, what="the deleted workspace's key refused")
    assert (await api.read_with(root["id"], root_key["key"])).status_code == 200
