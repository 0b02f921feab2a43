"""All of billing's SQL.

Locking: a command that moves more than one balance first locks every row it will
touch with one `SELECT ... FOR UPDATE` in `(workspace_id, pool)` order, so two
commands never wait on each other in opposite orders. A plain spend touches one
row and takes no lock beforehand: its conditional `UPDATE ... WHERE balance >= amount`
is the check and the lock at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, cast, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from services.billing.domain import Line, Pool, TransactionKind, check_balanced
from services.billing.models import (
    accounts,
    avatar_claims,
    balances,
    ledger_lines,
    transactions,
)


@dataclass(frozen=True, slots=True)
class PoolBalance:
    balance: int
    allocated: int
    in_use: int


@dataclass(frozen=True, slots=True)
class AccountView:
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode
    strict_quota: bool
    plan_code: str | None
    seats_used: int
    seats_pending: int
    seats_cap: int | None
    closed: bool
    pools: dict[Pool, PoolBalance]

    @property
    def falls_through_to_parent(self) -> bool:
        """A `parent`-billed sub-workspace without a strict quota spends from its parent's
        pool once its own allocation runs out."""
        return (
            self.billing_mode is BillingMode.PARENT
            and not self.strict_quota
            and self.parent_id is not None
        )

    def avatar_slots_limit(self) -> int:
        slots = self.pools[Pool.AVATAR_SLOTS]
        return slots.balance + slots.in_use


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """What a ledger transaction says about itself, besides its lines."""

    id: uuid.UUID
    kind: TransactionKind
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    actor: str | None
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


LockKey = tuple[uuid.UUID, Pool]


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_account(
        self,
        *,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        billing_root_id: uuid.UUID,
        billing_mode: BillingMode,
        strict_quota: bool,
        plan_code: str | None,
    ) -> bool:
        """Open the workspace's account with an empty balance in every pool; False if it
        was already open."""
        opened = await self.session.execute(
            insert(accounts)
            .values(
                workspace_id=workspace_id,
                root_id=root_id,
                parent_id=parent_id,
                billing_root_id=billing_root_id,
                billing_mode=billing_mode.value,
                strict_quota=strict_quota,
                plan_code=plan_code,
            )
            .on_conflict_do_nothing(index_elements=[accounts.c.workspace_id])
            .returning(accounts.c.workspace_id),
        )
        if opened.first() is None:
            return False
        await self.session.execute(
            balances.insert(),
            [{"workspace_id": workspace_id, "pool": pool.value, "balance": 0} for pool in Pool],
        )
        return True

    async def account(self, workspace_id: uuid.UUID) -> AccountView | None:
        account = (
            (
                await self.session.execute(
                    select(accounts).where(accounts.c.workspace_id == workspace_id),
                )
            )
            .mappings()
            .one_or_none()
        )
        if account is None:
            return None
        pools = (
            await self.session.execute(
                select(
                    balances.c.pool, balances.c.balance, balances.c.allocated, balances.c.in_use
                ).where(balances.c.workspace_id == workspace_id),
            )
        ).all()
        return AccountView(
            workspace_id=account["workspace_id"],
            root_id=account["root_id"],
            parent_id=account["parent_id"],
            billing_root_id=account["billing_root_id"],
            billing_mode=BillingMode(account["billing_mode"]),
            strict_quota=account["strict_quota"],
            plan_code=account["plan_code"],
            seats_used=account["seats_used"],
            seats_pending=account["seats_pending"],
            seats_cap=account["seats_cap"],
            closed=account["closed_at"] is not None,
            pools={
                Pool(row.pool): PoolBalance(
                    balance=row.balance, allocated=row.allocated, in_use=row.in_use
                )
                for row in pools
            },
        )

    async def lock_balances(self, keys: Iterable[LockKey]) -> dict[LockKey, PoolBalance]:
        """Lock the given balances, always in `(workspace_id, pool)` order."""
        wanted = [(workspace_id, pool.value) for workspace_id, pool in set(keys)]
        if not wanted:
            return {}
        rows = (
            await self.session.execute(
                select(
                    balances.c.workspace_id,
                    balances.c.pool,
                    balances.c.balance,
                    balances.c.allocated,
                    balances.c.in_use,
                )
                .where(tuple_(balances.c.workspace_id, balances.c.pool).in_(wanted))
                .order_by(balances.c.workspace_id, balances.c.pool)
                .with_for_update(),
            )
        ).all()
        return {
            (row.workspace_id, Pool(row.pool)): PoolBalance(
                balance=row.balance, allocated=row.allocated, in_use=row.in_use
            )
            for row in rows
        }

    async def debit_if_covered(
        self, workspace_id: uuid.UUID, pool: Pool, amount: int
    ) -> tuple[int, uuid.UUID] | None:
        """Take `amount` from an open account's pool if it covers it: the new balance and
        the account's root; None (and nothing changed) otherwise.

        An account that may fall through to its parent is left alone: its spends lock
        its own and its parent's balance in order instead. (Under READ COMMITTED a
        conditional UPDATE that waited on a row and then found it short keeps the row
        locked; a fall-through after that would take the parent's lock out of order.)"""
        debited = (
            await self.session.execute(
                update(balances)
                .where(
                    balances.c.workspace_id == workspace_id,
                    balances.c.pool == pool.value,
                    balances.c.balance >= amount,
                    accounts.c.workspace_id == balances.c.workspace_id,
                    accounts.c.closed_at.is_(None),
                    or_(accounts.c.billing_mode == BillingMode.OWN.value, accounts.c.strict_quota),
                )
                .values(balance=balances.c.balance - amount)
                .returning(balances.c.balance, accounts.c.root_id),
            )
        ).first()
        return None if debited is None else (debited.balance, debited.root_id)

    async def move(self, line: Line) -> int:
        """Apply one workspace line to its balance; the new balance. The CHECK on
        `balances` refuses to let it go negative."""
        assert line.workspace_id is not None
        balance: int = (
            await self.session.execute(
                update(balances)
                .where(
                    balances.c.workspace_id == line.workspace_id,
                    balances.c.pool == line.pool.value,
                )
                .values(balance=balances.c.balance + line.amount)
                .returning(balances.c.balance),
            )
        ).scalar_one()
        return balance

    async def post(self, transaction: TransactionRecord, lines: Sequence[Line]) -> list[PostedLine]:
        """Apply every workspace line to its balance and record the transaction."""
        posted = [
            PostedLine(
                line=line,
                balance_after=None if line.workspace_id is None else await self.move(line),
            )
            for line in lines
        ]
        await self.record(transaction, posted)
        return posted

    async def record(self, transaction: TransactionRecord, posted: Sequence[PostedLine]) -> None:
        """Record a transaction whose lines were already applied to the balances."""
        check_balanced([entry.line for entry in posted])
        await self.session.execute(
            transactions.insert().values(
                id=transaction.id,
                kind=transaction.kind.value,
                workspace_id=transaction.workspace_id,
                root_id=transaction.root_id,
                actor=transaction.actor,
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

    async def set_allocated(self, workspace_id: uuid.UUID, pool: Pool, allocated: int) -> None:
        await self.session.execute(
            update(balances)
            .where(balances.c.workspace_id == workspace_id, balances.c.pool == pool.value)
            .values(allocated=allocated),
        )

    async def change_in_use(self, workspace_id: uuid.UUID, pool: Pool, change: int) -> None:
        await self.session.execute(
            update(balances)
            .where(balances.c.workspace_id == workspace_id, balances.c.pool == pool.value)
            .values(in_use=balances.c.in_use + change),
        )

    async def update_account(self, workspace_id: uuid.UUID, **values: object) -> None:
        await self.session.execute(
            update(accounts).where(accounts.c.workspace_id == workspace_id).values(**values),
        )

    async def close_account(self, workspace_id: uuid.UUID) -> None:
        await self.session.execute(
            update(accounts)
            .where(accounts.c.workspace_id == workspace_id)
            .values(closed_at=func.now()),
        )
        await self.session.execute(
            update(balances)
            .where(balances.c.workspace_id == workspace_id)
            .values(allocated=0, in_use=0),
        )

    async def record_seat_usage(
        self, billing_root_id: uuid.UUID, *, used: int, pending: int
    ) -> bool:
        """Keep the seat pool's usage; False when the billing root is not known yet."""
        updated = await self.session.execute(
            update(accounts)
            .where(accounts.c.workspace_id == billing_root_id)
            .values(seats_used=used, seats_pending=pending)
            .returning(accounts.c.workspace_id),
        )
        return updated.first() is not None

    async def avatar_claim(
        self, workspace_id: uuid.UUID, avatar_id: uuid.UUID
    ) -> tuple[uuid.UUID, bool] | None:
        """The claim's transaction and whether it was released; None if never claimed."""
        row = (
            await self.session.execute(
                select(
                    avatar_claims.c.claim_transaction_id,
                    avatar_claims.c.release_transaction_id,
                ).where(
                    avatar_claims.c.workspace_id == workspace_id,
                    avatar_claims.c.avatar_id == avatar_id,
                ),
            )
        ).first()
        if row is None:
            return None
        return row.claim_transaction_id, row.release_transaction_id is not None

    async def add_avatar_claim(
        self, workspace_id: uuid.UUID, avatar_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> None:
        await self.session.execute(
            avatar_claims.insert().values(
                workspace_id=workspace_id,
                avatar_id=avatar_id,
                claim_transaction_id=transaction_id,
            ),
        )

    async def release_avatar_claim(
        self, workspace_id: uuid.UUID, avatar_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> bool:
        """Mark a held claim released; False if it was not held (never, or already freed)."""
        released = await self.session.execute(
            update(avatar_claims)
            .where(
                avatar_claims.c.workspace_id == workspace_id,
                avatar_claims.c.avatar_id == avatar_id,
                avatar_claims.c.release_transaction_id.is_(None),
            )
            .values(release_transaction_id=transaction_id)
            .returning(avatar_claims.c.avatar_id),
        )
        return released.first() is not None

    async def ledger(
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
