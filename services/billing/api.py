"""billing's HTTP API (thin)."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.billing import handlers
from services.billing.domain import Pool
from shared.principal import CurrentPrincipal, vouched_workspace
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["billing"])


def _runtime(request: Request) -> ServiceRuntime:
    return cast("ServiceRuntime", request.app.state.runtime)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]


class ConsumableBalance(BaseModel):
    balance: int
    allocated: int


class CapacityBalance(BaseModel):
    limit: int | None
    used: int


class BalancesResponse(BaseModel):
    generative_credits: ConsumableBalance
    api_credits: ConsumableBalance
    avatar_slots: CapacityBalance
    seats: CapacityBalance


@router.get("/workspaces/{workspace_id}/balances", summary="Credits and capacity of a workspace")
async def get_balances(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, runtime: Runtime
) -> BalancesResponse:
    vouched_workspace(caller, workspace_id)
    account = await handlers.get_account(runtime, workspace_id)

    def consumable(pool: Pool) -> ConsumableBalance:
        balance = account.pools[pool]
        return ConsumableBalance(balance=balance.balance, allocated=balance.allocated)

    return BalancesResponse(
        generative_credits=consumable(Pool.GENERATIVE_CREDITS),
        api_credits=consumable(Pool.API_CREDITS),
        avatar_slots=CapacityBalance(
            limit=account.avatar_slots_limit, used=account.avatar_slots_used
        ),
        seats=CapacityBalance(limit=account.seats_limit, used=account.seats_used),
    )
