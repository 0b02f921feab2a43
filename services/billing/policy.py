"""Who may do what in billing: the first step of every use case, and the only place
billing decides it.

The gateway has already let the caller through by their role in the path's workspace;
billing checks again that the principal was made for this workspace (defence in
depth) and applies the rules only it knows: allocations come from above, API usage is
for developers where `api_access` is on, the rest of the usage and the ledger for Super
Admins.
"""

from __future__ import annotations

import uuid

from contracts.permissions import Permission, Role
from services.billing.domain import ApiAccessDisabledError
from shared.errors import ForbiddenError
from shared.principal import Principal, require_permission, vouched_workspace


def require_member(caller: Principal, workspace_id: uuid.UUID) -> None:
    """Balances and allocations are for anyone in the workspace, an API key included."""
    vouched_workspace(caller, workspace_id)
    if caller.role is None and caller.api_key_id is None:
        msg = "Members of the workspace only."
        raise ForbiddenError(msg)


def require_purchaser(caller: Principal, workspace_id: uuid.UUID) -> None:
    vouched_workspace(caller, workspace_id)
    if caller.role is not Role.SUPER_ADMIN:
        msg = "Only a Super Admin makes purchases."
        raise ForbiddenError(msg)


def require_allocator(caller: Principal, workspace_id: uuid.UUID) -> None:
    """A sub-workspace's own Super Admin cannot grant itself its parent's credits."""
    vouched_workspace(caller, workspace_id)
    if not caller.ancestor_super_admin:
        msg = "Allocations are set by a Super Admin of the parent."
        raise ForbiddenError(msg)


def require_spender(caller: Principal, workspace_id: uuid.UUID, permission: Permission) -> None:
    """An API key acts within its own workspace with what the gateway let it do (that
    billing's copy of the key lets it spend at all is `key_budgets`' to decide, under
    the key's lock); a person needs the permission in their role."""
    vouched_workspace(caller, workspace_id)
    if caller.api_key_id is None:
        require_permission(caller, permission)


def require_ledger_reader(caller: Principal, workspace_id: uuid.UUID) -> None:
    vouched_workspace(caller, workspace_id)
    _require_super_admin(caller)


def require_usage_reader(caller: Principal, workspace_id: uuid.UUID, *, of_api_keys: bool) -> None:
    """Usage by API key is for those who manage the keys; the rest for Super Admins."""
    vouched_workspace(caller, workspace_id)
    if of_api_keys:
        require_permission(caller, Permission.MANAGE_API_KEYS)
    else:
        _require_super_admin(caller)


def require_api_access(caller: Principal, *, api_access: bool) -> None:
    """While a workspace's `api_access` is off its own members cannot see its API usage;
    a Super Admin of an ancestor still can."""
    if not api_access and not caller.ancestor_super_admin:
        msg = "API access is off for this workspace."
        raise ApiAccessDisabledError(msg)


def _require_super_admin(caller: Principal) -> None:
    if caller.role is not Role.SUPER_ADMIN:
        msg = "Only a Super Admin of this workspace may do this."
        raise ForbiddenError(msg)
