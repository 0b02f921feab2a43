"""Who may do what where: the effective role of a caller in a workspace of the tree,
and the gateway's decision for one operation. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts import problems
from contracts.permissions import Role, role_allows
from contracts.problems import ProblemType
from services.gateway.projections import AccessProjection, WorkspaceStatus
from services.gateway.routes import Route

MAX_TREE_DEPTH = 64
"""Far beyond any real tree (identity bounds depth at 5): a guard against a corrupt
projection that would make a cycle."""


@dataclass(frozen=True, slots=True)
class Access:
    """What a caller is in one workspace."""

    workspace_id: uuid.UUID
    role: Role
    """The direct role, or `super_admin` if the caller is a Super Admin of an ancestor."""
    ancestor_super_admin: bool
    """The caller is a Super Admin of a strict ancestor."""
    status: WorkspaceStatus = WorkspaceStatus.ACTIVE


def effective_access(
    projection: AccessProjection, user_id: str, workspace_id: uuid.UUID
) -> Access | None:
    """None when the caller has no place in the workspace: not a member, not a Super
    Admin above it (rights flow down the tree, never up or sideways)."""
    workspace = projection.workspaces.get(workspace_id)
    if workspace is not None and workspace.status is WorkspaceStatus.DELETED:
        return None
    direct = projection.role_of(user_id, workspace_id)
    ancestor_super_admin = False
    ancestor_id = None if workspace is None else workspace.parent_id
    for _ in range(MAX_TREE_DEPTH):
        if ancestor_id is None:
            break
        if projection.role_of(user_id, ancestor_id) is Role.SUPER_ADMIN:
            ancestor_super_admin = True
            break
        ancestor = projection.workspaces.get(ancestor_id)
        ancestor_id = None if ancestor is None else ancestor.parent_id
    role = Role.SUPER_ADMIN if ancestor_super_admin else direct
    if role is None:
        return None
    return Access(
        workspace_id=workspace_id,
        role=role,
        ancestor_super_admin=ancestor_super_admin,
        status=WorkspaceStatus.ACTIVE if workspace is None else workspace.status,
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    problem: ProblemType
    detail: str


_SAFE_METHODS = frozenset({"GET", "HEAD"})


def key_refusal(
    route: Route, workspace_id: uuid.UUID | None, key_workspace_id: uuid.UUID
) -> Refusal | None:
    """Why an API key may not perform `route` (in the path's workspace), before its
    developer's role is weighed; None if nothing stands in the way. A key acts only in
    its own workspace: any other is one that does not exist, as for a person."""
    if workspace_id is None:
        return Refusal(problems.FORBIDDEN, "API keys act only within their own workspace.")
    if workspace_id != key_workspace_id:
        return Refusal(problems.NOT_FOUND, f"No workspace {workspace_id} that you can see.")
    if route.by_a_person:
        return Refusal(problems.FORBIDDEN, "API keys cannot create, rotate or revoke keys.")
    return None


def refusal(route: Route, workspace_id: uuid.UUID, access: Access | None) -> Refusal | None:
    """Why the caller may not perform `route` in the workspace, or None if they may.

    No place in the workspace is a 404, never a 403: another tenant's id must look like
    one that does not exist. A 403 is for a workspace the caller can see.
    """
    if access is None:
        return Refusal(problems.NOT_FOUND, f"No workspace {workspace_id} that you can see.")
    if route.permission is not None and not role_allows(access.role, route.permission):
        return Refusal(problems.FORBIDDEN, "Your role in this workspace does not allow this.")
    if access.status is WorkspaceStatus.DELETING and route.method not in _SAFE_METHODS:
        return Refusal(
            problems.WORKSPACE_DELETING,
            f"Workspace {workspace_id} is being deleted; it can be read, not changed.",
        )
    return None
