"""The parked events of a service (all SQL on `parked_events`).

A queue holds one topic's held events of one key, in arrival order; its first event
(its head) is the only one that is retried, parked or asked to retry, and whoever
removes a head promotes the next event in the same transaction. The consumer locks
the rows of the keys it is about to apply (`FOR KEY SHARE`) before deciding whether
an event joins a queue or is applied at once, so that a head being applied by the
service's retries and a new event of its key are serialised: a key's events are
applied in order whoever applies them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, Table, Text, any_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from shared.inbox.policy import Verdict
from shared.inbox.tables import ParkedState


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event as the consumer got it, the topic it was read from, and the trace
    context its record carried (`shared.tracing.received_context`)."""

    topic: str
    envelope: RawEnvelope
    trace_context: tuple[tuple[str, str], ...] = ()
    queue: QueueKey = field(init=False)
    """Worked out once: a batch looks at each event's queue several times."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "queue", QueueKey(self.topic, str(self.envelope.root_id)))


@dataclass(frozen=True, slots=True)
class QueueKey:
    """A topic and a message key: Kafka keeps their events in order, and so do we."""

    topic: str
    message_key: str


@dataclass(frozen=True, slots=True)
class Entering:
    """An event about to be taken out of the stream into its key's queue."""

    delivery: Delivery
    state: ParkedState
    error: str | None = None
    verdict: Verdict | None = None
    """For the first event of its queue that failed: when it is tried again."""


@dataclass(frozen=True, slots=True)
class Held:
    """What the consumer needs to know of a held event of a key it is applying."""

    queue: QueueKey
    waits_for_dependency: bool
    """A head retried until an event it depends on comes."""


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    position: int
    event_id: UUID
    queue: QueueKey
    event_type: str
    event_version: int
    envelope: str
    state: ParkedState
    attempts: int
    first_error: str | None
    last_error: str | None
    parked_at: datetime
    last_failed_at: datetime | None
    next_attempt_at: datetime | None
    dependency_deadline_at: datetime | None

    @property
    def is_head(self) -> bool:
        return self.state is not ParkedState.QUEUED

    def delivery(self) -> Delivery:
        return Delivery(self.queue.topic, RawEnvelope.model_validate_json(self.envelope))


class NotParkedError(LookupError):
    """No parked event has this id (any more)."""


class NotFirstOfItsKeyError(Exception):
    """Only the first parked event of a key may be retried: the others wait behind it."""

    def __init__(self, event_id: UUID, head: ParkedEvent) -> None:
        super().__init__(
            f"{event_id} waits behind {head.event_id} ({head.event_type}) of the same key; "
            f"retry or discard that one first"
        )
        self.head = head


