"""Seat pools: one per billing root, and who takes or holds a seat in it.

A person (a user id) counts once per pool, however many of its workspaces they are
in; a pending invitation holds a seat unless a member of the pool joined with its
email.

The pool's row keeps the count (`seated`, `held`), moved under its lock by each change
as measured on the people and emails the change touches (`held_by`, indexed existence
checks), so that nothing counts the whole pool on the way of a request. Invitations
expire without a write: `held` counts pending invitations whatever their expiry, and
a read takes away the emails whose every pending invitation has expired — the few that
housekeeping has not closed yet (`ix_invitations_pending_by_expiry`).

The statements on a request's way are built once, with parameters: building them
again for every request cost more than running them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    ScalarSelect,
    Select,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
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
    usage: SeatUsage
    """The usage when it was read: its count, less the holds that have expired."""


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

    async def lock(self, billing_root_id: uuid.UUID, *, now: datetime | None = None) -> PoolRecord:
        """Lock the pool: every change of who holds a seat in it goes one at a time.
        Locking it again in the same transaction reads it again."""
        at = now or datetime.now(UTC)
        row = (
            (await self.session.execute(_LOCKED_POOL, {"pool": billing_root_id, "now": at}))
            .mappings()
            .one()
        )
        return _pool(row)

    async def get(
        self, billing_root_id: uuid.UUID, *, now: datetime | None = None
    ) -> PoolRecord | None:
        at = now or datetime.now(UTC)
        row = (
            (await self.session.execute(_POOL, {"pool": billing_root_id, "now": at}))
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
            _RECORD_PUBLISHED,
            {
                "pool": billing_root_id,
                "published_used": usage.used,
                "published_pending": usage.pending,
            },
        )

    async def in_workspace(self, workspace_id: uuid.UUID, *, now: datetime) -> int:
        """The workspace's members plus its pending invitations: what a cap limits (at
        most the cap, or what the workspace held when capped, so counting is cheap)."""
        found = await self.session.scalar(_IN_WORKSPACE, {"workspace": workspace_id, "now": now})
        return int(found or 0)

    async def held_by(
        self, billing_root_id: uuid.UUID, *, people: Sequence[str], emails: Sequence[str]
    ) -> SeatUsage:
        """What these people and emails take in the pool, as its count counts them: the
        people seated, and the emails held by pending invitations whatever their expiry.
        Measured before and after a change that touches only them, the difference is
        what the change did to the pool's count."""
        row = (
            await self.session.execute(
                _HELD_BY, {"pool": billing_root_id, "people": people, "emails": emails}
            )
        ).one()
        return SeatUsage(used=int(row[0]), pending=int(row[1]))

    async def move_count(
        self,
        billing_root_id: uuid.UUID,
        *,
        people: Sequence[str],
        emails: Sequence[str],
        before: SeatUsage,
    ) -> None:
        """Move the pool's count by what a change did to what these people and emails
        take (`before` it, by `held_by`); call it holding the lock."""
        await self.session.execute(
            _MOVE_COUNT,
            {
                "pool": billing_root_id,
                "people": people,
                "emails": emails,
                "used_before": before.used,
                "held_before": before.pending,
            },
        )

    async def seat_takers_in(
        self, workspace_id: uuid.UUID, *, user_id: str | None = None
    ) -> tuple[list[str], list[str]]:
        """The people (user ids) and emails that the workspace's memberships (only this
        person's, when given) and pending invitations take or hold seats by."""
        member_rows = select(memberships.c.user_id, memberships.c.email).where(
            memberships.c.workspace_id == workspace_id
        )
        if user_id is not None:
            member_rows = member_rows.where(memberships.c.user_id == user_id)
        people: list[str] = []
        emails: set[str] = set()
        for person, email in (await self.session.execute(member_rows)).all():
            people.append(person)
            if email is not None:
                emails.add(email)
        if user_id is None:
            invited = select(invitations.c.email).where(
                invitations.c.workspace_id == workspace_id,
                invitations.c.status == InvitationStatus.PENDING.value,
            )
            emails.update((await self.session.scalars(invited)).all())
        return people, sorted(emails)

    async def recount(self, billing_root_id: uuid.UUID) -> tuple[SeatUsage, SeatUsage]:
        """The pool's count as kept, and counted from every row (to check the one
        against the other, never on a request's way)."""
        row = (
            await self.session.execute(
                select(seat_pools.c.seated, seat_pools.c.held, _used(), _held()).where(
                    seat_pools.c.billing_root_id == _POOL_ID
                ),
                {"pool": billing_root_id},
            )
        ).one()
        return (
            SeatUsage(used=int(row[0]), pending=int(row[1])),
            SeatUsage(used=int(row[2]), pending=int(row[3])),
        )


