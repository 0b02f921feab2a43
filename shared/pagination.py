"""Cursor pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`;
responses are `{"items": [...], "next_cursor": ...}`."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from contracts import problems
from shared.errors import DomainError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

ItemT = TypeVar("ItemT")


class InvalidCursorError(DomainError):
    problem = problems.VALIDATION_FAILED


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="From `next_cursor`.")]


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as invalid:
        msg = "The cursor is not one this API gave out."
        raise InvalidCursorError(msg) from invalid
    if not isinstance(position, list):
        msg = "The cursor is not one this API gave out."
        raise InvalidCursorError(msg)
    return position
