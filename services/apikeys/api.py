"""apikeys' HTTP API (thin): parse the request, build the command, run its use case in
a unit of work, map the result to a response.

`/v1/...` is the public API the gateway routes to. `/internal/v1/...` is the
gateway's own, signed like every request with a principal that has no person, no
key and no workspace, and not in the public document:

    GET /internal/v1/api-keys/{hash}        hash: the key's HMAC-SHA256, 64 hex digits
      200 {key_id, workspace_id, root_id, suspended, revoked_at, expires_at,
           rate_limit: {requests, period_seconds} | null}
      404 no key has that hash

The gateway asks it about a key its projection of `atrium.apikeys.key` does not know
yet, so that a new key works in the very next request.

Every endpoint is about one workspace. One that apikeys has not heard of yet (its
`workspace.created` is on its way) is waited for, bounded, then 503 `not-ready-yet`
(`shared.read_your_writes`); a deleted one is 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from services.apikeys.commands import (
    CreateApiKey,
    ListApiKeys,
    LookUpKey,
    ReadKeyUsage,
    ReadWorkspaceUsage,
    RevokeApiKey,
    RotateApiKey,
)
from services.apikeys.domain import (
    MAX_GRACE_SECONDS,
    ApiAccessDisabledError,
    ExpiryInThePastError,
    KeyNotActiveError,
    WorkspaceDeletingError,
)
from services.apikeys.keys import create_key, revoke_key, rotate_key
from services.apikeys.queries import (
    list_keys,
    look_up_key,
    read_key_usage,
    read_workspace_usage,
)
from services.apikeys.schemas import (
    ApiKeyResponse,
    CreateApiKeyRequest,
    KeyLookup,
    NewApiKeyResponse,
    UsageDay,
    UsageReport,
    key_page,
)
from shared.errors import ForbiddenError, NotFoundError
from shared.idempotency import Idempotency
from shared.json_body import JsonBodyRoute
from shared.openapi import problems_for
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from shared.principal import CurrentPrincipal
from shared.service import ServiceRuntime
from shared.unit_of_work import no_body

router = APIRouter(
    prefix="/v1/workspaces/{workspace_id}", tags=["api keys"], route_class=JsonBodyRoute
)
internal_router = APIRouter(
    prefix="/internal/v1", include_in_schema=False, route_class=JsonBodyRoute
)

CommandT = TypeVar("CommandT")
ResultT = TypeVar("ResultT")

KEY_HASH_PATTERN = "^[0-9a-f]{64}$"


def _runtime(request: Request) -> ServiceRuntime:
    return cast("ServiceRuntime", request.app.state.runtime)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
GraceSeconds = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the old key keeps working, in seconds (at most a week).",
    ),
]
From = Annotated[UsageDay | None, Query(alias="from", description="First UTC day, YYYY-MM-DD.")]
To = Annotated[UsageDay | None, Query(alias="to", description="Last UTC day, YYYY-MM-DD.")]


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=NewApiKeyResponse,
    summary="Create an API key; its secret is in this answer only",
    responses=problems_for(
        ForbiddenError, ApiAccessDisabledError, WorkspaceDeletingError, ExpiryInThePastError
    ),
)
async def create_api_key(
    workspace_id: uuid.UUID,
    body: CreateApiKeyRequest,
    caller: CurrentPrincipal,
    runtime: Runtime,
    idempotency: Idempotency,
) -> Response:
    command = CreateApiKey(
        caller=caller,
        workspace_id=workspace_id,
        name=body.name,
        expires_at=body.expires_at,
        rate_limit=body.rate_limit,
        monthly_credit_limit=body.monthly_credit_limit,
        pepper=runtime.settings.apikey_pepper,
    )
    return await runtime.units_of_work.answer(
        lambda uow: create_key(uow, command),
        NewApiKeyResponse.of_new,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
        idempotency=idempotency,
    )


@router.get(
    "/api-keys",
    response_model=Page[ApiKeyResponse],
    summary="The workspace's API keys, newest first, without their secrets",
    responses=problems_for(ForbiddenError, ApiAccessDisabledError),
)
async def get_api_keys(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    query = ListApiKeys(caller, workspace_id, limit=limit, cursor=cursor)
    return await runtime.units_of_work.answer(
        lambda uow: list_keys(uow, query), key_page, actor=caller.actor
    )


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    response_model=NewApiKeyResponse,
    summary="Replace a key by a new one with the same settings",
    responses=problems_for(
        ForbiddenError,
        NotFoundError,
        ApiAccessDisabledError,
        WorkspaceDeletingError,
        KeyNotActiveError,
    ),
)
async def rotate_api_key(
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    idempotency: Idempotency,
    grace_seconds: GraceSeconds = 0,
) -> Response:
    command = RotateApiKey(
        caller=caller,
        workspace_id=workspace_id,
        key_id=key_id,
        grace_seconds=grace_seconds,
        pepper=runtime.settings.apikey_pepper,
    )
    return await runtime.units_of_work.answer(
        lambda uow: rotate_key(uow, command),
        NewApiKeyResponse.of_new,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
        idempotency=idempotency,
    )


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key at once",
    responses=problems_for(ForbiddenError, NotFoundError, ApiAccessDisabledError),
)
async def delete_api_key(
    workspace_id: uuid.UUID, key_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> Response:
    command = RevokeApiKey(caller, workspace_id, key_id)
    return await runtime.units_of_work.answer(
        lambda uow: revoke_key(uow, command),
        no_body,
        actor=caller.actor,
        status_code=status.HTTP_204_NO_CONTENT,
    )


@router.get(
    "/api-keys/{key_id}/usage",
    response_model=UsageReport,
    summary="A key's requests, errors and credits per UTC day",
    responses=problems_for(ForbiddenError, NotFoundError, ApiAccessDisabledError),
)
async def get_key_usage(
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    first: From = None,
    last: To = None,
) -> Response:
    query = ReadKeyUsage(caller, workspace_id, key_id, first=first, last=last)
    return await runtime.units_of_work.answer(
        lambda uow: read_key_usage(uow, query), UsageReport.of, actor=caller.actor
    )


@router.get(
    "/api-usage",
    response_model=UsageReport,
    summary="The workspace's API requests, errors and credits per UTC day, all its keys",
    responses=problems_for(ForbiddenError, ApiAccessDisabledError),
)
async def get_workspace_usage(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    first: From = None,
    last: To = None,
) -> Response:
    query = ReadWorkspaceUsage(caller, workspace_id, first=first, last=last)
    return await runtime.units_of_work.answer(
        lambda uow: read_workspace_usage(uow, query), UsageReport.of, actor=caller.actor
    )


@internal_router.get("/api-keys/{key_hash}", response_model=KeyLookup)
async def get_key_by_hash(
    key_hash: Annotated[str, Path(pattern=KEY_HASH_PATTERN)],
    caller: CurrentPrincipal,
    runtime: Runtime,
) -> Response:
    query = LookUpKey(caller, key_hash)
    return await runtime.units_of_work.answer(
        lambda uow: look_up_key(uow, query), KeyLookup.of, actor=caller.actor
    )
