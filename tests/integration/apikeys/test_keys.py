"""Creating, listing, rotating and revoking keys, and who may; the key events published
for each change, read off `atrium.apikeys.key`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.identity import WorkspaceDeletionStarted
from contracts.permissions import Role
from shared import api_keys
from shared.settings import get_settings
from tests.integration.apikeys.conftest import ApiKeys, Workspace

pytestmark = pytest.mark.integration

LISTED = {
    "id",
    "name",
    "prefix",
    "last4",
    "status",
    "created_at",
    "expires_at",
    "rate_limit",
    "monthly_credit_limit",
    "last_used_at",
}


async def test_a_developer_creates_a_key_that_is_shown_once_and_listed_without_it(
    apikeys: ApiKeys,
) -> None:
    workspace = await apikeys.workspace()
    expiry = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)

    response = await apikeys.create(
        workspace,
        {
            "name": "CI pipeline",
            "expires_at": expiry.isoformat(),
            "rate_limit": {"requests": 100, "period_seconds": 60},
            "monthly_credit_limit": 500,
        },
    )

    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["key"]
    assert api_keys.well_formed(secret)
    assert created["prefix"] == secret[:8]
    assert created["last4"] == secret[-4:]
    assert created["status"] == "active"
    assert created["name"] == "CI pipeline"
    assert datetime.fromisoformat(created["expires_at"]) == expiry
    assert created["rate_limit"] == {"requests": 100, "period_seconds": 60}
    assert created["monthly_credit_limit"] == 500
    listed = await apikeys.keys(workspace)
    assert set(listed) == {created["id"]}
    assert set(listed[created["id"]]) == LISTED
    assert secret not in str(listed)
    [(kind, data)] = await apikeys.events.until(workspace.id, 1)
    assert kind == "apikey.created"
    assert data["hash"] == api_keys.key_hash(secret, apikeys_pepper())
    assert data["rotated_from"] is None
    assert data["suspended"] is False
    assert data["monthly_credit_limit"] == 500
    assert secret not in str(apikeys.events.of(workspace.id))


def apikeys_pepper() -> str:
    return get_settings().apikey_pepper


async def test_only_developers_and_super_admins_in_person_create_keys(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()

    for role in (Role.CREATOR, Role.VIEWER):
        response = await apikeys.create(workspace, role=role)
        assert response.status_code == 403, response.text
    by_key = await apikeys.create(workspace, api_key_id=uuid.uuid4())
    assert by_key.status_code == 403
    assert by_key.json()["type"] == "forbidden"
    assert (await apikeys.create(workspace, role=Role.SUPER_ADMIN)).status_code == 201
    assert (await apikeys.create(workspace, role=Role.DEVELOPER)).status_code == 201
    assert len(await apikeys.keys(workspace)) == 2


async def test_a_principal_made_for_another_workspace_finds_nothing(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    other = await apikeys.workspace()
    key = await apikeys.created(other)

    elsewhere = apikeys.as_(workspace, role=Role.SUPER_ADMIN)
    create = await apikeys.client.post(
        f"/v1/workspaces/{other.id}/api-keys", json={"name": "x"}, auth=elsewhere
    )
    revoke = await apikeys.client.delete(
        f"/v1/workspaces/{other.id}/api-keys/{key['id']}", auth=elsewhere
    )

    assert create.status_code == 404
    assert revoke.status_code == 404
    assert (await apikeys.status_of(other, key["id"])) == "active"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "expires_at": "2030-01-01T00:00:00"},
        {"name": ""},
        {"name": "x", "scopes": ["all"]},
        {"name": "x", "rate_limit": {"requests": "10", "period_seconds": 60}},
        {"name": "x", "rate_limit": {"requests": 10, "period_seconds": 0}},
        {"name": "x", "monthly_credit_limit": -5},
        {"name": "x", "monthly_credit_limit": 10**13},
        {"name": "x", "monthly_credit_limit": "7"},
    ],
)
async def test_bad_input_is_a_422_and_creates_nothing(
    apikeys: ApiKeys, body: dict[str, object]
) -> None:
    workspace = await apikeys.workspace()

    response = await apikeys.create(workspace, body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await apikeys.keys(workspace) == {}


async def test_keys_are_listed_newest_first_a_page_at_a_time(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    made = [(await apikeys.created(workspace, name=f"key {n}"))["id"] for n in range(5)]
    auth = apikeys.as_(workspace)

    seen: list[str] = []
    cursor = None
    while True:
        response = await apikeys.client.get(
            f"/v1/workspaces/{workspace.id}/api-keys",
            params={"limit": 2} | ({} if cursor is None else {"cursor": cursor}),
            auth=auth,
        )
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(made))
    bad = await apikeys.client.get(
        f"/v1/workspaces/{workspace.id}/api-keys", params={"cursor": "bm9wZQ=="}, auth=auth
    )
    assert bad.status_code == 422


async def test_rotating_makes_a_new_key_with_the_same_settings_and_ends_the_old_one(
    apikeys: ApiKeys,
) -> None:
    workspace = await apikeys.workspace()
    old = await apikeys.created(
        workspace,
        name="billing job",
        expires_at=(datetime.now(UTC) + timedelta(days=3)).isoformat(),
        rate_limit={"requests": 5, "period_seconds": 1},
        monthly_credit_limit=7,
    )

    response = await apikeys.rotate(workspace, old["id"])

    assert response.status_code == 201, response.text
    new = response.json()
    assert new["id"] != old["id"]
    assert new["key"] != old["key"]
    for setting in ("name", "expires_at", "rate_limit", "monthly_credit_limit"):
        assert new[setting] == old[setting]
    assert new["status"] == "active"
    assert await apikeys.status_of(workspace, old["id"]) == "revoked"
    events = await apikeys.events.until(workspace.id, 3)
    assert [kind for kind, _ in events] == ["apikey.created", "apikey.created", "apikey.revoked"]
    assert events[1][1]["rotated_from"] == old["id"]
    assert events[1][1]["key_id"] == new["id"]
    assert events[2][1]["key_id"] == old["id"]
    assert events[2][1]["reason"] == "rotated"
    again = await apikeys.rotate(workspace, old["id"])
    assert again.status_code == 409
    assert again.json()["type"] == "key-not-active"


async def test_a_rotated_key_works_through_its_grace_and_a_revocation_ends_the_grace(
    apikeys: ApiKeys,
) -> None:
    workspace = await apikeys.workspace()
    first = await apikeys.created(workspace)
    second = await apikeys.created(workspace)

    rotated = await apikeys.rotate(workspace, first["id"], grace=2)
    await apikeys.rotate(workspace, second["id"], grace=600)

    assert rotated.status_code == 201
    assert await apikeys.status_of(workspace, first["id"]) == "active"
    in_grace = await apikeys.rotate(workspace, second["id"])
    assert in_grace.status_code == 409
    assert in_grace.json()["type"] == "key-not-active"
    await asyncio.sleep(2.2)
    assert await apikeys.status_of(workspace, first["id"]) == "revoked"
    assert await apikeys.status_of(workspace, second["id"]) == "active"
    assert (await apikeys.revoke(workspace, second["id"])).status_code == 204
    assert await apikeys.status_of(workspace, second["id"]) == "revoked"
    revocations = [
        data
        for kind, data in await apikeys.events.until(workspace.id, 7)
        if kind == "apikey.revoked" and data["key_id"] == second["id"]
    ]
    assert [data["reason"] for data in revocations] == ["rotated", "revoked"]
    grace_end = datetime.fromisoformat(revocations[0]["effective_at"])
    assert grace_end > datetime.fromisoformat(revocations[1]["effective_at"])


@pytest.mark.parametrize("grace", ["-1", "604801", "soon", "1.5", ""])
async def test_a_grace_out_of_range_is_a_422_and_rotates_nothing(
    apikeys: ApiKeys, grace: str
) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)

    response = await apikeys.rotate(workspace, key["id"], grace=grace)

    assert response.status_code == 422, response.text
    assert list(await apikeys.keys(workspace)) == [key["id"]]
    assert await apikeys.status_of(workspace, key["id"]) == "active"


async def test_a_key_expires_and_an_expired_key_cannot_be_rotated(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(
        workspace, expires_at=(datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    )

    assert await apikeys.status_of(workspace, key["id"]) == "active"
    await asyncio.sleep(1.7)
    assert await apikeys.status_of(workspace, key["id"]) == "expired"
    response = await apikeys.rotate(workspace, key["id"])
    assert response.status_code == 409
    assert response.json()["type"] == "key-not-active"


async def test_revoking_is_idempotent_and_announced_once(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)

    assert (await apikeys.revoke(workspace, key["id"])).status_code == 204
    assert (await apikeys.revoke(workspace, key["id"])).status_code == 204

    assert await apikeys.status_of(workspace, key["id"]) == "revoked"
    marker = await apikeys.created(workspace)  # published after anything the revokes staged
    events = await apikeys.events.until(workspace.id, 3)
    assert [kind for kind, _ in events] == ["apikey.created", "apikey.revoked", "apikey.created"]
    assert events[2][1]["key_id"] == marker["id"]
    assert events[1][1]["reason"] == "revoked"


async def test_unknown_and_foreign_keys_are_not_found(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    other = await apikeys.workspace()
    foreign = await apikeys.created(other)

    for key_id in (str(uuid.uuid4()), foreign["id"]):
        assert (await apikeys.revoke(workspace, key_id)).status_code == 404
        assert (await apikeys.rotate(workspace, key_id)).status_code == 404
        assert (await apikeys.usage(workspace, key_id)).status_code == 404
    assert await apikeys.status_of(other, foreign["id"]) == "active"


async def test_a_key_cannot_rotate_or_revoke_keys_but_may_list_them(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)
    as_key = uuid.UUID(key["id"])

    assert (await apikeys.rotate(workspace, key["id"], api_key_id=as_key)).status_code == 403
    assert (await apikeys.revoke(workspace, key["id"], api_key_id=as_key)).status_code == 403
    assert set(await apikeys.keys(workspace, api_key_id=as_key)) == {key["id"]}
    assert await apikeys.status_of(workspace, key["id"]) == "active"


async def test_api_access_off_suspends_the_keys_and_on_restores_them(apikeys: ApiKeys) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    live = await apikeys.created(sub)
    revoked = await apikeys.created(sub)
    await apikeys.revoke(sub, revoked["id"])

    await apikeys.set_api_access(sub, False)

    events = await apikeys.events.until(sub.id, 4)
    assert events[3] == (
        "apikey.suspended",
        {"key_id": live["id"], "workspace_id": str(sub.id), "root_id": str(root.id)},
    )
    own = await apikeys.client.get(
        f"/v1/workspaces/{sub.id}/api-keys", auth=apikeys.as_(sub, role=Role.SUPER_ADMIN)
    )
    assert own.status_code == 409
    assert own.json()["type"] == "api-access-disabled"
    assert (await apikeys.usage(sub)).status_code == 409
    statuses = {
        key_id: key["status"]
        for key_id, key in (await apikeys.keys(sub, ancestor_super_admin=True)).items()
    }
    assert statuses == {live["id"]: "suspended", revoked["id"]: "revoked"}
    for auth in ({"role": Role.SUPER_ADMIN}, {"ancestor_super_admin": True}):
        refused = await apikeys.create(sub, **auth)
        assert refused.status_code == 409
        assert refused.json()["type"] == "api-access-disabled"
        assert (await apikeys.rotate(sub, live["id"], **auth)).status_code == 409

    await apikeys.set_api_access(sub, True)

    events = await apikeys.events.until(sub.id, 5)
    assert events[4][0] == "apikey.restored"
    assert events[4][1]["key_id"] == live["id"]
    assert await apikeys.status_of(sub, live["id"]) == "active"
    assert len(apikeys.events.of(sub.id)) == 5


async def test_a_super_admin_from_above_revokes_while_api_access_is_off(apikeys: ApiKeys) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    key = await apikeys.created(sub)
    await apikeys.set_api_access(sub, False)
    await apikeys.events.until(sub.id, 2)

    own = await apikeys.revoke(sub, key["id"], role=Role.SUPER_ADMIN)
    from_above = await apikeys.revoke(sub, key["id"], ancestor_super_admin=True)

    assert own.status_code == 409
    assert from_above.status_code == 204
    assert await apikeys.status_of(sub, key["id"]) == "revoked"


async def test_deleting_a_workspace_revokes_its_keys(apikeys: ApiKeys) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    keys = [await apikeys.created(sub) for _ in range(2)]

    await apikeys.delete(sub)

    events = await apikeys.events.until(sub.id, 4)
    revoked = {data["key_id"]: data["reason"] for kind, data in events if kind == "apikey.revoked"}
    assert revoked == {key["id"]: "workspace_deleted" for key in keys}
    response = await apikeys.client.get(
        f"/v1/workspaces/{sub.id}/api-keys", auth=apikeys.as_(sub, ancestor_super_admin=True)
    )
    assert response.status_code == 404
    lookup = await apikeys.look_up(api_keys.key_hash(keys[0]["key"], apikeys_pepper()))
    assert lookup.status_code == 200
    assert lookup.json()["revoked_at"] is not None


async def test_a_key_is_made_for_a_workspace_whose_event_arrives_300_ms_later(
    apikeys: ApiKeys,
) -> None:
    root = await apikeys.workspace()
    sub = Workspace(uuid.uuid4(), root.root_id, root.id)

    request = asyncio.create_task(apikeys.create(sub))
    await asyncio.sleep(0.3)
    await apikeys.identity.publish(apikeys.announcement(sub), root_id=sub.root_id)
    response = await request

    assert response.status_code == 201, response.text
    assert len(await apikeys.keys(sub)) == 1


async def test_a_workspace_that_never_arrives_is_a_503_and_nothing_is_made(
    apikeys: ApiKeys,
) -> None:
    never = Workspace(uuid.uuid4(), uuid.uuid4())

    response = await apikeys.create(never)

    assert response.status_code == 503
    assert response.json()["type"] == "not-ready-yet"
    assert "retry-after" in response.headers
    await apikeys.identity.publish(apikeys.announcement(never), root_id=never.root_id)
    await apikeys.until_known(never)
    assert await apikeys.keys(never) == {}


async def test_creators_and_viewers_do_not_see_keys(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)

    for role in (Role.CREATOR, Role.VIEWER):
        auth = apikeys.as_(workspace, role=role)
        listed = await apikeys.client.get(f"/v1/workspaces/{workspace.id}/api-keys", auth=auth)
        usage = await apikeys.client.get(
            f"/v1/workspaces/{workspace.id}/api-keys/{key['id']}/usage", auth=auth
        )
        revoked = await apikeys.revoke(workspace, key["id"], role=role)
        assert (listed.status_code, usage.status_code, revoked.status_code) == (403, 403, 403)
    assert await apikeys.status_of(workspace, key["id"]) == "active"


async def test_a_deletion_that_overtakes_the_creation_leaves_the_workspace_deleted(
    apikeys: ApiKeys,
) -> None:
    root = await apikeys.workspace()
    sub = Workspace(uuid.uuid4(), root.root_id, root.id)

    await apikeys.delete(sub)
    await apikeys.identity.publish(apikeys.announcement(sub), root_id=sub.root_id)
    marker = await apikeys.workspace(parent=root)  # announced after both, same partition

    response = await apikeys.create(sub, ancestor_super_admin=True)
    assert response.status_code == 404
    assert marker.id != sub.id


async def test_a_workspace_being_deleted_takes_no_new_keys(apikeys: ApiKeys) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    key = await apikeys.created(sub)

    await apikeys.identity.publish(
        WorkspaceDeletionStarted(id=sub.id, parent_id=sub.parent_id, root_id=sub.root_id),
        root_id=sub.root_id,
    )
    await apikeys.workspace(parent=root)  # announced after it, in the same partition

    response = await apikeys.create(sub)
    assert response.status_code == 409
    assert response.json()["type"] == "workspace-deleting"
    assert (await apikeys.rotate(sub, key["id"])).status_code == 409
    assert await apikeys.status_of(sub, key["id"]) == "active"
