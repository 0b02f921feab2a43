"""Seat pools: one per billing root, and who takes or holds a seat in it.

A person counts once per pool, however many of its workspaces they are in; a pending
invitation holds a seat unless its person already has one in the pool."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import InvitationStatus, SeatUsage, WorkspaceStatus
from services.identity.models import invitations, memberships, seat_pools, users, workspaces


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
        await self.session.execute(
            insert(seat_pools)
            .values(billing_root_id=billing_root_id, root_id=root_id)
            .on_conflict_do_nothing(index_elements=[seat_pools.c.billing_root_id])
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
        pool_workspaces = _live_workspaces_of(billing_root_id)
        members = select(memberships.c.user_id).where(
            memberships.c.workspace_id.in_(pool_workspaces)
        )
        member_emails = select(users.c.email).where(
            users.c.id.in_(members), users.c.email.is_not(None)
        )
        used = await self.session.scalar(
            select(func.count(func.distinct(memberships.c.user_id))).where(
                memberships.c.workspace_id.in_(pool_workspaces)
            )
        )
        pending = await self.session.scalar(
            select(func.count(func.distinct(invitations.c.email))).where(
                invitations.c.workspace_id.in_(pool_workspaces),
                invitations.c.status == InvitationStatus.PENDING.value,
                invitations.c.expires_at > now,
                invitations.c.email.not_in(member_emails),
            )
        )
        return SeatUsage(used=int(used or 0), pending=int(pending or 0))

    async def email_holds_seat(
        self, billing_root_id: uuid.UUID, email: str, *, now: datetime
    ) -> bool:
        """Whether the person with this email already takes or holds a seat in the pool."""
        pool_workspaces = _live_workspaces_of(billing_root_id)
        as_member = exists(
            select(literal(1))
            .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
            .where(memberships.c.workspace_id.in_(pool_workspaces), users.c.email == email)
        )
        as_invitee = exists(
            select(literal(1)).where(
                invitations.c.workspace_id.in_(pool_workspaces),
                invitations.c.email == email,
                invitations.c.status == InvitationStatus.PENDING.value,
                invitations.c.expires_at > now,
            )
        )
        return bool(await self.session.scalar(select(or_(as_member, as_invitee))))

    async def user_holds_seat(self, billing_root_id: uuid.UUID, user_id: str) -> bool:
        return bool(
            await self.session.scalar(
                select(
                    exists()
                    .select_from(
                        memberships.join(workspaces, workspaces.c.id == memberships.c.workspace_id)
                    )
                    .where(
                        and_(
                            workspaces.c.billing_root_id == billing_root_id,
                            workspaces.c.status != WorkspaceStatus.DELETED.value,
                            memberships.c.user_id == user_id,
                        )
                    )
                )
            )
        )

    async def seats_in_workspace(self, workspace_id: uuid.UUID, *, now: datetime) -> int:
        """Members of one workspace plus its pending invitations: what a cap limits."""
        members = await self.session.scalar(
            select(func.count()).where(memberships.c.workspace_id == workspace_id)
        )
        pending = await self.session.scalar(
            select(func.count()).where(
                invitations.c.workspace_id == workspace_id,
                invitations.c.status == InvitationStatus.PENDING.value,
                invitations.c.expires_at > now,
            )
        )
        return int(members or 0) + int(pending or 0)


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
