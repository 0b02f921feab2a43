"""identity's rules, free of I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from contracts import problems
from contracts.events.identity import BillingMode
from contracts.permissions import Permission, Role, role_allows
from shared.errors import DomainError, ForbiddenError, NotFoundError


class SeatLimitReachedError(DomainError):
    problem = problems.SEAT_LIMIT_REACHED


class AlreadyMemberError(DomainError):
    problem = problems.ALREADY_MEMBER


class AlreadyInvitedError(DomainError):
    problem = problems.ALREADY_INVITED


class LastSuperAdminError(DomainError):
    problem = problems.LAST_SUPER_ADMIN


class HasSubWorkspacesError(DomainError):
    problem = problems.HAS_SUB_WORKSPACES


class InvitationExpiredError(DomainError):
    problem = problems.INVITATION_EXPIRED


class EmailNotVerifiedError(DomainError):
    problem = problems.EMAIL_NOT_VERIFIED


class DepthLimitReachedError(DomainError):
    problem = problems.DEPTH_LIMIT_REACHED


class ParentBilledCannotHaveChildrenError(DomainError):
    problem = problems.PARENT_BILLED_CANNOT_HAVE_CHILDREN


class RootNotDeletableError(DomainError):
    problem = problems.ROOT_NOT_DELETABLE


class RootPaysForItselfError(DomainError):
    problem = problems.ROOT_PAYS_FOR_ITSELF


class WorkspaceDeletingError(DomainError):
    problem = problems.WORKSPACE_DELETING


class BelowUsageError(DomainError):
    problem = problems.BELOW_USAGE


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


FOUNDER_ROLE = Role.SUPER_ADMIN
"""The person who creates a root workspace becomes its first Super Admin."""


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The knobs of identity's rules, from the settings."""

    max_depth: int
    invitation_lifetime: timedelta
    default_seats: int
    """A billing root's seats until billing's first `limits.changed` for it arrives."""

    def seats_limit(self, announced: int | None) -> int:
        return self.default_seats if announced is None else announced


@dataclass(frozen=True, slots=True)
class Workspace:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    billing_root_id: uuid.UUID
    path: tuple[uuid.UUID, ...]
    """Ancestors from the root down to the workspace itself."""
    name: str
    image_url: str | None
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool
    status: WorkspaceStatus
    seats_cap: int | None = None
    created_at: datetime | None = None

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def is_billing_root(self) -> bool:
        return self.billing_mode is BillingMode.OWN

    @property
    def settings(self) -> tuple[BillingMode, bool, bool]:
        """What a Super Admin above decides for a sub-workspace."""
        return self.billing_mode, self.api_access, self.strict_quota

    def ensure_active(self) -> None:
        if self.status is not WorkspaceStatus.ACTIVE:
            msg = f"Workspace {self.id} is being deleted."
            raise WorkspaceDeletingError(msg)


def new_root_workspace(name: str, image_url: str | None) -> Workspace:
    """A root is the account itself: it always pays for itself, and starts with API
    access on so that its Super Admin can manage keys from the start."""
    workspace_id = uuid.uuid4()
    return Workspace(
        id=workspace_id,
        parent_id=None,
        root_id=workspace_id,
        billing_root_id=workspace_id,
        path=(workspace_id,),
        name=name,
        image_url=image_url,
        billing_mode=BillingMode.OWN,
        api_access=True,
        strict_quota=True,
        status=WorkspaceStatus.ACTIVE,
    )


