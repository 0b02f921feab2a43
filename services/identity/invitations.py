"""Invitations: asking someone to join a workspace by email, and their answer.

A pending invitation holds a seat in its workspace's pool, so every change of an
invitation takes the pool's lock before the invitation's (the order every change of
held seats takes) and stages its events after both. Inviting and accepting share-lock
the workspace's row first, so that its pool and its cap stay what they were read as
until they commit; and both are admitted by their outcome (`seat_pool.admit`): an
acceptance is measured as the pool will count the accepting person afterwards, so an
invitation that held no seat (its email belonged to a member) takes one when someone
else accepts it, and is refused when none is free.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.identity import (
    InvitationAccepted,
    InvitationCreated,
    InvitationDeclined,
    InvitationExpired,
    InvitationRevoked,
    MemberJoined,
)
from contracts.permissions import Permission, Role
from services.identity import authorization, seat_pool
from services.identity.commands import (
    AcceptInvitation,
    DeclineInvitation,
    ExpireDueInvitations,
    InviteMember,
    RevokeInvitation,
)
from services.identity.domain import (
    AlreadyInvitedError,
    AlreadyMemberError,
    IdentityPolicy,
    Invitation,
    InvitationExpiredError,
    InvitationStatus,
    Membership,
    Workspace,
    WorkspaceStatus,
)
from services.identity.repository.invitations import InvitationRepository
from services.identity.repository.members import MemberRepository
from services.identity.repository.seat_pools import SeatPoolRepository
from services.identity.repository.workspaces import WorkspaceRepository
from shared.errors import NotFoundError
from shared.unit_of_work import UnitOfWork

_ENDED = {
    InvitationStatus.REVOKED: InvitationRevoked,
    InvitationStatus.DECLINED: InvitationDeclined,
    InvitationStatus.EXPIRED: InvitationExpired,
}


async def invite_member(
    uow: UnitOfWork, command: InviteMember, policy: IdentityPolicy
) -> Invitation:
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_MEMBERS, share=True
    )
    workspace = access.workspace
    workspace.ensure_active()
    before = await seat_pool.occupancy(uow, workspace)
    invitation = await invite(
        uow,
        workspace,
        email=command.email,
        role=command.role,
        invited_by=authorization.person(command.caller),
        expires_at=before.at + policy.invitation_lifetime,
    )
    pool = await seat_pool.admit(uow, workspace, before, policy)
    await seat_pool.announce_usage(uow, workspace.billing_root_id, pool=pool)
    return invitation


async def invite(
    uow: UnitOfWork,
    workspace: Workspace,
    *,
    email: str,
    role: Role,
    invited_by: str,
    expires_at: datetime,
) -> Invitation:
    """Invite someone who is neither a member nor invited yet. Call it holding the
    pool's lock, with the pool counted before, and admit the change afterwards."""
    invitations = InvitationRepository(uow.session)
    is_member, is_invited = await invitations.standing_of(workspace.id, email)
    if is_member:
        msg = f"{email} is already a member of this workspace."
        raise AlreadyMemberError(msg)
    if is_invited:
        msg = f"{email} already has a pending invitation to this workspace."
        raise AlreadyInvitedError(msg)
    async with seat_pool.changing(uow, [workspace.billing_root_id], emails=[email]):
        invitation = await invitations.add(
            workspace_id=workspace.id,
            email=email,
            role=role,
            invited_by=invited_by,
            expires_at=expires_at,
        )
    await uow.stage(
        InvitationCreated(
            invitation_id=invitation.id,
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            email=email,
            role=role,
            expires_at=invitation.expires_at,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )
    return invitation


async def revoke_invitation(uow: UnitOfWork, command: RevokeInvitation) -> None:
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_MEMBERS
    )
    workspace = access.workspace
    await SeatPoolRepository(uow.session).lock(workspace.billing_root_id)
    invitation = await InvitationRepository(uow.session).get(command.invitation_id, lock=True)
    if (
        invitation is None
        or invitation.workspace_id != workspace.id
        or invitation.status is not InvitationStatus.PENDING
    ):
        msg = f"No pending invitation {command.invitation_id} in this workspace."
        raise NotFoundError(msg)
    await end_invitation(uow, invitation, workspace, InvitationStatus.REVOKED)
    await seat_pool.announce_usage(uow, workspace.billing_root_id)


