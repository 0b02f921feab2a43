"""billing's request and response bodies. Requests are strict: unknown fields, wrong
types and out-of-range values are refused before anything is written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.avatar_claims import AvatarClaim
from services.billing.domain import CapacityHeld, CreditsHeld, Operation, Pool, UsageGrouping
from services.billing.purchases import Purchase
from services.billing.queries import Balances, LedgerEntries
from services.billing.repository.accounts import AccountView
from services.billing.repository.ledger import LedgerEntry, UsageRow
from shared.fields import PlainText
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
    """Target allocations (of one pool at least); a pool left out keeps its allocation."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [pool.value], "properties": {pool.value: {"type": "integer"}}}
                for pool in Pool
                if pool is not Pool.SEATS
            ]
        }
    )

    generative_credits: Allocation | None = None
    api_credits: Allocation | None = None
    avatar_slots: Allocation | None = None
    seats: None = Field(
        default=None,
        deprecated=True,
        description="No longer set here: a sub-workspace's seat cap is set with "
        "`PUT /v1/workspaces/{id}/seats` (identity), where it is checked against the seats "
        "in use under the seat pool's lock. Only null is taken; a number is refused with "
        "422, saying so.",
    )

    @field_validator("seats", mode="before")
    @classmethod
    def seats_are_capped_by_identity(cls, seats: object) -> None:
        if seats is not None:
            msg = (
                "a seat cap is set with PUT /v1/workspaces/{id}/seats, where it is checked "
                "against the seats in use"
            )
            raise ValueError(msg)

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
    reference: PlainText | None = Field(
        default=None, min_length=1, max_length=200, description="The caller's own reference."
    )


class AvatarClaimRequest(_Request):
    avatar_id: uuid.UUID = Field(description="The avatar (asset) that takes the slot.")


class ConsumableBalance(BaseModel):
    balance: int
    allocated: int

    @classmethod
    def of(cls, held: CreditsHeld) -> ConsumableBalance:
        return cls(balance=held.balance, allocated=held.allocated)


class CapacityBalance(BaseModel):
    limit: int | None
    used: int

    @classmethod
    def of(cls, held: CapacityHeld) -> CapacityBalance:
        return cls(limit=held.limit, used=held.used)


class BalancesResponse(BaseModel):
    generative_credits: ConsumableBalance
    api_credits: ConsumableBalance
    avatar_slots: CapacityBalance
    seats: CapacityBalance

    @classmethod
    def of(cls, balances: Balances) -> BalancesResponse:
        return cls(
            generative_credits=ConsumableBalance.of(balances.generative_credits),
            api_credits=ConsumableBalance.of(balances.api_credits),
            avatar_slots=CapacityBalance.of(balances.avatar_slots),
            seats=CapacityBalance.of(balances.seats),
        )


class AllocationsResponse(BaseModel):
    generative_credits: int
    api_credits: int
    avatar_slots: int
    seats: int | None = Field(description="The seat cap, if any.")

    @classmethod
    def of(cls, account: AccountView) -> AllocationsResponse:
        return cls(
            generative_credits=account.pools[Pool.GENERATIVE_CREDITS].allocated,
            api_credits=account.pools[Pool.API_CREDITS].allocated,
            avatar_slots=account.pools[Pool.AVATAR_SLOTS].allocated,
            seats=account.seats_cap,
        )


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

    @classmethod
    def of(cls, purchase: Purchase) -> PurchaseReceipt:
        return cls(
            transaction_id=purchase.transaction_id,
            pool=purchase.pool,
            quantity=purchase.quantity,
            balance_after=purchase.balance_after,
            payment_provider=purchase.payment_provider,
            payment_reference=purchase.payment_reference,
        )


class AvatarClaimReceipt(BaseModel):
    avatar_id: uuid.UUID
    transaction_id: uuid.UUID
    pool: Pool = Field(description="The pool that paid the avatar fee.")
    fee: int
    balance_after: int
    avatar_slots: CapacityBalance

    @classmethod
    def of(cls, claim: AvatarClaim) -> AvatarClaimReceipt:
        return cls(
            avatar_id=claim.avatar_id,
            transaction_id=claim.transaction_id,
            pool=claim.pool,
            fee=claim.fee,
            balance_after=claim.balance_after,
            avatar_slots=CapacityBalance.of(claim.avatar_slots),
        )


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

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerItem:
        return cls(
            id=entry.id,
            transaction_id=entry.transaction_id,
            kind=entry.kind,
            pool=Pool(entry.pool),
            amount=entry.amount,
            balance_after=entry.balance_after,
            operation=entry.operation,
            reference=entry.reference,
            created_at=entry.created_at,
        )


LedgerPage = Page[LedgerItem]


def ledger_page(entries: LedgerEntries) -> LedgerPage:
    return LedgerPage(
        items=[LedgerItem.of(entry) for entry in entries.entries],
        next_cursor=entries.next_cursor,
    )


class UsageItem(BaseModel):
    key: str | None = Field(description="The day, the operation or the API key id.")
    credits: int
    count: int

    @classmethod
    def of(cls, row: UsageRow) -> UsageItem:
        return cls(key=row.group, credits=row.credits, count=row.count)


class UsageReport(BaseModel):
    group_by: UsageGrouping
    items: list[UsageItem]

    @classmethod
    def of(cls, group_by: UsageGrouping, rows: list[UsageRow]) -> UsageReport:
        return cls(group_by=group_by, items=[UsageItem.of(row) for row in rows])
