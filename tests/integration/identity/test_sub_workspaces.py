"""The workspace tree: who may create what where, what is visible from where, and
which settings a sub-workspace's own admins may not change."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.identity import models
from services.identity.app import create_app
from shared.settings import Settings

from .conftest import (
    create_root,
    create_sub,
    event_types,
    events_about,
    identity_settings,
    join,
    person,
)

pytestmark = pytest.mark.integration


async def test_a_super_admin_creates_a_sub_workspace_that_sees_the_parent_as_its_parent(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.post(
        f"/v1/workspaces/{root_id}/sub-workspaces",
        json={
            "name": "  Client A ",
            "image_url": "https://cdn.example.com/a.png",
            "billing_mode": "parent",
            "api_access": True,
            "strict_quota": False,
        },
        auth=admin.auth,
    )

    assert response.status_code == 201, response.text
    child = response.json()
    assert child["name"] == "Client A"
    assert child["parent_id"] == root_id
    assert child["root_id"] == root_id
    assert child["billing_root_id"] == root_id
    assert child["depth"] == 1
    assert (child["billing_mode"], child["api_access"], child["strict_quota"]) == (
        "parent",
        True,
        False,
    )
    listed = await client.get(f"/v1/workspaces/{root_id}/sub-workspaces", auth=admin.auth)
    assert [w["id"] for w in listed.json()["items"]] == [child["id"]]
    created = [
        e
        for e in await events_about(admin_engine, root_id)
        if e.workspace_id and str(e.workspace_id) == child["id"]
    ]
    assert created[0].type == "workspace.created"
    assert created[0].data["parent_id"] == root_id
    assert created[0].data["billing_root_id"] == root_id


async def test_a_super_admin_of_the_root_acts_as_super_admin_in_every_sub_workspace(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id, billing_mode="own")).json()
    grandchild = await create_sub(client, admin, child["id"], name="Team")

    assert grandchild.status_code == 201
    members = await client.get(f"/v1/workspaces/{child['id']}/members", auth=admin.auth)
    assert members.json()["items"] == [
        {
            "user_id": admin.user_id,
            "email": admin.email,
            "role": "super_admin",
            "inherited": True,
            "joined_at": members.json()["items"][0]["joined_at"],
        }
    ]


@pytest.mark.parametrize("role", ["developer", "creator", "viewer"])
async def test_only_a_super_admin_may_create_a_sub_workspace(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, role: str
) -> None:
    admin, member = person("admin"), person(role)
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member, role)

    refused = await create_sub(client, member, root_id)

    assert refused.status_code == 403
    assert refused.json()["type"] == "forbidden"
    async with admin_engine.connect() as connection:
        children = await connection.scalar(
            select(func.count()).where(models.workspaces.c.parent_id == root_id)
        )
    assert children == 0


async def test_a_stranger_cannot_see_or_create_below_a_workspace(
    client: httpx.AsyncClient,
) -> None:
    admin, stranger = person("admin"), person("stranger")
    root_id = await create_root(client, admin)

    created = await create_sub(client, stranger, root_id)
    listed = await client.get(f"/v1/workspaces/{root_id}/sub-workspaces", auth=stranger.auth)

    assert created.status_code == listed.status_code == 404


async def test_a_parent_billed_workspace_cannot_have_sub_workspaces(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id, billing_mode="parent")).json()

    refused = await create_sub(client, admin, child["id"])

    assert refused.status_code == 409
    assert refused.json()["type"] == "parent-billed-cannot-have-children"


async def test_an_own_billed_sub_workspace_pays_for_itself_and_may_have_sub_workspaces(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id, billing_mode="own")).json()

    grandchild = await create_sub(client, admin, child["id"])

    assert child["billing_root_id"] == child["id"]
    assert grandchild.status_code == 201
    assert grandchild.json()["billing_root_id"] == child["id"]
    assert grandchild.json()["depth"] == 2


async def test_the_tree_is_no_deeper_than_the_configured_depth(settings: Settings) -> None:
    app: FastAPI = create_app(identity_settings(settings, max_depth=2))
    admin = person("admin")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity"
        ) as client,
    ):
        parent_id = await create_root(client, admin)
        for _ in range(2):
            created = await create_sub(client, admin, parent_id, billing_mode="own")
            assert created.status_code == 201
            parent_id = created.json()["id"]

        too_deep = await create_sub(client, admin, parent_id, billing_mode="own")

    assert too_deep.status_code == 409
    assert too_deep.json()["type"] == "depth-limit-reached"


async def test_siblings_and_the_parent_are_invisible_from_a_sub_workspace(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    a = (await create_sub(client, admin, root_id, name="A")).json()
    b = (await create_sub(client, admin, root_id, name="B")).json()
    await join(client, admin, a["id"], member, "super_admin")

    own = await client.get(f"/v1/workspaces/{a['id']}", auth=member.auth)
    parent = await client.get(f"/v1/workspaces/{root_id}", auth=member.auth)
    sibling = await client.get(f"/v1/workspaces/{b['id']}", auth=member.auth)
    parent_children = await client.get(f"/v1/workspaces/{root_id}/sub-workspaces", auth=member.auth)
    sibling_members = await client.get(f"/v1/workspaces/{b['id']}/members", auth=member.auth)

    assert own.status_code == 200
    assert parent.status_code == sibling.status_code == 404
    assert parent_children.status_code == sibling_members.status_code == 404
    mine = await client.get("/v1/workspaces", auth=member.auth)
    assert [(w["id"], w["role"]) for w in mine.json()["items"]] == [(a["id"], "super_admin")]


async def test_a_workspace_is_renamed_by_its_super_admin_and_the_change_is_announced(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    renamed = await client.patch(
        f"/v1/workspaces/{root_id}",
        json={"name": "Acme Global", "image_url": "https://cdn.example.com/g.png"},
        auth=admin.auth,
    )
    cleared = await client.patch(
        f"/v1/workspaces/{root_id}", json={"image_url": None}, auth=admin.auth
    )

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Acme Global"
    assert cleared.json()["image_url"] is None
    assert cleared.json()["name"] == "Acme Global"
    assert (await event_types(admin_engine, root_id)).count("workspace.updated") == 2


async def test_settings_of_a_sub_workspace_are_for_the_parents_super_admins(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, local_admin = person("admin"), person("local")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    await join(client, admin, child["id"], local_admin, "super_admin")

    renamed_locally = await client.patch(
        f"/v1/workspaces/{child['id']}", json={"name": "Ours"}, auth=local_admin.auth
    )
    escalated = await client.patch(
        f"/v1/workspaces/{child['id']}", json={"api_access": True}, auth=local_admin.auth
    )
    from_above = await client.patch(
        f"/v1/workspaces/{child['id']}",
        json={"api_access": True, "strict_quota": False},
        auth=admin.auth,
    )

    assert renamed_locally.status_code == 200
    assert escalated.status_code == 403
    assert from_above.status_code == 200
    assert (from_above.json()["api_access"], from_above.json()["strict_quota"]) == (True, False)
    changed = [
        e
        for e in await events_about(admin_engine, root_id)
        if e.type == "workspace.settings_changed"
    ]
    assert len(changed) == 1
    assert changed[0].data["api_access"] is True


async def test_a_root_always_pays_for_itself(client: httpx.AsyncClient) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    refused = await client.patch(
        f"/v1/workspaces/{root_id}", json={"billing_mode": "parent"}, auth=admin.auth
    )

    assert refused.status_code == 409
    assert refused.json()["type"] == "root-pays-for-itself"


async def test_a_sub_workspace_that_starts_paying_for_itself_takes_its_members_to_its_own_pool(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()
    await join(client, admin, child["id"], member)
    assert (await client.get(f"/v1/workspaces/{root_id}/seats", auth=admin.auth)).json()[
        "used"
    ] == 2

    changed = await client.patch(
        f"/v1/workspaces/{child['id']}", json={"billing_mode": "own"}, auth=admin.auth
    )

    assert changed.status_code == 200
    assert changed.json()["billing_root_id"] == child["id"]
    root_seats = (await client.get(f"/v1/workspaces/{root_id}/seats", auth=admin.auth)).json()
    child_seats = (await client.get(f"/v1/workspaces/{child['id']}/seats", auth=admin.auth)).json()
    assert root_seats["used"] == 1
    assert (child_seats["pool_root_id"], child_seats["used"]) == (child["id"], 1)


async def test_a_workspace_with_sub_workspaces_cannot_become_parent_billed(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id, billing_mode="own")).json()
    await create_sub(client, admin, child["id"])

    refused = await client.patch(
        f"/v1/workspaces/{child['id']}", json={"billing_mode": "parent"}, auth=admin.auth
    )

    assert refused.status_code == 409
    assert refused.json()["type"] == "has-sub-workspaces"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "billing_mode": "someone", "api_access": True}, "billing_mode"),
        ({"name": "X", "api_access": True}, "billing_mode"),
        ({"name": "X", "billing_mode": "own", "api_access": "yes please"}, "api_access"),
        (
            {
                "name": "X",
                "billing_mode": "own",
                "api_access": True,
                "members": [{"email": "nope", "role": "viewer"}],
            },
            "members.0.email",
        ),
        (
            {
                "name": "X",
                "billing_mode": "own",
                "api_access": True,
                "members": [{"email": "a@b.co", "role": "owner"}],
            },
            "members.0.role",
        ),
        ({"name": "", "billing_mode": "own", "api_access": True}, "name"),
        ({"name": "X", "billing_mode": "own", "api_access": True, "colour": "red"}, "colour"),
    ],
)
async def test_an_invalid_sub_workspace_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, body: dict[str, object], field: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.post(
        f"/v1/workspaces/{root_id}/sub-workspaces", json=body, auth=admin.auth
    )

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    async with admin_engine.connect() as connection:
        children = await connection.scalar(
            select(func.count()).where(models.workspaces.c.parent_id == root_id)
        )
    assert children == 0


async def test_a_retried_creation_with_the_same_key_creates_one_workspace(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    headers = {"Idempotency-Key": "create-acme-1"}

    first = await client.post(
        "/v1/workspaces", json={"name": "Acme"}, headers=headers, auth=admin.auth
    )
    again = await client.post(
        "/v1/workspaces", json={"name": "Acme"}, headers=headers, auth=admin.auth
    )
    other_body = await client.post(
        "/v1/workspaces", json={"name": "Other"}, headers=headers, auth=admin.auth
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "idempotency-key-reused"
    mine = await client.get("/v1/workspaces", auth=admin.auth)
    assert [w["id"] for w in mine.json()["items"]] == [first.json()["id"]]


async def test_the_gateway_can_ask_for_a_callers_standing(client: httpx.AsyncClient) -> None:
    admin, stranger = person("admin"), person("stranger")
    root_id = await create_root(client, admin)
    child = (await create_sub(client, admin, root_id)).json()

    mine = await client.get(f"/internal/v1/workspaces/{child['id']}/access", auth=admin.auth)
    theirs = await client.get(f"/internal/v1/workspaces/{child['id']}/access", auth=stranger.auth)

    assert mine.status_code == 200
    assert mine.json() == {
        "workspace_id": child["id"],
        "parent_id": root_id,
        "root_id": root_id,
        "role": "super_admin",
        "ancestor_super_admin": True,
        "api_access": False,
        "status": "active",
    }
    assert theirs.status_code == 404
