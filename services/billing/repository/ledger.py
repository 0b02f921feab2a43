"""The ledger: balanced transactions and their lines, append-only; and what is read
back from it (ledger pages, spend aggregated as usage)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.domain import Line, Pool, TransactionKind, check_balanced
from services.billing.models import ledger_lines, transactions
from services.billing.repository.balances import BalanceRepository


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """What a ledger transaction says about itself, besides its lines and who made it."""

    id: uuid.UUID
    kind: TransactionKind
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    pool: Pool | None = None
    amount: int | None = None
    operation: str | None = None
    quantity: int | None = None
    reference: str | None = None
    api_key_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class PostedLine:
    line: Line
    balance_after: int | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    transaction_id: uuid.UUID
    kind: str
    pool: str
    amount: int
    balance_after: int | None
    operation: str | None
    reference: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageRow:
    group: str | None
    credits: int
    count: int


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def post(
        self, transaction: TransactionRecord, lines: Sequence[Line], *, actor: str | None
    ) -> list[PostedLine]:
        """Apply every workspace line to its balance and record the transaction."""
        balances = BalanceRepository(self.session)
        posted = [
            PostedLine(
                line=line,
                balance_after=None if line.workspace_id is None else await balances.move(line),
            )
            for line in lines
        ]
        await self.record(transaction, posted, actor=actor)
        return posted

    async def record(
        self, transaction: TransactionRecord, posted: Sequence[PostedLine], *, actor: str | None
    ) -> None:
        """Record a transaction whose lines were already applied to the balances."""
        check_balanced([entry.line for entry in posted])
        await self.session.execute(
            transactions.insert().values(
                id=transaction.id,
                kind=transaction.kind.value,
                workspace_id=transaction.workspace_id,
                root_id=transaction.root_id,
                actor=actor,
                pool=None if transaction.pool is None else transaction.pool.value,
                amount=transaction.amount,
                operation=transaction.operation,
                quantity=transaction.quantity,
                reference=transaction.reference,
                api_key_id=transaction.api_key_id,
            ),
        )
        if posted:
            # Rows as parameters, not as part of the statement: the statement then
            # compiles once for every transaction, however many lines it has.
            await self.session.execute(
                ledger_lines.insert(),
                [
                    {
                        "transaction_id": transaction.id,
                        "workspace_id": entry.line.workspace_id,
                        "pool": entry.line.pool.value,
                        "amount": entry.line.amount,
                        "balance_after": entry.balance_after,
                    }
                    for entry in posted
                ],
            )

    async def lines(
        self,
        workspace_id: uuid.UUID,
        *,
        pool: Pool | None,
        before_line_id: int | None,
        limit: int,
    ) -> list[LedgerEntry]:
        """The account's ledger lines, newest first."""
        query = (
            select(
                ledger_lines.c.id,
                ledger_lines.c.transaction_id,
                transactions.c.kind,
                ledger_lines.c.pool,
                ledger_lines.c.amount,
                ledger_lines.c.balance_after,
                transactions.c.operation,
                transactions.c.reference,
                ledger_lines.c.created_at,
            )
            .join(transactions, transactions.c.id == ledger_lines.c.transaction_id)
            .where(ledger_lines.c.workspace_id == workspace_id)
            .order_by(ledger_lines.c.id.desc())
            .limit(limit)
        )
        if pool is not None:
            query = query.where(ledger_lines.c.pool == pool.value)
        if before_line_id is not None:
            query = query.where(ledger_lines.c.id < before_line_id)
        rows = (await self.session.execute(query)).all()
        return [LedgerEntry(**row._asdict()) for row in rows]

    async def usage(
        self,
        workspace_id: uuid.UUID,
        *,
        group_by: str,
        since: datetime | None,
        until: datetime | None,
    ) -> list[UsageRow]:
        """Credits spent in the workspace (spends and avatar fees), grouped."""
        group = {
            "day": cast(func.timezone("UTC", transactions.c.created_at), Date),
            "operation": transactions.c.operation,
            "api_key": transactions.c.api_key_id,
        }[group_by]
        query = (
            select(
                group.label("group"),
                func.coalesce(func.sum(transactions.c.amount), 0).label("credits"),
                func.count().label("transactions"),
            )
            .where(transactions.c.workspace_id == workspace_id, transactions.c.amount.is_not(None))
            .group_by(group)
            .order_by(group)
        )
        if since is not None:
            query = query.where(transactions.c.created_at >= since)
        if until is not None:
            query = query.where(transactions.c.created_at < until)
        rows = (await self.session.execute(query)).all()
        return [
            UsageRow(
                group=None if row.group is None else _group_text(row.group),
                credits=int(row.credits),
                count=row.transactions,
            )
            for row in rows
        ]


def _group_text(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
