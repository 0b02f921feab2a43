"""billing's HTTP API (thin): check who may call, hand over to a use case.

`/v1/...` is the public API the gateway routes to. `/internal/v1/...` is for other
services, which sign the principal they act for with the shared internal secret
(the same `X-Atrium-Principal` the gateway sends, made for this method and path).

Avatar slots are claimed over internal HTTP rather than through events because the
assets service must answer its own caller at once: "an avatar takes a slot and is
charged the avatar fee; neither without the other" is one transaction in the one
service that owns both numbers (the slot count and the credits). An event would
leave the avatar created while its slot and fee are still undecided.

    POST /internal/v1/workspaces/{id}/avatar-claims   Idempotency-Key: <key>
         {"avatar_id": "<uuid>"}
      201 {avatar_id, transaction_id, pool, fee, balance_after,
           avatar_slots: {limit, used}}
      409 avatar-slot-limit | 402 insufficient-credits   (and nothing changed)
      409 avatar-already-claimed   (the avatar holds a slot, under another key)
      a retry with the same key and body returns the first 201.
    DELETE /internal/v1/workspaces/{id}/avatar-claims/{avatar_id}
      204 the slot is free (also when it was never held or already freed).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from contracts.permissions import Permission, Role
from services.billing.domain import Pool
from services.billing.handlers import Billing
from services.billing.schemas import (
    AllocationRequest,
    AllocationsResponse,
    AvatarClaimReceipt,
    AvatarClaimRequest,
    BalancesResponse,
    LedgerPage,
    PurchaseReceipt,
    PurchaseRequest,
    SpendReceipt,
    SpendRequest,
    UsageGrouping,
    UsageReport,
)
from shared.errors import ForbiddenError
from shared.idempotency import MAX_KEY_LENGTH
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, PageSize
from shared.principal import CurrentPrincipal, Principal, require_permission, vouched_workspace

router = APIRouter(prefix="/v1/workspaces/{workspace_id}", tags=["billing"])
internal_router = APIRouter(prefix="/internal/v1/workspaces/{workspace_id}", tags=["internal"])


def _billing(request: Request) -> Billing:
    return cast("Billing", request.app.state.billing)


BillingService = Annotated[Billing, Depends(_billing)]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="A retry with the same key and body returns the first result.",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH),
]


def _member(caller: Principal, workspace_id: uuid.UUID) -> None:
    vouched_workspace(caller, workspace_id)
    if caller.role is None and caller.api_key_id is None:
        msg = "Members of the workspace only."
        raise ForbiddenError(msg)


def _super_admin(caller: Principal) -> None:
    if caller.role is not Role.SUPER_ADMIN:
        msg = "Only a Super Admin of this workspace may do this."
        raise ForbiddenError(msg)


@router.get("/balances", summary="Credits and capacity of a workspace")
async def get_balances(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, billing: BillingService
) -> BalancesResponse:
    _member(caller, workspace_id)
    return await billing.balances(workspace_id)


@router.post("/purchases", status_code=status.HTTP_201_CREATED, summary="Buy credits or capacity")
async def purchase(
    workspace_id: uuid.UUID,
    body: PurchaseRequest,
    caller: CurrentPrincipal,
    billing: BillingService,
    idempotency_key: OptionalIdempotencyKey = None,
) -> PurchaseReceipt:
    vouched_workspace(caller, workspace_id)
    return await billing.purchase(
        workspace_id,
        caller,
        pool=body.pool,
        quantity=body.quantity,
        idempotency_key=idempotency_key,
    )


@router.put("/allocations", summary="Set what the parent allocates to a sub-workspace")
async def set_allocations(
    workspace_id: uuid.UUID,
    body: AllocationRequest,
    caller: CurrentPrincipal,
    billing: BillingService,
) -> AllocationsResponse:
    vouched_workspace(caller, workspace_id)
    return await billing.allocate(workspace_id, caller, body.targets())


@router.get("/allocations", summary="What the parent allocated to a sub-workspace")
async def get_allocations(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, billing: BillingService
) -> AllocationsResponse:
    _member(caller, workspace_id)
    return await billing.allocations(workspace_id)


@router.post("/spend", status_code=status.HTTP_201_CREATED, summary="Pay for an operation")
async def spend(
    workspace_id: uuid.UUID,
    body: SpendRequest,
    caller: CurrentPrincipal,
    billing: BillingService,
    idempotency_key: IdempotencyKey,
) -> SpendReceipt:
    vouched_workspace(caller, workspace_id)
    return await billing.spend(
        workspace_id,
        caller,
        operation=body.operation,
        quantity=body.quantity,
        reference=body.reference,
        idempotency_key=idempotency_key,
    )


@router.get("/ledger", summary="The workspace's ledger lines, newest first")
async def get_ledger(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    billing: BillingService,
    pool: Pool | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> LedgerPage:
    vouched_workspace(caller, workspace_id)
    _super_admin(caller)
    return await billing.ledger(workspace_id, pool=pool, limit=limit, cursor=cursor)


@router.get("/usage", summary="Credits spent, aggregated")
async def get_usage(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    billing: BillingService,
    group_by: UsageGrouping = "day",
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> UsageReport:
    vouched_workspace(caller, workspace_id)
    if group_by == "api_key":
        require_permission(caller, Permission.MANAGE_API_KEYS)
    else:
        _super_admin(caller)
    return await billing.usage(workspace_id, group_by=group_by, since=since, until=until)


@internal_router.post(
    "/avatar-claims",
    status_code=status.HTTP_201_CREATED,
    summary="An avatar takes a slot and pays the avatar fee",
)
async def claim_avatar_slot(
    workspace_id: uuid.UUID,
    body: AvatarClaimRequest,
    caller: CurrentPrincipal,
    billing: BillingService,
    idempotency_key: IdempotencyKey,
) -> AvatarClaimReceipt:
    vouched_workspace(caller, workspace_id)
    return await billing.claim_avatar_slot(
        workspace_id, caller, avatar_id=body.avatar_id, idempotency_key=idempotency_key
    )


@internal_router.delete(
    "/avatar-claims/{avatar_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Free an avatar's slot",
)
async def release_avatar_slot(
    workspace_id: uuid.UUID,
    avatar_id: uuid.UUID,
    caller: CurrentPrincipal,
    billing: BillingService,
) -> Response:
    vouched_workspace(caller, workspace_id)
    await billing.release_avatar_slot(workspace_id, caller, avatar_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
