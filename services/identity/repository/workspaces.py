"""Workspaces: the tree, its statuses, and the pages of it a person sees."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.identity.domain import Workspace, WorkspaceStatus
from services.identity.models import memberships, workspaces
from shared.pagination import Moment

SelectT = TypeVar("SelectT", bound=Select[Any])

Position = tuple[Moment, uuid.UUID]
"""Where a page of workspaces in creation order ends."""


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, workspace: Workspace) -> Workspace:
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
        return workspace_of_row(created)

    async def get(
        self, workspace_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Workspace | None:
        """With `lock`, the row is locked against any other change; with `share`, only
        against changes of the row itself (its status, its settings), so that several
        sub-workspaces may be created under it at once while its deletion waits.

        Neither lock is one on the row's key (`FOR NO KEY UPDATE`, `FOR SHARE`): a row
        that refers to the workspace (a member, an invitation, the seat pool, updated
        twice in one transaction) checks its reference with a key-share lock, which a
        plain `FOR UPDATE` would make wait — on a change that waits for the pool's lock
        that the referring transaction holds."""
        query = select(workspaces).where(workspaces.c.id == workspace_id)
        if lock or share:
            query = query.with_for_update(read=not lock, key_share=lock)
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else workspace_of_row(row)

    async def save(self, workspace: Workspace) -> Workspace:
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
        return workspace_of_row(saved)

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
        self, parent_id: uuid.UUID, *, limit: int, after: Position | None
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
        rows = (await self.session.execute(_after(query, after))).mappings().all()
        return [workspace_of_row(row) for row in rows]

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
            query = query.with_for_update(key_share=True)
        rows = (await self.session.execute(query)).mappings().all()
        return [workspace_of_row(row) for row in rows]

    async def being_deleted(self, *, limit: int) -> list[Workspace]:
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
        return [workspace_of_row(row) for row in rows]

    async def of_member(
        self, user_id: str, *, limit: int, after: Position | None
    ) -> list[tuple[Workspace, Role]]:
        """The live workspaces the person is a direct member of, with their role there."""
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
        rows = (await self.session.execute(_after(query, after))).mappings().all()
        return [(workspace_of_row(row), Role(row["member_role"])) for row in rows]


def _after(query: SelectT, after: Position | None) -> SelectT:
    """Keyset pagination over workspaces in creation order."""
    if after is None:
        return query
    return query.where(func.row(workspaces.c.created_at, workspaces.c.id) > func.row(*after))


def workspace_of_row(row: RowMapping | asyncpg.Record) -> Workspace:
    """A workspace of a row read through a session or a plain connection."""
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
