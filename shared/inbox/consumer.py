"""A service's event handlers, fed from Kafka in batches.

A batch of events is applied in one transaction, each event with its inbox row. If
the batch fails, its events are applied one at a time to find the failing one, which
is taken out of the stream into `parked_events` to be retried with backoff, and the
consumer moves on: the Kafka offsets are committed past it, since it is stored. The
later events of its topic and key join it there, so that a key's events still apply
in order; other keys' events are not held up. The service's periodic job
(`retry_parked`) applies held events when they are due.

What becomes of each event:

* applied: its handler ran, in the transaction that recorded it in the inbox;
* known to the contracts but not handled here (a topic carries types this service
  has no use for): skipped, and not recorded;
* of a type or version the contracts do not know: parked, for an operator (a newer
  producer; deploy a consumer that knows it, then retry);
* breaking its contract (its payload does not validate): recorded in the inbox as
  rejected, with the reason, and never applied;
* not an envelope at all: recorded as rejected under an id derived from its position.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka import Topic as KafkaTopic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventPayload, RawEnvelope
from contracts.events import payload_class
from contracts.topics import Topic
from shared import metrics
from shared.inbox.parking import Delivery, Entering, ParkedEvent, QueueKey
from shared.inbox.policy import (
    EventNotYetApplicableError,
    Failure,
    FailureKind,
    RetryPolicy,
    judge,
)
from shared.inbox.store import Inbox, InboxEntry
from shared.inbox.tables import InboxOutcome, ParkedState
from shared.logging import correlation
from shared.tracing import consuming, received_context

logger = logging.getLogger(__name__)

PayloadT = TypeVar("PayloadT", bound=EventPayload)
EventHandler = Callable[[AsyncSession, Any, RawEnvelope], Awaitable[None]]

REDELIVERY_DELAY_SECONDS = 1.0
"""The pause before Kafka redelivers events that could be neither applied nor parked
(the database is unreachable)."""
BATCH_SIZE = 500
"""The most events applied in one transaction. A transaction costs a few round trips
to PostgreSQL and an offset commit to Kafka whatever its size, so a burst drains in
few of them; a batch that fails is applied one event at a time, so this also bounds
that slower path."""
BATCH_WAIT_MS = 50
"""How long a subscriber waits for records before it looks again. FastStream's batch
subscriber sleeps as long again after a wait that found nothing, so an event that
arrives then waits up to twice this: with FastStream's default (200 ms) a change took
up to 400 ms more to be applied, most of the second that a revocation may take."""
HEARTBEAT_INTERVAL_MS = 500
"""How often a consumer tells its group it is alive. A member learns that its group is
rebalancing from its next heartbeat, and the rebalance waits for every member: each
subscriber of a service is a member of the service's group, so a process that starts
(or a replica that joins) made the others rejoin one heartbeat (Kafka's default, 3 s)
per subscriber later. At 500 ms a service's consumers have their partitions in about a
second; the session timeout (10 s) is unchanged, so a dead member is noticed as before."""
MAX_ERROR_LENGTH = 2_000


class UnknownEventError(Exception):
    """The contracts this service was built with do not know the event's type or version."""


@dataclass(frozen=True, slots=True)
class _Apply:
    delivery: Delivery
    payload: EventPayload
    handler: EventHandler


@dataclass(frozen=True, slots=True)
class _Reject:
    delivery: Delivery
    reason: str


@dataclass(frozen=True, slots=True)
class _Unknown:
    delivery: Delivery

    @property
    def error(self) -> UnknownEventError:
        envelope = self.delivery.envelope
        return UnknownEventError(
            f"{envelope.type} version {envelope.version} is not in this service's contracts"
        )


@dataclass(frozen=True, slots=True)
class _Ignore:
    delivery: Delivery


_Decision = _Apply | _Reject | _Unknown | _Ignore


@dataclass
class _Plan:
    """What one transaction does with a batch."""

    to_apply: list[_Apply] = field(default_factory=list)
    inbox_entries: list[InboxEntry] = field(default_factory=list)
    entering: list[Entering] = field(default_factory=list)


class EventConsumer:
    """A service's event handlers, subscribed in one consumer group per service."""

    def __init__(self, *, service: str, inbox: Inbox, policy: RetryPolicy | None = None) -> None:
        self.service = service
        self.group_id = f"atrium.{service}"
        self.inbox = inbox
        self.policy = policy or RetryPolicy()
        self._handlers: dict[type[EventPayload], EventHandler] = {}
        self._subscribers: list[BatchSubscriber] = []

    def on(
        self, payload: type[PayloadT]
    ) -> Callable[
        [Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]]],
        Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]],
    ]:
        def register(
            handler: Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]],
        ) -> Callable[[AsyncSession, PayloadT, RawEnvelope], Awaitable[None]]:
            self._handlers[payload] = handler
            return handler

        return register

    @property
    def handled(self) -> frozenset[type[EventPayload]]:
        """The event types this service applies, and so records in its inbox."""
        return frozenset(self._handlers)

    @property
    def topics(self) -> list[Topic]:
        return sorted({payload.topic for payload in self._handlers})

    # Consuming ----------------------------------------------------------------------

    async def consume(self, envelope: RawEnvelope, *, topic: str | None = None) -> None:
        """Apply one delivered event as a batch of one. `topic` is where it was read;
        by default its payload's (it must be given for a type the contracts do not know)."""
        if topic is None:
            model = payload_class(envelope.type, envelope.version)
            if model is None:
                msg = f"the topic of {envelope.type} version {envelope.version} must be given"
                raise ValueError(msg)
            topic = model.topic.value
        await self.consume_batch([Delivery(topic, envelope)])

    async def consume_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Apply the events in one transaction; if that fails, one at a time, holding
        each one that fails for a later attempt. Raises only when an event could be
        neither applied nor held (then Kafka delivers the batch again)."""
        if len(deliveries) > 1:
            try:
                await self._apply_together(deliveries)
            except Exception:
                logger.warning(
                    "a batch of %d events failed; applying them one at a time",
                    len(deliveries),
                    exc_info=True,
                )
            else:
                return
        for delivery in deliveries:
            await self._consume_one(delivery)

    async def consume_records(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        deliveries = []
        for record in records:
            try:
                envelope = RawEnvelope.model_validate_json(record.value or b"")
            except ValidationError as unreadable:
                position = f"kafka:{record.topic}/{record.partition}/{record.offset}"
                logger.error("set aside unreadable message at %s: %s", position, unreadable)
                await self.inbox.record_unreadable(
                    uuid.uuid5(uuid.NAMESPACE_URL, position), position
                )
                continue
            deliveries.append(Delivery(record.topic, envelope, received_context(record.headers)))
        try:
            await self.consume_batch(deliveries)
        except Exception:
            logger.exception("events could be neither applied nor held; Kafka delivers them again")
            await asyncio.sleep(REDELIVERY_DELAY_SECONDS)
            raise

    def subscribe(self, broker: KafkaBroker) -> None:
        """One batch subscriber per topic. The offsets are committed once the batch has
        been applied or held; if neither could be done, every partition of the batch is
        rewound to its first record, and what was already applied is recognised by the
        inbox."""
        metrics.expect_events(self.service, (payload.event_type for payload in self._handlers))
        for topic in self.topics:

            async def consume_batch(_: list[bytes], message: KafkaMessage) -> None:
                await self.consume_records(message.raw_message)

            subscriber = broker.subscriber(
                # Provisioning creates the topics; a service may not (nor should it).
                KafkaTopic(topic.value, declare=False),
                group_id=self.group_id,
                batch=True,
                max_records=BATCH_SIZE,
                batch_timeout_ms=BATCH_WAIT_MS,
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                decoder=_undecoded,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                title=f"{self.group_id}:{topic.value}",
            )
            subscriber(consume_batch)
            self._subscribers.append(subscriber)

    def kafka_consumers(self) -> list[AIOKafkaConsumer]:
        """The Kafka consumers of the subscribers that are running (for their lag)."""
        return [s.consumer for s in self._subscribers if s.consumer is not None]

    def _decide(self, delivery: Delivery) -> _Decision:
        envelope = delivery.envelope
        model = payload_class(envelope.type, envelope.version)
        if model is None:
            return _Unknown(delivery)
        handler = self._handlers.get(model)
        if handler is None:
            return _Ignore(delivery)
        try:
            return _Apply(delivery, model.model_validate(envelope.data), handler)
        except ValidationError as invalid:
            logger.error("rejected %s %s: %s", envelope.type, envelope.event_id, invalid)
            return _Reject(delivery, str(invalid))

    async def _apply_together(self, deliveries: Sequence[Delivery]) -> None:
        decisions = [self._decide(delivery) for delivery in deliveries]
        async with self.inbox.database.transaction() as session:
            held = await self.inbox.parked.held_for_keys(
                session, {delivery.queue.message_key for delivery in deliveries}
            )
            plan = await self._plan(session, decisions, {h.queue for h in held})
            recorded = await self.inbox.record(session, plan.inbox_entries)
            applied = [
                step for step in plan.to_apply if step.delivery.envelope.event_id in recorded
            ]
            for step in applied:
                await _run(session, step)
            await self.inbox.parked.enter(session, plan.entering)
            applied_keys = {step.delivery.queue.message_key for step in applied}
            if any(h.waits_for_dependency and h.queue.message_key in applied_keys for h in held):
                await self.inbox.parked.wake_dependents(session, applied_keys)
        metrics.count_applied(self.service, (step.delivery.envelope.type for step in applied))
        for entering in plan.entering:
            metrics.count_held(self.service, entering.delivery.envelope.type, entering.state)

    async def _plan(
        self, session: AsyncSession, decisions: Sequence[_Decision], queues: set[QueueKey]
    ) -> _Plan:
        """Apply each event, or put it behind the events of its key that are held."""
        may_hold = any(
            isinstance(decision, _Unknown)
            or (isinstance(decision, _Apply) and decision.delivery.queue in queues)
            for decision in decisions
        )
        # A redelivered event that was applied, or discarded, stays out of the queues.
        seen = (
            await self.inbox.recorded(session, [d.delivery.envelope.event_id for d in decisions])
            if may_hold
            else set()
        )
        plan = _Plan()
        for decision in decisions:
            envelope = decision.delivery.envelope
            if envelope.event_id in seen:
                continue
            seen.add(envelope.event_id)
            match decision:
                case _Ignore():
                    pass
                case _Reject(reason=reason):
                    plan.inbox_entries.append(
                        InboxEntry(envelope.event_id, envelope.type, InboxOutcome.REJECTED, reason)
                    )
                case _Unknown(delivery=delivery):
                    first = delivery.queue not in queues
                    logger.error(
                        "parked %s %s: %s", envelope.type, envelope.event_id, decision.error
                    )
                    plan.entering.append(
                        Entering(
                            delivery,
                            ParkedState.PARKED if first else ParkedState.QUEUED,
                            error=_describe(decision.error) if first else None,
                        )
                    )
                    queues.add(delivery.queue)
                case _Apply(delivery=delivery) if delivery.queue in queues:
                    plan.entering.append(Entering(delivery, ParkedState.QUEUED))
                case _Apply():
                    plan.to_apply.append(decision)
                    plan.inbox_entries.append(InboxEntry(envelope.event_id, envelope.type))
        return plan

    async def _consume_one(self, delivery: Delivery) -> None:
        try:
            await self._apply_together([delivery])
        except Exception as failure:
            envelope = delivery.envelope
            logger.warning(
                "%s %s failed; it is held to be retried",
                envelope.type,
                envelope.event_id,
                exc_info=True,
            )
            await self._hold_failed(delivery, failure)

    async def _hold_failed(self, delivery: Delivery, failure: Exception) -> None:
        async with self.inbox.database.transaction() as session:
            if await self.inbox.recorded(session, [delivery.envelope.event_id]):
                return  # another replica applied it meanwhile
            parked = self.inbox.parked
            if await parked.has_queue(session, delivery.queue):
                await parked.enter(session, [Entering(delivery, ParkedState.QUEUED)])
                return
            verdict = judge(
                Failure(
                    attempts=1,
                    at=await parked.now(session),
                    kind=_kind_of(failure),
                    dependency_deadline_at=None,
                    requested_by_operator=False,
                ),
                self.policy,
            )
            await parked.enter(
                session,
                [Entering(delivery, verdict.state, error=_describe(failure), verdict=verdict)],
            )
        metrics.count_held(self.service, delivery.envelope.type, verdict.state)

    # Retrying -----------------------------------------------------------------------

    async def retry_parked(self) -> int:
        """Apply the held events that are due, each key's in order: heads whose backoff
        has run out or that an operator asked to retry, then those behind them. Returns
        how many were tried. The service runs it periodically."""
        tried = 0
        while await self._retry_next():
            tried += 1
        return tried

    async def _retry_next(self) -> bool:
        claimed: ParkedEvent | None = None
        try:
            async with self.inbox.database.transaction() as session:
                claimed = await self.inbox.parked.claim_due(session)
                if claimed is None:
                    return False
                applied = await self._apply_parked(session, claimed)
        except Exception as failure:
            if claimed is None:
                raise
            await self._record_failure(claimed, failure)
        else:
            metrics.count_applied(self.service, [claimed.event_type] if applied else [])
        return True

    async def _apply_parked(self, session: AsyncSession, event: ParkedEvent) -> bool:
        """Returns whether the event's handler ran."""
        applied = False
        delivery = event.delivery()
        envelope = delivery.envelope
        match self._decide(delivery):
            case _Unknown() as unknown:
                raise unknown.error
            case _Reject(reason=reason):
                await self.inbox.record(
                    session,
                    [InboxEntry(envelope.event_id, envelope.type, InboxOutcome.REJECTED, reason)],
                )
            case _Apply() as step:
                if await self.inbox.record(session, [InboxEntry(envelope.event_id, envelope.type)]):
                    await _run(session, step)
                    applied = True
                    await self.inbox.parked.wake_dependents(session, [event.queue.message_key])
            case _Ignore():
                pass
        # An operator's retry goes on down the queue; the service's own goes on at once too.
        await self.inbox.parked.remove(
            session,
            event,
            next_head=ParkedState.RETRY_REQUESTED
            if event.state is ParkedState.RETRY_REQUESTED
            else ParkedState.RETRYING,
        )
        logger.info("applied held %s %s", envelope.type, envelope.event_id)
        return applied

    async def _record_failure(self, event: ParkedEvent, failure: Exception) -> None:
        """Count the attempt, and retry later or park. (Two replicas that claim one head
        one after the other may both count an attempt.)"""
        async with self.inbox.database.transaction() as session:
            parked = self.inbox.parked
            current = await parked.find(session, event.event_id)
            if current is None:
                return
            verdict = judge(
                Failure(
                    attempts=current.attempts + 1,
                    at=await parked.now(session),
                    kind=_kind_of(failure),
                    dependency_deadline_at=current.dependency_deadline_at,
                    requested_by_operator=event.state is ParkedState.RETRY_REQUESTED,
                ),
                self.policy,
            )
            await parked.record_failure(session, current, _describe(failure), verdict)
        metrics.count_held(self.service, event.event_type, verdict.state)
        log = logger.error if verdict.state is ParkedState.PARKED else logger.warning
        log(
            "%s %s failed again (attempt %d): %s; %s",
            event.event_type,
            event.event_id,
            current.attempts + 1,
            failure,
            "parked"
            if verdict.state is ParkedState.PARKED
            else f"next attempt at {verdict.next_attempt_at}",
        )


async def _run(session: AsyncSession, step: _Apply) -> None:
    delivery = step.delivery
    envelope = delivery.envelope
    with (
        correlation(envelope.correlation_id),
        consuming(
            topic=delivery.topic,
            event_id=envelope.event_id,
            event_type=envelope.type,
            workspace_id=envelope.workspace_id,
            trace_context=delivery.trace_context,
        ),
    ):
        await step.handler(session, step.payload, envelope)


def _kind_of(failure: Exception) -> FailureKind:
    if isinstance(failure, UnknownEventError):
        return FailureKind.UNKNOWN_EVENT
    if isinstance(failure, EventNotYetApplicableError):
        return FailureKind.NOT_YET_APPLICABLE
    return FailureKind.FAILED


def _describe(failure: Exception) -> str:
    return f"{type(failure).__name__}: {failure}"[:MAX_ERROR_LENGTH]


async def _undecoded(message: StreamMessage[Any]) -> Any:
    """Leave the bodies as bytes: each record is parsed, and judged, on its own."""
    return message.body
