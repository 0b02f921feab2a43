"""Members and roles, the last Super Admin, and deleting sub-workspaces."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.identity import deletion, housekeeping, models
from services.identity.commands import DeleteWorkspace
from shared.service import ServiceRuntime
from shared.testing import eventually

from .conftest import (
    create_root,
    create_sub,
    event_types,
    events_about,
    invite,
    join,
    person,
    seats,
)

pytestmark = pytest.mark.integration


async def test_a_super_admin_changes_a_members_role(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member, "viewer")

    changed = await client.patch(
        f"/v1/workspaces/{root_id}/members/{member.user_id}",
        json={"role": "developer"},
        auth=admin.auth,
    )

    assert changed.status_code == 200
    assert changed.json()["role"] == "developer"
    role_changes = [
        e.data for e in await events_about(admin_engine, root_id) if e.type == "member.role_changed"
    ]
    assert role_changes == [
        {
            "workspace_id": root_id,
            "root_id": root_id,
            "user_id": member.user_id,
            "role": "developer",
            "previous_role": "viewer",
        }
    ]


@pytest.mark.parametrize("role", ["developer", "creator", "viewer"])
async def test_only_a_super_admin_manages_members(client: httpx.AsyncClient, role: str) -> None:
    admin, member, other = person("admin"), person(role), person("other")
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member, role)
    await join(client, admin, root_id, other, "viewer")

    promoted = await client.patch(
        f"/v1/workspaces/{root_id}/members/{other.user_id}",
        json={"role": "super_admin"},
        auth=member.auth,
    )
    removed = await client.delete(
        f"/v1/workspaces/{root_id}/members/{other.user_id}", auth=member.auth
    )
    invited = await invite(client, member, root_id, person("new"))

    assert promoted.status_code == removed.status_code == invited.status_code == 403


async def test_a_member_can_leave_and_frees_their_seat(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member)

    left = await client.delete(
        f"/v1/workspaces/{root_id}/members/{member.user_id}", auth=member.auth
    )

    assert left.status_code == 204
    assert (await seats(client, admin, root_id))["used"] == 1
    assert (await client.get(f"/v1/workspaces/{root_id}", auth=member.auth)).status_code == 404
    removals = [
        e.data for e in await events_about(admin_engine, root_id) if e.type == "member.removed"
    ]
    assert removals[-1]["reason"] == "left"


async def test_a_seat_stays_taken_while_the_person_holds_another_place_in_the_pool(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    await join(client, admin, root_id, member)
    await join(client, admin, child["id"], member)

    await client.delete(f"/v1/workspaces/{child['id']}/members/{member.user_id}", auth=admin.auth)

    assert (await seats(client, admin, root_id))["used"] == 2


async def test_the_last_super_admin_of_a_root_can_be_neither_demoted_nor_removed(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    demoted = await client.patch(
        f"/v1/workspaces/{root_id}/members/{admin.user_id}",
        json={"role": "viewer"},
        auth=admin.auth,
    )
    removed = await client.delete(
        f"/v1/workspaces/{root_id}/members/{admin.user_id}", auth=admin.auth
    )

    assert demoted.status_code == removed.status_code == 409
    assert demoted.json()["type"] == removed.json()["type"] == "last-super-admin"
    members = await client.get(f"/v1/workspaces/{root_id}/members", auth=admin.auth)
    assert [(m["user_id"], m["role"]) for m in members.json()["items"]] == [
        (admin.user_id, "super_admin")
    ]


async def test_two_super_admins_demoting_each_other_at_once_leave_one(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = person("alice"), person("bob")
    root_id = await create_root(client, alice)
    await join(client, alice, root_id, bob, "super_admin")

    results = await asyncio.gather(
        client.patch(
            f"/v1/workspaces/{root_id}/members/{bob.user_id}",
            json={"role": "viewer"},
            auth=alice.auth,
        ),
        client.patch(
            f"/v1/workspaces/{root_id}/members/{alice.user_id}",
            json={"role": "viewer"},
            auth=bob.auth,
        ),
    )

    assert sorted(r.status_code for r in results) in ([200, 409], [200, 404], [200, 403])
    members = await client.get(f"/v1/workspaces/{root_id}/members", auth=alice.auth)
    if members.status_code == 404:
        members = await client.get(f"/v1/workspaces/{root_id}/members", auth=bob.auth)
    super_admins = [m for m in members.json()["items"] if m["role"] == "super_admin"]
    assert len(super_admins) == 1


async def test_removing_the_last_two_super_admins_at_once_removes_only_one(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    root_id = await create_root(client, alice)
    await join(client, alice, root_id, bob, "super_admin")
    await join(client, alice, root_id, carol, "super_admin")
    await client.patch(
        f"/v1/workspaces/{root_id}/members/{carol.user_id}",
        json={"role": "viewer"},
        auth=alice.auth,
    )

    results = await asyncio.gather(
        client.delete(f"/v1/workspaces/{root_id}/members/{alice.user_id}", auth=alice.auth),
        client.delete(f"/v1/workspaces/{root_id}/members/{bob.user_id}", auth=bob.auth),
    )

    assert sorted(r.status_code for r in results) == [204, 409]
    members = await client.get(f"/v1/workspaces/{root_id}/members", auth=carol.auth)
    assert [m["role"] for m in members.json()["items"]].count("super_admin") == 1


async def test_deleting_a_sub_workspace_ends_its_members_and_invitations_and_frees_seats(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, member, invitee = person("admin"), person("member"), person("invitee")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    await join(client, admin, child["id"], member)
    await invite(client, admin, child["id"], invitee)
    assert (await seats(client, admin, root_id))["used"] == 2

    deleted = await client.delete(f"/v1/workspaces/{child['id']}", auth=admin.auth)

    assert deleted.status_code == 202
    assert deleted.json() == {"id": child["id"], "status": "deleting"}

    async def gone() -> bool | None:
        response = await client.get(f"/v1/workspaces/{child['id']}", auth=admin.auth)
        return True if response.status_code == 404 else None

    await eventually(gone, what="the deletion to finish")
    pool = await seats(client, admin, root_id)
    assert (pool["used"], pool["pending"]) == (1, 0)
    assert (await client.get(f"/v1/workspaces/{child['id']}", auth=member.auth)).status_code == 404
    types = await event_types(admin_engine, root_id)
    for expected in (
        "workspace.deletion_started",
        "member.removed",
        "invitation.revoked",
        "workspace.deleted",
    ):
        assert expected in types
    again = await client.delete(f"/v1/workspaces/{child['id']}", auth=admin.auth)
    assert again.status_code == 404


async def test_a_workspace_with_sub_workspaces_is_deleted_only_with_cascade_deepest_first(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id, billing_mode="own")).json()
    grandchild = (await create_sub(client, admin, child["id"])).json()

    refused = await client.delete(f"/v1/workspaces/{child['id']}", auth=admin.auth)
    cascaded = await client.delete(
        f"/v1/workspaces/{child['id']}", params={"cascade": "true"}, auth=admin.auth
    )

    assert refused.status_code == 409
    assert refused.json()["type"] == "has-sub-workspaces"
    assert cascaded.status_code == 202

    async def both_gone() -> bool | None:
        async with admin_engine.connect() as connection:
            statuses = (
                (
                    await connection.execute(
                        select(models.workspaces.c.status).where(
                            models.workspaces.c.id.in_(
                                [uuid.UUID(child["id"]), uuid.UUID(grandchild["id"])]
                            )
                        )
                    )
                )
                .scalars()
                .all()
            )
        return True if set(statuses) == {"deleted"} else None

    await eventually(both_gone, what="the subtree to be deleted")
    deleted_order = [
        e.data["id"]
        for e in await events_about(admin_engine, root_id)
        if e.type == "workspace.deleted"
    ]
    assert deleted_order == [grandchild["id"], child["id"]]


async def test_a_root_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    refused = await client.delete(f"/v1/workspaces/{root_id}", auth=admin.auth)

    assert refused.status_code == 409
    assert refused.json()["type"] == "root-not-deletable"


async def test_a_deletion_interrupted_half_way_is_finished_by_housekeeping(
    client: httpx.AsyncClient, identity: ServiceRuntime, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    caller = admin.auth
    principal = caller.principal_for(f"/v1/workspaces/{child['id']}")
    async with identity.units_of_work.begin(actor=principal.actor) as uow:
        await deletion.delete_workspace(
            uow, DeleteWorkspace(caller=principal, workspace_id=uuid.UUID(child["id"]))
        )

    await housekeeping.finish_interrupted_deletions(identity.units_of_work)

    async with admin_engine.connect() as connection:
        status = await connection.scalar(
            select(models.workspaces.c.status).where(
                models.workspaces.c.id == uuid.UUID(child["id"])
            )
        )
    assert status == "deleted"


async def test_a_sub_workspace_racing_its_parents_deletion_never_outlives_it(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    for _ in range(10):
        parent = (await create_sub(client, admin, root_id, billing_mode="own")).json()

        created, deleted = await asyncio.gather(
            create_sub(client, admin, parent["id"]),
            client.delete(f"/v1/workspaces/{parent['id']}", auth=admin.auth),
        )

        outcome = (created.status_code, deleted.status_code)
        assert outcome in {(201, 409), (404, 202), (409, 202)}, (created.text, deleted.text)
        if deleted.status_code == 409:
            assert deleted.json()["type"] == "has-sub-workspaces"
