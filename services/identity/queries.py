"""What identity answers without changing anything: workspaces, members, seats and
invitations as the caller may see them. Each read runs in the unit of work its entry
point opened (the hot reads of one workspace, on a plain connection), and authorizes
first, as a use case does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import asyncpg

from contracts.permissions import Permission, Role
from services.identity import authorization, seat_pool
from services.identity.domain import (
    Access,
    IdentityPolicy,
    Invitation,
    Member,
    Workspace,
    WorkspaceSeats,
    members_as_seen_here,
)
from services.identity.repository.invitations import InvitationRepository
from services.identity.repository.members import MemberRepository
from services.identity.repository.workspaces import Position, WorkspaceRepository
from shared.pagination import CursorShape, Offset, decode_cursor, encode_cursor
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork

ItemT = TypeVar("ItemT")

WORKSPACE_PAGES: CursorShape[Position] = CursorShape(Position)
"""Lists of workspaces continue after the last one's creation time and id."""
MEMBER_PAGES: CursorShape[tuple[int]] = CursorShape(tuple[Offset])
"""The members list continues after the number of people earlier pages held."""


@dataclass(frozen=True, slots=True)
class Listing(Generic[ItemT]):
    """One page of a list, and the opaque cursor of the next one."""

    items: list[ItemT]
    next_cursor: str | None


async def workspace(
    connection: asyncpg.Connection, caller: Principal, workspace_id: uuid.UUID
) -> Workspace:
    return (await standing(connection, caller, workspace_id)).workspace


async def standing(
    connection: asyncpg.Connection, caller: Principal, workspace_id: uuid.UUID
) -> Access:
    """The caller's standing in a workspace, from identity's own records. These two
    reads run on every request that names a workspace, in one statement on a plain
    connection (`authorization.standing_to_read`) rather than in a unit of work."""
    return await authorization.standing_to_read(connection, caller, workspace_id)


async def my_workspaces(
    uow: UnitOfWork, caller: Principal, *, limit: int, cursor: str | None
) -> Listing[tuple[Workspace, Role]]:
    """The workspaces the caller is a direct member of, with their role there."""
    user_id = authorization.person(caller)
    found = await WorkspaceRepository(uow.session).of_member(
        user_id, limit=limit + 1, after=decode_cursor(cursor, shape=WORKSPACE_PAGES)
    )
    return _keyset_page(found, limit, lambda pair: pair[0])


async def sub_workspaces(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Listing[Workspace]:
    after = decode_cursor(cursor, shape=WORKSPACE_PAGES)
    await authorization.authorize(uow, caller, workspace_id, Permission.READ_WORKSPACE)
    found = await WorkspaceRepository(uow.session).children(
        workspace_id, limit=limit + 1, after=after
    )
    return _keyset_page(found, limit, lambda child: child)


async def members(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Listing[Member]:
    """Direct members, and the Super Admins of ancestors who act here from above."""
    (start,) = decode_cursor(cursor, shape=MEMBER_PAGES) or (0,)
    access = await authorization.authorize(uow, caller, workspace_id, Permission.READ_WORKSPACE)
    repository = MemberRepository(uow.session)
    listed = members_as_seen_here(
        await repository.of_workspace(workspace_id),
        await repository.super_admins_above(access.workspace),
    )
    has_more = start + limit < len(listed)
    return Listing(
        items=listed[start : start + limit],
        next_cursor=encode_cursor((start + limit,), shape=MEMBER_PAGES) if has_more else None,
    )


async def seats(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID, policy: IdentityPolicy
) -> WorkspaceSeats:
    access = await authorization.authorize(uow, caller, workspace_id, Permission.READ_WORKSPACE)
    pool = await seat_pool.seat_pool(uow, access.workspace.billing_root_id, policy)
    return WorkspaceSeats(pool=pool, cap=access.workspace.seats_cap)


async def pending_invitations(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID
) -> list[Invitation]:
    await authorization.authorize(uow, caller, workspace_id, Permission.MANAGE_MEMBERS)
    return await InvitationRepository(uow.session).pending(workspace_id, now=datetime.now(UTC))


async def my_invitations(uow: UnitOfWork, caller: Principal) -> list[tuple[Invitation, str]]:
    """Open invitations to the caller's verified email, with their workspace's name."""
    email = authorization.verified_email(caller)
    return await InvitationRepository(uow.session).addressed_to(email, now=datetime.now(UTC))


def _keyset_page(
    found: list[ItemT], limit: int, workspace_of: Callable[[ItemT], Workspace]
) -> Listing[ItemT]:
    """`found` holds up to `limit + 1` items: the extra one says there is a next page."""
    if len(found) <= limit:
        return Listing(items=found, next_cursor=None)
    last = workspace_of(found[limit - 1])
    assert last.created_at is not None
    return Listing(
        items=found[:limit],
        next_cursor=encode_cursor((last.created_at, last.id), shape=WORKSPACE_PAGES),
    )
