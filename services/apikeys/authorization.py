"""Who may do what with API keys: the first step of every use case, and the only place
apikeys decides it.

The gateway has let the caller through by their role in the path's workspace (a
request made with a key arrives as that key's workspace's developer); apikeys checks
again that the principal was made for this workspace, and applies its own rules: keys
and API usage are for developers and Super Admins; a key cannot create, rotate or
revoke keys (a leaked key must not mint new ones); while `api_access` is off the
workspace's own members see nothing of it, and a Super Admin of an ancestor may still
list, read usage and revoke.
"""

from __future__ import annotations

import uuid

from contracts.permissions import Permission, role_allows
from services.apikeys.domain import ApiAccessDisabledError
from services.apikeys.repository.workspaces import WorkspaceCopy
from shared.errors import ForbiddenError, NotFoundError
from shared.principal import Principal, vouched_workspace


def require_key_reader(caller: Principal, workspace_id: uuid.UUID) -> None:
    """Developers and Super Admins; a key acts as a developer of its own workspace."""
    vouched_workspace(caller, workspace_id)
    if caller.api_key_id is not None:
        return
    if caller.role is None or not role_allows(caller.role, Permission.MANAGE_API_KEYS):
        msg = "API keys are for developers and Super Admins."
        raise ForbiddenError(msg)


def require_key_manager(caller: Principal, workspace_id: uuid.UUID) -> None:
    """Creating, rotating and revoking keys is for people."""
    require_key_reader(caller, workspace_id)
    if caller.api_key_id is not None:
        msg = "An API key cannot create, rotate or revoke keys; a person must."
        raise ForbiddenError(msg)


def require_api_access(caller: Principal, workspace: WorkspaceCopy) -> None:
    """While `api_access` is off, only a Super Admin of an ancestor sees the workspace's
    keys and usage (and may revoke them)."""
    if not workspace.api_access and not caller.ancestor_super_admin:
        msg = "API access is off for this workspace."
        raise ApiAccessDisabledError(msg)


def require_api_access_on(workspace: WorkspaceCopy) -> None:
    """New keys (created or rotated) only where API access is on, whoever asks."""
    if not workspace.api_access:
        msg = "API access is off for this workspace: no new keys."
        raise ApiAccessDisabledError(msg)


def require_gateway(caller: Principal) -> None:
    """The internal look-up is the gateway's own: it signs a principal with no person,
    no key and no workspace."""
    if caller.user_id is not None or caller.api_key_id is not None or caller.workspace_id:
        msg = "Not found."
        raise NotFoundError(msg)
