"""All of identity's SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.identity.domain import (
    Access,
    InvitationStatus,
    Workspace,
    WorkspaceStatus,
)
from services.identity.models import invitations, memberships, seat_pools, users, workspaces

SelectT = TypeVar("SelectT", bound=Select[Any])


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    email: str | None
    role: Role
    joined_at: datetime | None


@dataclass(frozen=True, slots=True)
class Invitation:
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    expires_at: datetime
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class SeatUsage:
    used: int
    pending: int


@dataclass(frozen=True, slots=True)
class PoolRecord:
    billing_root_id: uuid.UUID
    root_id: uuid.UUID
    seats_limit: int | None
    published: SeatUsage


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # People

    async def remember_user(self, user_id: str, email: str | None) -> None:
        """Record a person the first time they are seen; keep their latest email."""
        statement = insert(users).values(id=user_id, email=email)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[users.c.id],
                set_={"email": statement.excluded.email},
                where=users.c.email.is_distinct_from(statement.excluded.email),
            ),
        )

    # Workspaces

    async def add_workspace(self, workspace: Workspace) -> Workspace:
        created = (
            (
                await self.session.execute(
                    workspaces.insert()
                    .values(
                        id=workspace.id,
                        parent_id=workspace.parent_id,
                        root_id=workspace.root_id,
                        billing_root_id=workspace.billing_root_id,
                        path=list(workspace.path),
                        depth=workspace.depth,
                        name=workspace.name,
                        image_url=workspace.image_url,
                        billing_mode=workspace.billing_mode.value,
                        api_access=workspace.api_access,
                        strict_quota=workspace.strict_quota,
                        status=workspace.status.value,
                    )
                    .returning(*workspaces.c),
                )
            )
            .mappings()
            .one()
        )
        return _workspace(created)

    async def workspace(self, workspace_id: uuid.UUID, *, lock: bool = False) -> Workspace | None:
        query = select(workspaces).where(workspaces.c.id == workspace_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else _workspace(row)

    async def save_workspace(self, workspace: Workspace) -> Workspace:
        saved = (
            (
                await self.session.execute(
                    update(workspaces)
                    .where(workspaces.c.id == workspace.id)
                    .values(
                        name=workspace.name,
                        image_url=workspace.image_url,
                        billing_mode=workspace.billing_mode.value,
                        billing_root_id=workspace.billing_root_id,
                        api_access=workspace.api_access,
                        strict_quota=workspace.strict_quota,
                        status=workspace.status.value,
                        deleted_at=func.now()
                        if workspace.status is WorkspaceStatus.DELETED
                        else None,
                    )
                    .returning(*workspaces.c),
                )
            )
            .mappings()
            .one()
        )
        return _workspace(saved)

    async def set_seats_cap(self, workspace_id: uuid.UUID, cap: int | None) -> None:
        await self.session.execute(
            update(workspaces).where(workspaces.c.id == workspace_id).values(seats_cap=cap)
        )

    async def has_live_children(self, workspace_id: uuid.UUID) -> bool:
        return bool(
            await self.session.scalar(
                select(
                    exists().where(
                        workspaces.c.parent_id == workspace_id,
                        workspaces.c.status != WorkspaceStatus.DELETED.value,
                    )
                )
            )
        )

    async def children(
        self, parent_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Workspace]:
        query = (
            select(workspaces)
            .where(
                workspaces.c.parent_id == parent_id,
                workspaces.c.status != WorkspaceStatus.DELETED.value,
            )
            .order_by(workspaces.c.created_at, workspaces.c.id)
            .limit(limit)
        )
        query = _after(query, after)
        rows = (await self.session.execute(query)).mappings().all()
        return [_workspace(row) for row in rows]

    async def live_subtree(self, workspace_id: uuid.UUID, *, lock: bool = False) -> list[Workspace]:
        """The workspace and everything below it that is not deleted, deepest first."""
        query = (
            select(workspaces)
            .where(
                workspaces.c.path.contains([workspace_id]),
                workspaces.c.status != WorkspaceStatus.DELETED.value,
            )
            .order_by(workspaces.c.depth.desc(), workspaces.c.id)
        )
        if lock:
            query = query.with_for_update()
        rows = (await self.session.execute(query)).mappings().all()
        return [_workspace(row) for row in rows]

    async def workspaces_being_deleted(self, *, limit: int) -> list[Workspace]:
        rows = (
            (
                await self.session.execute(
                    select(workspaces)
                    .where(workspaces.c.status == WorkspaceStatus.DELETING.value)
                    .order_by(workspaces.c.depth.desc())
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
        return [_workspace(row) for row in rows]

    async def access(self, user_id: str, workspace_id: uuid.UUID) -> Access | None:
        """The person's standing in a live workspace: their own role there, and whether
        they are a Super Admin of an ancestor. None for an unknown or deleted workspace."""
        workspace = await self.workspace(workspace_id)
        if workspace is None or workspace.status is WorkspaceStatus.DELETED:
            return None
        roles = (
            await self.session.execute(
                select(memberships.c.workspace_id, memberships.c.role).where(
                    memberships.c.user_id == user_id,
                    memberships.c.workspace_id.in_(workspace.path),
                )
            )
        ).all()
        direct = next((Role(r.role) for r in roles if r.workspace_id == workspace_id), None)
        from_above = any(
            r.workspace_id != workspace_id and r.role == Role.SUPER_ADMIN.value for r in roles
        )
        return Access(workspace=workspace, direct_role=direct, ancestor_super_admin=from_above)

    async def workspaces_of_member(
        self, user_id: str, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[tuple[Workspace, Role]]:
        query = (
            select(workspaces, memberships.c.role.label("member_role"))
            .join(memberships, memberships.c.workspace_id == workspaces.c.id)
            .where(
                memberships.c.user_id == user_id,
                workspaces.c.status != WorkspaceStatus.DELETED.value,
            )
            .order_by(workspaces.c.created_at, workspaces.c.id)
            .limit(limit)
        )
        query = _after(query, after)
        rows = (await self.session.execute(query)).mappings().all()
        return [(_workspace(row), Role(row["member_role"])) for row in rows]

    # Members

    async def add_membership(self, workspace_id: uuid.UUID, user_id: str, role: Role) -> None:
        await self.session.execute(
            memberships.insert().values(workspace_id=workspace_id, user_id=user_id, role=role.value)
        )

    async def member(self, workspace_id: uuid.UUID, user_id: str) -> Member | None:
        row = (
            (
                await self.session.execute(
                    _members_query().where(
                        memberships.c.workspace_id == workspace_id,
                        memberships.c.user_id == user_id,
                    )
                )
            )
            .mappings()
            .one_or_none()
        )
        return None if row is None else _member(row)

    async def members(self, workspace_id: uuid.UUID) -> list[Member]:
        rows = (
            (
                await self.session.execute(
                    _members_query()
                    .where(memberships.c.workspace_id == workspace_id)
                    .order_by(memberships.c.joined_at, memberships.c.user_id)
                )
            )
            .mappings()
            .all()
        )
        return [_member(row) for row in rows]

    async def super_admins_above(self, workspace: Workspace) -> list[Member]:
        """Super Admins of the workspace's strict ancestors, once each."""
        ancestors = list(workspace.path[:-1])
        if not ancestors:
            return []
        rows = (
            (
                await self.session.execute(
                    _members_query()
                    .where(
                        memberships.c.workspace_id.in_(ancestors),
                        memberships.c.role == Role.SUPER_ADMIN.value,
                    )
                    .ext(distinct_on(memberships.c.user_id))
                    .order_by(memberships.c.user_id, memberships.c.joined_at)
                )
            )
            .mappings()
            .all()
        )
        return [_member(row) for row in rows]

    async def count_super_admins(self, workspace_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                memberships.c.workspace_id == workspace_id,
                memberships.c.role == Role.SUPER_ADMIN.value,
            )
        )
        return int(count or 0)

    async def change_role(self, workspace_id: uuid.UUID, user_id: str, role: Role) -> None:
        await self.session.execute(
            update(memberships)
            .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            .values(role=role.value)
        )

    async def remove_membership(self, workspace_id: uuid.UUID, user_id: str) -> None:
        await self.session.execute(
            delete(memberships).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        )

    async def email_is_member(self, workspace_id: uuid.UUID, email: str) -> bool:
        return bool(
            await self.session.scalar(
                select(
                    exists()
                    .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
                    .where(memberships.c.workspace_id == workspace_id, users.c.email == email)
                )
            )
        )

    # Invitations

    async def add_invitation(
        self,
        *,
        workspace_id: uuid.UUID,
        email: str,
        role: Role,
        invited_by: str,
        expires_at: datetime,
    ) -> Invitation:
        row = (
            (
                await self.session.execute(
                    invitations.insert()
                    .values(
                        id=uuid.uuid4(),
                        workspace_id=workspace_id,
                        email=email,
                        role=role.value,
                        status=InvitationStatus.PENDING.value,
                        invited_by=invited_by,
                        expires_at=expires_at,
                    )
                    .returning(*invitations.c)
                )
            )
            .mappings()
            .one()
        )
        return _invitation(row)

    async def invitation(
        self, invitation_id: uuid.UUID, *, lock: bool = False
    ) -> Invitation | None:
        query = select(invitations).where(invitations.c.id == invitation_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else _invitation(row)

    async def pending_invitation_exists(self, workspace_id: uuid.UUID, email: str) -> bool:
        return bool(
            await self.session.scalar(
                select(
                    exists().where(
                        invitations.c.workspace_id == workspace_id,
                        invitations.c.email == email,
                        invitations.c.status == InvitationStatus.PENDING.value,
                    )
                )
            )
        )

    async def pending_invitations(
        self, workspace_id: uuid.UUID, *, now: datetime
    ) -> list[Invitation]:
        rows = (
            (
                await self.session.execute(
                    select(invitations)
                    .where(
                        invitations.c.workspace_id == workspace_id,
                        invitations.c.status == InvitationStatus.PENDING.value,
                        invitations.c.expires_at > now,
                    )
                    .order_by(invitations.c.created_at, invitations.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [_invitation(row) for row in rows]

    async def invitations_addressed_to(
        self, email: str, *, now: datetime
    ) -> list[tuple[Invitation, str]]:
        rows = (
            (
                await self.session.execute(
                    select(invitations, workspaces.c.name.label("workspace_name"))
                    .join(workspaces, workspaces.c.id == invitations.c.workspace_id)
                    .where(
                        invitations.c.email == email,
                        invitations.c.status == InvitationStatus.PENDING.value,
                        invitations.c.expires_at > now,
                        workspaces.c.status == WorkspaceStatus.ACTIVE.value,
                    )
                    .order_by(invitations.c.created_at, invitations.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [(_invitation(row), row["workspace_name"]) for row in rows]

    async def set_invitation_status(
        self, invitation_id: uuid.UUID, status: InvitationStatus
    ) -> None:
        await self.session.execute(
            update(invitations)
            .where(invitations.c.id == invitation_id)
            .values(status=status.value, responded_at=func.now())
        )

    async def due_invitations(
        self, *, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """(pool, workspace, invitation) of pending invitations past their expiry."""
        rows = (
            await self.session.execute(
                select(workspaces.c.billing_root_id, invitations.c.workspace_id, invitations.c.id)
                .join(workspaces, workspaces.c.id == invitations.c.workspace_id)
                .where(
                    invitations.c.status == InvitationStatus.PENDING.value,
                    invitations.c.expires_at <= now,
                )
                .order_by(invitations.c.expires_at)
                .limit(limit)
            )
        ).all()
        return [(row[0], row[1], row[2]) for row in rows]

    # Seats

    async def open_seat_pool(self, billing_root_id: uuid.UUID, root_id: uuid.UUID) -> None:
        await self.session.execute(
            insert(seat_pools)
            .values(billing_root_id=billing_root_id, root_id=root_id)
            .on_conflict_do_nothing(index_elements=[seat_pools.c.billing_root_id])
        )

    async def lock_seat_pool(self, billing_root_id: uuid.UUID) -> PoolRecord:
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

    async def seat_pool(self, billing_root_id: uuid.UUID) -> PoolRecord | None:
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

    async def set_seats_limit(self, billing_root_id: uuid.UUID, limit: int) -> None:
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

    async def seat_usage(self, billing_root_id: uuid.UUID, *, now: datetime) -> SeatUsage:
        """A person counts once per pool, however many of its workspaces they are in; a
        pending invitation holds a seat unless its person already has one in the pool."""
        pool_workspaces = select(workspaces.c.id).where(
            workspaces.c.billing_root_id == billing_root_id,
            workspaces.c.status != WorkspaceStatus.DELETED.value,
        )
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

    async def email_holds_seat_in_pool(
        self, billing_root_id: uuid.UUID, email: str, *, now: datetime
    ) -> bool:
        """Whether the person with this email already takes or holds a seat in the pool."""
        pool_workspaces = select(workspaces.c.id).where(
            workspaces.c.billing_root_id == billing_root_id,
            workspaces.c.status != WorkspaceStatus.DELETED.value,
        )
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

    async def user_holds_seat_in_pool(self, billing_root_id: uuid.UUID, user_id: str) -> bool:
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


def _after(query: SelectT, after: tuple[datetime, uuid.UUID] | None) -> SelectT:
    """Keyset pagination over workspaces in creation order."""
    if after is None:
        return query
    return query.where(func.row(workspaces.c.created_at, workspaces.c.id) > func.row(*after))


def _members_query() -> Select[tuple[str, str | None, str, datetime]]:
    return select(
        memberships.c.user_id, users.c.email, memberships.c.role, memberships.c.joined_at
    ).join(users, users.c.id == memberships.c.user_id)


def _workspace(row: RowMapping) -> Workspace:
    return Workspace(
        id=row["id"],
        parent_id=row["parent_id"],
        root_id=row["root_id"],
        billing_root_id=row["billing_root_id"],
        path=tuple(row["path"]),
        name=row["name"],
        image_url=row["image_url"],
        billing_mode=BillingMode(row["billing_mode"]),
        api_access=row["api_access"],
        strict_quota=row["strict_quota"],
        status=WorkspaceStatus(row["status"]),
        seats_cap=row["seats_cap"],
        created_at=row["created_at"],
    )


def _member(row: RowMapping) -> Member:
    return Member(
        user_id=row["user_id"],
        email=row["email"],
        role=Role(row["role"]),
        joined_at=row["joined_at"],
    )


def _invitation(row: RowMapping) -> Invitation:
    return Invitation(
        id=row["id"],
        workspace_id=row["workspace_id"],
        email=row["email"],
        role=Role(row["role"]),
        status=InvitationStatus(row["status"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )


def _pool(row: RowMapping) -> PoolRecord:
    return PoolRecord(
        billing_root_id=row["billing_root_id"],
        root_id=row["root_id"],
        seats_limit=row["seats_limit"],
        published=SeatUsage(used=row["used"], pending=row["pending"]),
    )
