"""Seat pools: whether a change may add people to a billing root's pool (and to a
workspace's cap), what a pool announces about its usage, the caps that Super Admins
set from above, and billing's word on a pool's limit.

Every change of who takes or holds a seat locks the seat pool's row first, so that two
requests racing for the last seat are served one after the other and the second sees
the first's result. The pool's row keeps its count, and every such change goes through
`changing`, which measures what the people and emails it touches take in the pool
before and after it and moves the count by the difference: the count is the pool
counted, without counting the whole pool on a request's way. A change that adds people
is measured by its outcome: the pool as counted before it and again after it (the
change made, not yet committed), and the change is refused when it left the pool
fuller than before and past its limit, or a capped workspace fuller than before and
past its cap. One rule serves every path — an invitation, an acceptance under any
token's subject, a sub-workspace created with members, a workspace moving to another
pool, a removal, an invitation ended or expired, a workspace deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from contracts.events.identity import SeatsCapChanged, SeatsUsageChanged
from contracts.permissions import Permission
from services.identity import authorization
from services.identity.commands import ApplyLimits, CapSeats
from services.identity.domain import (
    IdentityPolicy,
    Occupancy,
    SeatPool,
    Workspace,
    WorkspaceSeats,
    ensure_cap_covers,
    ensure_room,
)
from services.identity.repository.seat_pools import PoolRecord, SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.unit_of_work import UnitOfWork


async def seat_pool(
    uow: UnitOfWork, billing_root_id: uuid.UUID, policy: IdentityPolicy
) -> SeatPool:
    record = await SeatPoolRepository(uow.session).get(billing_root_id)
    assert record is not None
    return SeatPool(
        billing_root_id=billing_root_id,
        limit=policy.seats_limit(record.seats_limit),
        used=record.usage.used,
        pending=record.usage.pending,
    )


async def occupancy(
    uow: UnitOfWork, workspace: Workspace, *, at: datetime | None = None
) -> Occupancy:
    """Lock the workspace's pool (if this transaction holds it already, the lock costs
    no wait) and count it and, when the workspace is capped, the workspace: before a
    change that may add people and (through `admit`) after it."""
    return (await _counted(uow, workspace, at or datetime.now(UTC)))[1]


@asynccontextmanager
async def changing(
    uow: UnitOfWork,
    pool_ids: Iterable[uuid.UUID],
    *,
    people: Sequence[str] = (),
    emails: Sequence[str] = (),
) -> AsyncIterator[None]:
    """Keep the count of each pool (locked by the caller) right across a change of who
    takes or holds a seat in it, a change that touches only these people (user ids)
    and emails: those of the memberships and invitations it adds, ends or moves, and
    the emails those members joined with."""
    pools = SeatPoolRepository(uow.session)
    before = {
        pool_id: await pools.held_by(pool_id, people=people, emails=emails)
        for pool_id in sorted(set(pool_ids))
    }
    yield
    for pool_id, held in before.items():
        await pools.move_count(pool_id, people=people, emails=emails, before=held)


async def admit(
    uow: UnitOfWork, workspace: Workspace, before: Occupancy, policy: IdentityPolicy
) -> PoolRecord:
    """Refuse the change just made in `workspace` if it took its pool past the limit or
    the workspace past its cap (409 `seat-limit-reached`; the unit of work then rolls
    it back); the pool as it is after the change, to announce. `workspace` as it is
    after the change, read under the locks that keep its pool and its cap as they are."""
    record, after = await _counted(uow, workspace, before.at)
    ensure_room(
        before, after, limit=policy.seats_limit(record.seats_limit), cap=workspace.seats_cap
    )
    return record


async def _counted(
    uow: UnitOfWork, workspace: Workspace, now: datetime
) -> tuple[PoolRecord, Occupancy]:
    pools = SeatPoolRepository(uow.session)
    record = await pools.lock(workspace.billing_root_id, now=now)
    in_workspace = (
        None if workspace.seats_cap is None else await pools.in_workspace(workspace.id, now=now)
    )
    return record, Occupancy(pool=record.usage, in_workspace=in_workspace, at=now)


async def cap_seats(uow: UnitOfWork, command: CapSeats, policy: IdentityPolicy) -> WorkspaceSeats:
    """A Super Admin of an ancestor caps a sub-workspace's seats within its pool. The cap
    is set under the pool's lock, so every invitation or acceptance after this one
    commits is held to it; one below what the workspace takes already is refused."""
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_SUB_WORKSPACES, lock=True
    )
    authorization.authorize_from_above(access)
    workspace = access.workspace
    workspace.ensure_active()
    await SeatPoolRepository(uow.session).lock(workspace.billing_root_id)
    in_workspace = await SeatPoolRepository(uow.session).in_workspace(
        workspace.id, now=datetime.now(UTC)
    )
    ensure_cap_covers(command.cap, in_workspace=in_workspace)
    if command.cap != workspace.seats_cap:
        await WorkspaceRepository(uow.session).set_seats_cap(workspace.id, command.cap)
        await uow.stage(
            SeatsCapChanged(
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                billing_root_id=workspace.billing_root_id,
                seats_cap=command.cap,
            ),
            root_id=workspace.root_id,
            workspace_id=workspace.id,
        )
    return WorkspaceSeats(
        pool=await seat_pool(uow, workspace.billing_root_id, policy), cap=command.cap
    )


async def announce_usage(
    uow: UnitOfWork, billing_root_id: uuid.UUID, *, pool: PoolRecord | None = None
) -> None:
    """Announce the pool's usage if it changed; `pool` when the caller just read it
    under the pool's lock, after its change."""
    pools = SeatPoolRepository(uow.session)
    record = pool or await pools.lock(billing_root_id)
    usage = record.usage
    if usage == record.published:
        return
    await pools.record_published_usage(billing_root_id, usage)
    await uow.stage(
        SeatsUsageChanged(
            billing_root_id=billing_root_id,
            root_id=record.root_id,
            used=usage.used,
            pending=usage.pending,
        ),
        root_id=record.root_id,
        workspace_id=billing_root_id,
    )


async def apply_limits(uow: UnitOfWork, command: ApplyLimits) -> None:
    """Billing owns a pool's limit; identity keeps the copy it enforces. (A workspace's
    cap is identity's own: billing's copy of it is not applied back.)"""
    workspace = await WorkspaceRepository(uow.session).get(command.workspace_id)
    if workspace is None:
        msg = f"limits for workspace {command.workspace_id}, which identity does not know"
        raise LookupError(msg)
    if workspace.is_billing_root and command.seats_limit is not None:
        pools = SeatPoolRepository(uow.session)
        await pools.lock(workspace.id)
        await pools.set_limit(workspace.id, command.seats_limit)
