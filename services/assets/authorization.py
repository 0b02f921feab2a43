"""Who may do what in an asset library: the first step of every use case, and the only
place assets decides it.

The gateway has let the caller through by their role in the path's workspace (an API
key with a developer's rights). assets checks again that the principal was made for
this workspace and applies what only it knows: the workspace has reached its copy
and is not deleted, and sharing is for Super Admins of the owner workspace.
"""

from __future__ import annotations

import uuid

from contracts.permissions import Permission, Role
from services.assets.domain import WorkspaceCopy, WorkspaceStatus
from services.assets.repository.workspaces import WorkspaceRepository
from shared.errors import ForbiddenError, NotFoundError
from shared.principal import Principal, require_permission, vouched_workspace
from shared.read_your_writes import WorkspaceNotArrivedError
from shared.unit_of_work import UnitOfWork


async def library(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID, permission: Permission
) -> WorkspaceCopy:
    """The library of a workspace the gateway vouched for, if the caller may act there
    with `permission`. An API key acts with a developer's rights in its own workspace
    (the gateway checked that); a person needs the permission in their role. For a
    change, the workspace's row is share-locked, so that it is not deleted under it; a
    read takes no lock."""
    vouched_workspace(caller, workspace_id)
    if caller.api_key_id is None:
        require_permission(caller, permission)
    elif permission is Permission.PURCHASE_AND_SHARE:
        msg = "Only a Super Admin shares assets; an API key cannot."
        raise ForbiddenError(msg)
    changes = permission is not Permission.READ_WORKSPACE
    workspace = await WorkspaceRepository(uow.session).find(workspace_id, share=changes)
    if workspace is None:
        raise WorkspaceNotArrivedError(workspace_id)
    if workspace.status is WorkspaceStatus.DELETED:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)
    return workspace


def require_share_manager(caller: Principal) -> None:
    """Shares are managed by a Super Admin of the owner workspace (or of an ancestor,
    who acts as one there)."""
    if caller.role is not Role.SUPER_ADMIN:
        msg = "Only a Super Admin of the owner workspace manages its shares."
        raise ForbiddenError(msg)
