"""identity's HTTP API (thin: builds a command and hands it over)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict

from contracts.events.identity import BillingMode
from services.identity import handlers
from services.identity.domain import Workspace, WorkspaceStatus
from shared.fields import DisplayName, HttpsUrl
from shared.principal import CurrentPrincipal
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["workspaces"])


def _runtime(request: Request) -> ServiceRuntime:
    return cast("ServiceRuntime", request.app.state.runtime)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]


class CreateWorkspaceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DisplayName
    image_url: HttpsUrl | None = None


class WorkspaceResponse(BaseModel):
    id: uuid.UUID
    name: str
    image_url: str | None
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
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
            depth=workspace.depth,
            billing_mode=workspace.billing_mode,
            api_access=workspace.api_access,
            strict_quota=workspace.strict_quota,
            status=workspace.status,
            created_at=workspace.created_at,
        )


@router.post(
    "/workspaces",
    status_code=status.HTTP_201_CREATED,
    summary="Create a root workspace; the caller becomes its first Super Admin",
)
async def create_workspace(
    body: CreateWorkspaceRequest, caller: CurrentPrincipal, runtime: Runtime
) -> WorkspaceResponse:
    workspace = await handlers.create_root_workspace(
        runtime,
        handlers.CreateRootWorkspace(
            founder=caller,
            name=body.name,
            image_url=None if body.image_url is None else str(body.image_url),
        ),
    )
    return WorkspaceResponse.of(workspace)


@router.get("/workspaces/{workspace_id}", summary="A workspace the caller is a member of")
async def get_workspace(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> WorkspaceResponse:
    return WorkspaceResponse.of(await handlers.get_workspace(runtime, caller, workspace_id))
