"""People and their memberships: who is in which workspace, with which role."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.permissions import Role
from services.identity.domain import Member, Workspace
from services.identity.models import memberships, users


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def add(
        self, workspace_id: uuid.UUID, user_id: str, role: Role, *, email: str | None
    ) -> None:
        """`email`: the verified email (canonical form) the person joins with, if any."""
        await self.session.execute(
            memberships.insert().values(
                workspace_id=workspace_id, user_id=user_id, role=role.value, email=email
            )
        )

    async def get(self, workspace_id: uuid.UUID, user_id: str) -> Member | None:
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

    async def of_workspace(self, workspace_id: uuid.UUID) -> list[Member]:
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

    async def roles_on_path(self, user_id: str, workspace: Workspace) -> dict[uuid.UUID, Role]:
        """The person's roles in the workspace and in each of its ancestors."""
        rows = (
            await self.session.execute(
                select(memberships.c.workspace_id, memberships.c.role).where(
                    memberships.c.user_id == user_id,
                    memberships.c.workspace_id.in_(workspace.path),
                )
            )
        ).all()
        return {row.workspace_id: Role(row.role) for row in rows}

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

    async def remove(self, workspace_id: uuid.UUID, user_id: str) -> None:
        await self.session.execute(
            delete(memberships).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        )


def _members_query() -> Select[tuple[str, str | None, str, datetime]]:
    return select(
        memberships.c.user_id, users.c.email, memberships.c.role, memberships.c.joined_at
    ).join(users, users.c.id == memberships.c.user_id)


def _member(row: RowMapping) -> Member:
    return Member(
        user_id=row["user_id"],
        email=row["email"],
        role=Role(row["role"]),
        joined_at=row["joined_at"],
    )
