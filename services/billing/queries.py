"""What members read: balances, allocations, the ledger and usage. Each read is one
short transaction and changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import Field

from contracts.events.identity import BillingMode
from services.billing.accounts import require_open_account
from services.billing.domain import CapacityHeld, CreditsHeld, Pool, UsageGrouping
from services.billing.policy import (
    require_api_access,
    require_ledger_reader,
    require_member,
    require_usage_reader,
)
from services.billing.repository.accounts import AccountRepository, AccountView
from services.billing.repository.ledger import LedgerEntry, LedgerRepository, UsageRow
from shared.pagination import MAX_POSITION, CursorShape, decode_cursor, encode_cursor
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork

LEDGER_PAGES: CursorShape[tuple[int]] = CursorShape(
    tuple[Annotated[int, Field(ge=1, le=MAX_POSITION)]]
)
"""The ledger continues before the id of the last line shown."""


@dataclass(frozen=True, slots=True)
class ReadBalances:
    caller: Principal
    workspace_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReadAllocations:
    caller: Principal
    workspace_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReadLedger:
    caller: Principal
    workspace_id: uuid.UUID
    pool: Pool | None
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ReadUsage:
    caller: Principal
    workspace_id: uuid.UUID
    group_by: UsageGrouping
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Balances:
    generative_credits: CreditsHeld
    api_credits: CreditsHeld
    avatar_slots: CapacityHeld
    seats: CapacityHeld


@dataclass(frozen=True, slots=True)
class LedgerEntries:
    entries: list[LedgerEntry]
    next_cursor: str | None


async def read_balances(uow: UnitOfWork, query: ReadBalances) -> Balances:
    """A `parent`-billed workspace's seats are its pool's (its billing root's), limited
    by its cap if it has one."""
    require_member(query.caller, query.workspace_id)
    account = await require_open_account(uow.session, query.workspace_id)
    seat_pool = account
    if account.billing_mode is BillingMode.PARENT:
        seat_pool = await AccountRepository(uow.session).find(account.billing_root_id) or account
    seats_limit = (
        seat_pool.pools[Pool.SEATS].balance if seat_pool.billing_mode is BillingMode.OWN else None
    )
    if account.seats_cap is not None:
        seats_limit = (
            account.seats_cap if seats_limit is None else min(seats_limit, account.seats_cap)
        )

    def credits_of(pool: Pool) -> CreditsHeld:
        held = account.pools[pool]
        return CreditsHeld(balance=held.balance, allocated=held.allocated)

    return Balances(
        generative_credits=credits_of(Pool.GENERATIVE_CREDITS),
        api_credits=credits_of(Pool.API_CREDITS),
        avatar_slots=CapacityHeld(
            limit=account.avatar_slots_limit(), used=account.pools[Pool.AVATAR_SLOTS].in_use
        ),
        seats=CapacityHeld(limit=seats_limit, used=seat_pool.seats_used),
    )


async def read_allocations(uow: UnitOfWork, query: ReadAllocations) -> AccountView:
    require_member(query.caller, query.workspace_id)
    return await require_open_account(uow.session, query.workspace_id)


async def read_ledger(uow: UnitOfWork, query: ReadLedger) -> LedgerEntries:
    """The account's ledger lines, newest first, a page at a time."""
    require_ledger_reader(query.caller, query.workspace_id)
    (before,) = decode_cursor(query.cursor, shape=LEDGER_PAGES) or (None,)
    await require_open_account(uow.session, query.workspace_id)
    entries = await LedgerRepository(uow.session).lines(
        query.workspace_id, pool=query.pool, before_line_id=before, limit=query.limit + 1
    )
    page = entries[: query.limit]
    return LedgerEntries(
        entries=page,
        next_cursor=(
            encode_cursor((page[-1].id,), shape=LEDGER_PAGES)
            if len(entries) > query.limit
            else None
        ),
    )


async def read_usage(uow: UnitOfWork, query: ReadUsage) -> list[UsageRow]:
    """Credits spent in the workspace (spends and avatar fees), grouped."""
    of_api_keys = query.group_by == "api_key"
    require_usage_reader(query.caller, query.workspace_id, of_api_keys=of_api_keys)
    account = await require_open_account(uow.session, query.workspace_id)
    if of_api_keys:
        require_api_access(query.caller, api_access=account.api_access)
    return await LedgerRepository(uow.session).usage(
        query.workspace_id, group_by=query.group_by, since=query.since, until=query.until
    )
