"""The inbox table: the ids of the events a service has applied, set aside or
discarded, each written in the transaction that applied (or judged) the event."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, Text, Uuid, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.inbox.parking import ParkedEvent, ParkedEvents
from shared.inbox.tables import InboxOutcome, parked_events_of


@dataclass(frozen=True, slots=True)
class InboxEntry:
    event_id: uuid.UUID
    event_type: str
    outcome: InboxOutcome = InboxOutcome.APPLIED
    rejection: str | None = None


class Inbox:
    """A service's inbox and its parked events."""

    def __init__(self, database: Database, table: Table) -> None:
        self.database = database
        self.table = table
        self.parked = ParkedEvents(parked_events_of(table))
        # A batch's rows go in as four arrays, one per column: one statement, prepared
        # once, whatever the number of events (rather than four parameters per event).
        entries = (
            func.unnest(
                bindparam("event_ids", type_=ARRAY(Uuid)),
                bindparam("event_types", type_=ARRAY(Text)),
                bindparam("outcomes", type_=ARRAY(Text)),
                bindparam("rejections", type_=ARRAY(Text)),
            )
            .table_valued("event_id", "event_type", "outcome", "rejection")
            .render_derived(name="entries")
        )
        columns = ["event_id", "event_type", "outcome", "rejection"]
        self._record = (
            insert(table)
            .from_select(columns, select(*(entries.c[name] for name in columns)))
            .on_conflict_do_nothing(index_elements=[table.c.event_id])
            .returning(table.c.event_id)
        )

    async def record(self, session: AsyncSession, entries: Sequence[InboxEntry]) -> set[uuid.UUID]:
        """Record these events; returns those that were not recorded yet. Of two
        transactions recording one event, the second waits for the first, and finds it
        recorded if the first commits."""
        if not entries:
            return set()
        recorded = await session.scalars(
            self._record,
            {
                "event_ids": [entry.event_id for entry in entries],
                "event_types": [entry.event_type for entry in entries],
                "outcomes": [entry.outcome.value for entry in entries],
                "rejections": [entry.rejection for entry in entries],
            },
        )
        return set(recorded)

    async def recorded(
        self, session: AsyncSession, event_ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        ids = bindparam("event_ids", list(event_ids), ARRAY(Uuid))
        found = await session.scalars(
            select(self.table.c.event_id).where(self.table.c.event_id == any_(ids))
        )
        return set(found)

    async def record_unreadable(self, synthetic_id: uuid.UUID, position: str) -> None:
        """A message that is not even an envelope, under an id derived from its position
        in the topic, so that it is logged once and skipped."""
        async with self.database.transaction() as session:
            await self.record(
                session,
                [InboxEntry(synthetic_id, "unreadable", InboxOutcome.REJECTED, position)],
            )

    async def discard(self, event_id: uuid.UUID) -> ParkedEvent:
        """An operator drops a parked event: it is recorded as discarded, so that a
        redelivery does not bring it back, and the event behind it (if it was first of
        its key) waits for the next retry."""
        async with self.database.transaction() as session:
            event = await self.parked.discard(session, event_id)
            reason = "discarded by an operator" + (
                f"; it had failed with {event.last_error}" if event.last_error else ""
            )
            await self.record(
                session,
                [InboxEntry(event_id, event.event_type, InboxOutcome.DISCARDED, reason)],
            )
        return event
