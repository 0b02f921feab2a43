"""assets' copy of the workspace tree."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.assets.domain import WorkspaceCopy, WorkspaceStatus
from services.assets.models import workspaces


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, workspace_id: uuid.UUID, *, share: bool = False) -> WorkspaceCopy | None:
        """With `share`, the row is share-locked: its deletion waits for this transaction
        (an asset or a share is never added to a workspace whose deletion has passed)."""
        query = select(workspaces).where(workspaces.c.id == workspace_id)
        if share:
            query = query.with_for_update(read=True)
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        return WorkspaceCopy(
            id=row.id,
            parent_id=row.parent_id,
            root_id=row.root_id,
            status=WorkspaceStatus(row.status),
        )

    async def add(
        self,
        workspace_id: uuid.UUID,
        *,
        parent_id: uuid.UUID | None,
        root_id: uuid.UUID,
        status: WorkspaceStatus,
    ) -> None:
        await self.session.execute(
            insert(workspaces)
            .values(id=workspace_id, parent_id=parent_id, root_id=root_id, status=status.value)
            .on_conflict_do_nothing(),
        )

    async def mark_deleted(self, workspace_id: uuid.UUID) -> None:
        await self.session.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(status=WorkspaceStatus.DELETED.value),
        )

    async def is_descendant(self, workspace_id: uuid.UUID, ancestor_id: uuid.UUID) -> bool:
        """Whether `ancestor_id` is a strict ancestor of `workspace_id` in the copy."""
        chain = (
            select(workspaces.c.id, workspaces.c.parent_id)
            .where(workspaces.c.id == workspace_id)
            .cte("chain", recursive=True)
        )
        chain = chain.union_all(
            select(workspaces.c.id, workspaces.c.parent_id).where(
                workspaces.c.id == chain.c.parent_id
            )
        )
        found = await self.session.execute(
            select(chain.c.id).where(chain.c.id == ancestor_id, chain.c.id != workspace_id).limit(1)
        )
        return found.first() is not None
