"""apikeys' request and response bodies. Requests are strict: unknown fields, wrong
types and out-of-range values are refused before anything is written. A key's secret
appears in one body only: the answer to the request that made it."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts.events.apikeys import KeyRateLimit
from services.apikeys.domain import MAX_MONTHLY_CREDIT_LIMIT, KeyStatus
from services.apikeys.keys import NewKey
from services.apikeys.queries import KeyListing
from services.apikeys.repository.keys import KeyRecord
from services.apikeys.repository.usage import DayUsage
from shared.fields import DisplayName
from shared.pagination import Moment, Page

MonthlyCreditLimit = Annotated[int, Field(ge=0, le=MAX_MONTHLY_CREDIT_LIMIT, strict=True)]

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        msg = "must be a date as YYYY-MM-DD"
        raise ValueError(msg)
    return value


UsageDay = Annotated[date, BeforeValidator(_iso_day)]
"""A UTC day, written YYYY-MM-DD and nothing else."""


class CreateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DisplayName
    expires_at: Moment | None = Field(
        default=None, description="In the future, with a time zone; null: never expires."
    )
    rate_limit: KeyRateLimit | None = Field(
        default=None, description="The key's own limit, besides the per-caller one."
    )
    monthly_credit_limit: MonthlyCreditLimit | None = Field(
        default=None, description="API credits the key may spend per UTC calendar month."
    )


class ApiKeyResponse(BaseModel):
    """A key as listed: never its secret."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters (`atr_` and four more).")
    last4: str
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None
    rate_limit: KeyRateLimit | None
    monthly_credit_limit: int | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: KeyRecord, now: datetime) -> ApiKeyResponse:
        return cls(**_listed(key, now))


class NewApiKeyResponse(ApiKeyResponse):
    """A key just made, with its secret: shown here only, never again."""

    key: str = Field(description="The secret. Store it now: it is not shown again.")

    @classmethod
    def of_new(cls, new: NewKey) -> NewApiKeyResponse:
        return cls(**_listed(new.record, new.record.created_at), key=new.secret)


def _listed(key: KeyRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "last4": key.last4,
        "status": key.state.status(now),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "rate_limit": key.rate_limit,
        "monthly_credit_limit": key.monthly_credit_limit,
        "last_used_at": key.last_used_at,
    }


def key_page(listing: KeyListing) -> Page[ApiKeyResponse]:
    return Page[ApiKeyResponse](
        items=[ApiKeyResponse.of(key, listing.as_of) for key in listing.keys],
        next_cursor=listing.next_cursor,
    )


class UsageItem(BaseModel):
    date: date
    requests: int
    errors: int = Field(description="Requests answered with a 4xx or 5xx status.")
    credits_spent: int


class UsageReport(BaseModel):
    """One item per UTC day that had activity, oldest first."""

    items: list[UsageItem]

    @classmethod
    def of(cls, days: list[DayUsage]) -> UsageReport:
        return cls(
            items=[
                UsageItem(
                    date=day.day,
                    requests=day.requests,
                    errors=day.errors,
                    credits_spent=day.credits_spent,
                )
                for day in days
            ]
        )


class KeyLookup(BaseModel):
    """What the gateway needs to verify a key."""

    key_id: uuid.UUID
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    suspended: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    rate_limit: KeyRateLimit | None

    @classmethod
    def of(cls, key: KeyRecord) -> KeyLookup:
        return cls(
            key_id=key.id,
            workspace_id=key.workspace_id,
            root_id=key.root_id,
            suspended=key.suspended,
            revoked_at=key.revoked_at,
            expires_at=key.expires_at,
            rate_limit=key.rate_limit,
        )
