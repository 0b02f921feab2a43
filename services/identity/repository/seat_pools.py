"""Seat pools: one per billing root, and who takes or holds a seat in it.

A person (a user id) counts once per pool, however many of its workspaces they are
in; a pending invitation holds a seat unless a member of the pool joined with its
email."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import InvitationStatus, SeatUsage, WorkspaceStatus
from services.identity.models import invitations, memberships, seat_pools, workspaces


@dataclass(frozen=True, slots=True)
class PoolRecord:
    billing_root_id: uuid.UUID
    root_id: uuid.UUID
    seats_limit: int | None
    """Billing's last word; None until its first `limits.changed` arrives."""
    published: SeatUsage
    """The usage last announced in `seats.usage_changed`."""


class SeatPoolRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, billing_root_id: uuid.UUID, root_id: uuid.UUID) -> None:
        """Open the pool of a new billing root. A workspace that paid for itself before
        starts again on the default plan's seats until billing's word arrives."""
        statement = insert(seat_pools).values(billing_root_id=billing_root_id, root_id=root_id)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[seat_pools.c.billing_root_id], set_={"seats_limit": None}
            )
        )

    async def lock(self, billing_root_id: uuid.UUID) -> PoolRecord:
        """Lock the pool: every change of who holds a seat in it goes one at a time."""
        row = (
            (
                await self.session.execute(
                    select(seat_pools)
                    .where(seat_pools.c.billing_root_id == billing_root_id)
                    .with_for_update()
                )
            )
            .mappings()
            .one()
        )
        return _pool(row)

    async def get(self, billing_root_id: uuid.UUID) -> PoolRecord | None:
        row = (
            (
                await self.session.execute(
                    select(seat_pools).where(seat_pools.c.billing_root_id == billing_root_id)
                )
            )
            .mappings()
            .one_or_none()
        )
        return None if row is None else _pool(row)

    async def set_limit(self, billing_root_id: uuid.UUID, limit: int) -> None:
        await self.session.execute(
            update(seat_pools)
            .where(seat_pools.c.billing_root_id == billing_root_id)
            .values(seats_limit=limit)
        )

    async def record_published_usage(self, billing_root_id: uuid.UUID, usage: SeatUsage) -> None:
        await self.session.execute(
            update(seat_pools)
            .where(seat_pools.c.billing_root_id == billing_root_id)
            .values(used=usage.used, pending=usage.pending)
        )

    async def usage(self, billing_root_id: uuid.UUID, *, now: datetime) -> SeatUsage:
        row = (
            await self.session.execute(
                select(_used(billing_root_id), _pending(billing_root_id, now=now))
            )
        ).one()
        return SeatUsage(used=int(row[0]), pending=int(row[1]))

    async def occupancy(
        self, billing_root_id: uuid.UUID, workspace_id: uuid.UUID, *, now: datetime
    ) -> tuple[SeatUsage, int]:
        """The pool's usage, and the workspace's members plus its pending invitations
        (what a cap limits), in one statement."""
        in_workspace = (
            select(func.count()).where(memberships.c.workspace_id == workspace_id).scalar_subquery()
        ) + (
            select(func.count())
            .where(
                invitations.c.workspace_id == workspace_id,
                invitations.c.status == InvitationStatus.PENDING.value,
                invitations.c.expires_at > now,
            )
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                select(_used(billing_root_id), _pending(billing_root_id, now=now), in_workspace)
            )
        ).one()
        return SeatUsage(used=int(row[0]), pending=int(row[1])), int(row[2])


def _used(billing_root_id: uuid.UUID) -> ScalarSelect[int]:
    """Distinct people who are members of a workspace in the pool."""
    return (
        select(func.count(func.distinct(memberships.c.user_id)))
        .where(memberships.c.workspace_id.in_(_live_workspaces_of(billing_root_id)))
        .scalar_subquery()
    )


def _pending(billing_root_id: uuid.UUID, *, now: datetime) -> ScalarSelect[int]:
    """Open invitations in the pool to emails that no member of it joined with, each
    email once."""
    pool_workspaces = _live_workspaces_of(billing_root_id)
    member_emails = select(memberships.c.email).where(
        memberships.c.workspace_id.in_(pool_workspaces), memberships.c.email.is_not(None)
    )
    return (
        select(func.count(func.distinct(invitations.c.email)))
        .where(
            invitations.c.workspace_id.in_(pool_workspaces),
            invitations.c.status == InvitationStatus.PENDING.value,
            invitations.c.expires_at > now,
            invitations.c.email.not_in(member_emails),
        )
        .scalar_subquery()
    )


def _live_workspaces_of(billing_root_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    return select(workspaces.c.id).where(
        workspaces.c.billing_root_id == billing_root_id,
        workspaces.c.status != WorkspaceStatus.DELETED.value,
    )


def _pool(row: RowMapping) -> PoolRecord:
    return PoolRecord(
        billing_root_id=row["billing_root_id"],
        root_id=row["root_id"],
        seats_limit=row["seats_limit"],
        published=SeatUsage(used=row["used"], pending=row["pending"]),
    )