_POOL_ID = bindparam("pool", type_=Uuid)
_NOW = bindparam("now", type_=DateTime(timezone=True))
_PEOPLE = bindparam("people", type_=ARRAY(Text))
_EMAILS = bindparam("emails", type_=ARRAY(Text))


def _live_workspaces() -> Select[tuple[uuid.UUID]]:
    return select(workspaces.c.id).where(
        workspaces.c.billing_root_id == _POOL_ID,
        workspaces.c.status != WorkspaceStatus.DELETED.value,
    )


def _used(*, among: ColumnElement[bool] | None = None) -> ScalarSelect[int]:
    """Distinct people (among some) who are members of a workspace in the pool."""
    query = select(func.count(func.distinct(memberships.c.user_id))).where(
        memberships.c.workspace_id.in_(_live_workspaces())
    )
    if among is not None:
        query = query.where(among)
    return query.scalar_subquery()


def _held(*, among: ColumnElement[bool] | None = None) -> ScalarSelect[int]:
    """Emails (among some), each once, that a pending invitation in the pool holds a
    seat for, whatever its expiry: no member of the pool joined with them."""
    query = select(func.count(func.distinct(invitations.c.email))).where(
        _pending_in_pool(invitations), ~_a_member_joined_with(invitations.c.email)
    )
    if among is not None:
        query = query.where(among)
    return query.scalar_subquery()


def _expired_holds() -> ScalarSelect[int]:
    """Emails that `held` counts but hold no seat any more: every pending invitation
    to them in the pool has expired. Found from the invitations past their expiry that
    are still pending, which housekeeping keeps few."""
    due = invitations.alias("due")
    still_open = invitations.alias("still_open")
    return (
        select(func.count(func.distinct(due.c.email)))
        .where(
            _pending_in_pool(due),
            due.c.expires_at <= _NOW,
            ~_a_member_joined_with(due.c.email),
            ~exists().where(
                _pending_in_pool(still_open),
                still_open.c.email == due.c.email,
                still_open.c.expires_at > _NOW,
            ),
        )
        .scalar_subquery()
    )


def _pending_in_pool(table: FromClause) -> ColumnElement[bool]:
    return and_(
        table.c.status == InvitationStatus.PENDING.value,
        table.c.workspace_id.in_(_live_workspaces()),
    )


def _a_member_joined_with(email: ColumnElement[str]) -> ColumnElement[bool]:
    return exists().where(
        memberships.c.email == email, memberships.c.workspace_id.in_(_live_workspaces())
    )


_USED_BY = _used(among=memberships.c.user_id == any_(_PEOPLE))
_HELD_FOR = _held(among=invitations.c.email == any_(_EMAILS))

_POOL = select(
    seat_pools,
    (seat_pools.c.held - _expired_holds()).label("held_now"),
).where(seat_pools.c.billing_root_id == _POOL_ID)
_LOCKED_POOL = _POOL.with_for_update(of=seat_pools)

_HELD_BY = select(_USED_BY, _HELD_FOR)

_MOVE_COUNT = (
    update(seat_pools)
    .where(seat_pools.c.billing_root_id == _POOL_ID)
    .values(
        seated=seat_pools.c.seated + _USED_BY - bindparam("used_before", type_=Integer),
        held=seat_pools.c.held + _HELD_FOR - bindparam("held_before", type_=Integer),
    )
)

_RECORD_PUBLISHED = (
    update(seat_pools)
    .where(seat_pools.c.billing_root_id == _POOL_ID)
    .values(
        used=bindparam("published_used", type_=Integer),
        pending=bindparam("published_pending", type_=Integer),
    )
)

_WORKSPACE_ID = bindparam("workspace", type_=Uuid)
_IN_WORKSPACE = select(
    select(func.count()).where(memberships.c.workspace_id == _WORKSPACE_ID).scalar_subquery()
    + select(func.count())
    .where(
        invitations.c.workspace_id == _WORKSPACE_ID,
        invitations.c.status == InvitationStatus.PENDING.value,
        invitations.c.expires_at > _NOW,
    )
    .scalar_subquery()
)


def _pool(row: RowMapping) -> PoolRecord:
    return PoolRecord(
        billing_root_id=row["billing_root_id"],
        root_id=row["root_id"],
        seats_limit=row["seats_limit"],
        published=SeatUsage(used=row["used"], pending=row["pending"]),
        usage=SeatUsage(used=row["seated"], pending=row["held_now"]),
    )
