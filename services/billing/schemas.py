"""billing's request and response bodies. Requests are strict: unknown fields, wrong
types and out-of-range values are refused before anything is written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.billing.domain import Operation, Pool
from shared.pagination import Page

MAX_QUANTITY = 1_000_000_000
"""Large enough for any real order, small enough that no price times it overflows."""

Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True)]
Allocation = Annotated[int, Field(ge=0, le=MAX_QUANTITY, strict=True)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PurchaseRequest(_Request):
    pool: Pool
    quantity: Quantity


class AllocationRequest(_Request):
    """Target allocations; a pool left out keeps its allocation."""

    generative_credits: Allocation | None = None
    api_credits: Allocation | None = None
    avatar_slots: Allocation | None = None
    seats: Allocation | None = Field(
        default=None, description="A cap on the sub-workspace's seats within its pool."
    )

    @model_validator(mode="after")
    def names_at_least_one_pool(self) -> AllocationRequest:
        if not self.targets():
            msg = "name at least one pool"
            raise ValueError(msg)
        return self

    def targets(self) -> dict[Pool, int]:
        return {
            Pool(name): value
            for name, value in self.model_dump(exclude_none=True).items()
            if value is not None
        }


class SpendRequest(_Request):
    operation: Operation
    quantity: Quantity = Field(description="Units: minutes of video or translation, images...")
    reference: str | None = Field(
        default=None, min_length=1, max_length=200, description="The caller's own reference."
    )


class AvatarClaimRequest(_Request):
    avatar_id: uuid.UUID = Field(description="The avatar (asset) that takes the slot.")


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


class AllocationsResponse(BaseModel):
    generative_credits: int
    api_credits: int
    avatar_slots: int
    seats: int | None = Field(description="The seat cap, if any.")


class SpendReceipt(BaseModel):
    transaction_id: uuid.UUID
    pool: Pool
    amount: int
    balance_after: int


class PurchaseReceipt(BaseModel):
    transaction_id: uuid.UUID
    pool: Pool
    quantity: int
    balance_after: int
    payment_provider: str
    payment_reference: str


class AvatarClaimReceipt(BaseModel):
    avatar_id: uuid.UUID
    transaction_id: uuid.UUID
    pool: Pool = Field(description="The pool that paid the avatar fee.")
    fee: int
    balance_after: int
    avatar_slots: CapacityBalance


class LedgerItem(BaseModel):
    id: int
    transaction_id: uuid.UUID
    kind: str
    pool: Pool
    amount: int
    balance_after: int | None
    operation: str | None
    reference: str | None
    created_at: datetime


LedgerPage = Page[LedgerItem]


UsageGrouping = Literal["day", "operation", "api_key"]


class UsageItem(BaseModel):
    key: str | None = Field(description="The day, the operation or the API key id.")
    credits: int
    count: int


class UsageReport(BaseModel):
    group_by: UsageGrouping
    items: list[UsageItem]
