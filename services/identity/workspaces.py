"""Workspaces: opening an account, creating sub-workspaces, renaming them and changing
their settings (who pays, API access, strict quota)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from contracts.events.identity import (
    MemberJoined,
    WorkspaceCreated,
    WorkspaceSettingsChanged,
    WorkspaceUpdated,
)
from contracts.permissions import Permission
from services.identity import authorization, invitations, seat_pool
from services.identity.commands import CreateRootWorkspace, CreateSubWorkspace, UpdateWorkspace
from services.identity.domain import (
    FOUNDER_ROLE,
    IdentityPolicy,
    Invitation,
    Occupancy,
    Workspace,
    change_billing_mode,
    new_root_workspace,
    new_sub_workspace,
)
from services.identity.repository.members import MemberRepository
from services.identity.repository.seat_pools import SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class SubWorkspaceWithInvitations:
    workspace: Workspace
    invitations: list[Invitation]


async def create_root_workspace(uow: UnitOfWork, command: CreateRootWorkspace) -> Workspace:
    founder_id = authorization.person(command.caller)
    members = MemberRepository(uow.session)
    await members.remember_user(founder_id, command.caller.email)
    workspace = await WorkspaceRepository(uow.session).add(
        new_root_workspace(command.name, command.image_url)
    )
    pools = SeatPoolRepository(uow.session)
    await pools.open(workspace.id, workspace.root_id)
    await pools.lock(workspace.billing_root_id)
    email = authorization.known_email(command.caller)
    async with seat_pool.changing(
        uow,
        [workspace.billing_root_id],
        people=[founder_id],
        emails=[] if email is None else [email],
    ):
        await members.add(workspace.id, founder_id, FOUNDER_ROLE, email=email)
    await _stage_created(uow, workspace)
    await uow.stage(
        MemberJoined(
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            billing_root_id=workspace.billing_root_id,
            user_id=founder_id,
            email=command.caller.email,
            role=FOUNDER_ROLE,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )
    await seat_pool.announce_usage(uow, workspace.billing_root_id)
    return workspace


async def create_sub_workspace(
    uow: UnitOfWork, command: CreateSubWorkspace, policy: IdentityPolicy
) -> SubWorkspaceWithInvitations:
    """The workspace and its invitations are created together, or not at all. The
    parent's row is share-locked, so that a deletion of the parent either sees the new
    child (and needs `cascade`) or has marked the parent before (and this is refused)."""
    parent = await authorization.authorize(
        uow, command.caller, command.parent_id, Permission.MANAGE_SUB_WORKSPACES, share=True
    )
    inviter = authorization.person(command.caller)
    workspace = await WorkspaceRepository(uow.session).add(
        new_sub_workspace(
            parent.workspace,
            name=command.name,
            image_url=command.image_url,
            billing_mode=command.billing_mode,
            api_access=command.api_access,
            strict_quota=command.strict_quota,
            max_depth=policy.max_depth,
        )
    )
    pools = SeatPoolRepository(uow.session)
    if workspace.is_billing_root:
        await pools.open(workspace.id, workspace.root_id)
    before = await seat_pool.occupancy(uow, workspace)
    await _stage_created(uow, workspace)
    invited = [
        await invitations.invite(
            uow,
            workspace,
            email=member.email,
            role=member.role,
            invited_by=inviter,
            expires_at=before.at + policy.invitation_lifetime,
        )
        for member in command.members
    ]
    pool = await seat_pool.admit(uow, workspace, before, policy)
    await seat_pool.announce_usage(uow, workspace.billing_root_id, pool=pool)
    return SubWorkspaceWithInvitations(workspace, invited)


async def update_workspace(
    uow: UnitOfWork, command: UpdateWorkspace, policy: IdentityPolicy
) -> Workspace:
    """Name and image are the workspace's own Super Admins' to change; the settings of a
    sub-workspace are its parent's Super Admins' (they decide who pays and whether it
    may use the API)."""
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_SUB_WORKSPACES, lock=True
    )
    before = access.workspace
    before.ensure_active()
    if command.changes_settings:
        authorization.authorize_settings(access)
    after = replace(
        before,
        name=before.name if command.name is None else command.name,
        image_url=command.image_url if command.sets_image else before.image_url,
        api_access=before.api_access if command.api_access is None else command.api_access,
        strict_quota=before.strict_quota if command.strict_quota is None else command.strict_quota,
    )
    moving_in = None
    if command.billing_mode is not None:
        after, moving_in = await _change_billing_mode(uow, after, command)
    if moving_in is None:
        saved = await WorkspaceRepository(uow.session).save(after)
    else:
        people, emails = await SeatPoolRepository(uow.session).seat_takers_in(after.id)
        async with seat_pool.changing(
            uow, [before.billing_root_id, after.billing_root_id], people=people, emails=emails
        ):
            saved = await WorkspaceRepository(uow.session).save(after)
    if moving_in is not None:
        await seat_pool.admit(uow, saved, moving_in, policy)
    if (saved.name, saved.image_url) != (before.name, before.image_url):
        await uow.stage(
            WorkspaceUpdated(
                id=saved.id, root_id=saved.root_id, name=saved.name, image_url=saved.image_url
            ),
            root_id=saved.root_id,
            workspace_id=saved.id,
        )
    if saved.settings != before.settings:
        await uow.stage(
            WorkspaceSettingsChanged(
                id=saved.id,
                parent_id=saved.parent_id,
                root_id=saved.root_id,
                billing_root_id=saved.billing_root_id,
                previous_billing_root_id=before.billing_root_id,
                billing_mode=saved.billing_mode,
                api_access=saved.api_access,
                strict_quota=saved.strict_quota,
            ),
            root_id=saved.root_id,
            workspace_id=saved.id,
        )
    if saved.billing_root_id != before.billing_root_id:
        for pool_id in sorted({before.billing_root_id, saved.billing_root_id}):
            await seat_pool.announce_usage(uow, pool_id)
    return saved


async def _change_billing_mode(
    uow: UnitOfWork, workspace: Workspace, command: UpdateWorkspace
) -> tuple[Workspace, Occupancy | None]:
    """`parent` → `own` opens the workspace's own pool; `own` → `parent` moves its people
    into the parent's pool. Either way its people must fit in the pool they move to:
    both pools are locked, in id order, and the one they move to is counted before the
    move (None when the workspace stays in its pool), to admit the move by its outcome."""
    assert command.billing_mode is not None
    workspaces = WorkspaceRepository(uow.session)
    parent = None if workspace.parent_id is None else await workspaces.get(workspace.parent_id)
    changed = change_billing_mode(
        workspace,
        command.billing_mode,
        parent_billing_root_id=None if parent is None else parent.billing_root_id,
        has_children=await workspaces.has_live_children(workspace.id),
    )
    if changed.billing_root_id == workspace.billing_root_id:
        return changed, None
    pools = SeatPoolRepository(uow.session)
    if changed.is_billing_root:
        await pools.open(changed.id, changed.root_id)
    for pool_id in sorted({workspace.billing_root_id, changed.billing_root_id}):
        await pools.lock(pool_id)
    return changed, await seat_pool.occupancy(uow, changed)


async def _stage_created(uow: UnitOfWork, workspace: Workspace) -> None:
    await uow.stage(
        WorkspaceCreated(
            id=workspace.id,
            parent_id=workspace.parent_id,
            root_id=workspace.root_id,
            billing_root_id=workspace.billing_root_id,
            depth=workspace.depth,
            name=workspace.name,
            image_url=workspace.image_url,
            billing_mode=workspace.billing_mode,
            api_access=workspace.api_access,
            strict_quota=workspace.strict_quota,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )
