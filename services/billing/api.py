"""billing's HTTP API (thin): parse the request, build the command, run its use case in
a unit of work, map the result to a response.

`/v1/...` is the public API the gateway routes to. `/internal/v1/...` is for other
services, which sign the principal they act for with the shared internal secret
(the same `X-Atrium-Principal` the gateway sends, made for this method and path).

A spend is the one exception to "a use case in a unit of work": it joins the next batch
of spends (`spend_batches`), one transaction for all of them.

Every endpoint is about one workspace. One that billing has not heard of yet (its
`workspace.created` is still on its way) is waited for, bounded, then 503
`not-ready-yet` (see `shared.read_your_writes`); a deleted one is 404. So is an API key
a spend is made with whose `apikey.created` is still on its way (`key_budgets`).

Avatar slots are claimed over internal HTTP rather than through events because the
assets service must answer its own caller at once: "an avatar takes a slot and is
charged the avatar fee; neither without the other" is one transaction in the one
service that owns both numbers (the slot count and the credits). An event would
leave the avatar created while its slot and fee are still undecided.

    POST /internal/v1/workspaces/{id}/avatar-claims   Idempotency-Key: <key>
         {"avatar_id": "<uuid>"}
      201 {avatar_id, transaction_id, pool, fee, balance_after,
           avatar_slots: {limit, used}}
      409 avatar-slot-limit | 402 insufficient-credits
      | 402 key-credit-limit-reached (a claim made with an API key)   (and nothing changed)
      409 avatar-already-claimed   (the avatar holds a slot, under another key)
      a retry with the same key and body returns the first 201.
    DELETE /internal/v1/workspaces/{id}/avatar-claims/{avatar_id}
      204 the slot is free (also when it was never held or already freed).
"""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar, cast

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.billing import avatar_claims
from services.billing.allocations import AllocateCredits, allocate_credits
from services.billing.avatar_claims import ClaimAvatarSlot, ReleaseAvatarSlot
from services.billing.domain import (
    ApiAccessDisabledError,
    BelowUsageError,
    InsufficientBalanceError,
    InsufficientCreditsError,
    KeyCreditLimitReachedError,
    NotABillingRootError,
    NotParentBilledError,
    Pool,
    Terms,
    UsageGrouping,
)
from services.billing.payments import PaymentProvider
from services.billing.purchases import PurchaseCredits, purchase_credits
from services.billing.queries import (
    ReadAllocations,
    ReadBalances,
    ReadLedger,
    ReadUsage,
    read_allocations,
    read_balances,
    read_ledger,
    read_usage,
)
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
    UsageReport,
    ledger_page,
)
from services.billing.spend_batches import SpendBatches
from services.billing.spending import SpendCredits
from shared.idempotency import Idempotency, RequiredIdempotency
from shared.json_body import JsonBodyRoute
from shared.openapi import problems_for
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, Instant, PageSize
from shared.principal import CurrentPrincipal
from shared.service import ServiceRuntime
from shared.unit_of_work import no_body

router = APIRouter(
    prefix="/v1/workspaces/{workspace_id}", tags=["billing"], route_class=JsonBodyRoute
)
internal_router = APIRouter(
    prefix="/internal/v1/workspaces/{workspace_id}", tags=["internal"], route_class=JsonBodyRoute
)

CommandT = TypeVar("CommandT")
ResultT = TypeVar("ResultT")


def _runtime(request: Request) -> ServiceRuntime:
    return cast("ServiceRuntime", request.app.state.runtime)


def _terms(request: Request) -> Terms:
    return cast("Terms", request.app.state.terms)


def _payments(request: Request) -> PaymentProvider:
    return cast("PaymentProvider", request.app.state.payments)


def _spend_batches(request: Request) -> SpendBatches:
    return cast("SpendBatches", request.app.state.spend_batches)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
CurrentTerms = Annotated[Terms, Depends(_terms)]
Payments = Annotated[PaymentProvider, Depends(_payments)]
Spends = Annotated[SpendBatches, Depends(_spend_batches)]


