"""Invitations hold seats; a person counts once per pool; at the limit an invitation
is refused until someone leaves."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events.billing import LimitsChanged
from services.identity import housekeeping, models
from shared.service import ServiceRuntime
from shared.testing import SignedAs, as_delivered

from .conftest import (
    Person,
    create_root,
    create_sub,
    event_types,
    events_about,
    invite,
    join,
    person,
    seats,
    set_seat_limit,
)

pytestmark = pytest.mark.integration

DEFAULT_SEATS = 5


async def test_an_invitee_accepts_and_becomes_a_member_with_the_invited_role(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, invitee = person("admin"), person("invitee")
    root_id = await create_root(client, admin)

    invited = await invite(client, admin, root_id, invitee, "developer")
    mine = await client.get("/v1/invitations", auth=invitee.auth)
    accepted = await client.post(
        f"/v1/invitations/{invited.json()['id']}/accept", auth=invitee.auth
    )

    assert invited.status_code == 201
    assert invited.json()["status"] == "pending"
    assert invited.json()["email"] == invitee.email
    assert [i["workspace_name"] for i in mine.json()["items"]] == ["Acme"]
    assert accepted.status_code == 200
    assert accepted.json()["role"] == "developer"
    members = await client.get(f"/v1/workspaces/{root_id}/members", auth=admin.auth)
    assert {(m["user_id"], m["role"]) for m in members.json()["items"]} == {
        (admin.user_id, "super_admin"),
        (invitee.user_id, "developer"),
    }
    types = await event_types(admin_engine, root_id)
    assert types.count("invitation.created") == 1
    assert types.count("invitation.accepted") == 1
    assert types.count("member.joined") == 2


async def test_invitations_match_the_verified_email_whatever_its_case(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    shouty = Person(
        user_id=f"shouty-{uuid.uuid4().hex[:8]}", email=f"Shouty.{uuid.uuid4().hex[:6]}@Example.com"
    )
    root_id = await create_root(client, admin)
    invited = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        json={"email": shouty.email.upper(), "role": "viewer"},
        auth=admin.auth,
    )

    accepted = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=shouty.auth)

    assert invited.json()["email"] == shouty.email.lower()
    assert accepted.status_code == 200


async def test_only_the_invitee_can_accept(client: httpx.AsyncClient) -> None:
    admin, invitee, someone = person("admin"), person("invitee"), person("someone")
    root_id = await create_root(client, admin)
    invited = await invite(client, admin, root_id, invitee)

    stolen = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=someone.auth)
    unverified = await client.post(
        f"/v1/invitations/{invited.json()['id']}/accept", auth=SignedAs(invitee.user_id)
    )

    assert stolen.status_code == 404
    assert unverified.status_code == 403
    assert unverified.json()["type"] == "email-not-verified"


async def test_a_pending_invitation_holds_a_seat_and_a_person_counts_once_per_pool(
    client: httpx.AsyncClient,
) -> None:
    admin, member, invitee = person("admin"), person("member"), person("invitee")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    await join(client, admin, root_id, member)
    await join(client, admin, child["id"], member)
    await invite(client, admin, child["id"], invitee)
    await invite(client, admin, root_id, invitee)

    pool = await seats(client, admin, child["id"])

    assert pool == {
        "pool_root_id": root_id,
        "limit": DEFAULT_SEATS,
        "used": 2,
        "pending": 1,
        "available": 2,
        "cap": None,
    }


async def test_invitation_is_refused_when_the_seat_pool_is_full_until_someone_is_removed(
    client: httpx.AsyncClient, identity: ServiceRuntime, admin_engine: AsyncEngine
) -> None:
    admin, first, second, late = person("admin"), person("first"), person("second"), person("late")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 3)
    await join(client, admin, root_id, first)
    await invite(client, admin, root_id, second)

    refused = await invite(client, admin, root_id, late)
    removed = await client.delete(
        f"/v1/workspaces/{root_id}/members/{first.user_id}", auth=admin.auth
    )
    admitted = await invite(client, admin, root_id, late)

    assert refused.status_code == 409
    assert refused.json()["type"] == "seat-limit-reached"
    assert removed.status_code == 204
    assert admitted.status_code == 201
    assert await seats(client, admin, root_id) == {
        "pool_root_id": root_id,
        "limit": 3,
        "used": 1,
        "pending": 2,
        "available": 0,
        "cap": None,
    }
    usage = [
        e.data for e in await events_about(admin_engine, root_id) if e.type == "seats.usage_changed"
    ]
    assert usage[-1] == {"billing_root_id": root_id, "root_id": root_id, "used": 1, "pending": 2}


async def test_a_sub_workspace_with_members_is_created_with_all_its_invitations_or_not_at_all(
    client: httpx.AsyncClient, identity: ServiceRuntime, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 3)
    too_many = [{"email": person(f"p{i}").email, "role": "creator"} for i in range(3)]
    enough = too_many[:2]

    refused = await create_sub(client, admin, root_id, members=too_many)
    created = await create_sub(client, admin, root_id, members=enough)

    assert refused.status_code == 409
    assert refused.json()["type"] == "seat-limit-reached"
    assert created.status_code == 201
    assert [i["email"] for i in created.json()["invitations"]] == [m["email"] for m in enough]
    async with admin_engine.connect() as connection:
        children = await connection.scalar(
            select(func.count()).where(models.workspaces.c.parent_id == root_id)
        )
    assert children == 1


async def test_an_own_billed_sub_workspace_draws_seats_from_its_own_pool(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 1)
    child = (await create_sub(client, admin, root_id, billing_mode="own")).json()

    into_root = await invite(client, admin, root_id, person("a"))
    into_child = await invite(client, admin, child["id"], person("b"))

    assert into_root.status_code == 409
    assert into_child.status_code == 201
    assert (await seats(client, admin, child["id"]))["pool_root_id"] == child["id"]


async def test_billings_copy_of_a_cap_is_not_applied_back_to_identity(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    child_id = uuid.UUID(child["id"])
    await identity.consumer.consume(
        as_delivered(
            LimitsChanged(
                workspace_id=child_id,
                root_id=uuid.UUID(root_id),
                billing_root_id=uuid.UUID(root_id),
                seats_limit=None,
                seats_cap=1,
                avatar_slots_limit=0,
            ),
            producer="billing",
            root_id=uuid.UUID(root_id),
            workspace_id=child_id,
        )
    )

    first = await invite(client, admin, child["id"], person("a"))
    second = await invite(client, admin, child["id"], person("b"))

    assert first.status_code == second.status_code == 201
    assert (await seats(client, admin, child["id"]))["cap"] is None


async def test_inviting_a_member_or_someone_already_invited_is_refused(
    client: httpx.AsyncClient,
) -> None:
    admin, member, invitee = person("admin"), person("member"), person("invitee")
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member)
    await invite(client, admin, root_id, invitee)

    again_member = await invite(client, admin, root_id, member)
    again_invitee = await invite(client, admin, root_id, invitee)

    assert again_member.status_code == 409
    assert again_member.json()["type"] == "already-member"
    assert again_invitee.status_code == 409
    assert again_invitee.json()["type"] == "already-invited"


async def test_revoking_or_declining_frees_the_held_seat(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, revoked, declining = person("admin"), person("revoked"), person("declining")
    root_id = await create_root(client, admin)
    to_revoke = (await invite(client, admin, root_id, revoked)).json()
    to_decline = (await invite(client, admin, root_id, declining)).json()
    assert (await seats(client, admin, root_id))["pending"] == 2

    revoke = await client.delete(
        f"/v1/workspaces/{root_id}/invitations/{to_revoke['id']}", auth=admin.auth
    )
    decline = await client.post(f"/v1/invitations/{to_decline['id']}/decline", auth=declining.auth)
    revoked_accept = await client.post(
        f"/v1/invitations/{to_revoke['id']}/accept", auth=revoked.auth
    )

    assert revoke.status_code == decline.status_code == 204
    assert revoked_accept.status_code == 404
    assert (await seats(client, admin, root_id))["pending"] == 0
    pending = await client.get(f"/v1/workspaces/{root_id}/invitations", auth=admin.auth)
    assert pending.json()["items"] == []
    types = await event_types(admin_engine, root_id)
    assert "invitation.revoked" in types
    assert "invitation.declined" in types


async def test_an_expired_invitation_cannot_be_accepted_and_stops_holding_its_seat(
    client: httpx.AsyncClient, identity: ServiceRuntime, admin_engine: AsyncEngine
) -> None:
    admin, late = person("admin"), person("late")
    root_id = await create_root(client, admin)
    invited = (await invite(client, admin, root_id, late)).json()
    async with admin_engine.begin() as connection:
        await connection.execute(
            update(models.invitations)
            .where(models.invitations.c.id == uuid.UUID(invited["id"]))
            .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )

    accepted = await client.post(f"/v1/invitations/{invited['id']}/accept", auth=late.auth)
    pool_before_sweep = await seats(client, admin, root_id)
    swept = await housekeeping.expire_due_invitations(identity.units_of_work)

    assert accepted.status_code == 410
    assert accepted.json()["type"] == "invitation-expired"
    assert pool_before_sweep["pending"] == 0
    assert swept >= 1
    assert "invitation.expired" in await event_types(admin_engine, root_id)
    assert (await client.get("/v1/invitations", auth=late.auth)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "email"),
        ({"email": "a@b", "role": "viewer"}, "email"),
        ({"email": "someone@example.com", "role": "owner"}, "role"),
        ({"email": "someone@example.com"}, "role"),
        ({"email": "someone@example.com", "role": "viewer", "note": "hi"}, "note"),
    ],
)
async def test_an_invalid_invitation_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, body: dict[str, str], field: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.post(
        f"/v1/workspaces/{root_id}/invitations", json=body, auth=admin.auth
    )

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    async with admin_engine.connect() as connection:
        written = await connection.scalar(
            select(func.count()).where(models.invitations.c.workspace_id == uuid.UUID(root_id))
        )
    assert written == 0


async def test_twenty_invitations_racing_for_three_free_seats_admit_exactly_three(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 4)

    results = await asyncio.gather(
        *(invite(client, admin, root_id, person(f"racer{i}")) for i in range(20))
    )

    statuses = sorted(response.status_code for response in results)
    assert statuses == [201] * 3 + [409] * 17
    assert all(r.json()["type"] == "seat-limit-reached" for r in results if r.status_code == 409)
    pool = await seats(client, admin, root_id)
    assert (pool["used"], pool["pending"], pool["available"]) == (1, 3, 0)


async def test_a_seat_limit_past_32_bits_is_kept_as_billing_sent_it(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    """Purchases add to billing's seat pool with no ceiling at 2,147,483,647."""
    admin = person("admin")
    root_id = await create_root(client, admin)

    await set_seat_limit(identity, root_id, 3_000_029_611)

    assert (await seats(client, admin, root_id))["limit"] == 3_000_029_611
    assert (await invite(client, admin, root_id, person("invitee"))).status_code == 201
