"""What developers and Super Admins read: keys (never their secrets) and API usage;
and the gateway's look-up of a key by its hash. Each read is one short transaction
and changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.apikeys.authorization import require_api_access, require_gateway, require_key_reader
from services.apikeys.commands import ListApiKeys, LookUpKey, ReadKeyUsage, ReadWorkspaceUsage
from services.apikeys.domain import UsagePeriod, utc_now
from services.apikeys.repository.keys import KeyRecord, KeyRepository, Position
from services.apikeys.repository.usage import DayUsage, UsageRepository
from services.apikeys.workspaces import require_workspace
from shared.errors import NotFoundError
from shared.pagination import CursorShape, Moment, decode_cursor, encode_cursor
from shared.unit_of_work import UnitOfWork

KEY_PAGES: CursorShape[Position] = CursorShape(tuple[Moment, uuid.UUID])
"""Lists of keys continue before the last one's creation time and id."""


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: list[KeyRecord]
    next_cursor: str | None
    as_of: datetime
    """The moment the keys' statuses are told at."""


async def list_keys(uow: UnitOfWork, query: ListApiKeys) -> KeyListing:
    """The workspace's keys, newest first, a page at a time."""
    require_key_reader(query.caller, query.workspace_id)
    before = decode_cursor(query.cursor, shape=KEY_PAGES)
    workspace = await require_workspace(uow.session, query.workspace_id)
    require_api_access(query.caller, workspace)
    found = await KeyRepository(uow.session).page(workspace.id, limit=query.limit + 1, after=before)
    page = found[: query.limit]
    return KeyListing(
        keys=page,
        as_of=utc_now(),
        next_cursor=(
            encode_cursor((page[-1].created_at, page[-1].id), shape=KEY_PAGES)
            if len(found) > query.limit
            else None
        ),
    )


async def read_key_usage(uow: UnitOfWork, query: ReadKeyUsage) -> list[DayUsage]:
    require_key_reader(query.caller, query.workspace_id)
    period = UsagePeriod.of(query.first, query.last, today=utc_now().date())
    workspace = await require_workspace(uow.session, query.workspace_id)
    require_api_access(query.caller, workspace)
    if await KeyRepository(uow.session).find(workspace.id, query.key_id) is None:
        msg = f"No API key {query.key_id} in this workspace."
        raise NotFoundError(msg)
    return await UsageRepository(uow.session).of_key(query.key_id, period)


async def read_workspace_usage(uow: UnitOfWork, query: ReadWorkspaceUsage) -> list[DayUsage]:
    """The workspace's own keys together; its sub-workspaces' are theirs."""
    require_key_reader(query.caller, query.workspace_id)
    period = UsagePeriod.of(query.first, query.last, today=utc_now().date())
    workspace = await require_workspace(uow.session, query.workspace_id)
    require_api_access(query.caller, workspace)
    return await UsageRepository(uow.session).of_workspace(workspace.id, period)


async def look_up_key(uow: UnitOfWork, query: LookUpKey) -> KeyRecord:
    """A key by the HMAC of its secret, whatever its state: the gateway decides."""
    require_gateway(query.caller)
    key = await KeyRepository(uow.session).by_hash(query.key_hash)
    if key is None:
        msg = "No such key."
        raise NotFoundError(msg)
    return key
