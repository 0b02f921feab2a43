"""identity's use cases: one transaction each, events staged in the same one.

Every change of who holds a seat locks the seat pool's row first, so that two
requests racing for the last seat are served one after the other and the second
sees the first's result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventPayload
from contracts.events.billing import LimitsChanged
from contracts.events.identity import (
    BillingMode,
    InvitationAccepted,
    InvitationCreated,
    InvitationDeclined,
    InvitationExpired,
    InvitationRevoked,
    MemberJoined,
    MemberRemoved,
    MemberRoleChanged,
    RemovalReason,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
    WorkspaceUpdated,
)
from contracts.permissions import Permission, Role
from services.identity import domain
from services.identity.domain import (
    FOUNDER_ROLE,
    Access,
    AlreadyInvitedError,
    AlreadyMemberError,
    EmailNotVerifiedError,
    HasSubWorkspacesError,
    InvitationExpiredError,
    InvitationStatus,
    RootNotDeletableError,
    SeatPool,
    Workspace,
    WorkspaceStatus,
)
from services.identity.models import idempotency_keys
from services.identity.repository import IdentityRepository, Invitation, Member, SeatUsage
from services.identity.schemas import (
    AccessResponse,
    InvitationResponse,
    MemberResponse,
    MembershipResponse,
    MyInvitationResponse,
    MyWorkspaceResponse,
    SeatsResponse,
    SubWorkspaceCreatedResponse,
    WorkspaceResponse,
)
from shared.errors import NotFoundError
from shared.idempotency import IdempotencyKeys, IdempotentRequest, run_idempotently
from shared.pagination import InvalidCursorError, Page, decode_cursor, encode_cursor
from shared.principal import Principal, require_user, vouched_workspace
from shared.service import ServiceRuntime

IDEMPOTENCY = IdempotencyKeys(idempotency_keys)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The knobs of identity's rules, from the settings."""

    max_depth: int
    invitation_lifetime: timedelta
    default_seats: int


def _now() -> datetime:
    return datetime.now(UTC)


