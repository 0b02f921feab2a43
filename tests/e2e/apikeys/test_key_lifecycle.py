"""A key's life through the gateway: created where `api_access` is on by a developer or
Super Admin, shown once, listed without its secret, used in the very next request,
rotated (with and without grace), revoked, expired: refused within a second of the
change (`REFUSED_WITHIN_SECONDS` allows for a busy machine)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared import api_keys
from tests.e2e.conftest import RunningSystem

from .support import REFUSED_WITHIN_SECONDS, Api, Person, bearer, problem_type

pytestmark = pytest.mark.e2e

KEY_FIELDS = {
    "id",
    "name",
    "key",
    "prefix",
    "last4",
    "status",
    "created_at",
    "expires_at",
    "rate_limit",
    "monthly_credit_limit",
}


async def test_a_developer_creates_a_key_shown_once_and_it_works_in_the_next_request(
    system: RunningSystem, api: Api
) -> None:
    owner, developer = Person.new("owner"), Person.new("dev")
    root = await api.account(owner)
    await api.join(root["id"], owner, developer, "developer")
    expires_at = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)

    created = await api.new_key(
        root["id"],
        developer,
        name="CI",
        expires_at=expires_at.isoformat(),
        rate_limit={"requests": 100, "period_seconds": 60},
        monthly_credit_limit=500,
    )
    used = await api.read_with(root["id"], created["key"])
    by_header = await api.client.get(
        f"/v1/workspaces/{root['id']}", headers={"x-api-key": created["key"]}
    )

    assert set(created) >= KEY_FIELDS
    assert api_keys.well_formed(created["key"])
    assert created["name"] == "CI"
    assert created["prefix"] == api_keys.display_prefix(created["key"])
    assert created["last4"] == api_keys.last4(created["key"])
    assert created["status"] == "active"
    assert datetime.fromisoformat(created["expires_at"]) == expires_at
    assert created["rate_limit"] == {"requests": 100, "period_seconds": 60}
    assert created["monthly_credit_limit"] == 500
    assert used.status_code == 200, used.text
    assert used.json()["id"] == root["id"]
    assert by_header.status_code == 200, by_header.text

    listed = await api.keys(root["id"], owner)
    shown = listed[created["id"]]
    assert "key" not in shown
    assert created["key"] not in str(listed)
    assert {field: shown[field] for field in KEY_FIELDS - {"key", "status"}} == {
        field: created[field] for field in KEY_FIELDS - {"key", "status"}
    }
    assert shown["status"] == "active"
    assert "last_used_at" in shown


async def test_a_super_admin_creates_keys_and_the_list_shows_each_once_across_pages(
    api: Api,
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    made = [await api.new_key(root["id"], owner, name=f"Key {n}") for n in range(5)]

    listed = await api.keys(root["id"], owner)

    assert set(listed) == {key["id"] for key in made}
    assert {key["last4"] for key in listed.values()} == {key["last4"] for key in made}
    assert all(key["key"] not in str(listed) for key in made)


@pytest.mark.parametrize("role", ["creator", "viewer"])
async def test_a_creator_or_viewer_cannot_see_or_manage_keys(api: Api, role: str) -> None:
    owner, member = Person.new("owner"), Person.new(role)
    root = await api.account(owner)
    await api.join(root["id"], owner, member, role)
    key = await api.new_key(root["id"], owner)
    keys = f"/v1/workspaces/{root['id']}/api-keys"

    answers = [
        await api.client.post(keys, json={"name": "Mine"}, headers=member.headers),
        await api.client.get(keys, headers=member.headers),
        await api.client.post(f"{keys}/{key['id']}/rotate", headers=member.headers),
        await api.client.delete(f"{keys}/{key['id']}", headers=member.headers),
        await api.client.get(f"{keys}/{key['id']}/usage", headers=member.headers),
        await api.client.get(f"/v1/workspaces/{root['id']}/api-usage", headers=member.headers),
    ]

    assert [answer.status_code for answer in answers] == [403] * len(answers), [
        answer.text for answer in answers
    ]
    assert list(await api.keys(root["id"], owner)) == [key["id"]]
    assert (await api.read_with(root["id"], key["key"])).status_code == 200


async def test_no_key_where_api_access_is_off(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    closed = await api.sub_workspace(root["id"], owner, api_access=False)

    refused = await api.client.post(
        f"/v1/workspaces/{closed['id']}/api-keys", json={"name": "No"}, headers=owner.headers
    )

    assert refused.status_code == 409, refused.text
    assert problem_type(refused) == "api-access-disabled"
    assert await api.keys(closed["id"], owner) == {}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Late", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "Now", "expires_at": "NOW"},
        {"name": "Extra", "secret": "mine"},
        {"name": ""},
        {"name": "Zero", "rate_limit": {"requests": 0, "period_seconds": 60}},
        {"name": "Negative", "monthly_credit_limit": -1},
    ],
)
async def test_a_key_with_a_past_expiry_or_bad_settings_is_a_422_and_nothing_is_made(
    api: Api, body: dict[str, object]
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    if body.get("expires_at") == "NOW":
        body = {**body, "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}

    refused = await api.client.post(
        f"/v1/workspaces/{root['id']}/api-keys", json=body, headers=owner.headers
    )

    assert refused.status_code == 422, refused.text
    assert problem_type(refused) == "validation-failed"
    assert refused.json()["errors"]
    assert await api.keys(root["id"], owner) == {}


async def test_a_sub_workspace_and_its_key_in_consecutive_requests_and_the_key_at_once(
    api: Api,
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    for attempt in range(5):
        child = await api.sub_workspace(root["id"], owner, name=f"Client {attempt}")
        key = await api.new_key(child["id"], owner)
        used = await api.read_with(child["id"], key["key"])
        balances = await api.client.get(
            f"/v1/workspaces/{child['id']}/balances", headers=bearer(key["key"])
        )
        assert used.status_code == 200, used.text
        assert balances.status_code == 200, balances.text


async def test_a_rotated_key_keeps_its_settings_and_the_old_one_stops_at_once_without_grace(
    api: Api,
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    old = await api.new_key(
        root["id"],
        owner,
        name="Rotating",
        rate_limit={"requests": 1000, "period_seconds": 60},
        monthly_credit_limit=70,
    )
    assert (await api.read_with(root["id"], old["key"])).status_code == 200

    rotated = await api.client.post(
        f"/v1/workspaces/{root['id']}/api-keys/{old['id']}/rotate", headers=owner.headers
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    # The gateway that answered the rotation refuses the old key from the next request on.
    old_after = await api.read_with(root["id"], old["key"])
    new_after = await api.read_with(root["id"], new["key"])
    assert old_after.status_code == 401, old_after.text

    assert new["id"] != old["id"]
    assert new["key"] != old["key"]
    assert api_keys.well_formed(new["key"])
    for setting in ("name", "rate_limit", "monthly_credit_limit", "expires_at"):
        assert new[setting] == old[setting], setting
    assert new["status"] == "active"
    assert new_after.status_code == 200, new_after.text
    listed = await api.keys(root["id"], owner)
    assert listed[new["id"]]["status"] == "active"
    assert listed[old["id"]]["status"] == "revoked"


async def test_a_rotated_key_works_during_its_grace_and_not_after(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    old = await api.new_key(root["id"], owner)
    grace = 3

    before = time.perf_counter()
    rotated = await api.client.post(
        f"/v1/workspaces/{root['id']}/api-keys/{old['id']}/rotate",
        params={"grace_seconds": grace},
        headers=owner.headers,
    )
    assert rotated.status_code == 201, rotated.text
    during = await api.read_with(root["id"], old["key"])
    new_at_once = await api.read_with(root["id"], rotated.json()["key"])
    await api.refused_soon(root["id"], old["key"], timeout=grace + REFUSED_WITHIN_SECONDS)
    refused_after = time.perf_counter() - before

    assert during.status_code == 200, during.text
    assert new_at_once.status_code == 200, new_at_once.text
    assert refused_after >= grace - 0.2, refused_after
    assert (await api.read_with(root["id"], rotated.json()["key"])).status_code == 200


@pytest.mark.parametrize("grace", ["-1", "abc", "100000000"])
async def test_a_bad_grace_is_a_422_and_the_key_is_not_rotated(api: Api, grace: str) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    key = await api.new_key(root["id"], owner)

    refused = await api.client.post(
        f"/v1/workspaces/{root['id']}/api-keys/{key['id']}/rotate",
        params={"grace_seconds": grace},
        headers=owner.headers,
    )

    assert refused.status_code == 422, refused.text
    assert list(await api.keys(root["id"], owner)) == [key["id"]]
    assert (await api.read_with(root["id"], key["key"])).status_code == 200


async def test_a_revoked_key_is_refused_from_the_next_request(api: Api) -> None:
    owner, developer = Person.new("owner"), Person.new("dev")
    root = await api.account(owner)
    await api.join(root["id"], owner, developer, "developer")
    key = await api.new_key(root["id"], developer)
    other = await api.new_key(root["id"], developer)
    assert (await api.read_with(root["id"], key["key"])).status_code == 200

    revoked = await api.client.delete(
        f"/v1/workspaces/{root['id']}/api-keys/{key['id']}", headers=developer.headers
    )
    # The very next request, through the gateway that answered the revocation.
    refused = await api.read_with(root["id"], key["key"])
    again = await api.client.delete(
        f"/v1/workspaces/{root['id']}/api-keys/{key['id']}", headers=developer.headers
    )
    rotate_revoked = await api.client.post(
        f"/v1/workspaces/{root['id']}/api-keys/{key['id']}/rotate", headers=developer.headers
    )

    assert revoked.status_code == 204, revoked.text
    assert refused.status_code == 401, refused.text
    assert again.status_code == 204, again.text
    assert rotate_revoked.status_code == 409, rotate_revoked.text
    assert problem_type(rotate_revoked) == "key-not-active"
    assert (await api.read_with(root["id"], other["key"])).status_code == 200
    listed = await api.keys(root["id"], owner)
    assert listed[key["id"]]["status"] == "revoked"
    assert listed[other["id"]]["status"] == "active"


async def test_an_unknown_key_id_is_a_404(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    unknown = uuid.uuid4()

    answers = [
        await api.client.delete(
            f"/v1/workspaces/{root['id']}/api-keys/{unknown}", headers=owner.headers
        ),
        await api.client.post(
            f"/v1/workspaces/{root['id']}/api-keys/{unknown}/rotate", headers=owner.headers
        ),
        await api.client.get(
            f"/v1/workspaces/{root['id']}/api-keys/{unknown}/usage", headers=owner.headers
        ),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]


async def test_an_expired_key_is_refused_and_listed_expired(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    key = await api.new_key(root["id"], owner, expires_at=expires_at.isoformat())
    assert (await api.read_with(root["id"], key["key"])).status_code == 200

    await api.refused_soon(root["id"], key["key"], timeout=2 + REFUSED_WITHIN_SECONDS)

    assert datetime.now(UTC) >= expires_at
    assert (await api.keys(root["id"], owner))[key["id"]]["status"] == "expired"
