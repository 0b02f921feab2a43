"""What assets answers without changing anything. Each read authorizes first, in the
unit of work its entry point opened, as a use case does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from contracts.events.assets import AssetKind
from contracts.permissions import Permission
from services.assets import authorization, sharing
from services.assets.domain import SeenAsset, Share
from services.assets.repository.assets import AssetRepository, Position
from services.assets.repository.shares import SharePosition, ShareRepository
from shared.errors import NotFoundError
from shared.pagination import CursorShape, decode_cursor, encode_cursor
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork

ItemT = TypeVar("ItemT")

LIBRARY_PAGES: CursorShape[Position] = CursorShape(Position)
"""A library continues after the last asset's creation time and id."""
SHARE_PAGES: CursorShape[SharePosition] = CursorShape(SharePosition)
"""An asset's shares continue after the last one's time and workspace id."""


@dataclass(frozen=True, slots=True)
class Listing(Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReadAsset:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReadLibrary:
    caller: Principal
    workspace_id: uuid.UUID
    kind: AssetKind | None
    include_shared: bool
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ReadShares:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID
    limit: int
    cursor: str | None


async def read_asset(uow: UnitOfWork, query: ReadAsset) -> SeenAsset:
    await authorization.library(uow, query.caller, query.workspace_id, Permission.READ_WORKSPACE)
    seen = await AssetRepository(uow.session).seen_from(query.asset_id, query.workspace_id)
    if seen is None:
        msg = f"No asset {query.asset_id} that this workspace can see."
        raise NotFoundError(msg)
    return seen


async def read_library(uow: UnitOfWork, query: ReadLibrary) -> Listing[SeenAsset]:
    await authorization.library(uow, query.caller, query.workspace_id, Permission.READ_WORKSPACE)
    found = await AssetRepository(uow.session).library_page(
        query.workspace_id,
        kind=query.kind,
        include_shared=query.include_shared,
        after=decode_cursor(query.cursor, shape=LIBRARY_PAGES),
        limit=query.limit + 1,
    )
    items = found[: query.limit]
    last = items[-1].asset if len(found) > query.limit else None
    return Listing(
        items=items,
        next_cursor=None
        if last is None
        else encode_cursor((last.created_at, last.id), shape=LIBRARY_PAGES),
    )


async def read_shares(uow: UnitOfWork, query: ReadShares) -> Listing[Share]:
    await authorization.library(
        uow, query.caller, query.workspace_id, Permission.PURCHASE_AND_SHARE
    )
    authorization.require_share_manager(query.caller)
    asset = await sharing.shareable_asset(uow, query.workspace_id, query.asset_id)
    found = await ShareRepository(uow.session).page(
        asset.id, after=decode_cursor(query.cursor, shape=SHARE_PAGES), limit=query.limit + 1
    )
    items = found[: query.limit]
    last = items[-1] if len(found) > query.limit else None
    return Listing(
        items=items,
        next_cursor=None
        if last is None
        else encode_cursor((last.shared_at, last.workspace_id), shape=SHARE_PAGES),
    )
