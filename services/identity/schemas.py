"""identity's HTTP request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from contracts.events.identity import BillingMode
from contracts.permissions import Role
from services.identity.domain import (
    Access,
    InvitationStatus,
    Workspace,
    WorkspaceStatus,
    normalise_email,
)
from shared.fields import DisplayName, HttpsUrl

MAX_MEMBERS_AT_CREATION = 100

Email = Annotated[EmailStr, AfterValidator(normalise_email)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateWorkspaceRequest(_Strict):
    name: DisplayName
    image_url: HttpsUrl | None = None


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


class UpdateWorkspaceRequest(_Strict):
    name: DisplayName | None = None
    image_url: HttpsUrl | None = None
    api_access: bool | None = None
    strict_quota: bool | None = None
    billing_mode: BillingMode | None = None


class InviteRequest(_Strict):
    email: Email
    role: Role


class ChangeRoleRequest(_Strict):
    role: Role


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


class SubWorkspaceCreatedResponse(WorkspaceResponse):
    invitations: list[InvitationResponse]


class InvitationResponse(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    expires_at: datetime
    created_at: datetime | None = None


class MyInvitationResponse(InvitationResponse):
    workspace_name: str


class MemberResponse(BaseModel):
    user_id: str
    email: str | None
    role: Role
    inherited: bool = Field(description="A Super Admin of an ancestor, acting from above.")
    joined_at: datetime | None


class MembershipResponse(BaseModel):
    workspace_id: uuid.UUID
    user_id: str
    role: Role
    joined_at: datetime | None


class SeatsResponse(BaseModel):
    pool_root_id: uuid.UUID
    limit: int
    used: int
    pending: int
    available: int
    cap: int | None = None


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