@router.get(
    "/balances", response_model=BalancesResponse, summary="Credits and capacity of a workspace"
)
async def get_balances(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> Response:
    query = ReadBalances(caller, workspace_id)
    return await runtime.units_of_work.answer(
        lambda uow: read_balances(uow, query), BalancesResponse.of, actor=caller.actor
    )


@router.post(
    "/purchases",
    status_code=status.HTTP_201_CREATED,
    response_model=PurchaseReceipt,
    summary="Buy credits or capacity",
    responses=problems_for(NotABillingRootError),
)
async def purchase(
    workspace_id: uuid.UUID,
    body: PurchaseRequest,
    caller: CurrentPrincipal,
    runtime: Runtime,
    payments: Payments,
    idempotency: Idempotency,
) -> Response:
    command = PurchaseCredits(
        caller=caller,
        workspace_id=workspace_id,
        pool=body.pool,
        quantity=body.quantity,
        payments=payments,
        payment_key=None if idempotency is None else idempotency.key,
    )
    return await runtime.units_of_work.answer(
        lambda uow: purchase_credits(uow, command),
        PurchaseReceipt.of,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
        idempotency=idempotency,
    )


@router.put(
    "/allocations",
    response_model=AllocationsResponse,
    summary="Set what the parent allocates to a sub-workspace",
    responses=problems_for(NotParentBilledError, InsufficientBalanceError, BelowUsageError),
)
async def set_allocations(
    workspace_id: uuid.UUID, body: AllocationRequest, caller: CurrentPrincipal, runtime: Runtime
) -> Response:
    command = AllocateCredits(caller, workspace_id, body.targets())
    return await runtime.units_of_work.answer(
        lambda uow: allocate_credits(uow, command), AllocationsResponse.of, actor=caller.actor
    )


@router.get(
    "/allocations",
    response_model=AllocationsResponse,
    summary="What the parent allocated to a sub-workspace",
)
async def get_allocations(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> Response:
    query = ReadAllocations(caller, workspace_id)
    return await runtime.units_of_work.answer(
        lambda uow: read_allocations(uow, query), AllocationsResponse.of, actor=caller.actor
    )


@router.post(
    "/spend",
    status_code=status.HTTP_201_CREATED,
    response_model=SpendReceipt,
    summary="Pay for an operation",
    responses=problems_for(InsufficientCreditsError, KeyCreditLimitReachedError),
)
async def spend(
    workspace_id: uuid.UUID,
    body: SpendRequest,
    caller: CurrentPrincipal,
    spends: Spends,
    terms: CurrentTerms,
    idempotency: RequiredIdempotency,
) -> Response:
    command = SpendCredits(
        caller=caller,
        workspace_id=workspace_id,
        operation=body.operation,
        quantity=body.quantity,
        reference=body.reference,
        terms=terms,
    )
    return await spends.spend(command, idempotency)


@router.get(
    "/ledger", response_model=LedgerPage, summary="The workspace's ledger lines, newest first"
)
async def get_ledger(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    pool: Pool | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    query = ReadLedger(caller, workspace_id, pool=pool, limit=limit, cursor=cursor)
    return await runtime.units_of_work.answer(
        lambda uow: read_ledger(uow, query), ledger_page, actor=caller.actor
    )


@router.get(
    "/usage",
    response_model=UsageReport,
    summary="Credits spent, aggregated",
    responses=problems_for(ApiAccessDisabledError),
)
async def get_usage(
    workspace_id: uuid.UUID,
    *,
    caller: CurrentPrincipal,
    runtime: Runtime,
    group_by: UsageGrouping = "day",
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
) -> Response:
    query = ReadUsage(caller, workspace_id, group_by=group_by, since=since, until=until)
    return await runtime.units_of_work.answer(
        lambda uow: read_usage(uow, query),
        lambda rows: UsageReport.of(group_by, rows),
        actor=caller.actor,
    )


@internal_router.post(
    "/avatar-claims",
    status_code=status.HTTP_201_CREATED,
    response_model=AvatarClaimReceipt,
    summary="An avatar takes a slot and pays the avatar fee",
)
async def claim_avatar_slot(
    workspace_id: uuid.UUID,
    body: AvatarClaimRequest,
    caller: CurrentPrincipal,
    runtime: Runtime,
    terms: CurrentTerms,
    idempotency: RequiredIdempotency,
) -> Response:
    command = ClaimAvatarSlot(caller, workspace_id, avatar_id=body.avatar_id, terms=terms)
    return await runtime.units_of_work.answer(
        lambda uow: avatar_claims.claim_avatar_slot(uow, command),
        AvatarClaimReceipt.of,
        actor=caller.actor,
        status_code=status.HTTP_201_CREATED,
        idempotency=idempotency,
    )


@internal_router.delete(
    "/avatar-claims/{avatar_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Free an avatar's slot",
)
async def release_avatar_slot(
    workspace_id: uuid.UUID, avatar_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> Response:
    command = ReleaseAvatarSlot(caller, workspace_id, avatar_id)
    return await runtime.units_of_work.answer(
        lambda uow: avatar_claims.release_avatar_slot(uow, command),
        no_body,
        actor=caller.actor,
        status_code=status.HTTP_204_NO_CONTENT,
    )
