"""Records kept for a while only: a service's inbox rows and idempotency keys are
deleted once older than the retention (`ATRIUM_RETENTION_DAYS`). Parked events are
not: they wait for an operator however old they are.

The retention bounds how late a redelivered event or a retried request is still
recognised, so it must exceed how long Kafka may redeliver (its own retention) and
how long a client may retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Column, MetaData, Table, delete, func, select, tuple_

from shared.db import Database

logger = logging.getLogger(__name__)

DELETE_EVERY_SECONDS = 3600.0
"""How often a service deletes what it no longer keeps."""
CHUNK = 5_000
"""Rows deleted per transaction, so that a large backlog never holds long locks."""

_EXPIRING = {"inbox": "processed_at", "idempotency_keys": "created_at"}
"""The tables, as `shared` names them, and when each row was written."""


@dataclass(frozen=True, slots=True)
class Expiring:
    table: Table
    written_at: Column[object]


def expiring_records(metadata: MetaData) -> list[Expiring]:
    """What a service keeps for the retention only: its inbox and, where it has them,
    its idempotency keys."""
    return [
        Expiring(table, table.c[column])
        for table in metadata.tables.values()
        if (column := _EXPIRING.get(table.name)) is not None
    ]


class Retention:
    def __init__(self, database: Database, records: list[Expiring], *, days: int) -> None:
        self.database = database
        self.records = records
        self.age = timedelta(days=days)

    async def delete_expired(self) -> dict[str, int]:
        """Delete what is older than the retention; returns how many rows per table."""
        deleted = {}
        for expiring in self.records:
            deleted[expiring.table.name] = await self._delete_from(expiring)
        if any(deleted.values()):
            logger.info("retention deleted %s", deleted)
        return deleted

    async def _delete_from(self, expiring: Expiring) -> int:
        key = tuple_(*expiring.table.primary_key.columns)
        total = 0
        while True:
            async with self.database.transaction() as session:
                expired = (
                    select(*expiring.table.primary_key.columns)
                    .where(expiring.written_at < func.now() - self.age)
                    .limit(CHUNK)
                )
                result = await session.execute(delete(expiring.table).where(key.in_(expired)))
            count: int = result.rowcount  # type: ignore[attr-defined]
            total += count
            if count < CHUNK:
                return total