class ParkedEvents:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def held_for_keys(self, session: AsyncSession, keys: Iterable[str]) -> list[Held]:
        """The held events of these keys, locked against their removal until the
        caller's transaction ends (a head being applied right now is waited for)."""
        t = self.table
        rows = await session.execute(
            select(t.c.topic, t.c.message_key, t.c.state, t.c.dependency_deadline_at)
            # One array parameter: one statement whatever the number of keys.
            .where(t.c.message_key == any_(bindparam("keys", sorted(set(keys)), ARRAY(Text))))
            .with_for_update(read=True, key_share=True)
        )
        return [
            Held(
                queue=QueueKey(row.topic, row.message_key),
                waits_for_dependency=row.state == ParkedState.RETRYING
                and row.dependency_deadline_at is not None,
            )
            for row in rows
        ]

    async def enter(self, session: AsyncSession, events: Sequence[Entering]) -> None:
        """Into their queues, in this order (one already held is left where it is)."""
        if not events:
            return
        await session.execute(
            insert(self.table)
            .values([self._row(event) for event in events])
            .on_conflict_do_nothing(index_elements=[self.table.c.event_id])
        )

    @staticmethod
    def _row(event: Entering) -> dict[str, object]:
        envelope = event.delivery.envelope
        row: dict[str, object] = {
            "event_id": envelope.event_id,
            "topic": event.delivery.topic,
            "message_key": str(envelope.root_id),
            "event_type": envelope.type,
            "event_version": envelope.version,
            "envelope": envelope.model_dump_json(),
            "state": event.state.value,
            "attempts": 0,
            "first_failed_at": None,
            "last_failed_at": None,
            "first_error": None,
            "last_error": None,
            "next_attempt_at": None,
            "dependency_deadline_at": None,
        }
        if event.error is not None:
            row |= {
                "attempts": 1,
                "first_error": event.error,
                "last_error": event.error,
                "first_failed_at": func.now(),
                "last_failed_at": func.now(),
            }
        if event.verdict is not None:
            row |= {
                "next_attempt_at": event.verdict.next_attempt_at,
                "dependency_deadline_at": event.verdict.dependency_deadline_at,
            }
        return row

    async def has_queue(self, session: AsyncSession, queue: QueueKey) -> bool:
        return any(
            held.queue == queue for held in await self.held_for_keys(session, [queue.message_key])
        )

    async def wake_dependents(self, session: AsyncSession, keys: Collection[str]) -> None:
        """Try again at once the heads of these keys that wait for an event they depend
        on: one of the keys' events has just been applied. A head being tried right
        now is left alone."""
        t = self.table
        waiting = (
            select(t.c.position)
            .where(
                t.c.message_key.in_(sorted(keys)),
                t.c.state == ParkedState.RETRYING,
                t.c.dependency_deadline_at.is_not(None),
            )
            .with_for_update(key_share=True, skip_locked=True)
        )
        await session.execute(
            update(t).where(t.c.position.in_(waiting)).values(next_attempt_at=func.now())
        )

    async def claim_due(self, session: AsyncSession) -> ParkedEvent | None:
        """The oldest head due for an attempt, locked until the caller's transaction
        ends; heads another process holds are passed over."""
        t = self.table
        row = (
            await session.execute(
                select(t)
                .where(
                    or_(
                        t.c.state == ParkedState.RETRY_REQUESTED,
                        (t.c.state == ParkedState.RETRYING) & (t.c.next_attempt_at <= func.now()),
                    )
                )
                .order_by(t.c.position)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        return None if row is None else _parked_event(row)

    async def remove(
        self, session: AsyncSession, event: ParkedEvent, *, next_head: ParkedState
    ) -> None:
        """Take an event out of its queue; if it was the head, the next one becomes the
        head in state `next_head`."""
        t = self.table
        await session.execute(delete(t).where(t.c.position == event.position))
        if not event.is_head:
            return
        following = (
            select(func.min(t.c.position))
            .where(t.c.topic == event.queue.topic, t.c.message_key == event.queue.message_key)
            .scalar_subquery()
        )
        await session.execute(
            update(t)
            .where(t.c.position == following)
            .values(
                state=next_head.value,
                next_attempt_at=func.now() if next_head is ParkedState.RETRYING else None,
            )
        )

    async def now(self, session: AsyncSession) -> datetime:
        """The database's clock, which `next_attempt_at` is compared with."""
        now: datetime = await session.scalar(select(func.now()))  # type: ignore[assignment]
        return now

    async def record_failure(
        self, session: AsyncSession, event: ParkedEvent, error: str, verdict: Verdict
    ) -> None:
        t = self.table
        await session.execute(
            update(t)
            .where(t.c.position == event.position)
            .values(
                state=verdict.state.value,
                attempts=t.c.attempts + 1,
                first_error=func.coalesce(t.c.first_error, error),
                last_error=error,
                first_failed_at=func.coalesce(t.c.first_failed_at, func.now()),
                last_failed_at=func.now(),
                next_attempt_at=verdict.next_attempt_at,
                dependency_deadline_at=verdict.dependency_deadline_at,
            )
        )

    async def find(self, session: AsyncSession, event_id: UUID) -> ParkedEvent | None:
        row = (
            await session.execute(select(self.table).where(self.table.c.event_id == event_id))
        ).first()
        return None if row is None else _parked_event(row)

    async def queue(self, session: AsyncSession, queue: QueueKey) -> list[ParkedEvent]:
        t = self.table
        rows = await session.execute(
            select(t)
            .where(t.c.topic == queue.topic, t.c.message_key == queue.message_key)
            .order_by(t.c.position)
        )
        return [_parked_event(row) for row in rows]

    async def listing(self, session: AsyncSession) -> list[ParkedEvent]:
        rows = await session.execute(select(self.table).order_by(self.table.c.position))
        return [_parked_event(row) for row in rows]

    async def request_retry(self, session: AsyncSession, event_id: UUID) -> ParkedEvent:
        """Ask the service to apply a head again, and those behind it."""
        event = await self.find(session, event_id)
        if event is None:
            raise NotParkedError(event_id)
        if not event.is_head:
            head = (await self.queue(session, event.queue))[0]
            raise NotFirstOfItsKeyError(event_id, head)
        await session.execute(
            update(self.table)
            .where(self.table.c.position == event.position)
            .values(state=ParkedState.RETRY_REQUESTED.value, next_attempt_at=func.now())
        )
        return event

    async def discard(self, session: AsyncSession, event_id: UUID) -> ParkedEvent:
        """Drop a parked event. The one behind a dropped head waits for an operator's
        retry, as the head did."""
        t = self.table
        row = (
            await session.execute(select(t).where(t.c.event_id == event_id).with_for_update())
        ).first()
        if row is None:
            raise NotParkedError(event_id)
        event = _parked_event(row)
        await self.remove(session, event, next_head=ParkedState.PARKED)
        return event


def _parked_event(row: Row[Any]) -> ParkedEvent:
    return ParkedEvent(
        position=row.position,
        event_id=row.event_id,
        queue=QueueKey(row.topic, row.message_key),
        event_type=row.event_type,
        event_version=row.event_version,
        envelope=row.envelope,
        state=ParkedState(row.state),
        attempts=row.attempts,
        first_error=row.first_error,
        last_error=row.last_error,
        parked_at=row.parked_at,
        last_failed_at=row.last_failed_at,
        next_attempt_at=row.next_attempt_at,
        dependency_deadline_at=row.dependency_deadline_at,
    )
