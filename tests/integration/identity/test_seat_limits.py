"""A pool's limit and a workspace's cap hold on every path that adds someone: one
person (one user id) takes one seat per pool whatever email they were invited by, and
a cap holds from the moment it is acknowledged."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.service import ServiceRuntime
from shared.testing import SignedAs

from .conftest import (
    Person,
    create_root,
    create_sub,
    events_about,
    invite,
    join,
    person,
    seats,
    set_seat_limit,
)

pytestmark = pytest.mark.integration


async def set_cap(
    client: httpx.AsyncClient, admin: Person, workspace_id: str, cap: int | None
) -> httpx.Response:
    return await client.put(
        f"/v1/workspaces/{workspace_id}/seats", json={"cap": cap}, auth=admin.auth
    )


async def full_root(client: httpx.AsyncClient, admin: Person, member: Person) -> str:
    """A root whose five seats are all taken, `member` among them."""
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member)
    for i in range(3):
        await join(client, admin, root_id, person(f"filler{i}"))
    assert (await seats(client, admin, root_id))["available"] == 0
    return root_id


async def test_invitations_to_a_member_accepted_under_other_subjects_take_no_seat_past_the_limit(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await full_root(client, admin, member)
    subs = [(await create_sub(client, admin, root_id, name=f"S{i}")).json()["id"] for i in range(3)]
    invited = [await invite(client, admin, sub_id, member) for sub_id in subs]

    accepted = [
        await client.post(
            f"/v1/invitations/{invitation.json()['id']}/accept",
            auth=SignedAs(f"other-subject-{i}-{uuid.uuid4().hex[:6]}", email=member.email),
        )
        for i, invitation in enumerate(invited)
    ]

    assert [response.status_code for response in invited] == [201, 201, 201]
    assert [response.status_code for response in accepted] == [409, 409, 409]
    assert {response.json()["type"] for response in accepted} == {"seat-limit-reached"}
    pool = await seats(client, admin, root_id)
    assert (pool["limit"], pool["used"], pool["pending"]) == (5, 5, 0)


async def test_the_member_themself_accepts_into_a_full_pool_without_a_new_seat(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await full_root(client, admin, member)
    sub_id = (await create_sub(client, admin, root_id)).json()["id"]
    invited = await invite(client, admin, sub_id, member)

    accepted = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=member.auth)

    assert accepted.status_code == 200, accepted.text
    pool = await seats(client, admin, root_id)
    assert (pool["used"], pool["pending"], pool["available"]) == (5, 0, 0)


async def test_a_second_subject_with_the_same_email_takes_the_last_free_seat_and_no_more(
    client: httpx.AsyncClient,
) -> None:
    admin, member = person("admin"), person("member")
    root_id = await create_root(client, admin)
    await join(client, admin, root_id, member)
    await join(client, admin, root_id, person("third"))
    subs = [(await create_sub(client, admin, root_id, name=f"S{i}")).json()["id"] for i in range(3)]
    invited = [await invite(client, admin, sub_id, member) for sub_id in subs]

    accepted = [
        (
            await client.post(
                f"/v1/invitations/{invitation.json()['id']}/accept",
                auth=SignedAs(f"alias-{i}-{uuid.uuid4().hex[:6]}", email=member.email),
            )
        ).status_code
        for i, invitation in enumerate(invited)
    ]

    assert accepted == [200, 200, 409]
    pool = await seats(client, admin, root_id)
    assert (pool["limit"], pool["used"], pool["available"]) == (5, 5, 0)


async def test_a_workspace_moving_into_a_pool_its_people_do_not_fit_is_refused(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id, billing_mode="own")).json()["id"]
    for i in range(5):
        await join(client, admin, child_id, person(f"staff{i}"))
    for i in range(3):
        await join(client, admin, root_id, person(f"root{i}"))

    moved = await client.patch(
        f"/v1/workspaces/{child_id}", json={"billing_mode": "parent"}, auth=admin.auth
    )

    assert moved.status_code == 409
    assert moved.json()["type"] == "seat-limit-reached"
    assert (await seats(client, admin, root_id))["used"] == 4


async def test_a_workspace_whose_people_exceed_the_default_plan_cannot_start_paying_for_itself(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 10)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]
    for i in range(6):
        await join(client, admin, child_id, person(f"staff{i}"))

    own = await client.patch(
        f"/v1/workspaces/{child_id}", json={"billing_mode": "own"}, auth=admin.auth
    )

    assert own.status_code == 409
    assert own.json()["type"] == "seat-limit-reached"
    pool = await seats(client, admin, child_id)
    assert (pool["pool_root_id"], pool["used"]) == (root_id, 7)


# Caps


async def test_twelve_invitations_racing_a_cap_of_two_admit_exactly_two(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]
    capped = await set_cap(client, admin, child_id, 2)

    results = await asyncio.gather(
        *(invite(client, admin, child_id, person(f"racer{i}")) for i in range(12))
    )

    assert capped.status_code == 200, capped.text
    assert sorted(response.status_code for response in results) == [201] * 2 + [409] * 10
    assert {r.json()["type"] for r in results if r.status_code == 409} == {"seat-limit-reached"}
    pool = await seats(client, admin, child_id)
    assert (pool["cap"], pool["pending"]) == (2, 2)


async def test_an_invitation_right_after_a_cap_is_acknowledged_is_refused(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]
    await join(client, admin, child_id, person("first"))

    capped = await set_cap(client, admin, child_id, 1)
    refused = await invite(client, admin, child_id, person("second"))

    assert capped.status_code == 200, capped.text
    assert capped.json()["cap"] == 1
    assert refused.status_code == 409
    assert refused.json()["type"] == "seat-limit-reached"


async def test_a_cap_below_what_the_workspace_uses_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]
    await join(client, admin, child_id, person("member"))
    await invite(client, admin, child_id, person("invitee"))

    below_members = await set_cap(client, admin, child_id, 0)
    below_pending = await set_cap(client, admin, child_id, 1)
    at_usage = await set_cap(client, admin, child_id, 2)

    assert below_members.status_code == below_pending.status_code == 409
    assert below_members.json()["type"] == below_pending.json()["type"] == "below-usage"
    assert at_usage.status_code == 200
    assert (await seats(client, admin, child_id))["cap"] == 2


async def test_a_cap_is_set_from_above_only_and_removed_with_null(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    admin, local_admin = person("admin"), person("local")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]
    await join(client, admin, child_id, local_admin, "super_admin")

    by_itself = await set_cap(client, local_admin, child_id, 10)
    on_the_root = await set_cap(client, admin, root_id, 10)
    capped = await set_cap(client, admin, child_id, 3)
    uncapped = await set_cap(client, admin, child_id, None)

    assert by_itself.status_code == on_the_root.status_code == 403
    assert capped.status_code == uncapped.status_code == 200
    assert (await seats(client, admin, child_id))["cap"] is None
    announced = [
        (e.data["workspace_id"], e.data["seats_cap"])
        for e in await events_about(admin_engine, root_id)
        if e.type == "seats.cap_changed"
    ]
    assert announced == [(child_id, 3), (child_id, None)]


@pytest.mark.parametrize("body", [{}, {"cap": -1}, {"cap": "2"}, {"cap": 2, "seats": 2}])
async def test_a_cap_with_a_bad_body_is_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]

    response = await client.put(f"/v1/workspaces/{child_id}/seats", json=body, auth=admin.auth)

    assert response.status_code == 422
    assert response.json()["type"] == "validation-failed"
