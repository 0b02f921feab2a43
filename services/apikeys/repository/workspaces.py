"""apikeys' copy of identity's workspaces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.apikeys.domain import WorkspaceStatus
from services.apikeys.models import workspaces


@dataclass(frozen=True, slots=True)
class WorkspaceCopy:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    api_access: bool
    status: WorkspaceStatus


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        workspace_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        root_id: uuid.UUID,
        api_access: bool,
        status: WorkspaceStatus = WorkspaceStatus.ACTIVE,
    ) -> bool:
        """Keep a copy of the workspace; False when there is one already."""
        added = await self.session.execute(
            insert(workspaces)
            .values(
                id=workspace_id,
                parent_id=parent_id,
                root_id=root_id,
                api_access=api_access,
                status=status.value,
            )
            .on_conflict_do_nothing(index_elements=[workspaces.c.id])
            .returning(workspaces.c.id)
        )
        return added.first() is not None

    async def find(self, workspace_id: uuid.UUID, *, lock: bool = False) -> WorkspaceCopy | None:
        """The workspace; `lock` takes its row for the rest of the transaction, which
        every change to its keys does first."""
        query = select(workspaces).where(workspaces.c.id == workspace_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        if row is None:
            return None
        return WorkspaceCopy(
            id=row["id"],
            parent_id=row["parent_id"],
            root_id=row["root_id"],
            api_access=row["api_access"],
            status=WorkspaceStatus(row["status"]),
        )

    async def update(self, workspace_id: uuid.UUID, **values: object) -> None:
        await self.session.execute(
            update(workspaces).where(workspaces.c.id == workspace_id).values(**values)
        )
