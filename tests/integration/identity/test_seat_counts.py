"""A seat pool's kept count is the pool counted from its rows, whatever happened: racing
invitations for the last seats, acceptances under other subjects, removals, revocations,
expiry (before and after housekeeping closes the invitation), deletions, workspaces
moving between pools, and the migration that first filled the count in."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.identity import housekeeping, models
from services.identity.domain import SeatUsage
from services.identity.repository.seat_pools import SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.migrations import alembic_config
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings

from .conftest import (
    Person,
    assert_kept_count_is_the_recount,
    counts,
    create_root,
    create_sub,
    invite,
    join,
    person,
    seats,
    set_seat_limit,
)

pytestmark = pytest.mark.integration


async def expire(admin_engine: AsyncEngine, invitation_id: str) -> None:
    async with admin_engine.begin() as connection:
        await connection.execute(
            update(models.invitations)
            .where(models.invitations.c.id == uuid.UUID(invitation_id))
            .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )


async def test_the_count_is_the_recount_after_races_for_the_last_seats_and_every_way_out(
    client: httpx.AsyncClient, identity: ServiceRuntime, admin_engine: AsyncEngine
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 6)
    subs = [(await create_sub(client, admin, root_id, name=f"S{i}")).json()["id"] for i in range(2)]
    places = [root_id, *subs]

    racers = [person(f"racer{i}") for i in range(12)]
    invited = await asyncio.gather(
        *(invite(client, admin, places[i % 3], racer) for i, racer in enumerate(racers))
    )
    admitted = [(r.json(), racer) for r, racer in zip(invited, racers, strict=True)]
    admitted = [(body, racer) for body, racer in admitted if "id" in body]
    assert len(admitted) == 5
    after_invitations = await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    assert (after_invitations.used, after_invitations.pending) == (1, 5)

    # Acceptances (one of them under a second subject with the same email) racing
    # revocations and a second invitation of an invitee into another workspace.
    first, second = admitted[0], admitted[1]
    twin = Person(user_id=f"twin-{uuid.uuid4().hex[:8]}", email=first[1].email)
    results = await asyncio.gather(
        *(
            client.post(f"/v1/invitations/{body['id']}/accept", auth=who.auth)
            for body, who in admitted[2:]
        ),
        client.post(f"/v1/invitations/{first[0]['id']}/accept", auth=twin.auth),
        client.delete(
            f"/v1/workspaces/{second[0]['workspace_id']}/invitations/{second[0]['id']}",
            auth=admin.auth,
        ),
        invite(client, admin, next(p for p in places if p != first[0]["workspace_id"]), first[1]),
    )
    assert [r.status_code for r in results[:4]] == [200] * 4
    await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)

    # Removals and leaving, racing invitations for the seats they free.
    newcomers = [person(f"newcomer{i}") for i in range(4)]
    await asyncio.gather(
        *(
            client.delete(f"/v1/workspaces/{body['workspace_id']}/members/{who.user_id}", auth=auth)
            for (body, who), auth in zip(
                admitted[2:4], [admin.auth, admitted[3][1].auth], strict=True
            )
        ),
        *(invite(client, admin, places[i % 3], newcomer) for i, newcomer in enumerate(newcomers)),
    )
    await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)

    # Expiry: the seat frees as soon as the invitation expires, and housekeeping closing
    # it later leaves the pool as it shows.
    await set_seat_limit(identity, root_id, 20)
    late = await invite(client, admin, subs[0], person("late"))
    assert late.status_code == 201, late.text
    before_expiry = await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    await expire(admin_engine, late.json()["id"])
    expired = await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    assert expired.pending == before_expiry.pending - 1
    await housekeeping.expire_due_invitations(identity.units_of_work)
    swept = await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    assert (swept.used, swept.pending) == (expired.used, expired.pending)

    # A sub-workspace moving to its own pool and back, and one deleted with its people.
    for mode in ("own", "parent"):
        moved = await client.patch(
            f"/v1/workspaces/{subs[1]}", json={"billing_mode": mode}, auth=admin.auth
        )
        assert moved.status_code == 200, moved.text
        await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
        await assert_kept_count_is_the_recount(client, admin_engine, admin, subs[1])
    deleted = await client.delete(f"/v1/workspaces/{subs[0]}", auth=admin.auth)
    assert deleted.status_code == 202, deleted.text
    await housekeeping.finish_interrupted_deletions(identity.units_of_work)
    await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["invite", "accept", "accept-as-twin", "remove", "decline", "expire"]),
        st.integers(min_value=0, max_value=2),
        st.integers(min_value=0, max_value=3),
    ),
    min_size=4,
    max_size=14,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_the_count_is_the_recount_after_any_sequence_of_changes(
    client: httpx.AsyncClient,
    identity: ServiceRuntime,
    admin_engine: AsyncEngine,
    steps: list[tuple[str, int, int]],
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 4)
    places = [root_id, *[(await create_sub(client, admin, root_id)).json()["id"] for _ in "ab"]]
    people = [person(f"p{i}") for i in range(4)]
    for action, place, who in steps:
        workspace_id, someone = places[place], people[who]
        if action == "invite":
            await invite(client, admin, workspace_id, someone)
            continue
        if action == "remove":
            await client.delete(
                f"/v1/workspaces/{workspace_id}/members/{someone.user_id}", auth=admin.auth
            )
            continue
        mine = (await client.get("/v1/invitations", auth=someone.auth)).json()["items"]
        if not mine:
            continue
        invitation_id = mine[0]["id"]
        if action == "accept":
            await client.post(f"/v1/invitations/{invitation_id}/accept", auth=someone.auth)
        elif action == "accept-as-twin":
            twin = Person(user_id=f"{someone.user_id}-twin", email=someone.email)
            await client.post(f"/v1/invitations/{invitation_id}/accept", auth=twin.auth)
        elif action == "decline":
            await client.post(f"/v1/invitations/{invitation_id}/decline", auth=someone.auth)
        else:
            await expire(admin_engine, invitation_id)
        await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    await housekeeping.expire_due_invitations(identity.units_of_work)
    found = await assert_kept_count_is_the_recount(client, admin_engine, admin, root_id)
    assert found.used + found.pending <= 4


async def test_the_migration_fills_the_count_in_from_the_rows_there_are(
    client: httpx.AsyncClient,
    identity: ServiceRuntime,
    admin_engine: AsyncEngine,
    settings: Settings,
) -> None:
    admin, member, invitee, late = person("admin"), person("member"), person("inv"), person("late")
    root_id = await create_root(client, admin)
    sub_id = (await create_sub(client, admin, root_id)).json()["id"]
    await join(client, admin, root_id, member)
    await join(client, admin, sub_id, member)
    await invite(client, admin, sub_id, invitee)
    await invite(client, admin, root_id, invitee)
    await invite(client, admin, sub_id, Person(user_id="other", email=member.email))
    await expire(admin_engine, (await invite(client, admin, root_id, late)).json()["id"])
    shown = await seats(client, admin, root_id)

    config = alembic_config(ServiceName.IDENTITY, settings.database_url_for(ServiceName.IDENTITY))
    await asyncio.to_thread(command.downgrade, config, "0007_outbox_headers")
    await asyncio.to_thread(command.upgrade, config, "head")

    found = await counts(admin_engine, root_id)
    assert (found.kept_used, found.kept_held) == (found.used, found.held) == (2, 2)
    assert (shown["used"], shown["pending"]) == (found.used, found.pending) == (2, 1)


async def test_going_back_before_the_bigint_limit_keeps_a_larger_limit_as_the_largest_it_can(
    client: httpx.AsyncClient, identity: ServiceRuntime, settings: Settings
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await set_seat_limit(identity, root_id, 3_000_029_611)

    config = alembic_config(ServiceName.IDENTITY, settings.database_url_for(ServiceName.IDENTITY))
    await asyncio.to_thread(command.downgrade, config, "0008_seat_pool_counts")
    await asyncio.to_thread(command.upgrade, config, "head")

    assert (await seats(client, admin, root_id))["limit"] == 2_147_483_647


async def test_a_change_holding_the_pool_is_not_stopped_by_a_change_of_the_pool_workspace(
    client: httpx.AsyncClient, identity: ServiceRuntime
) -> None:
    """A removal locks its workspace, then waits for the pool; an invitation holding the
    pool writes the pool's row twice (its count, then what it announces), and the second
    write checks the row's reference to the workspace. Were the workspace locked on its
    key, that check would wait for the removal, and the removal for the pool: the two
    would deadlock."""
    admin = person("admin")
    root_id = uuid.UUID(await create_root(client, admin))
    units = identity.units_of_work
    async with units.begin(actor="removal") as removal:
        await WorkspaceRepository(removal.session).get(root_id, lock=True)
        async with units.begin(actor="invitation") as invitation:
            await invitation.session.execute(text("SET LOCAL lock_timeout = '3s'"))
            pools = SeatPoolRepository(invitation.session)
            await pools.lock(root_id)
            await pools.move_count(root_id, people=[], emails=[], before=SeatUsage(0, 0))
            await pools.record_published_usage(root_id, SeatUsage(used=1, pending=0))
        await removal.session.rollback()
    shown = await seats(client, admin, str(root_id))
    assert shown["used"] == 1
