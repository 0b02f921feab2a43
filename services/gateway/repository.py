"""All of the gateway's SQL: its projection tables."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.permissions import Role
from services.gateway.models import memberships, workspaces
from services.gateway.projections import Membership, WorkspaceNode, WorkspaceStatus


class ProjectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put_workspace(self, workspace: WorkspaceNode) -> None:
        values = {
            "parent_id": workspace.parent_id,
            "root_id": workspace.root_id,
            "api_access": workspace.api_access,
            "updated_at": func.now(),
        }
        await self.session.execute(
            insert(workspaces)
            .values(id=workspace.id, status=workspace.status.value, **values)
            .on_conflict_do_update(index_elements=[workspaces.c.id], set_=values)
        )

    async def change_settings(self, workspace_id: uuid.UUID, *, api_access: bool) -> None:
        await self.session.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(api_access=api_access, updated_at=func.now())
        )

    async def mark(self, workspace_id: uuid.UUID, status: WorkspaceStatus) -> None:
        await self.session.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(status=status.value, updated_at=func.now())
        )
        if status is WorkspaceStatus.DELETED:
            await self.session.execute(
                delete(memberships).where(memberships.c.workspace_id == workspace_id)
            )

    async def put_member(self, membership: Membership) -> None:
        await self.session.execute(
            insert(memberships)
            .values(
                workspace_id=membership.workspace_id,
                user_id=membership.user_id,
                role=membership.role.value,
            )
            .on_conflict_do_update(
                index_elements=[memberships.c.workspace_id, memberships.c.user_id],
                set_={"role": membership.role.value, "updated_at": func.now()},
            )
        )

    async def remove_member(self, workspace_id: uuid.UUID, user_id: str) -> None:
        await self.session.execute(
            delete(memberships).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        )

    async def all_workspaces(self) -> list[WorkspaceNode]:
        rows = await self.session.execute(
            select(
                workspaces.c.id,
                workspaces.c.parent_id,
                workspaces.c.root_id,
                workspaces.c.api_access,
                workspaces.c.status,
            )
        )
        return [
            WorkspaceNode(
                id=row.id,
                parent_id=row.parent_id,
                root_id=row.root_id,
                api_access=row.api_access,
                status=WorkspaceStatus(row.status),
            )
            for row in rows
        ]

    async def all_memberships(self) -> list[Membership]:
        rows = await self.session.execute(
            select(memberships.c.workspace_id, memberships.c.user_id, memberships.c.role)
        )
        return [
            Membership(workspace_id=row.workspace_id, user_id=row.user_id, role=Role(row.role))
            for row in rows
        ]
