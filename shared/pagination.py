"""Cursor pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`;
responses are `{"items": [...], "next_cursor": ...}`.

A cursor is the position where the previous page ended, as JSON in URL-safe base64.
Each list says what its positions look like (a `CursorShape`), and a cursor is read
back only in that shape, strictly: a cursor this API did not give out — another
shape, a number out of range, `true` for a number, a string for a date — is a 422
problem, never a server error or a silently different page."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from contracts import problems
from shared.errors import DomainError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_POSITION = 2**63 - 1
"""The largest number a position may hold: PostgreSQL's `bigint`."""

ItemT = TypeVar("ItemT")
PositionT = TypeVar("PositionT")

Offset = Annotated[int, Field(ge=0, le=MAX_POSITION)]
"""How many items earlier pages held."""


def _in_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        msg = "must carry a time zone"
        raise ValueError(msg)
    try:
        return moment.astimezone(UTC)
    except OverflowError as beyond:  # e.g. 0001-01-01T00:00:00+14:00
        msg = "is not a time in UTC's range"
        raise ValueError(msg) from beyond


Moment = Annotated[datetime, AfterValidator(_in_utc)]
"""A time a page ends at: with a zone, and one that exists in UTC (what the database
compares it in)."""


def _zoned_or_utc(moment: datetime) -> datetime:
    return _in_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


_STARTS_AS_A_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _written_as_a_date(value: object) -> object:
    """An RFC 3339 date-time (or a date) as the document says, not a number that
    pydantic would read as seconds since 1970."""
    if not isinstance(value, datetime) and not (
        isinstance(value, str) and _STARTS_AS_A_DATE.match(value)
    ):
        msg = "must be an RFC 3339 date-time, such as 2026-12-01T00:00:00Z"
        raise ValueError(msg)
    return value


Instant = Annotated[datetime, BeforeValidator(_written_as_a_date), AfterValidator(_zoned_or_utc)]
"""A time a client bounds a query with (`?from=`, `?to=`): one without a zone is in
UTC, and one that does not exist in UTC (`0001-01-01T00:00:00+14:00`) is refused
rather than failing in the database."""


class InvalidCursorError(DomainError):
    problem = problems.VALIDATION_FAILED


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="From `next_cursor`.")]


class CursorShape(Generic[PositionT]):
    """What the positions of one list look like, for example `tuple[datetime, UUID]`."""

    def __init__(self, shape: Any) -> None:
        self.adapter: TypeAdapter[PositionT] = TypeAdapter(shape, config=ConfigDict(strict=True))


def encode_cursor(position: PositionT, *, shape: CursorShape[PositionT]) -> str:
    return base64.urlsafe_b64encode(shape.adapter.dump_json(position)).decode()


def decode_cursor(cursor: str | None, *, shape: CursorShape[PositionT]) -> PositionT | None:
    """The position a cursor holds, in the list's shape; None for the first page."""
    if cursor is None:
        return None
    try:
        return shape.adapter.validate_json(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as invalid:  # bad base64, bad JSON, or not the list's shape
        msg = "The cursor is not one this API gave out."
        raise InvalidCursorError(msg) from invalid