class Identity:
    """identity's use cases over one runtime."""

    def __init__(self, runtime: ServiceRuntime, policy: IdentityPolicy) -> None:
        self.runtime = runtime
        self.policy = policy

    # Workspaces

    async def create_root_workspace(
        self,
        founder: Principal,
        *,
        name: str,
        image_url: str | None,
        idempotency: IdempotentRequest | None,
    ) -> WorkspaceResponse:
        founder_id = require_user(founder)
        async with self.runtime.database.transaction() as session:

            async def create() -> WorkspaceResponse:
                repository = IdentityRepository(session)
                await repository.remember_user(founder_id, founder.email)
                workspace = await repository.add_workspace(
                    domain.new_root_workspace(name, image_url)
                )
                await repository.open_seat_pool(workspace.id, workspace.root_id)
                await repository.add_membership(workspace.id, founder_id, FOUNDER_ROLE)
                await self._stage(session, _created(workspace), workspace, founder)
                await self._stage(
                    session,
                    MemberJoined(
                        workspace_id=workspace.id,
                        root_id=workspace.root_id,
                        billing_root_id=workspace.billing_root_id,
                        user_id=founder_id,
                        email=founder.email,
                        role=FOUNDER_ROLE,
                    ),
                    workspace,
                    founder,
                )
                await self._publish_seat_usage(session, workspace.billing_root_id, founder)
                return WorkspaceResponse.of(workspace)

            return await run_idempotently(
                IDEMPOTENCY, session, idempotency, WorkspaceResponse, create
            )

    async def create_sub_workspace(
        self,
        caller: Principal,
        parent_id: uuid.UUID,
        *,
        name: str,
        image_url: str | None,
        billing_mode: BillingMode,
        api_access: bool,
        strict_quota: bool,
        members: list[tuple[str, Role]],
        idempotency: IdempotentRequest | None,
    ) -> SubWorkspaceCreatedResponse:
        """The workspace and its invitations are created together, or not at all."""
        inviter = require_user(caller)
        vouched_workspace(caller, parent_id)
        async with self.runtime.database.transaction() as session:

            async def create() -> SubWorkspaceCreatedResponse:
                repository = IdentityRepository(session)
                parent = await self._access(repository, caller, parent_id)
                parent.require(Permission.MANAGE_SUB_WORKSPACES)
                workspace = await repository.add_workspace(
                    domain.new_sub_workspace(
                        parent.workspace,
                        name=name,
                        image_url=image_url,
                        billing_mode=billing_mode,
                        api_access=api_access,
                        strict_quota=strict_quota,
                        max_depth=self.policy.max_depth,
                    )
                )
                if workspace.is_billing_root:
                    await repository.open_seat_pool(workspace.id, workspace.root_id)
                await self._stage(session, _created(workspace), workspace, caller)
                invited = [
                    await self._invite(
                        session=session,
                        repository=repository,
                        caller=caller,
                        inviter=inviter,
                        workspace=workspace,
                        email=email,
                        role=role,
                    )
                    for email, role in members
                ]
                await self._publish_seat_usage(
                    session,
                    workspace.billing_root_id,
                    caller,
                    usage=invited[-1][1] if invited else None,
                )
                return SubWorkspaceCreatedResponse(
                    **WorkspaceResponse.of(workspace).model_dump(),
                    invitations=[_invitation_response(i) for i, _ in invited],
                )

            return await run_idempotently(
                IDEMPOTENCY, session, idempotency, SubWorkspaceCreatedResponse, create
            )

    async def get_workspace(self, caller: Principal, workspace_id: uuid.UUID) -> WorkspaceResponse:
        async with self._reading(caller, workspace_id) as (_, access):
            return WorkspaceResponse.of(access.workspace)

    async def access_of(self, caller: Principal, workspace_id: uuid.UUID) -> AccessResponse:
        async with self._reading(caller, workspace_id) as (_, access):
            return AccessResponse.of(access)

    async def my_workspaces(
        self, caller: Principal, *, limit: int, cursor: str | None
    ) -> Page[MyWorkspaceResponse]:
        user_id = require_user(caller)
        after = _time_and_id(decode_cursor(cursor))
        async with self.runtime.database.transaction() as session:
            found = await IdentityRepository(session).workspaces_of_member(
                user_id, limit=limit + 1, after=after
            )
        page = found[:limit]
        return Page[MyWorkspaceResponse](
            items=[
                MyWorkspaceResponse(**WorkspaceResponse.of(w).model_dump(), role=role)
                for w, role in page
            ],
            next_cursor=_next_cursor(found, limit, lambda pair: pair[0]),
        )

    async def sub_workspaces(
        self, caller: Principal, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[WorkspaceResponse]:
        after = _time_and_id(decode_cursor(cursor))
        async with self._reading(caller, workspace_id) as (repository, _):
            found = await repository.children(workspace_id, limit=limit + 1, after=after)
        return Page[WorkspaceResponse](
            items=[WorkspaceResponse.of(w) for w in found[:limit]],
            next_cursor=_next_cursor(found, limit, lambda w: w),
        )

    async def update_workspace(
        self,
        caller: Principal,
        workspace_id: uuid.UUID,
        *,
        name: str | None,
        image_url: str | None,
        image_url_given: bool,
        api_access: bool | None,
        strict_quota: bool | None,
        billing_mode: BillingMode | None,
    ) -> WorkspaceResponse:
        """Name and image are the workspace's own Super Admins' to change; the settings
        of a sub-workspace are its parent's Super Admins' (they decide who pays and
        whether it may use the API)."""
        vouched_workspace(caller, workspace_id)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            access = await self._access(repository, caller, workspace_id, lock=True)
            access.require(Permission.MANAGE_SUB_WORKSPACES)
            before = access.workspace
            before.ensure_active()
            settings_asked = (api_access, strict_quota, billing_mode) != (None, None, None)
            if settings_asked and not before.is_root:
                access.require_ancestor_super_admin()
            after = replace(
                before,
                name=name if name is not None else before.name,
                image_url=image_url if image_url_given else before.image_url,
                api_access=before.api_access if api_access is None else api_access,
                strict_quota=before.strict_quota if strict_quota is None else strict_quota,
            )
            if billing_mode is not None:
                after = await self._change_billing_mode(repository, after, billing_mode)
            saved = await repository.save_workspace(after)
            if (saved.name, saved.image_url) != (before.name, before.image_url):
                await self._stage(
                    session,
                    WorkspaceUpdated(
                        id=saved.id,
                        root_id=saved.root_id,
                        name=saved.name,
                        image_url=saved.image_url,
                    ),
                    saved,
                    caller,
                )
            if _settings(saved) != _settings(before):
                await self._stage(
                    session,
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
                    saved,
                    caller,
                )
            if saved.billing_root_id != before.billing_root_id:
                for pool_id in sorted({before.billing_root_id, saved.billing_root_id}):
                    await self._publish_seat_usage(session, pool_id, caller)
            return WorkspaceResponse.of(saved)

    async def _change_billing_mode(
        self,
        repository: IdentityRepository,
        workspace: Workspace,
        billing_mode: BillingMode,
    ) -> Workspace:
        parent = (
            None if workspace.parent_id is None else await repository.workspace(workspace.parent_id)
        )
        changed = domain.change_billing_mode(
            workspace,
            billing_mode,
            parent_billing_root_id=None if parent is None else parent.billing_root_id,
            has_children=await repository.has_live_children(workspace.id),
        )
        if changed.billing_root_id == workspace.billing_root_id:
            return changed
        pools = sorted({workspace.billing_root_id, changed.billing_root_id})
        if changed.is_billing_root:
            await repository.open_seat_pool(changed.id, changed.root_id)
        for pool_id in pools:
            await repository.lock_seat_pool(pool_id)
        if not changed.is_billing_root:
            # Joining the parent's pool: its members and invitees must fit there.
            newcomers = 0
            now = _now()
            for member in await repository.members(workspace.id):
                if not await repository.user_holds_seat_in_pool(
                    changed.billing_root_id, member.user_id
                ):
                    newcomers += 1
            for invitation in await repository.pending_invitations(workspace.id, now=now):
                if not await repository.email_holds_seat_in_pool(
                    changed.billing_root_id, invitation.email, now=now
                ):
                    newcomers += 1
            pool = await self._seat_pool(repository, changed.billing_root_id)
            pool.admit(newcomers)
        return changed

    async def delete_workspace(
        self, caller: Principal, workspace_id: uuid.UUID, *, cascade: bool
    ) -> list[uuid.UUID]:
        """Mark the workspace (and with `cascade` its subtree) as being deleted; returns
        the workspaces to finish deleting, deepest first."""
        vouched_workspace(caller, workspace_id)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            access = await self._access(repository, caller, workspace_id)
            access.require(Permission.MANAGE_SUB_WORKSPACES)
            if access.workspace.is_root:
                msg = "An account's root workspace cannot be deleted."
                raise RootNotDeletableError(msg)
            subtree = await repository.live_subtree(workspace_id, lock=True)
            if len(subtree) > 1 and not cascade:
                msg = "The workspace has sub-workspaces; delete them first or pass cascade=true."
                raise HasSubWorkspacesError(msg)
            for workspace in subtree:
                if workspace.status is WorkspaceStatus.ACTIVE:
                    await repository.save_workspace(
                        replace(workspace, status=WorkspaceStatus.DELETING)
                    )
                    await self._stage(
                        session,
                        WorkspaceDeletionStarted(
                            id=workspace.id,
                            parent_id=workspace.parent_id,
                            root_id=workspace.root_id,
                        ),
                        workspace,
                        caller,
                    )
            return [workspace.id for workspace in subtree]

    async def finish_deletion(self, workspace_id: uuid.UUID, actor: Principal | None) -> bool:
        """End the members and invitations of a workspace being deleted, free its seats,
        and announce it gone. Harmless when repeated; False if there was nothing to do."""
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            workspace = await repository.workspace(workspace_id, lock=True)
            if workspace is None or workspace.status is not WorkspaceStatus.DELETING:
                return False
            if await repository.has_live_children(workspace_id):
                return False
            await repository.lock_seat_pool(workspace.billing_root_id)
            for member in await repository.members(workspace_id):
                await repository.remove_membership(workspace_id, member.user_id)
                await self._stage(
                    session,
                    MemberRemoved(
                        workspace_id=workspace_id,
                        root_id=workspace.root_id,
                        user_id=member.user_id,
                        role=member.role,
                        reason=RemovalReason.WORKSPACE_DELETED,
                    ),
                    workspace,
                    actor,
                )
            for invitation in await repository.pending_invitations(workspace_id, now=_now()):
                await self._end_invitation(
                    session=session,
                    repository=repository,
                    invitation=invitation,
                    workspace=workspace,
                    status=InvitationStatus.REVOKED,
                    actor=actor,
                )
            gone = await repository.save_workspace(
                replace(workspace, status=WorkspaceStatus.DELETED)
            )
            await self._stage(
                session,
                WorkspaceDeleted(
                    id=gone.id,
                    parent_id=gone.parent_id,
                    root_id=gone.root_id,
                    billing_root_id=gone.billing_root_id,
                    billing_mode=gone.billing_mode,
                ),
                gone,
                actor,
            )
            await self._publish_seat_usage(session, workspace.billing_root_id, actor)
            return True

    async def finish_pending_deletions(self, *, limit: int = 100) -> int:
        """Finish deletions that a stopped process left half-way."""
        async with self.runtime.database.transaction() as session:
            pending = await IdentityRepository(session).workspaces_being_deleted(limit=limit)
        finished = 0
        for workspace in pending:
            finished += await self.finish_deletion(workspace.id, None)
        return finished

    # Invitations

    async def invite(
        self,
        caller: Principal,
        workspace_id: uuid.UUID,
        *,
        email: str,
        role: Role,
        idempotency: IdempotentRequest | None,
    ) -> InvitationResponse:
        inviter = require_user(caller)
        vouched_workspace(caller, workspace_id)
        async with self.runtime.database.transaction() as session:

            async def create() -> InvitationResponse:
                repository = IdentityRepository(session)
                access = await self._access(repository, caller, workspace_id)
                access.require(Permission.MANAGE_MEMBERS)
                access.workspace.ensure_active()
                invitation, usage = await self._invite(
                    session=session,
                    repository=repository,
                    caller=caller,
                    inviter=inviter,
                    workspace=access.workspace,
                    email=email,
                    role=role,
                )
                await self._publish_seat_usage(
                    session, access.workspace.billing_root_id, caller, usage=usage
                )
                return _invitation_response(invitation)

            return await run_idempotently(
                IDEMPOTENCY, session, idempotency, InvitationResponse, create
            )

    async def _invite(
        self,
        *,
        session: AsyncSession,
        repository: IdentityRepository,
        caller: Principal,
        inviter: str,
        workspace: Workspace,
        email: str,
        role: Role,
    ) -> tuple[Invitation, SeatUsage]:
        """The invitation, and the pool's usage with it counted."""
        pool_record = await repository.lock_seat_pool(workspace.billing_root_id)
        if await repository.email_is_member(workspace.id, email):
            msg = f"{email} is already a member of this workspace."
            raise AlreadyMemberError(msg)
        if await repository.pending_invitation_exists(workspace.id, email):
            msg = f"{email} already has a pending invitation to this workspace."
            raise AlreadyInvitedError(msg)
        now = _now()
        newcomer = not await repository.email_holds_seat_in_pool(
            workspace.billing_root_id, email, now=now
        )
        usage = await repository.seat_usage(workspace.billing_root_id, now=now)
        SeatPool(
            billing_root_id=workspace.billing_root_id,
            limit=self._limit(pool_record.seats_limit),
            used=usage.used,
            pending=usage.pending,
        ).admit(1 if newcomer else 0)
        if workspace.seats_cap is not None:
            domain.admit_to_capped_workspace(
                workspace.seats_cap, await repository.seats_in_workspace(workspace.id, now=now), 1
            )
        invitation = await repository.add_invitation(
            workspace_id=workspace.id,
            email=email,
            role=role,
            invited_by=inviter,
            expires_at=now + self.policy.invitation_lifetime,
        )
        await self._stage(
            session,
            InvitationCreated(
                invitation_id=invitation.id,
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                email=email,
                role=role,
                expires_at=invitation.expires_at,
            ),
            workspace,
            caller,
        )
        return invitation, SeatUsage(used=usage.used, pending=usage.pending + int(newcomer))

    async def pending_invitations(
        self, caller: Principal, workspace_id: uuid.UUID
    ) -> Page[InvitationResponse]:
        async with self._reading(caller, workspace_id) as (repository, access):
            access.require(Permission.MANAGE_MEMBERS)
            pending = await repository.pending_invitations(workspace_id, now=_now())
        return Page[InvitationResponse](
            items=[_invitation_response(i) for i in pending], next_cursor=None
        )

    async def revoke_invitation(
        self, caller: Principal, workspace_id: uuid.UUID, invitation_id: uuid.UUID
    ) -> None:
        vouched_workspace(caller, workspace_id)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            access = await self._access(repository, caller, workspace_id)
            access.require(Permission.MANAGE_MEMBERS)
            await repository.lock_seat_pool(access.workspace.billing_root_id)
            invitation = await repository.invitation(invitation_id, lock=True)
            if (
                invitation is None
                or invitation.workspace_id != workspace_id
                or invitation.status is not InvitationStatus.PENDING
            ):
                msg = f"No pending invitation {invitation_id} in this workspace."
                raise NotFoundError(msg)
            await self._end_invitation(
                session=session,
                repository=repository,
                invitation=invitation,
                workspace=access.workspace,
                status=InvitationStatus.REVOKED,
                actor=caller,
            )
            await self._publish_seat_usage(session, access.workspace.billing_root_id, caller)

    async def my_invitations(self, caller: Principal) -> Page[MyInvitationResponse]:
        email = _verified_email(caller)
        async with self.runtime.database.transaction() as session:
            found = await IdentityRepository(session).invitations_addressed_to(email, now=_now())
        return Page[MyInvitationResponse](
            items=[
                MyInvitationResponse(
                    **_invitation_response(invitation).model_dump(), workspace_name=name
                )
                for invitation, name in found
            ],
            next_cursor=None,
        )

    async def accept_invitation(
        self, caller: Principal, invitation_id: uuid.UUID
    ) -> MembershipResponse:
        user_id = require_user(caller)
        email = _verified_email(caller)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            invitation, workspace = await self._pending_invitation_for(
                repository, invitation_id, email
            )
            await repository.remember_user(user_id, email)
            member = await repository.member(workspace.id, user_id)
            if member is None:
                await repository.add_membership(workspace.id, user_id, invitation.role)
                member = await repository.member(workspace.id, user_id)
                assert member is not None
                await self._stage(
                    session,
                    MemberJoined(
                        workspace_id=workspace.id,
                        root_id=workspace.root_id,
                        billing_root_id=workspace.billing_root_id,
                        user_id=user_id,
                        email=email,
                        role=member.role,
                    ),
                    workspace,
                    caller,
                )
            await repository.set_invitation_status(invitation_id, InvitationStatus.ACCEPTED)
            await self._stage(
                session,
                InvitationAccepted(
                    invitation_id=invitation_id,
                    workspace_id=workspace.id,
                    root_id=workspace.root_id,
                    email=email,
                    user_id=user_id,
                    role=member.role,
                ),
                workspace,
                caller,
            )
            await self._publish_seat_usage(session, workspace.billing_root_id, caller)
            return MembershipResponse(
                workspace_id=workspace.id,
                user_id=user_id,
                role=member.role,
                joined_at=member.joined_at,
            )

    async def decline_invitation(self, caller: Principal, invitation_id: uuid.UUID) -> None:
        email = _verified_email(caller)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            invitation, workspace = await self._pending_invitation_for(
                repository, invitation_id, email
            )
            await self._end_invitation(
                session=session,
                repository=repository,
                invitation=invitation,
                workspace=workspace,
                status=InvitationStatus.DECLINED,
                actor=caller,
            )
            await self._publish_seat_usage(session, workspace.billing_root_id, caller)

    async def expire_due_invitations(self, *, limit: int = 200) -> int:
        """Close invitations past their expiry. Like every change of held seats, it takes
        the pool's lock before the invitation's, so it never deadlocks with an accept."""
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            due = await repository.due_invitations(now=_now(), limit=limit)
            expired = 0
            for pool_id, workspace_id, invitation_id in sorted(due):
                await repository.lock_seat_pool(pool_id)
                invitation = await repository.invitation(invitation_id, lock=True)
                if invitation is None or invitation.status is not InvitationStatus.PENDING:
                    continue
                workspace = await repository.workspace(workspace_id)
                assert workspace is not None
                await self._end_invitation(
                    session=session,
                    repository=repository,
                    invitation=invitation,
                    workspace=workspace,
                    status=InvitationStatus.EXPIRED,
                    actor=None,
                )
                expired += 1
            for pool_id in sorted({pool_id for pool_id, _, _ in due}):
                await self._publish_seat_usage(session, pool_id, None)
            return expired

    async def _pending_invitation_for(
        self, repository: IdentityRepository, invitation_id: uuid.UUID, email: str
    ) -> tuple[Invitation, Workspace]:
        """The caller's pending invitation, locked after its seat pool (the order every
        change of held seats takes)."""
        invitation = await repository.invitation(invitation_id)
        if invitation is None or invitation.email != email:
            msg = f"No invitation {invitation_id} for you."
            raise NotFoundError(msg)
        workspace = await repository.workspace(invitation.workspace_id)
        if invitation.status is InvitationStatus.EXPIRED or (
            invitation.status is InvitationStatus.PENDING and invitation.expires_at <= _now()
        ):
            msg = "This invitation has expired; ask for a new one."
            raise InvitationExpiredError(msg)
        if (
            invitation.status is not InvitationStatus.PENDING
            or workspace is None
            or workspace.status is not WorkspaceStatus.ACTIVE
        ):
            msg = f"No pending invitation {invitation_id} for you."
            raise NotFoundError(msg)
        await repository.lock_seat_pool(workspace.billing_root_id)
        locked = await repository.invitation(invitation_id, lock=True)
        if locked is None or locked.status is not InvitationStatus.PENDING:
            msg = f"No pending invitation {invitation_id} for you."
            raise NotFoundError(msg)
        return locked, workspace

    async def _end_invitation(
        self,
        *,
        session: AsyncSession,
        repository: IdentityRepository,
        invitation: Invitation,
        workspace: Workspace,
        status: InvitationStatus,
        actor: Principal | None,
    ) -> None:
        await repository.set_invitation_status(invitation.id, status)
        event_class = {
            InvitationStatus.REVOKED: InvitationRevoked,
            InvitationStatus.DECLINED: InvitationDeclined,
            InvitationStatus.EXPIRED: InvitationExpired,
        }[status]
        await self._stage(
            session,
            event_class(
                invitation_id=invitation.id,
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                email=invitation.email,
            ),
            workspace,
            actor,
        )

    # Members

    async def members(
        self, caller: Principal, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[MemberResponse]:
        """Direct members, and the Super Admins of ancestors who act here from above."""
        async with self._reading(caller, workspace_id) as (repository, access):
            direct = await repository.members(workspace_id)
            above = await repository.super_admins_above(access.workspace)
        listed = _member_listing(direct, above)
        start = int((decode_cursor(cursor) or [0])[0])
        page = listed[start : start + limit]
        has_more = start + limit < len(listed)
        return Page[MemberResponse](
            items=page, next_cursor=encode_cursor([start + limit]) if has_more else None
        )

    async def change_role(
        self, caller: Principal, workspace_id: uuid.UUID, user_id: str, role: Role
    ) -> MemberResponse:
        vouched_workspace(caller, workspace_id)
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            access = await self._access(repository, caller, workspace_id, lock=True)
            access.require(Permission.MANAGE_MEMBERS)
            member = await repository.member(workspace_id, user_id)
            if member is None:
                msg = f"{user_id} is not a member of this workspace."
                raise NotFoundError(msg)
            if member.role is role:
                return _member_response(member, inherited=False)
            if access.workspace.is_root and member.role is Role.SUPER_ADMIN:
                others = await repository.count_super_admins(workspace_id) - 1
                domain.ensure_a_super_admin_remains(remaining_super_admins=others)
            await repository.change_role(workspace_id, user_id, role)
            await self._stage(
                session,
                MemberRoleChanged(
                    workspace_id=workspace_id,
                    root_id=access.workspace.root_id,
                    user_id=user_id,
                    role=role,
                    previous_role=member.role,
                ),
                access.workspace,
                caller,
            )
            return _member_response(replace(member, role=role), inherited=False)

    async def remove_member(self, caller: Principal, workspace_id: uuid.UUID, user_id: str) -> None:
        """A Super Admin removes a member, or a member leaves. The person's seat frees up
        unless they hold another place in the same pool."""
        vouched_workspace(caller, workspace_id)
        leaving = caller.user_id == user_id
        async with self.runtime.database.transaction() as session:
            repository = IdentityRepository(session)
            access = await self._access(repository, caller, workspace_id, lock=True)
            if not leaving:
                access.require(Permission.MANAGE_MEMBERS)
            member = await repository.member(workspace_id, user_id)
            if member is None:
                msg = f"{user_id} is not a member of this workspace."
                raise NotFoundError(msg)
            await repository.lock_seat_pool(access.workspace.billing_root_id)
            if access.workspace.is_root and member.role is Role.SUPER_ADMIN:
                others = await repository.count_super_admins(workspace_id) - 1
                domain.ensure_a_super_admin_remains(remaining_super_admins=others)
            await repository.remove_membership(workspace_id, user_id)
            await self._stage(
                session,
                MemberRemoved(
                    workspace_id=workspace_id,
                    root_id=access.workspace.root_id,
                    user_id=user_id,
                    role=member.role,
                    reason=RemovalReason.LEFT if leaving else RemovalReason.REMOVED,
                ),
                access.workspace,
                caller,
            )
            await self._publish_seat_usage(session, access.workspace.billing_root_id, caller)

    # Seats

    async def seats(self, caller: Principal, workspace_id: uuid.UUID) -> SeatsResponse:
        async with self._reading(caller, workspace_id) as (repository, access):
            workspace = access.workspace
            pool = await self._seat_pool(repository, workspace.billing_root_id)
        return SeatsResponse(
            pool_root_id=pool.billing_root_id,
            limit=pool.limit,
            used=pool.used,
            pending=pool.pending,
            available=pool.available,
            cap=workspace.seats_cap,
        )

    async def apply_limits(self, session: AsyncSession, limits: LimitsChanged) -> None:
        """Billing owns the limits; identity keeps the copy it enforces."""
        repository = IdentityRepository(session)
        workspace = await repository.workspace(limits.workspace_id)
        if workspace is None:
            msg = f"limits for workspace {limits.workspace_id}, which identity does not know"
            raise LookupError(msg)
        if workspace.is_billing_root and limits.seats_limit is not None:
            await repository.lock_seat_pool(workspace.id)
            await repository.set_seats_limit(workspace.id, limits.seats_limit)
        if not workspace.is_root:
            await repository.set_seats_cap(workspace.id, limits.seats_cap)

    # Helpers

    def _limit(self, seats_limit: int | None) -> int:
        return self.policy.default_seats if seats_limit is None else seats_limit

    async def _seat_pool(
        self, repository: IdentityRepository, billing_root_id: uuid.UUID
    ) -> SeatPool:
        record = await repository.seat_pool(billing_root_id)
        usage = await repository.seat_usage(billing_root_id, now=_now())
        return SeatPool(
            billing_root_id=billing_root_id,
            limit=self._limit(None if record is None else record.seats_limit),
            used=usage.used,
            pending=usage.pending,
        )

    async def _publish_seat_usage(
        self,
        session: AsyncSession,
        billing_root_id: uuid.UUID,
        actor: Principal | None,
        *,
        usage: SeatUsage | None = None,
    ) -> None:
        """Announce the pool's usage if it changed; `usage` when the caller just counted it
        under the pool's lock."""
        repository = IdentityRepository(session)
        record = await repository.lock_seat_pool(billing_root_id)
        if usage is None:
            usage = await repository.seat_usage(billing_root_id, now=_now())
        if usage == record.published:
            return
        await repository.record_published_usage(billing_root_id, usage)
        await self.runtime.outbox.stage(
            session,
            SeatsUsageChanged(
                billing_root_id=billing_root_id,
                root_id=record.root_id,
                used=usage.used,
                pending=usage.pending,
            ),
            root_id=record.root_id,
            workspace_id=billing_root_id,
            actor=_actor(actor),
        )

    async def _access(
        self,
        repository: IdentityRepository,
        caller: Principal,
        workspace_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> Access:
        user_id = require_user(caller)
        if lock:
            await repository.workspace(workspace_id, lock=True)
        access = await repository.access(user_id, workspace_id)
        if access is None or access.role is None:
            msg = f"No workspace {workspace_id} that you can see."
            raise NotFoundError(msg)
        return access

    def _reading(self, caller: Principal, workspace_id: uuid.UUID) -> _Reading:
        return _Reading(self, caller, workspace_id)

    async def _stage(
        self,
        session: AsyncSession,
        payload: EventPayload,
        workspace: Workspace,
        actor: Principal | None,
    ) -> None:
        await self.runtime.outbox.stage(
            session,
            payload,
            root_id=workspace.root_id,
            workspace_id=workspace.id,
            actor=_actor(actor),
        )


class _Reading:
    """`async with identity._reading(caller, id) as (repository, access)`: a read in
    one transaction, by someone who may read the workspace."""

    def __init__(self, identity: Identity, caller: Principal, workspace_id: uuid.UUID) -> None:
        self.identity = identity
        self.caller = caller
        self.workspace_id = workspace_id
        self._transaction: AbstractAsyncContextManager[AsyncSession] | None = None

    async def __aenter__(self) -> tuple[IdentityRepository, Access]:
        vouched_workspace(self.caller, self.workspace_id)
        self._transaction = self.identity.runtime.database.transaction()
        session = await self._transaction.__aenter__()
        try:
            repository = IdentityRepository(session)
            access = await self.identity._access(repository, self.caller, self.workspace_id)
            access.require(Permission.READ_WORKSPACE)
        except BaseException as failure:
            await self._transaction.__aexit__(type(failure), failure, failure.__traceback__)
            raise
        return repository, access

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._transaction is not None
        await self._transaction.__aexit__(*exc_info)


def _actor(principal: Principal | None) -> str:
    return "system" if principal is None else principal.actor


def _verified_email(caller: Principal) -> str:
    if not caller.email or not caller.email_verified:
        msg = "Invitations are matched on a verified email; verify yours first."
        raise EmailNotVerifiedError(msg)
    return domain.normalise_email(caller.email)


def _created(workspace: Workspace) -> WorkspaceCreated:
    return WorkspaceCreated(
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
    )


def _settings(workspace: Workspace) -> tuple[BillingMode, bool, bool]:
    return workspace.billing_mode, workspace.api_access, workspace.strict_quota


def _invitation_response(invitation: Invitation) -> InvitationResponse:
    return InvitationResponse(
        id=invitation.id,
        workspace_id=invitation.workspace_id,
        email=invitation.email,
        role=invitation.role,
        status=invitation.status,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


def _member_response(member: Member, *, inherited: bool) -> MemberResponse:
    return MemberResponse(
        user_id=member.user_id,
        email=member.email,
        role=member.role,
        inherited=inherited,
        joined_at=member.joined_at,
    )


def _member_listing(direct: list[Member], above: list[Member]) -> list[MemberResponse]:
    """Each person once, with their effective role: a Super Admin from above is a Super
    Admin here, whatever their own role here."""
    from_above = {member.user_id for member in above}
    listed = [
        _member_response(
            replace(member, role=Role.SUPER_ADMIN) if member.user_id in from_above else member,
            inherited=member.user_id in from_above and member.role is not Role.SUPER_ADMIN,
        )
        for member in direct
    ]
    direct_ids = {member.user_id for member in direct}
    listed.extend(
        _member_response(member, inherited=True)
        for member in above
        if member.user_id not in direct_ids
    )
    return listed


def _time_and_id(position: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if position is None:
        return None
    try:
        return datetime.fromisoformat(str(position[0])), uuid.UUID(str(position[1]))
    except (ValueError, IndexError) as invalid:
        msg = "The cursor is not one this API gave out."
        raise InvalidCursorError(msg) from invalid


def _next_cursor(found: list[T], limit: int, workspace_of: Callable[[T], Workspace]) -> str | None:
    if len(found) <= limit:
        return None
    last = workspace_of(found[limit - 1])
    return encode_cursor([last.created_at, last.id])
