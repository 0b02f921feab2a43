"""Seat pools: who may take a seat in a billing root's pool, what it announces about its
usage, and billing's word on its limits.

Every change of who holds a seat locks the seat pool's row first, so that two
requests racing for the last seat are served one after the other and the second sees
the first's result.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.identity import SeatsUsageChanged
from services.identity.commands import ApplyLimits
from services.identity.domain import (
    IdentityPolicy,
    SeatPool,
    SeatUsage,
    Workspace,
    admit_to_capped_workspace,
)
from services.identity.repository.invitations import InvitationRepository
from services.identity.repository.members import MemberRepository
from services.identity.repository.seat_pools import PoolRecord, SeatPoolRepository
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


async def admit_invitee(
    uow: UnitOfWork,
    workspace: Workspace,
    email: str,
    *,
    locked_pool: PoolRecord,
    policy: IdentityPolicy,
    now: datetime,
) -> SeatUsage:
    """Refuse an invitation the pool (or the workspace's cap) has no seat for; the
    pool's usage with the invitation counted. Call it holding the pool's lock."""
    pools = SeatPoolRepository(uow.session)
    newcomer = not await pools.email_holds_seat(workspace.billing_root_id, email, now=now)
    usage = await pools.usage(workspace.billing_root_id, now=now)
    SeatPool(
        billing_root_id=workspace.billing_root_id,
        limit=policy.seats_limit(locked_pool.seats_limit),
        used=usage.used,
        pending=usage.pending,
    ).admit(1 if newcomer else 0)
    if workspace.seats_cap is not None:
        occupied = await pools.seats_in_workspace(workspace.id, now=now)
        admit_to_capped_workspace(workspace.seats_cap, occupied, 1)
    return SeatUsage(used=usage.used, pending=usage.pending + int(newcomer))


async def admit_people_of(
    uow: UnitOfWork, workspace: Workspace, billing_root_id: uuid.UUID, policy: IdentityPolicy
) -> None:
    """Refuse to move a workspace into another pool whose free seats its members and
    invitees do not fit in. Call it holding both pools' locks."""
    pools = SeatPoolRepository(uow.session)
    now = datetime.now(UTC)
    newcomers = 0
    for member in await MemberRepository(uow.session).of_workspace(workspace.id):
        if not await pools.user_holds_seat(billing_root_id, member.user_id):
            newcomers += 1
    for invitation in await InvitationRepository(uow.session).pending(workspace.id, now=now):
        if not await pools.email_holds_seat(billing_root_id, invitation.email, now=now):
            newcomers += 1
    (await seat_pool(uow, billing_root_id, policy)).admit(newcomers)


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
    """Billing owns the limits; identity keeps the copy it enforces."""
    workspaces = WorkspaceRepository(uow.session)
    workspace = await workspaces.get(command.workspace_id)
    if workspace is None:
        msg = f"limits for workspace {command.workspace_id}, which identity does not know"
        raise LookupError(msg)
    if workspace.is_billing_root and command.seats_limit is not None:
        pools = SeatPoolRepository(uow.session)
        await pools.lock(workspace.id)
        await pools.set_limit(workspace.id, command.seats_limit)
    if not workspace.is_root:
        await workspaces.set_seats_cap(workspace.id, command.seats_cap)
