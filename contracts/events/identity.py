"""Events published by `identity`, keyed by the account's root workspace id."""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.envelope import EventPayload
from contracts.permissions import Role
from contracts.topics import Topic


class BillingMode(StrEnum):
    PARENT = "parent"
    """The parent pays: the workspace draws only on what the parent allocated to it."""
    OWN = "own"
    """It has its own subscription, credits, seats and avatar slots."""


class _WorkspaceEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.IDENTITY_WORKSPACE


class _MembershipEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.IDENTITY_MEMBERSHIP


class WorkspaceCreated(_WorkspaceEvent):
    """A workspace (a root or a sub-workspace) now exists."""

    event_type: ClassVar[str] = "workspace.created"
    event_version: ClassVar[int] = 1

    id: UUID = Field(description="The new workspace.")
    parent_id: UUID | None = Field(description="Its parent; null for a root.")
    root_id: UUID = Field(description="The account's root workspace.")
    billing_root_id: UUID = Field(
        description="Nearest ancestor-or-self with `billing_mode=own`: whose seats and "
        "purchases it uses.",
    )
    depth: int = Field(ge=0, description="0 for a root, 1 for its children, and so on.")
    name: str = Field(min_length=1, max_length=100, description="Display name.")
    image_url: str | None = Field(default=None, description="Optional https image.")
    billing_mode: BillingMode = Field(description="Who pays for it.")
    api_access: bool = Field(description="May it see API settings and hold API keys.")
    strict_quota: bool = Field(
        description="On: it spends only what was allocated to it; off: it falls through "
        "to the parent's pool when its allocation runs out.",
    )


class WorkspaceUpdated(_WorkspaceEvent):
    """A workspace's name or image changed."""

    event_type: ClassVar[str] = "workspace.updated"
    event_version: ClassVar[int] = 1

    id: UUID
    root_id: UUID
    name: str = Field(min_length=1, max_length=100)
    image_url: str | None


class WorkspaceSettingsChanged(_WorkspaceEvent):
    """A workspace's settings changed; they act from this event on."""

    event_type: ClassVar[str] = "workspace.settings_changed"
    event_version: ClassVar[int] = 1

    id: UUID
    parent_id: UUID | None
    root_id: UUID
    billing_root_id: UUID = Field(description="After the change.")
    previous_billing_root_id: UUID = Field(description="Before the change.")
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool


class WorkspaceDeletionStarted(_WorkspaceEvent):
    """A workspace is being deleted: it takes no new work from now on."""

    event_type: ClassVar[str] = "workspace.deletion_started"
    event_version: ClassVar[int] = 1

    id: UUID
    parent_id: UUID | None
    root_id: UUID


class WorkspaceDeleted(_WorkspaceEvent):
    """A workspace is gone: its members and invitations ended, its seats are free.
    Billing returns its unspent credits and avatar slots to the parent."""

    event_type: ClassVar[str] = "workspace.deleted"
    event_version: ClassVar[int] = 1

    id: UUID
    parent_id: UUID | None
    root_id: UUID
    billing_root_id: UUID
    billing_mode: BillingMode


class MemberJoined(_MembershipEvent):
    """A person became a member of a workspace with a role."""

    event_type: ClassVar[str] = "member.joined"
    event_version: ClassVar[int] = 1

    workspace_id: UUID
    root_id: UUID
    billing_root_id: UUID
    user_id: str = Field(description="The person's stable id (the token's `sub`).")
    email: str | None
    role: Role


class MemberRoleChanged(_MembershipEvent):
    event_type: ClassVar[str] = "member.role_changed"
    event_version: ClassVar[int] = 1

    workspace_id: UUID
    root_id: UUID
    user_id: str
    role: Role
    previous_role: Role


class RemovalReason(StrEnum):
    REMOVED = "removed"
    LEFT = "left"
    WORKSPACE_DELETED = "workspace_deleted"


class MemberRemoved(_MembershipEvent):
    """A person is no longer a member of a workspace."""

    event_type: ClassVar[str] = "member.removed"
    event_version: ClassVar[int] = 1

    workspace_id: UUID
    root_id: UUID
    user_id: str
    role: Role = Field(description="The role they had.")
    reason: RemovalReason


class InvitationCreated(_MembershipEvent):
    """An invitation is pending; it holds a seat until it ends."""

    event_type: ClassVar[str] = "invitation.created"
    event_version: ClassVar[int] = 1

    invitation_id: UUID
    workspace_id: UUID
    root_id: UUID
    email: str = Field(description="Lower-cased email the invitation is addressed to.")
    role: Role
    expires_at: datetime


class InvitationAccepted(_MembershipEvent):
    event_type: ClassVar[str] = "invitation.accepted"
    event_version: ClassVar[int] = 1

    invitation_id: UUID
    workspace_id: UUID
    root_id: UUID
    email: str
    user_id: str
    role: Role


class _InvitationEnded(_MembershipEvent):
    invitation_id: UUID
    workspace_id: UUID
    root_id: UUID
    email: str


class InvitationDeclined(_InvitationEnded):
    event_type: ClassVar[str] = "invitation.declined"
    event_version: ClassVar[int] = 1


class InvitationRevoked(_InvitationEnded):
    event_type: ClassVar[str] = "invitation.revoked"
    event_version: ClassVar[int] = 1


class InvitationExpired(_InvitationEnded):
    event_type: ClassVar[str] = "invitation.expired"
    event_version: ClassVar[int] = 1


class SeatsUsageChanged(_MembershipEvent):
    """How many seats of a billing root's pool are taken (members) or held (pending
    invitations)."""

    event_type: ClassVar[str] = "seats.usage_changed"
    event_version: ClassVar[int] = 1

    billing_root_id: UUID
    root_id: UUID
    used: int = Field(ge=0, description="Distinct people who are members in the pool.")
    pending: int = Field(ge=0, description="Pending invitations to people not in the pool.")


class SeatsCapChanged(_MembershipEvent):
    """A Super Admin of an ancestor capped one workspace's seats within its pool, or
    removed its cap. Identity holds the cap from this change on (it is checked under the
    pool's lock); billing keeps a copy for its balances and allocations."""

    event_type: ClassVar[str] = "seats.cap_changed"
    event_version: ClassVar[int] = 1

    workspace_id: UUID
    root_id: UUID
    billing_root_id: UUID = Field(description="The pool the cap is within.")
    seats_cap: int | None = Field(
        ge=0,
        description="The most seats (members and pending invitations) the workspace may "
        "take; null: no cap of its own.",
    )
