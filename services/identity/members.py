"""Members: changing a member's role, removing a member, leaving.

Both lock the workspace's row first, so that two Super Admins demoting or removing
each other at once are served one after the other and the last one stays.
"""

from __future__ import annotations

from dataclasses import replace

from contracts.events.identity import MemberRemoved, MemberRoleChanged, RemovalReason
from contracts.permissions import Permission, Role
from services.identity import authorization, seat_pool
from services.identity.commands import ChangeRole, RemoveMember
from services.identity.domain import Member, Workspace, ensure_a_super_admin_remains
from services.identity.repository.members import MemberRepository
from services.identity.repository.seat_pools import SeatPoolRepository
from shared.errors import NotFoundError
from shared.unit_of_work import UnitOfWork


async def change_role(uow: UnitOfWork, command: ChangeRole) -> Member:
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, Permission.MANAGE_MEMBERS, lock=True
    )
    workspace = access.workspace
    members = MemberRepository(uow.session)
    member = await _member(members, workspace, command.user_id)
    if member.role is command.role:
        return member
    await _ensure_a_super_admin_remains_without(members, workspace, member)
    await members.change_role(workspace.id, member.user_id, command.role)
    await uow.stage(
        MemberRoleChanged(
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            user_id=member.user_id,
            role=command.role,
            previous_role=member.role,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )
    return replace(member, role=command.role)


async def remove_member(uow: UnitOfWork, command: RemoveMember) -> None:
    """The person's seat frees up unless they hold another place in the same pool."""
    permission = authorization.permission_to_remove(command.caller, command.user_id)
    access = await authorization.authorize(
        uow, command.caller, command.workspace_id, permission, lock=True
    )
    workspace = access.workspace
    members = MemberRepository(uow.session)
    member = await _member(members, workspace, command.user_id)
    await SeatPoolRepository(uow.session).lock(workspace.billing_root_id)
    await _ensure_a_super_admin_remains_without(members, workspace, member)
    leaving = command.caller.user_id == command.user_id
    await end_membership(
        uow, workspace, member, RemovalReason.LEFT if leaving else RemovalReason.REMOVED
    )
    await seat_pool.announce_usage(uow, workspace.billing_root_id)


async def end_membership(
    uow: UnitOfWork, workspace: Workspace, member: Member, reason: RemovalReason
) -> None:
    """The member's seat frees up unless they hold another place in the pool (call it
    holding the pool's lock)."""
    people, emails = await SeatPoolRepository(uow.session).seat_takers_in(
        workspace.id, user_id=member.user_id
    )
    async with seat_pool.changing(uow, [workspace.billing_root_id], people=people, emails=emails):
        await MemberRepository(uow.session).remove(workspace.id, member.user_id)
    await uow.stage(
        MemberRemoved(
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            user_id=member.user_id,
            role=member.role,
            reason=reason,
        ),
        root_id=workspace.root_id,
        workspace_id=workspace.id,
    )


async def _member(members: MemberRepository, workspace: Workspace, user_id: str) -> Member:
    member = await members.get(workspace.id, user_id)
    if member is None:
        msg = f"{user_id} is not a member of this workspace."
        raise NotFoundError(msg)
    return member


async def _ensure_a_super_admin_remains_without(
    members: MemberRepository, workspace: Workspace, member: Member
) -> None:
    """The last Super Admin of a root can be neither removed nor demoted."""
    if workspace.is_root and member.role is Role.SUPER_ADMIN:
        others = await members.count_super_admins(workspace.id) - 1
        ensure_a_super_admin_remains(remaining_super_admins=others)
