"""Workspaces, as identity announces them: apikeys keeps a copy of each (its place in
the tree, its `api_access`, whether it is being deleted), and its keys follow it.
These use cases apply identity's events, each in the consumer's transaction with the
event's inbox row; `require_workspace` is how every request finds the workspace it
acts on."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.apikeys import (
    ApiKeyRestored,
    ApiKeyRevoked,
    ApiKeySuspended,
    RevocationReason,
)
from services.apikeys.commands import (
    ChangeApiAccess,
    DeleteWorkspace,
    RecordWorkspace,
    StartWorkspaceDeletion,
)
from services.apikeys.domain import WorkspaceNotKnownYetError, WorkspaceStatus, utc_now
from services.apikeys.repository.keys import KeyRepository
from services.apikeys.repository.workspaces import WorkspaceCopy, WorkspaceRepository
from shared.errors import NotFoundError
from shared.read_your_writes import WorkspaceNotArrivedError, announce_arrival
from shared.unit_of_work import UnitOfWork


async def require_workspace(
    session: AsyncSession, workspace_id: uuid.UUID, *, lock: bool = False
) -> WorkspaceCopy:
    """The workspace a request is about. Until its `workspace.created` arrives the
    request waits for it (`WorkspaceNotArrivedError`); a deleted one is not found."""
    workspace = await WorkspaceRepository(session).find(workspace_id, lock=lock)
    if workspace is None:
        raise WorkspaceNotArrivedError(workspace_id)
    if workspace.status is WorkspaceStatus.DELETED:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)
    return workspace


async def record_workspace(uow: UnitOfWork, command: RecordWorkspace) -> None:
    added = await WorkspaceRepository(uow.session).add(
        workspace_id=command.workspace_id,
        parent_id=command.parent_id,
        root_id=command.root_id,
        api_access=command.api_access,
    )
    if added:
        await announce_arrival(uow.session, command.workspace_id)


async def change_api_access(uow: UnitOfWork, command: ChangeApiAccess) -> None:
    """Turning `api_access` off suspends the workspace's live keys at once, each
    announced; turning it on restores them."""
    workspaces = WorkspaceRepository(uow.session)
    workspace = await workspaces.find(command.workspace_id, lock=True)
    if workspace is None:
        msg = f"settings of workspace {command.workspace_id} before the workspace"
        raise WorkspaceNotKnownYetError(msg)
    if workspace.status is WorkspaceStatus.DELETED:
        return
    await workspaces.update(
        workspace.id, parent_id=command.parent_id, api_access=command.api_access
    )
    if command.api_access == workspace.api_access:
        return
    keys = KeyRepository(uow.session)
    now = utc_now()
    changing = [
        key
        for key in await keys.lock_unrevoked(workspace.id, now)
        if key.state.is_live(now) and key.suspended == command.api_access
    ]
    await keys.set_suspended([key.id for key in changing], suspended=not command.api_access)
    for key in changing:
        common = {"key_id": key.id, "workspace_id": key.workspace_id, "root_id": key.root_id}
        await uow.stage(
            ApiKeySuspended(**common) if not command.api_access else ApiKeyRestored(**common),
            root_id=key.root_id,
            workspace_id=key.workspace_id,
        )


async def start_workspace_deletion(uow: UnitOfWork, command: StartWorkspaceDeletion) -> None:
    """A workspace being deleted takes no new keys; its keys work until it is gone. Like a
    deletion, one that arrives before the workspace's creation leaves its copy behind."""
    workspaces = WorkspaceRepository(uow.session)
    workspace = await _locked_or_left_behind(uow, command, WorkspaceStatus.DELETING)
    if workspace is not None and workspace.status is WorkspaceStatus.ACTIVE:
        await workspaces.update(workspace.id, status=WorkspaceStatus.DELETING.value)


async def delete_workspace(uow: UnitOfWork, command: DeleteWorkspace) -> None:
    """Every key of a deleted workspace is revoked at once. A deletion that arrives
    before the workspace's creation leaves a deleted copy behind, so that the late
    `workspace.created` brings nothing back."""
    workspace = await _locked_or_left_behind(uow, command, WorkspaceStatus.DELETED)
    if workspace is None or workspace.status is WorkspaceStatus.DELETED:
        return
    await WorkspaceRepository(uow.session).update(
        workspace.id, status=WorkspaceStatus.DELETED.value
    )
    keys = KeyRepository(uow.session)
    now = utc_now()
    for key in await keys.lock_unrevoked(workspace.id, now):
        await keys.revoke(key.id, effective_at=now, reason=RevocationReason.WORKSPACE_DELETED)
        await uow.stage(
            ApiKeyRevoked(
                key_id=key.id,
                workspace_id=key.workspace_id,
                root_id=key.root_id,
                effective_at=now,
                reason=RevocationReason.WORKSPACE_DELETED,
            ),
            root_id=key.root_id,
            workspace_id=key.workspace_id,
        )


async def _locked_or_left_behind(
    uow: UnitOfWork, command: StartWorkspaceDeletion | DeleteWorkspace, status: WorkspaceStatus
) -> WorkspaceCopy | None:
    """The workspace's copy, locked; or, when the deletion came before its creation, None
    once a copy with `status` is left behind (and announced) in its place."""
    workspaces = WorkspaceRepository(uow.session)
    workspace = await workspaces.find(command.workspace_id, lock=True)
    if workspace is None:
        await workspaces.add(
            workspace_id=command.workspace_id,
            parent_id=command.parent_id,
            root_id=command.root_id,
            api_access=False,
            status=status,
        )
        await announce_arrival(uow.session, command.workspace_id)
    return workspace
