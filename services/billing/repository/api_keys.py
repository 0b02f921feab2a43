"""API keys: billing's copy of the key events, and what each key's budget spent per UTC
calendar month.

Locking: a spend made with a key locks the key's row first (`lock`), then its budget's
row of the month (`draw`), then balances (`BalanceRepository`): always in that order.
The consumers that apply key events lock one key's row and nothing else. The month and
the key's state are read with the database's clock, the one `transactions.created_at`
is written with, so every replica agrees on the month a spend falls in.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, and_, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.domain import KeyBudget
from services.billing.models import api_key_spending, api_keys

_THIS_MONTH = cast(func.date_trunc("month", func.timezone("UTC", func.now())), Date)
"""The first day of the transaction's UTC calendar month."""


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        key_id: uuid.UUID,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        budget_id: uuid.UUID,
        monthly_credit_limit: int | None,
        expires_at: datetime | None,
        suspended: bool,
    ) -> bool:
        """Keep a new key; False if it was kept already."""
        added = await self.session.execute(
            insert(api_keys)
            .values(
                key_id=key_id,
                workspace_id=workspace_id,
                root_id=root_id,
                budget_id=budget_id,
                monthly_credit_limit=monthly_credit_limit,
                expires_at=expires_at,
                suspended=suspended,
            )
            .on_conflict_do_nothing(index_elements=[api_keys.c.key_id])
            .returning(api_keys.c.key_id),
        )
        return added.first() is not None

    async def budget_of(self, key_id: uuid.UUID) -> uuid.UUID | None:
        """The budget a kept key draws on; None for a key billing has not heard of."""
        budget: uuid.UUID | None = await self.session.scalar(
            select(api_keys.c.budget_id).where(api_keys.c.key_id == key_id)
        )
        return budget

    async def revoke(self, key_id: uuid.UUID, *, effective_at: datetime) -> bool:
        """The key stops working at `effective_at`, or earlier if it was revoked to stop
        earlier already; False for a key billing has not heard of."""
        revoked = await self.session.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .values(revoked_at=func.least(api_keys.c.revoked_at, effective_at))
            .returning(api_keys.c.key_id),
        )
        return revoked.first() is not None

    async def set_suspended(self, key_id: uuid.UUID, *, suspended: bool) -> bool:
        """False for a key billing has not heard of."""
        changed = await self.session.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .values(suspended=suspended)
            .returning(api_keys.c.key_id),
        )
        return changed.first() is not None

    async def lock(self, key_id: uuid.UUID) -> KeyBudget | None:
        """Lock the key's row and read it as a spend made now finds it, with what its
        budget spent this month; None for a key billing has not heard of."""
        month = _THIS_MONTH.label("month")
        row = (
            await self.session.execute(
                select(
                    api_keys.c.key_id,
                    api_keys.c.workspace_id,
                    api_keys.c.budget_id,
                    api_keys.c.monthly_credit_limit,
                    api_keys.c.suspended,
                    func.coalesce(api_keys.c.revoked_at <= func.now(), False).label("revoked"),
                    func.coalesce(api_keys.c.expires_at <= func.now(), False).label("expired"),
                    month,
                    func.coalesce(api_key_spending.c.spent, 0).label("spent"),
                )
                .outerjoin(
                    api_key_spending,
                    and_(
                        api_key_spending.c.budget_id == api_keys.c.budget_id,
                        api_key_spending.c.month == _THIS_MONTH,
                    ),
                )
                .where(api_keys.c.key_id == key_id)
                .with_for_update(of=api_keys),
            )
        ).first()
        if row is None:
            return None
        return KeyBudget(
            key_id=row.key_id,
            workspace_id=row.workspace_id,
            budget_id=row.budget_id,
            monthly_credit_limit=row.monthly_credit_limit,
            month=row.month,
            spent=int(row.spent),
            revoked=row.revoked,
            expired=row.expired,
            suspended=row.suspended,
        )

    async def draw(
        self, budget_id: uuid.UUID, *, month: date, amount: int, limit: int | None
    ) -> int | None:
        """Add `amount` to what the budget spent in `month` if that stays within `limit`
        (None: no limit): what it spent since; None, and nothing changed, if it would
        not. The check and the change are one statement, also for the keys of a rotation
        that draw on one budget at once. `amount` alone must fit in `limit`."""
        spent = api_key_spending.c.spent
        statement = (
            insert(api_key_spending)
            .values(budget_id=budget_id, month=month, spent=amount)
            .on_conflict_do_update(
                index_elements=[api_key_spending.c.budget_id, api_key_spending.c.month],
                set_={"spent": spent + literal_column("excluded.spent")},
                where=None if limit is None else spent + literal_column("excluded.spent") <= limit,
            )
            .returning(spent)
        )
        drawn: int | None = (await self.session.execute(statement)).scalar_one_or_none()
        return drawn
