"""Spending: an operation is charged at its price, all or nothing. An API key pays with
API credits, a person with generative credits; a sub-workspace without a strict quota
falls through to its parent's pool once its own allocation runs out. A spend made with
a key must also fit in the key's monthly credit limit (`key_budgets`): the key's
budget, the sub-workspace's balance and the parent's pool are each checked and changed
in the one transaction, or none of them is.

The spend endpoint charges through `spend_batches` instead: the same rules, written
once more as the stored function `billing.spend_batch` (migration 0009) so that a
spend is one round trip and concurrent spends share a transaction; a change to these
rules is made in both. `spend_credits` is the spend for a caller that needs it inside
a unit of work of its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.permissions import Permission
from services.billing.accounts import require_open_account
from services.billing.domain import (
    InsufficientCreditsError,
    Line,
    Operation,
    Pool,
    Terms,
    TransactionKind,
    charge_lines,
    pool_paying_for,
    split_charge,
)
from services.billing.key_budgets import draw_on_key_budget
from services.billing.policy import require_spender
from services.billing.posting import balance_after, record, warn_if_low
from services.billing.repository.balances import BalanceRepository
from services.billing.repository.ledger import PostedLine, TransactionRecord
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class SpendCredits:
    caller: Principal
    workspace_id: uuid.UUID
    operation: Operation
    quantity: int
    reference: str | None
    terms: Terms


@dataclass(frozen=True, slots=True)
class Spend:
    transaction_id: uuid.UUID
    pool: Pool
    amount: int
    balance_after: int


async def spend_credits(uow: UnitOfWork, command: SpendCredits) -> Spend:
    require_spender(command.caller, command.workspace_id, Permission.SPEND_CREDITS)
    pool = pool_paying_for(by_api_key=command.caller.api_key_id is not None)
    amount = command.terms.prices.price(command.operation, command.quantity)
    await draw_on_key_budget(uow, command.caller, command.workspace_id, amount)
    charged = await _charge(uow.session, command.workspace_id, pool, amount)
    transaction_id = uuid.uuid4()
    await record(
        uow,
        TransactionRecord(
            id=transaction_id,
            kind=TransactionKind.SPEND,
            workspace_id=command.workspace_id,
            root_id=charged.root_id,
            pool=pool,
            amount=amount,
            operation=command.operation.value,
            quantity=command.quantity,
            reference=command.reference,
            api_key_id=command.caller.api_key_id,
        ),
        charged.lines,
    )
    await warn_if_low(
        uow,
        command.workspace_id,
        charged.root_id,
        pool,
        charged.lines,
        threshold=command.terms.credits_low_threshold,
    )
    return Spend(
        transaction_id=transaction_id, pool=pool, amount=amount, balance_after=charged.balance_after
    )


@dataclass(frozen=True, slots=True)
class _Charged:
    root_id: uuid.UUID
    balance_after: int
    lines: list[PostedLine]


async def _charge(
    session: AsyncSession, workspace_id: uuid.UUID, pool: Pool, amount: int
) -> _Charged:
    """Take `amount` of `pool`, falling through to the parent where allowed; the lines
    are applied to the balances but not yet recorded."""
    balances = BalanceRepository(session)
    if amount:
        debited = await balances.debit_if_covered(workspace_id, pool, amount)
        if debited is not None:
            balance, root_id = debited
            return _Charged(
                root_id=root_id,
                balance_after=balance,
                lines=[
                    PostedLine(Line(workspace_id, pool, -amount), balance),
                    PostedLine(Line(None, pool, amount), None),
                ],
            )
    account = await require_open_account(session, workspace_id)
    if not amount:
        return _Charged(account.root_id, account.pools[pool].balance, [])
    if not account.falls_through_to_parent or account.parent_id is None:
        msg = f"This costs {amount} credits; {account.pools[pool].balance} are left."
        raise InsufficientCreditsError(msg)
    parent_id = account.parent_id
    locked = await balances.lock([(workspace_id, pool), (parent_id, pool)])
    charge = split_charge(
        amount,
        own_balance=locked[(workspace_id, pool)].balance,
        parent_balance=locked[(parent_id, pool)].balance,
    )
    posted = [
        PostedLine(line, None if line.workspace_id is None else await balances.move(line))
        for line in charge_lines(workspace_id, parent_id, pool, charge)
    ]
    return _Charged(
        root_id=account.root_id,
        balance_after=balance_after(
            posted, workspace_id, pool, otherwise=locked[(workspace_id, pool)].balance
        ),
        lines=posted,
    )
