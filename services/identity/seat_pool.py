"""Seat pools: whether a change may add people to a billing root's pool (and to a
workspace's cap), what a pool announces about its usage, the caps that Super Admins
set from above, and billing's word on a pool's limit.

Every change of who takes or holds a seat locks the seat pool's row first, so that two
requests racing for the last seat are served one after the other and the second sees
the first's result. A change that adds people is measured by its outcome: the pool is
counted before it and again after it (the change made, not yet committed), the way
`GET …/seats` counts, and the change is refused when it left the pool fuller than
before and past its limit, or the workspace fuller than before and past its cap. One
rule serves every path — an invitation, an acceptance under any token's subject, a
sub-workspace created with members, a workspace moving to another pool.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.identity import SeatsCapChanged, SeatsUsageChanged
from contracts.permissions import Permission
from services.identity import authorization
from services.identity.commands import ApplyLimits, CapSeats
from services.identity.domain import (
    IdentityPolicy,
    Occupancy,
    SeatPool,
    SeatUsage,
    Workspace,
    WorkspaceSeats,
    ensure_cap_covers,
    ensure_room,
)
from services.identity.repository.seat_pools import SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.unit_of_work import UnitOfWork


async def seat_pool(
    uow: UnitOfWork, billing_root_id: uuid.UUID, policy: IdentityPolicy
) -> SeatPool:
    pools = SeatPoolRepository(uow.session)
    record = await pools.get(billing_root_id)
    usage = await pools.usage(billing_root_id, now=datetime.now(UTC))
    return SeatPool(
        billing_root_id=billing_root_id,
        limit=policy.seats_limit(None if record is None else record.seats_limit),
        used=usage.used,
        pending=usage.pending,
    )


async def occupancy(
    uow: UnitOfWork, workspace: Workspace, *, at: datetime | None = None
) -> Occupancy:
    """The workspace's pool and the workspace itself, as counted now. Call it holding the
    pool's lock, before a change that may add people and (through `admit`) after it."""
    now = at or datetime.now(UTC)
    pool, in_workspace = await SeatPoolRepository(uow.session).occupancy(
        workspace.billing_root_id, workspace.id, now=now
    )
    return Occupancy(pool=pool, in_workspace=in_workspace, at=now)


async def admit(
    uow: UnitOfWork, workspace: Workspace, before: Occupancy, policy: IdentityPolicy
) -> SeatUsage:
    """Refuse the change just made in `workspace` if it took its pool past the limit or
    the workspace past its cap (409 `seat-limit-reached`; the unit of work then rolls
    it back); the pool's usage with it, to announce. `workspace` as it is after the
    change, read under the locks that keep its pool and its cap as they are."""
    after = await occupancy(uow, workspace, at=before.at)
    record = await SeatPoolRepository(uow.session).get(workspace.billing_root_id)
    assert record is not None
    ensure_room(
        before, after, limit=policy.seats_limit(record.seats_limit), cap=workspace.seats_cap
    )
    return after.pool


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
    ensure_cap_covers(command.cap, in_workspace=(await occupancy(uow, workspace)).in_workspace)
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
    uow: UnitOfWork, billing_root_id: uuid.UUID, *, usage: SeatUsage | None = None
) -> None:
    """Announce the pool's usage if it changed; `usage` when the caller just counted it
    under the pool's lock."""
    pools = SeatPoolRepository(uow.session)
    record = await pools.lock(billing_root_id)
    if usage is None:
        usage = await pools.usage(billing_root_id, now=datetime.now(UTC))
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