async def accept_invitation(
    uow: UnitOfWork, command: AcceptInvitation, policy: IdentityPolicy
) -> Membership:
    """The caller joins with the invited role (or keeps the place they already have),
    if the pool has room for them as it counts them once they are in."""
    user_id = authorization.person(command.caller)
    email = authorization.verified_email(command.caller)
    invitation, workspace = await _callers_pending_invitation(uow, command.invitation_id, email)
    before = await seat_pool.occupancy(uow, workspace)
    members = MemberRepository(uow.session)
    await members.remember_user(user_id, email)
    member = await members.get(workspace.id, user_id)
    joined = member is None
    async with seat_pool.changing(
        uow, [workspace.billing_root_id], people=[user_id], emails=[email]
    ):
        if joined:
            await members.add(workspace.id, user_id, invitation.role, email=email)
            member = await members.get(workspace.id, user_id)
        await InvitationRepository(uow.session).set_status(invitation.id, InvitationStatus.ACCEPTED)
    assert member is not None
    pool = await seat_pool.admit(uow, workspace, before, policy)
    if joined:
        await uow.stage(
            MemberJoined(
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                billing_root_id=workspace.billing_root_id,
                user_id=user_id,
                email=email,
                role=member.role,
            ),
            root_id=workspace.root_id,
            workspace_id=workspace.id,
        )
    await uow.stage(
        InvitationAccepted(
            invitation_id=invitation.id,
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            email=email,
            user_id=user_id,
            role=member.role,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )
    await seat_pool.announce_usage(uow, workspace.billing_root_id, pool=pool)
    return Membership(workspace_id=workspace.id, member=member)


async def decline_invitation(uow: UnitOfWork, command: DeclineInvitation) -> None:
    email = authorization.verified_email(command.caller)
    invitation, workspace = await _callers_pending_invitation(uow, command.invitation_id, email)
    await end_invitation(uow, invitation, workspace, InvitationStatus.DECLINED)
    await seat_pool.announce_usage(uow, workspace.billing_root_id)


async def expire_due_invitations(uow: UnitOfWork, command: ExpireDueInvitations) -> int:
    """Close invitations past their expiry. Their pools are locked first, in order, then
    each invitation: the order every change of held seats takes, so it never deadlocks
    with an accept, and no event is staged before the last lock is held."""
    invitations = InvitationRepository(uow.session)
    due = sorted(await invitations.due(now=datetime.now(UTC), limit=command.limit))
    pool_ids = sorted({pool_id for pool_id, _, _ in due})
    pools = SeatPoolRepository(uow.session)
    for pool_id in pool_ids:
        await pools.lock(pool_id)
    ending: list[tuple[Invitation, uuid.UUID]] = []
    for _, workspace_id, invitation_id in due:
        invitation = await invitations.get(invitation_id, lock=True)
        if invitation is not None and invitation.status is InvitationStatus.PENDING:
            ending.append((invitation, workspace_id))
    workspaces = WorkspaceRepository(uow.session)
    for invitation, workspace_id in ending:
        workspace = await workspaces.get(workspace_id)
        assert workspace is not None
        await end_invitation(uow, invitation, workspace, InvitationStatus.EXPIRED)
    for pool_id in pool_ids:
        await seat_pool.announce_usage(uow, pool_id)
    return len(ending)


async def end_invitation(
    uow: UnitOfWork, invitation: Invitation, workspace: Workspace, status: InvitationStatus
) -> None:
    """Revoke, decline or expire a pending invitation; its seat frees up."""
    async with seat_pool.changing(uow, [workspace.billing_root_id], emails=[invitation.email]):
        await InvitationRepository(uow.session).set_status(invitation.id, status)
    await uow.stage(
        _ENDED[status](
            invitation_id=invitation.id,
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            email=invitation.email,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )


async def _callers_pending_invitation(
    uow: UnitOfWork, invitation_id: uuid.UUID, email: str
) -> tuple[Invitation, Workspace]:
    """The caller's pending invitation, locked after its workspace's row (shared) and its
    seat pool. Someone else's, a revoked or declined one, or one to a workspace being
    deleted, is 404; an expired one is 410."""
    invitations = InvitationRepository(uow.session)
    invitation = await invitations.get(invitation_id)
    if invitation is None or invitation.email != email:
        msg = f"No invitation {invitation_id} for you."
        raise NotFoundError(msg)
    workspace = await WorkspaceRepository(uow.session).get(invitation.workspace_id, share=True)
    if invitation.has_expired(datetime.now(UTC)):
        msg = "This invitation has expired; ask for a new one."
        raise InvitationExpiredError(msg)
    if (
        invitation.status is not InvitationStatus.PENDING
        or workspace is None
        or workspace.status is not WorkspaceStatus.ACTIVE
    ):
        msg = f"No pending invitation {invitation_id} for you."
        raise NotFoundError(msg)
    await SeatPoolRepository(uow.session).lock(workspace.billing_root_id)
    locked = await invitations.get(invitation_id, lock=True)
    if locked is None or locked.status is not InvitationStatus.PENDING:
        msg = f"No pending invitation {invitation_id} for you."
        raise NotFoundError(msg)
    return locked, workspace