def new_sub_workspace(
    parent: Workspace,
    *,
    name: str,
    image_url: str | None,
    billing_mode: BillingMode,
    api_access: bool,
    strict_quota: bool,
    max_depth: int,
) -> Workspace:
    parent.ensure_active()
    if parent.billing_mode is BillingMode.PARENT:
        msg = "A workspace its parent pays for cannot have sub-workspaces."
        raise ParentBilledCannotHaveChildrenError(msg)
    if parent.depth + 1 > max_depth:
        msg = f"Workspaces nest at most {max_depth} levels below the root."
        raise DepthLimitReachedError(msg)
    workspace_id = uuid.uuid4()
    return Workspace(
        id=workspace_id,
        parent_id=parent.id,
        root_id=parent.root_id,
        billing_root_id=workspace_id if billing_mode is BillingMode.OWN else parent.billing_root_id,
        path=(*parent.path, workspace_id),
        name=name,
        image_url=image_url,
        billing_mode=billing_mode,
        api_access=api_access,
        strict_quota=strict_quota,
        status=WorkspaceStatus.ACTIVE,
    )


def change_billing_mode(
    workspace: Workspace,
    billing_mode: BillingMode,
    *,
    parent_billing_root_id: uuid.UUID | None,
    has_children: bool,
) -> Workspace:
    """`parent` → `own` makes the workspace a billing root with its own seat pool;
    `own` → `parent` is allowed only for a sub-workspace without sub-workspaces."""
    if billing_mode is workspace.billing_mode:
        return workspace
    if workspace.is_root:
        msg = "A root workspace always pays for itself."
        raise RootPaysForItselfError(msg)
    if billing_mode is BillingMode.OWN:
        return replace(workspace, billing_mode=billing_mode, billing_root_id=workspace.id)
    if has_children:
        msg = "A workspace its parent pays for cannot have sub-workspaces; delete them first."
        raise HasSubWorkspacesError(msg)
    assert parent_billing_root_id is not None
    return replace(workspace, billing_mode=billing_mode, billing_root_id=parent_billing_root_id)


def ensure_deletable(workspace: Workspace) -> None:
    """A root is the account: it stays."""
    if workspace.is_root:
        msg = "An account's root workspace cannot be deleted."
        raise RootNotDeletableError(msg)


def ensure_subtree_may_go(*, subtree_size: int, cascade: bool) -> None:
    """A workspace with sub-workspaces goes only with them, when the caller asked for it."""
    if subtree_size > 1 and not cascade:
        msg = "The workspace has sub-workspaces; delete them first or pass cascade=true."
        raise HasSubWorkspacesError(msg)


@dataclass(frozen=True, slots=True)
class Access:
    """What one person may do in one workspace."""

    workspace: Workspace
    direct_role: Role | None
    ancestor_super_admin: bool

    @classmethod
    def from_roles(cls, workspace: Workspace, roles_on_path: Mapping[uuid.UUID, Role]) -> Access:
        """`roles_on_path`: the person's roles in the workspace and its ancestors. A Super
        Admin of an ancestor acts here as Super Admin; no other role flows down."""
        return cls(
            workspace=workspace,
            direct_role=roles_on_path.get(workspace.id),
            ancestor_super_admin=any(
                workspace_id != workspace.id and role is Role.SUPER_ADMIN
                for workspace_id, role in roles_on_path.items()
            ),
        )

    @classmethod
    def of_api_key(cls, workspace: Workspace) -> Access:
        """An API key acts in its own workspace with a developer's rights, and nowhere
        else: no role flows down to it or up from it."""
        return cls(workspace=workspace, direct_role=Role.DEVELOPER, ancestor_super_admin=False)

    @property
    def role(self) -> Role | None:
        return Role.SUPER_ADMIN if self.ancestor_super_admin else self.direct_role

    @property
    def inherited(self) -> bool:
        return self.ancestor_super_admin and self.direct_role is not Role.SUPER_ADMIN

    def require(self, permission: Permission) -> None:
        role = self.role
        if role is None:
            msg = f"No workspace {self.workspace.id} that you can see."
            raise NotFoundError(msg)
        if not role_allows(role, permission):
            msg = "Your role in this workspace does not allow this."
            raise ForbiddenError(msg)

    def require_ancestor_super_admin(self) -> None:
        """Settings of a sub-workspace are its parent's to decide, not its own admins'."""
        self.require(Permission.READ_WORKSPACE)
        if not self.ancestor_super_admin:
            msg = "Only a Super Admin of a parent workspace may change this."
            raise ForbiddenError(msg)


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    email: str | None
    role: Role
    joined_at: datetime | None
    inherited: bool = False
    """A Super Admin of an ancestor acting here from above, who is not a Super Admin
    here in their own right."""


