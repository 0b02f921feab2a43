"""identity's HTTP request and response bodies: a request becomes a command, a domain
value becomes a response."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.identity.commands import (
    CapSeats,
    ChangeRole,
    CreateRootWorkspace,
    CreateSubWorkspace,
    Invitee,
    InviteMember,
    UpdateWorkspace,
)
from services.identity.domain import (
    Access,
    Invitation,
    InvitationStatus,
    Member,
    Membership,
    Workspace,
    WorkspaceSeats,
    WorkspaceStatus,
)
from shared.fields import DisplayName, Email, HttpsUrl
from shared.principal import Principal

MAX_MEMBERS_AT_CREATION = 100
MAX_SEATS_CAP = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateWorkspaceRequest(_Strict):
    name: DisplayName
    image_url: HttpsUrl | None = None

    def command(self, caller: Principal) -> CreateRootWorkspace:
        return CreateRootWorkspace(caller=caller, name=self.name, image_url=_text(self.image_url))


class MemberToInvite(_Strict):
    email: Email
    role: Role


class CreateSubWorkspaceRequest(_Strict):
    name: DisplayName
    image_url: HttpsUrl | None = None
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool = True
    members: list[MemberToInvite] = Field(default_factory=list, max_length=MAX_MEMBERS_AT_CREATION)

    def command(self, caller: Principal, parent_id: uuid.UUID) -> CreateSubWorkspace:
        return CreateSubWorkspace(
            caller=caller,
            parent_id=parent_id,
            name=self.name,
            image_url=_text(self.image_url),
            billing_mode=self.billing_mode,
            api_access=self.api_access,
            strict_quota=self.strict_quota,
            members=tuple(Invitee(email=m.email, role=m.role) for m in self.members),
        )


class UpdateWorkspaceRequest(_Strict):
    name: DisplayName | None = None
    image_url: HttpsUrl | None = None
    api_access: bool | None = None
    strict_quota: bool | None = None
    billing_mode: BillingMode | None = None

    def command(self, caller: Principal, workspace_id: uuid.UUID) -> UpdateWorkspace:
        return UpdateWorkspace(
            caller=caller,
            workspace_id=workspace_id,
            name=self.name,
            image_url=_text(self.image_url),
            sets_image="image_url" in self.model_fields_set,
            api_access=self.api_access,
            strict_quota=self.strict_quota,
            billing_mode=self.billing_mode,
        )


class InviteRequest(_Strict):
    email: Email
    role: Role

    def command(self, caller: Principal, workspace_id: uuid.UUID) -> InviteMember:
        return InviteMember(
            caller=caller, workspace_id=workspace_id, email=self.email, role=self.role
        )


class CapSeatsRequest(_Strict):
    cap: Annotated[int, Field(ge=0, le=MAX_SEATS_CAP, strict=True)] | None = Field(
        description="The most seats (members and pending invitations) the workspace may "
        "take within its pool; null removes its cap. Below what it takes already: 409 "
        "`below-usage`."
    )

    def command(self, caller: Principal, workspace_id: uuid.UUID) -> CapSeats:
        return CapSeats(caller=caller, workspace_id=workspace_id, cap=self.cap)


class ChangeRoleRequest(_Strict):
    role: Role

    def command(self, caller: Principal, workspace_id: uuid.UUID, user_id: str) -> ChangeRole:
        return ChangeRole(caller=caller, workspace_id=workspace_id, user_id=user_id, role=self.role)


def _text(url: HttpUrl | None) -> str | None:
    return None if url is None else str(url)


class WorkspaceResponse(BaseModel):
    id: uuid.UUID
    name: str
    image_url: str | None
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    billing_root_id: uuid.UUID
    depth: int
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool
    status: WorkspaceStatus
    created_at: datetime | None

    @classmethod
    def of(cls, workspace: Workspace) -> WorkspaceResponse:
        return cls(
            id=workspace.id,
            name=workspace.name,
            image_url=workspace.image_url,
            parent_id=workspace.parent_id,
            root_id=workspace.root_id,
            billing_root_id=workspace.billing_root_id,
            depth=workspace.depth,
            billing_mode=workspace.billing_mode,
            api_access=workspace.api_access,
            strict_quota=workspace.strict_quota,
            status=workspace.status,
            created_at=workspace.created_at,
        )


class MyWorkspaceResponse(WorkspaceResponse):
    role: Role

    @classmethod
    def of_member(cls, workspace: Workspace, role: Role) -> MyWorkspaceResponse:
        return cls(**WorkspaceResponse.of(workspace).model_dump(), role=role)


class SubWorkspaceCreatedResponse(WorkspaceResponse):
    invitations: list[InvitationResponse]

    @classmethod
    def of_created(
        cls, workspace: Workspace, invitations: list[Invitation]
    ) -> SubWorkspaceCreatedResponse:
        return cls(
            **WorkspaceResponse.of(workspace).model_dump(),
            invitations=[InvitationResponse.of(invitation) for invitation in invitations],
        )


class DeletionAccepted(BaseModel):
    id: uuid.UUID
    status: str


class InvitationResponse(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    expires_at: datetime
    created_at: datetime | None = None

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationResponse:
        return cls(
            id=invitation.id,
            workspace_id=invitation.workspace_id,
            email=invitation.email,
            role=invitation.role,
            status=invitation.status,
            expires_at=invitation.expires_at,
            created_at=invitation.created_at,
        )


class MyInvitationResponse(InvitationResponse):
    workspace_name: str

    @classmethod
    def of_addressed(cls, invitation: Invitation, workspace_name: str) -> MyInvitationResponse:
        return cls(**InvitationResponse.of(invitation).model_dump(), workspace_name=workspace_name)


class MemberResponse(BaseModel):
    user_id: str
    email: str | None
    role: Role
    inherited: bool = Field(description="A Super Admin of an ancestor, acting from above.")
    joined_at: datetime | None

    @classmethod
    def of(cls, member: Member) -> MemberResponse:
        return cls(
            user_id=member.user_id,
            email=member.email,
            role=member.role,
            inherited=member.inherited,
            joined_at=member.joined_at,
        )


class MembershipResponse(BaseModel):
    workspace_id: uuid.UUID
    user_id: str
    role: Role
    joined_at: datetime | None

    @classmethod
    def of(cls, membership: Membership) -> MembershipResponse:
        return cls(
            workspace_id=membership.workspace_id,
            user_id=membership.member.user_id,
            role=membership.member.role,
            joined_at=membership.member.joined_at,
        )


class SeatsResponse(BaseModel):
    pool_root_id: uuid.UUID
    limit: int
    used: int
    pending: int
    available: int
    cap: int | None = None

    @classmethod
    def of(cls, seats: WorkspaceSeats) -> SeatsResponse:
        pool = seats.pool
        return cls(
            pool_root_id=pool.billing_root_id,
            limit=pool.limit,
            used=pool.used,
            pending=pool.pending,
            available=pool.available,
            cap=seats.cap,
        )


class AccessResponse(BaseModel):
    """What the gateway needs to authorise one person in one workspace."""

    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    role: Role
    ancestor_super_admin: bool
    api_access: bool
    status: WorkspaceStatus

    @classmethod
    def of(cls, access: Access) -> AccessResponse:
        assert access.role is not None
        return cls(
            workspace_id=access.workspace.id,
            parent_id=access.workspace.parent_id,
            root_id=access.workspace.root_id,
            role=access.role,
            ancestor_super_admin=access.ancestor_super_admin,
            api_access=access.workspace.api_access,
            status=access.workspace.status,
        )


SubWorkspaceCreatedResponse.model_rebuild()
