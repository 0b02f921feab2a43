"""What identity can be asked to do: one frozen command per use case.

A command carries everything its use case needs, the caller included; an HTTP
endpoint, a consumer, a periodic job or a test builds it and hands it, with a unit of
work, to the use case of the same name in the aggregate's module.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from shared.fields import Email
from shared.principal import Principal


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Workspaces


class CreateRootWorkspace(Command):
    """Open an account: a root workspace whose first Super Admin is the caller."""

    caller: Principal
    name: str
    image_url: str | None = None


class Invitee(Command):
    email: Email
    role: Role


class CreateSubWorkspace(Command):
    """Create a sub-workspace and invite its first members, together or not at all."""

    caller: Principal
    parent_id: uuid.UUID
    name: str
    image_url: str | None = None
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool = True
    members: tuple[Invitee, ...] = ()


class UpdateWorkspace(Command):
    """Rename a workspace, change its image or its settings; None leaves a field as is."""

    caller: Principal
    workspace_id: uuid.UUID
    name: str | None = None
    image_url: str | None = None
    sets_image: bool = False
    """Whether `image_url` was given: None then removes the image."""
    api_access: bool | None = None
    strict_quota: bool | None = None
    billing_mode: BillingMode | None = None

    @property
    def changes_settings(self) -> bool:
        return (self.api_access, self.strict_quota, self.billing_mode) != (None, None, None)


class DeleteWorkspace(Command):
    """Start deleting a sub-workspace (with `cascade`, its sub-workspaces too)."""

    caller: Principal
    workspace_id: uuid.UUID
    cascade: bool = False


class FinishDeletion(Command):
    """End the members and invitations of a workspace being deleted, and announce it gone."""

    workspace_id: uuid.UUID


# Invitations


class InviteMember(Command):
    caller: Principal
    workspace_id: uuid.UUID
    email: Email
    role: Role


class RevokeInvitation(Command):
    caller: Principal
    workspace_id: uuid.UUID
    invitation_id: uuid.UUID


class AcceptInvitation(Command):
    caller: Principal
    invitation_id: uuid.UUID


class DeclineInvitation(Command):
    caller: Principal
    invitation_id: uuid.UUID


class ExpireDueInvitations(Command):
    """Close invitations past their expiry, at most `limit` at a time."""

    limit: int = Field(default=200, ge=1)


# Members


class ChangeRole(Command):
    caller: Principal
    workspace_id: uuid.UUID
    user_id: str
    role: Role


class RemoveMember(Command):
    """A Super Admin removes a member, or a member leaves (`user_id` is the caller's)."""

    caller: Principal
    workspace_id: uuid.UUID
    user_id: str


# Seat pools


class CapSeats(Command):
    """Cap a sub-workspace's seats within its pool (None: no cap of its own)."""

    caller: Principal
    workspace_id: uuid.UUID
    cap: int | None = Field(ge=0)


class ApplyLimits(Command):
    """Keep billing's word on a billing root's seats: the pool's limit."""

    workspace_id: uuid.UUID
    seats_limit: int | None
