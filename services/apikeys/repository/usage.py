"""Usage per key per UTC day and per workspace per UTC day: counters only ever added to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.apikeys.domain import UsagePeriod
from services.apikeys.models import key_usage_days, workspace_usage_days


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    requests: int = 0
    errors: int = 0
    credits_spent: int = 0

    def __add__(self, other: DayUsage) -> DayUsage:
        return DayUsage(
            day=self.day,
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            credits_spent=self.credits_spent + other.credits_spent,
        )


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_to_keys(self, usage: dict[tuple[uuid.UUID, date], DayUsage]) -> None:
        """Add to each key's day, in key and day order (two batches never wait on each
        other's rows in opposite orders)."""
        await self._add(
            key_usage_days,
            "key_id",
            [(key_id, usage[key_id, day]) for key_id, day in sorted(usage)],
        )

    async def add_to_workspace(self, workspace_id: uuid.UUID, usage: list[DayUsage]) -> None:
        await self._add(
            workspace_usage_days,
            "workspace_id",
            [(workspace_id, day) for day in sorted(usage, key=lambda day: day.day)],
        )

    async def _add(self, table: Table, owner: str, rows: list[tuple[uuid.UUID, DayUsage]]) -> None:
        for owner_id, day in rows:
            statement = insert(table).values(
                {
                    owner: owner_id,
                    "day": day.day,
                    "requests": day.requests,
                    "errors": day.errors,
                    "credits_spent": day.credits_spent,
                }
            )
            await self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=[table.c[owner], table.c.day],
                    set_={
                        "requests": table.c.requests + statement.excluded.requests,
                        "errors": table.c.errors + statement.excluded.errors,
                        "credits_spent": table.c.credits_spent + statement.excluded.credits_spent,
                    },
                )
            )

    async def of_key(self, key_id: uuid.UUID, period: UsagePeriod) -> list[DayUsage]:
        return await self._days(key_usage_days, key_usage_days.c.key_id == key_id, period)

    async def of_workspace(self, workspace_id: uuid.UUID, period: UsagePeriod) -> list[DayUsage]:
        return await self._days(
            workspace_usage_days, workspace_usage_days.c.workspace_id == workspace_id, period
        )

    async def _days(
        self, table: Table, owned: ColumnElement[bool], period: UsagePeriod
    ) -> list[DayUsage]:
        rows = await self.session.execute(
            select(table.c.day, table.c.requests, table.c.errors, table.c.credits_spent)
            .where(owned, table.c.day >= period.first, table.c.day <= period.last)
            .order_by(table.c.day)
        )
        return [
            DayUsage(
                day=row.day,
                requests=row.requests,
                errors=row.errors,
                credits_spent=row.credits_spent,
            )
            for row in rows
        ]