@dataclass(frozen=True, slots=True)
class Membership:
    """A person's place in one workspace."""

    workspace_id: uuid.UUID
    member: Member


def members_as_seen_here(direct: list[Member], above: list[Member]) -> list[Member]:
    """Each person once, with their effective role: a Super Admin from above is a Super
    Admin here, whatever their own role here."""
    from_above = {member.user_id for member in above}
    listed = [
        replace(
            member,
            role=Role.SUPER_ADMIN,
            inherited=member.role is not Role.SUPER_ADMIN,
        )
        if member.user_id in from_above
        else member
        for member in direct
    ]
    direct_ids = {member.user_id for member in direct}
    listed.extend(
        replace(member, inherited=True) for member in above if member.user_id not in direct_ids
    )
    return listed


@dataclass(frozen=True, slots=True)
class Invitation:
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    expires_at: datetime
    created_at: datetime | None

    def has_expired(self, now: datetime) -> bool:
        """An open invitation stops holding its seat the moment it expires, before
        housekeeping marks it expired."""
        return self.status is InvitationStatus.EXPIRED or (
            self.status is InvitationStatus.PENDING and self.expires_at <= now
        )


@dataclass(frozen=True, slots=True)
class SeatUsage:
    used: int
    pending: int

    @property
    def taken(self) -> int:
        """Seats taken by members or held by pending invitations."""
        return self.used + self.pending


@dataclass(frozen=True, slots=True)
class SeatPool:
    billing_root_id: uuid.UUID
    limit: int
    used: int
    """Distinct people (user ids) who are members of a workspace in the pool."""
    pending: int
    """Pending invitations to emails that no member of the pool joined with."""

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used - self.pending)


@dataclass(frozen=True, slots=True)
class WorkspaceSeats:
    pool: SeatPool
    """The pool of the workspace's billing root."""
    cap: int | None
    """The workspace's own cap within the pool, if any."""


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Who takes seats where one workspace's people count, at one moment."""

    pool: SeatUsage
    """The workspace's pool."""
    in_workspace: int | None
    """The workspace's members plus its pending invitations: what its cap limits (None
    when it has no cap: then nothing needs it counted)."""
    at: datetime
    """When it was counted: invitations expire."""


def ensure_room(before: Occupancy, after: Occupancy, *, limit: int, cap: int | None) -> None:
    """A change that adds people may leave the pool and the workspace as full as they
    were, or fuller within the pool's limit and the workspace's cap; never fuller past
    them. Measuring the change by its outcome counts each person the way the pool counts
    them, whatever path they came by."""
    if after.pool.taken > max(before.pool.taken, limit):
        msg = (
            f"The seat limit ({limit}) is reached: {before.pool.used} seats are taken and "
            f"{before.pool.pending} held by pending invitations. Remove someone to free a seat."
        )
        raise SeatLimitReachedError(msg)
    if (
        cap is not None
        and after.in_workspace is not None
        and after.in_workspace > max(before.in_workspace or 0, cap)
    ):
        msg = f"This workspace is capped at {cap} seats, and {before.in_workspace} are taken."
        raise SeatLimitReachedError(msg)


def ensure_cap_covers(cap: int | None, *, in_workspace: int) -> None:
    """A cap below what the workspace already uses would leave it over its cap."""
    if cap is not None and cap < in_workspace:
        msg = (
            f"The workspace already takes {in_workspace} seats (members and pending "
            f"invitations); a cap of {cap} is below that."
        )
        raise BelowUsageError(msg)


def ensure_a_super_admin_remains(*, remaining_super_admins: int) -> None:
    if remaining_super_admins < 1:
        msg = "The last Super Admin of an account cannot be removed or demoted."
        raise LastSuperAdminError(msg)
