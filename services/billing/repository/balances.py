"""Balances: what each account holds of each pool, kept in step with the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.domain import Line, Pool
from services.billing.models import balances
from services.billing.repository.accounts import PoolBalance

LockKey = tuple[uuid.UUID, Pool]


class BalanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, keys: Iterable[LockKey]) -> dict[LockKey, PoolBalance]:
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
