"""identity's HTTP API (thin: reads the request, hands it to a use case)."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel

from services.identity.handlers import Identity
from services.identity.schemas import (
    AccessResponse,
    ChangeRoleRequest,
    CreateSubWorkspaceRequest,
    CreateWorkspaceRequest,
    InvitationResponse,
    InviteRequest,
    MemberResponse,
    MembershipResponse,
    MyInvitationResponse,
    MyWorkspaceResponse,
    SeatsResponse,
    SubWorkspaceCreatedResponse,
    UpdateWorkspaceRequest,
    WorkspaceResponse,
)
from shared.idempotency import IdempotentRequest, fingerprint
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from shared.principal import CurrentPrincipal, Principal

router = APIRouter(prefix="/v1")
internal_router = APIRouter(prefix="/internal/v1", include_in_schema=False)


def _identity(request: Request) -> Identity:
    return cast("Identity", request.app.state.identity)


Use = Annotated[Identity, Depends(_identity)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying with the same key and body returns the first response.",
    ),
]


def _idempotent(
    key: str | None, caller: Principal, request: Request, body: BaseModel
) -> IdempotentRequest | None:
    if key is None:
        return None
    return IdempotentRequest(
        scope=f"{caller.actor} {request.method} {request.url.path}",
        key=key,
        fingerprint=fingerprint(body.model_dump(mode="json")),
    )


def _url(value: object | None) -> str | None:
    return None if value is None else str(value)


# Workspaces


@router.post(
    "/workspaces",
    status_code=status.HTTP_201_CREATED,
    tags=["workspaces"],
    summary="Create a root workspace; the caller becomes its first Super Admin",
)
async def create_workspace(
    body: CreateWorkspaceRequest,
    caller: CurrentPrincipal,
    identity: Use,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> WorkspaceResponse:
    return await identity.create_root_workspace(
        caller,
        name=body.name,
        image_url=_url(body.image_url),
        idempotency=_idempotent(idempotency_key, caller, request, body),
    )


@router.get("/workspaces", tags=["workspaces"], summary="The workspaces the caller is a member of")
async def list_my_workspaces(
    caller: CurrentPrincipal,
    identity: Use,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[MyWorkspaceResponse]:
    return await identity.my_workspaces(caller, limit=limit, cursor=cursor)


@router.get("/workspaces/{workspace_id}", tags=["workspaces"], summary="A workspace")
async def get_workspace(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> WorkspaceResponse:
    return await identity.get_workspace(caller, workspace_id)


@router.patch(
    "/workspaces/{workspace_id}",
    tags=["workspaces"],
    summary="Rename a workspace, change its image or its settings",
)
async def update_workspace(
    workspace_id: uuid.UUID, body: UpdateWorkspaceRequest, caller: CurrentPrincipal, identity: Use
) -> WorkspaceResponse:
    return await identity.update_workspace(
        caller,
        workspace_id,
        name=body.name,
        image_url=_url(body.image_url),
        image_url_given="image_url" in body.model_fields_set,
        api_access=body.api_access,
        strict_quota=body.strict_quota,
        billing_mode=body.billing_mode,
    )


class DeletionAccepted(BaseModel):
    id: uuid.UUID
    status: str


@router.delete(
    "/workspaces/{workspace_id}",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["workspaces"],
    summary="Delete a sub-workspace (with `cascade=true`, its sub-workspaces too)",
)
async def delete_workspace(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    identity: Use,
    background: BackgroundTasks,
    cascade: Annotated[bool, Query()] = False,
) -> DeletionAccepted:
    doomed = await identity.delete_workspace(caller, workspace_id, cascade=cascade)

    async def finish() -> None:
        for doomed_id in doomed:
            await identity.finish_deletion(doomed_id, caller)

    background.add_task(finish)
    return DeletionAccepted(id=workspace_id, status="deleting")


@router.post(
    "/workspaces/{workspace_id}/sub-workspaces",
    status_code=status.HTTP_201_CREATED,
    tags=["workspaces"],
    summary="Create a sub-workspace, inviting its first members in the same step",
)
async def create_sub_workspace(
    workspace_id: uuid.UUID,
    body: CreateSubWorkspaceRequest,
    caller: CurrentPrincipal,
    identity: Use,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> SubWorkspaceCreatedResponse:
    return await identity.create_sub_workspace(
        caller,
        workspace_id,
        name=body.name,
        image_url=_url(body.image_url),
        billing_mode=body.billing_mode,
        api_access=body.api_access,
        strict_quota=body.strict_quota,
        members=[(member.email, member.role) for member in body.members],
        idempotency=_idempotent(idempotency_key, caller, request, body),
    )


@router.get(
    "/workspaces/{workspace_id}/sub-workspaces",
    tags=["workspaces"],
    summary="The direct sub-workspaces of a workspace",
)
async def list_sub_workspaces(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    identity: Use,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[WorkspaceResponse]:
    return await identity.sub_workspaces(caller, workspace_id, limit=limit, cursor=cursor)


# Members


@router.get("/workspaces/{workspace_id}/members", tags=["members"], summary="Members")
async def list_members(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    identity: Use,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[MemberResponse]:
    return await identity.members(caller, workspace_id, limit=limit, cursor=cursor)


@router.patch(
    "/workspaces/{workspace_id}/members/{user_id}", tags=["members"], summary="Change a role"
)
async def change_role(
    workspace_id: uuid.UUID,
    user_id: str,
    body: ChangeRoleRequest,
    caller: CurrentPrincipal,
    identity: Use,
) -> MemberResponse:
    return await identity.change_role(caller, workspace_id, user_id, body.role)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["members"],
    summary="Remove a member, or leave",
)
async def remove_member(
    workspace_id: uuid.UUID, user_id: str, caller: CurrentPrincipal, identity: Use
) -> Response:
    await identity.remove_member(caller, workspace_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/workspaces/{workspace_id}/seats", tags=["members"], summary="The seat pool")
async def get_seats(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> SeatsResponse:
    return await identity.seats(caller, workspace_id)


# Invitations


@router.post(
    "/workspaces/{workspace_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    tags=["invitations"],
    summary="Invite someone by email; the invitation holds a seat",
)
async def invite(
    workspace_id: uuid.UUID,
    body: InviteRequest,
    caller: CurrentPrincipal,
    identity: Use,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> InvitationResponse:
    return await identity.invite(
        caller,
        workspace_id,
        email=body.email,
        role=body.role,
        idempotency=_idempotent(idempotency_key, caller, request, body),
    )


@router.get(
    "/workspaces/{workspace_id}/invitations",
    tags=["invitations"],
    summary="Pending invitations of a workspace",
)
async def list_pending_invitations(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> Page[InvitationResponse]:
    return await identity.pending_invitations(caller, workspace_id)


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["invitations"],
    summary="Revoke a pending invitation; its seat frees up",
)
async def revoke_invitation(
    workspace_id: uuid.UUID, invitation_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> Response:
    await identity.revoke_invitation(caller, workspace_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/invitations", tags=["invitations"], summary="Invitations addressed to the caller's email"
)
async def list_my_invitations(
    caller: CurrentPrincipal, identity: Use
) -> Page[MyInvitationResponse]:
    return await identity.my_invitations(caller)


@router.post(
    "/invitations/{invitation_id}/accept", tags=["invitations"], summary="Accept an invitation"
)
async def accept_invitation(
    invitation_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> MembershipResponse:
    return await identity.accept_invitation(caller, invitation_id)


@router.post(
    "/invitations/{invitation_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["invitations"],
    summary="Decline an invitation",
)
async def decline_invitation(
    invitation_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> Response:
    await identity.decline_invitation(caller, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# For the gateway


@internal_router.get("/workspaces/{workspace_id}/access")
async def get_access(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, identity: Use
) -> AccessResponse:
    """The caller's standing in a workspace, straight from identity's own records: the
    gateway asks when its copy (built from events) has not caught up yet."""
    return await identity.access_of(caller, workspace_id)
