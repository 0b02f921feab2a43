"""The gateway's in-memory copy of the workspace tree and its memberships.

Built from identity's events, which the consumer writes to the gateway's own tables
(`gateway.workspaces`, `gateway.memberships`): every gateway process copies the rows
it is told have changed (`services.gateway.projection_changes`), so that authorising a
request needs no database round trip. The rows are what is copied, never the events:
the copy is replaced row by row, and entirely whenever changes may have been missed.

Events of the two topics can arrive in any order: a membership can be known before
its workspace. Such a membership is kept, and counts for its own workspace; the
rights it gives further down the tree follow once the workspaces arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts.permissions import Role


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"
    """Being deleted: it can still be read, it takes no new work."""
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class WorkspaceNode:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    api_access: bool
    status: WorkspaceStatus = WorkspaceStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Membership:
    workspace_id: uuid.UUID
    user_id: str
    role: Role


class AccessProjection:
    """Workspaces by id and, per workspace, each member's role."""

    def __init__(self) -> None:
        self.workspaces: dict[uuid.UUID, WorkspaceNode] = {}
        self.roles: dict[uuid.UUID, dict[str, Role]] = {}

    def load(self, workspaces: Iterable[WorkspaceNode], memberships: Iterable[Membership]) -> None:
        """The copy becomes exactly these rows (whatever it held before)."""
        self.workspaces, self.roles = {}, {}
        for workspace in workspaces:
            self.put_workspace(workspace)
        for membership in memberships:
            self.put_member(membership)

    def put_workspace(self, workspace: WorkspaceNode) -> None:
        self.workspaces[workspace.id] = workspace
        if workspace.status is WorkspaceStatus.DELETED:
            # Gone from the table with it.
            self.roles.pop(workspace.id, None)

    def remove_workspace(self, workspace_id: uuid.UUID) -> None:
        self.workspaces.pop(workspace_id, None)

    def put_member(self, membership: Membership) -> None:
        self.roles.setdefault(membership.workspace_id, {})[membership.user_id] = membership.role

    def remove_member(self, workspace_id: uuid.UUID, user_id: str) -> None:
        members = self.roles.get(workspace_id)
        if members is not None:
            members.pop(user_id, None)
            if not members:
                del self.roles[workspace_id]

    def role_of(self, user_id: str, workspace_id: uuid.UUID) -> Role | None:
        members = self.roles.get(workspace_id)
        return None if members is None else members.get(user_id)

    def is_deleted(self, workspace_id: uuid.UUID) -> bool:
        known = self.workspaces.get(workspace_id)
        return known is not None and known.status is WorkspaceStatus.DELETED
