"""assets' HTTP API (thin): parse the request, build the command, run its use case in a
unit of work (an avatar: the units of work of `avatars.py`), map the result to a
response. Every endpoint runs through `UnitsOfWork`, so that a library assets has not
heard of yet is waited for (read-your-writes), then 503 `not-ready-yet`.

Shared-in assets are read-only: changing or deleting one from a workspace it is shared
with is 409 `asset-read-only`, sharing it or reading its shares 409 `not-shareable`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status

from contracts.events.assets import AssetKind
from services.assets import avatars, library, queries, sharing
from services.assets.commands import DeleteAsset, RevokeShare
from services.assets.domain import (
    Asset,
    AssetReadOnlyError,
    AvatarSlotLimitError,
    BillingUnavailableError,
    InsufficientCreditsError,
    InvalidPropertiesError,
    KeyCreditLimitReachedError,
    NotShareableError,
    SeenAsset,
)
from services.assets.faults import Checkpoints
from services.assets.schemas import (
    AssetResponse,
    ChangeAssetRequest,
    CreateAssetRequest,
    ShareRequest,
    ShareResponse,
    SharesResponse,
)
from services.assets.upstreams import Upstreams
from shared.idempotency import Idempotency
from shared.json_body import JsonBodyRoute
from shared.openapi import problems_for
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from shared.principal import CurrentPrincipal
from shared.service import ServiceRuntime
from shared.unit_of_work import UnitsOfWork, no_body

router = APIRouter(
    prefix="/v1/workspaces/{workspace_id}/assets", tags=["assets"], route_class=JsonBodyRoute
)

ResultT = TypeVar("ResultT")


def _units(request: Request) -> UnitsOfWork:
    return cast("ServiceRuntime", request.app.state.runtime).units_of_work


def _upstreams(request: Request) -> Upstreams:
    return cast("Upstreams", request.app.state.upstreams)


def _checkpoints(request: Request) -> Checkpoints:
    return cast("Checkpoints", request.app.state.checkpoints)


Units = Annotated[UnitsOfWork, Depends(_units)]
Others = Annotated[Upstreams, Depends(_upstreams)]
Steps = Annotated[Checkpoints, Depends(_checkpoints)]


def _own(asset: Asset) -> AssetResponse:
    return AssetResponse.of(SeenAsset(asset, shared_from=None))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetResponse,
    summary="Add an asset to the workspace's library",
    description="An avatar takes an avatar slot and pays the avatar fee (generative "
    "credits for a person, API credits for an API key); when either is refused, neither "
    "happens. 503 when billing cannot answer: the avatar is then settled in the background "
    "(created if billing took its slot, else undone); retry with the same Idempotency-Key "
    "to learn which.",
    responses=problems_for(
        AvatarSlotLimitError,
        InsufficientCreditsError,
        KeyCreditLimitReachedError,
        BillingUnavailableError,
        InvalidPropertiesError,
    ),
)
async def create_asset(
    workspace_id: uuid.UUID,
    body: CreateAssetRequest,
    caller: CurrentPrincipal,
    units: Units,
    others: Others,
    steps: Steps,
    idempotency: Idempotency,
) -> Response:
    request_key = None if idempotency is None else f"{idempotency.scope}\n{idempotency.key}"
    command = body.command(caller, workspace_id, request_key)
    if command.kind is AssetKind.AVATAR:
        return await avatars.create_avatar(units, others, steps, command, _own, idempotency)

    return await units.answer(
        lambda uow: library.create_asset(uow, command),
        _own,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
        idempotency=idempotency,
    )


@router.get("", response_model=Page[AssetResponse], summary="The workspace's library")
async def list_assets(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    kind: AssetKind | None = None,
    include_shared: Annotated[
        bool, Query(description="Also the assets shared with this workspace.")
    ] = True,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    query = queries.ReadLibrary(caller, workspace_id, kind, include_shared, limit, cursor)
    return await units.answer(
        lambda uow: queries.read_library(uow, query),
        lambda found: Page[AssetResponse](
            items=[AssetResponse.of(seen) for seen in found.items], next_cursor=found.next_cursor
        ),
        actor=caller.actor,
    )


@router.get("/{asset_id}", response_model=AssetResponse, summary="An asset")
async def get_asset(
    workspace_id: uuid.UUID, asset_id: uuid.UUID, caller: CurrentPrincipal, units: Units
) -> Response:
    query = queries.ReadAsset(caller, workspace_id, asset_id)
    return await units.answer(
        lambda uow: queries.read_asset(uow, query), AssetResponse.of, actor=caller.actor
    )


@router.patch(
    "/{asset_id}",
    response_model=AssetResponse,
    summary="Rename an asset or replace its properties",
    responses=problems_for(AssetReadOnlyError, InvalidPropertiesError),
)
async def change_asset(
    workspace_id: uuid.UUID,
    asset_id: uuid.UUID,
    body: ChangeAssetRequest,
    caller: CurrentPrincipal,
    units: Units,
) -> Response:
    command = body.command(caller, workspace_id, asset_id)
    return await units.answer(
        lambda uow: library.change_asset(uow, command), _own, actor=caller.actor
    )


@router.delete(
    "/{asset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an asset; an avatar frees its slot (the fee is not refunded)",
    responses=problems_for(AssetReadOnlyError),
)
async def delete_asset(
    workspace_id: uuid.UUID,
    asset_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    others: Others,
    steps: Steps,
) -> Response:
    await avatars.delete_asset(units, others, steps, DeleteAsset(caller, workspace_id, asset_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{asset_id}/shares",
    status_code=status.HTTP_201_CREATED,
    response_model=SharesResponse,
    summary="Share an asset with workspaces of the same account",
    responses=problems_for(NotShareableError),
)
async def share_asset(
    workspace_id: uuid.UUID,
    asset_id: uuid.UUID,
    body: ShareRequest,
    caller: CurrentPrincipal,
    units: Units,
    others: Others,
) -> Response:
    command = body.command(caller, workspace_id, asset_id)
    return await units.answer(
        lambda uow: sharing.share_asset(uow, command, others),
        SharesResponse.of,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/{asset_id}/shares",
    response_model=Page[ShareResponse],
    summary="The workspaces an asset is shared with",
    responses=problems_for(NotShareableError),
)
async def list_shares(
    workspace_id: uuid.UUID,
    asset_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    query = queries.ReadShares(caller, workspace_id, asset_id, limit, cursor)
    return await units.answer(
        lambda uow: queries.read_shares(uow, query),
        lambda found: Page[ShareResponse](
            items=[ShareResponse.of(share) for share in found.items],
            next_cursor=found.next_cursor,
        ),
        actor=caller.actor,
    )


@router.delete(
    "/{asset_id}/shares/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop sharing an asset with a workspace",
    responses=problems_for(NotShareableError),
)
async def revoke_share(
    workspace_id: uuid.UUID,
    asset_id: uuid.UUID,
    target_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
) -> Response:
    command = RevokeShare(caller, workspace_id, asset_id, target_id)
    return await units.answer(
        lambda uow: sharing.revoke_share(uow, command),
        no_body,
        actor=caller.actor,
        status_code=status.HTTP_204_NO_CONTENT,
    )
