"""API key budgets: billing's copy of the keys apikeys announces, and the monthly limit
a spend made with a key must fit in.

A spend made with a key (`caller.api_key_id`) draws API credits, as any spend, and when
the key carries a `monthly_credit_limit` it must also fit in what is left of it this
UTC calendar month, in the same transaction as the workspace's balances: the key's row
is locked first, then its budget's month, then the balances (one lock order), and a
spend that fails at any level — the parent's pool, the sub-workspace's allocation or
the key's budget — changes nothing at all (402 `key-credit-limit-reached` for the
key's). A key billing has not heard of yet is waited for, bounded, like an account not
open yet (`shared.read_your_writes`); one revoked (with effect now or earlier),
expired, suspended or made for another workspace is refused with 403: the gateway
refuses such keys first, this is defence in depth.

The use cases that apply the key events run in the consumer's transaction with the
event's inbox row, so that each applies once however often Kafka delivers it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.billing.domain import (
    ApiKeyNotArrivedError,
    KeyCreditLimitReachedError,
    KeyNotKnownYetError,
    check_key_spend,
    limit_reached,
)
from services.billing.repository.api_keys import ApiKeyRepository
from shared.principal import Principal
from shared.read_your_writes import announce_arrival
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class RecordKeyCreated:
    key_id: uuid.UUID
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    monthly_credit_limit: int | None
    expires_at: datetime | None
    suspended: bool
    rotated_from: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RecordKeyRevoked:
    key_id: uuid.UUID
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class RecordKeySuspension:
    key_id: uuid.UUID
    suspended: bool


async def record_key_created(uow: UnitOfWork, command: RecordKeyCreated) -> None:
    """Keep the key, and wake the spends waiting for it. A key rotated from another
    draws on the budget of the key it replaces (a rotation keeps the settings: the limit
    and what was spent against it this month)."""
    keys = ApiKeyRepository(uow.session)
    budget_id = None
    if command.rotated_from is not None:
        budget_id = await keys.budget_of(command.rotated_from)
    added = await keys.add(
        key_id=command.key_id,
        workspace_id=command.workspace_id,
        root_id=command.root_id,
        budget_id=budget_id or command.key_id,
        monthly_credit_limit=command.monthly_credit_limit,
        expires_at=command.expires_at,
        suspended=command.suspended,
    )
    if added:
        await announce_arrival(uow.session, command.key_id)


async def record_key_revoked(uow: UnitOfWork, command: RecordKeyRevoked) -> None:
    if not await ApiKeyRepository(uow.session).revoke(
        command.key_id, effective_at=command.effective_at
    ):
        msg = f"revocation of key {command.key_id} before its creation"
        raise KeyNotKnownYetError(msg)


async def record_key_suspension(uow: UnitOfWork, command: RecordKeySuspension) -> None:
    if not await ApiKeyRepository(uow.session).set_suspended(
        command.key_id, suspended=command.suspended
    ):
        msg = f"suspension or restoration of key {command.key_id} before its creation"
        raise KeyNotKnownYetError(msg)


async def draw_on_key_budget(
    uow: UnitOfWork, caller: Principal, workspace_id: uuid.UUID, amount: int
) -> None:
    """Take `amount` from the monthly budget of the key the caller spends with (none for
    a person). Call it before touching any balance: it takes the key's locks, which
    come first."""
    if caller.api_key_id is None:
        return
    keys = ApiKeyRepository(uow.session)
    key = await keys.lock(caller.api_key_id)
    if key is None:
        raise ApiKeyNotArrivedError(caller.api_key_id)
    check_key_spend(key, workspace_id, amount)
    if not amount:
        return
    drawn = await keys.draw(
        key.budget_id, month=key.month, amount=amount, limit=key.monthly_credit_limit
    )
    if drawn is None:
        # Another key of the same rotation spent from the budget meanwhile.
        assert key.monthly_credit_limit is not None
        raise KeyCreditLimitReachedError(limit_reached(key.monthly_credit_limit, key.spent, amount))
