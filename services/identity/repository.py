"""All of identity's SQL."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.identity.domain import Workspace, WorkspaceStatus
from services.identity.models import memberships, users, workspaces


class IdentityRepository:
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

    async def add_workspace(self, workspace: Workspace) -> Workspace:
        created = (
            (
                await self.session.execute(
                    workspaces.insert()
                    .values(
                        id=workspace.id,
                        parent_id=workspace.parent_id,
                        root_id=workspace.root_id,
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

    async def add_membership(self, workspace_id: uuid.UUID, user_id: str, role: Role) -> None:
        await self.session.execute(
            memberships.insert().values(workspace_id=workspace_id, user_id=user_id, role=role.value)
        )

    async def workspace_of_member(self, workspace_id: uuid.UUID, user_id: str) -> Workspace | None:
        """The workspace, if `user_id` is a member of it; None whether it does not exist
        or the caller may not see it."""
        row = (
            (
                await self.session.execute(
                    select(workspaces)
                    .join(memberships, memberships.c.workspace_id == workspaces.c.id)
                    .where(workspaces.c.id == workspace_id, memberships.c.user_id == user_id),
                )
            )
            .mappings()
            .one_or_none()
        )
        return None if row is None else _workspace(row)


def _workspace(row: RowMapping) -> Workspace:
    return Workspace(
        id=row["id"],
        parent_id=row["parent_id"],
        root_id=row["root_id"],
        depth=row["depth"],
        name=row["name"],
        image_url=row["image_url"],
        billing_mode=BillingMode(row["billing_mode"]),
        api_access=row["api_access"],
        strict_quota=row["strict_quota"],
        status=WorkspaceStatus(row["status"]),
        created_at=row["created_at"],
    )
