"""Who may do what in identity: the first step of every use case, and the only place
that decides it.

The gateway has refused most callers already; identity decides again from its own
records (it is where memberships are decided), inside the use case's unit of work, so
that the decision and the change it allows see the same rows. `api.py` checks nothing
beyond the principal's signature.
"""

from __future__ import annotations

import uuid

import asyncpg

from contracts.permissions import Permission, Role
from services.identity.domain import Access, EmailNotVerifiedError, Workspace, WorkspaceStatus
from services.identity.repository.members import MemberRepository
from services.identity.repository.standing import standing
from services.identity.repository.workspaces import WorkspaceRepository
from shared.errors import NotFoundError
from shared.fields import canonical_email
from shared.principal import Principal, require_user, vouched_workspace
from shared.unit_of_work import UnitOfWork


def person(caller: Principal) -> str:
    """The calling person's id: identity's changes are made by people, not API keys."""
    return require_user(caller)


def verified_email(caller: Principal) -> str:
    """Invitations are matched on the caller's verified email, in the canonical form
    invitations are addressed in (`shared.fields.canonical_email`)."""
    if not caller.email or not caller.email_verified:
        msg = "Invitations are matched on a verified email; verify yours first."
        raise EmailNotVerifiedError(msg)
    try:
        return canonical_email(caller.email)
    except ValueError as unmatchable:
        msg = f"Invitations cannot be matched on your verified email: it {unmatchable}."
        raise EmailNotVerifiedError(msg) from unmatchable


def known_email(caller: Principal) -> str | None:
    """The caller's verified email in canonical form, if they have one that can be
    matched: what their membership records as the address they joined with."""
    try:
        return verified_email(caller)
    except EmailNotVerifiedError:
        return None


async def authorize(
    uow: UnitOfWork,
    caller: Principal,
    workspace_id: uuid.UUID,
    permission: Permission,
    *,
    lock: bool = False,
    share: bool = False,
) -> Access:
    """The caller's standing in a workspace the gateway vouched for, if it allows
    `permission`. A workspace the caller has no place in is 404, never 403; an API key
    is a developer of its own workspace. With `lock`,
    the workspace's row is locked first (changes of its members, settings or status);
    with `share`, only against such changes (adding a sub-workspace under it)."""
    vouched_workspace(caller, workspace_id)
    user_id = None if caller.api_key_id is not None else person(caller)
    workspace = _seen(
        workspace_id,
        await WorkspaceRepository(uow.session).get(workspace_id, lock=lock, share=share),
    )
    roles = (
        {}
        if user_id is None
        else await MemberRepository(uow.session).roles_on_path(user_id, workspace)
    )
    return _decided(workspace, roles, caller, permission)


async def standing_to_read(
    connection: asyncpg.Connection, caller: Principal, workspace_id: uuid.UUID
) -> Access:
    """`authorize` for reading the workspace, in one statement on a plain connection
    (no unit of work, no lock): the hot read of a workspace and of the caller's access."""
    vouched_workspace(caller, workspace_id)
    user_id = None if caller.api_key_id is not None else person(caller)
    found = await standing(connection, workspace_id, user_id)
    workspace, roles = (None, {}) if found is None else found
    return _decided(_seen(workspace_id, workspace), roles, caller, Permission.READ_WORKSPACE)


def _seen(workspace_id: uuid.UUID, workspace: Workspace | None) -> Workspace:
    if workspace is None or workspace.status is WorkspaceStatus.DELETED:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)
    return workspace


def _decided(
    workspace: Workspace,
    roles_on_path: dict[uuid.UUID, Role],
    caller: Principal,
    permission: Permission,
) -> Access:
    if caller.api_key_id is not None:
        # The gateway verified the key and vouched for its own workspace, the only one
        # it acts in.
        access = Access.of_api_key(workspace)
    else:
        access = Access.from_roles(workspace, roles_on_path)
    access.require(permission)
    return access


def permission_to_remove(caller: Principal, user_id: str) -> Permission:
    """Anyone may leave a workspace they see; removing someone else is managing members."""
    return Permission.READ_WORKSPACE if caller.user_id == user_id else Permission.MANAGE_MEMBERS


def authorize_from_above(access: Access) -> None:
    """A sub-workspace's seat cap is decided by a Super Admin of an ancestor; a root has
    no one above it."""
    access.require_ancestor_super_admin()


def authorize_settings(access: Access) -> None:
    """A sub-workspace's settings (who pays, API access, strict quota) are decided from
    above, not by its own Super Admins; a root's are its own Super Admins'."""
    if not access.workspace.is_root:
        access.require_ancestor_super_admin()
