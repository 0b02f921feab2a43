"""Deleting a sub-workspace: marked `deleting` at once (with its subtree, when asked),
then finished deepest first, one unit of work per workspace: members removed, pending
invitations revoked, seats freed, `workspace.deleted` announced. Housekeeping finishes
what a stopped process left half-way."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from contracts.events.identity import RemovalReason, WorkspaceDeleted, WorkspaceDeletionStarted
from contracts.permissions import Permission
from services.identity import authorization, invitations, members, seat_pool
from services.identity.commands import DeleteWorkspace, FinishDeletion
from services.identity.domain import (
    InvitationStatus,
    WorkspaceStatus,
    ensure_deletable,
    ensure_subtree_may_go,
)
from services.identity.repository.invitations import InvitationRepository
from services.identity.repository.members import MemberRepository
from services.identity.repository.seat_pools import SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.unit_of_work import UnitOfWork


async def delete_workspace(uow: UnitOfWork, command: DeleteWorkspace) -> list[uuid.UUID]:
    """Mark the workspace (and with `cascade` its subtree) as being deleted; the
    workspaces to finish deleting, deepest first. Deleting a workspace that is already
    being deleted changes nothing and answers the same."""
    # The row lock waits for sub-workspaces being created under it to commit; the
    # subtree is read after it, by a statement that then sees them.
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_SUB_WORKSPACES, lock=True
    )
    ensure_deletable(access.workspace)
    workspaces = WorkspaceRepository(uow.session)
    subtree = await workspaces.live_subtree(command.workspace_id, lock=True)
    ensure_subtree_may_go(subtree_size=len(subtree), cascade=command.cascade)
    for workspace in subtree:
        if workspace.status is WorkspaceStatus.ACTIVE:
            await workspaces.save(replace(workspace, status=WorkspaceStatus.DELETING))
            await uow.stage(
                WorkspaceDeletionStarted(
                    id=workspace.id, parent_id=workspace.parent_id, root_id=workspace.root_id
                ),
                root_id=workspace.root_id,
                workspace_id=workspace.id,
            )
    return [workspace.id for workspace in subtree]


async def finish_deletion(uow: UnitOfWork, command: FinishDeletion) -> bool:
    """Harmless when repeated; False when there was nothing to do (yet: a workspace goes
    only after its sub-workspaces)."""
    workspaces = WorkspaceRepository(uow.session)
    workspace = await workspaces.get(command.workspace_id, lock=True)
    if workspace is None or workspace.status is not WorkspaceStatus.DELETING:
        return False
    if await workspaces.has_live_children(workspace.id):
        return False
    await SeatPoolRepository(uow.session).lock(workspace.billing_root_id)
    for member in await MemberRepository(uow.session).of_workspace(workspace.id):
        await members.end_membership(uow, workspace, member, RemovalReason.WORKSPACE_DELETED)
    pending = await InvitationRepository(uow.session).pending(workspace.id, now=datetime.now(UTC))
    for invitation in pending:
        await invitations.end_invitation(uow, invitation, workspace, InvitationStatus.REVOKED)
    people, emails = await SeatPoolRepository(uow.session).seat_takers_in(workspace.id)
    async with seat_pool.changing(uow, [workspace.billing_root_id], people=people, emails=emails):
        gone = await workspaces.save(replace(workspace, status=WorkspaceStatus.DELETED))
    await uow.stage(
        WorkspaceDeleted(
            id=gone.id,
            parent_id=gone.parent_id,
            root_id=gone.root_id,
            billing_root_id=gone.billing_root_id,
            billing_mode=gone.billing_mode,
        ),
        root_id=gone.root_id,
        workspace_id=gone.id,
    )
    await seat_pool.announce_usage(uow, workspace.billing_root_id)
    return True


async def workspaces_being_deleted(uow: UnitOfWork, *, limit: int) -> list[uuid.UUID]:
    """Workspaces whose deletion is still to finish, deepest first."""
    found = await WorkspaceRepository(uow.session).being_deleted(limit=limit)
    return [workspace.id for workspace in found]
