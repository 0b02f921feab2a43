"""The inbox's tables, in the schema of each service that consumes events.

`inbox` holds the id of every event the service has applied (or set aside, or
discarded), written in the transaction of the event's effect. `parked_events` holds
the events taken out of the stream's order: a key's event that failed and is being
retried, one parked for an operator, and the later events of the same topic and key
queued behind it.

Only the first event of a topic and key (its head) has a state other than `queued`;
whoever removes a head promotes the next event of its queue in the same transaction.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)

PARKED_EVENTS = "parked_events"


class InboxOutcome(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    """Its payload breaks its contract: recorded with the reason, never applied."""
    DISCARDED = "discarded"
    """An operator dropped it while it was parked: a redelivery does not bring it back."""


class ParkedState(StrEnum):
    RETRYING = "retrying"
    """The head of its queue, retried by the service at `next_attempt_at`."""
    PARKED = "parked"
    """The head of its queue, no longer retried: it waits for an operator."""
    RETRY_REQUESTED = "retry_requested"
    """The head of its queue, which an operator asked to apply again: the service applies
    it and those behind it at once, and parks again the first that fails."""
    QUEUED = "queued"
    """Behind the head of its queue: applied after it, in arrival order."""


def _check_in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in enum)})"


def inbox_table(metadata: MetaData) -> Table:
    """The inbox, with its parked events (`parked_events_of`) next to it: every service
    that consumes events has both."""
    table = Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("outcome", Text, nullable=False, server_default=InboxOutcome.APPLIED.value),
        Column(
            "rejection",
            Text,
            nullable=True,
            comment="Why an event was set aside or discarded instead of applied.",
        ),
        CheckConstraint(_check_in("outcome", InboxOutcome), name="outcome"),
    )
    Index("ix_inbox_processed_at", table.c.processed_at)
    _parked_events_table(metadata)
    return table


def parked_events_of(inbox: Table) -> Table:
    """The parked events that `inbox_table` defined next to this inbox."""
    name = PARKED_EVENTS if inbox.schema is None else f"{inbox.schema}.{PARKED_EVENTS}"
    return inbox.metadata.tables[name]


def _parked_events_table(metadata: MetaData) -> Table:
    table = Table(
        PARKED_EVENTS,
        metadata,
        Column("position", BigInteger, Identity(), primary_key=True, comment="Arrival order."),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column(
            "message_key",
            Text,
            nullable=False,
            comment="The account's root id: one topic's events of a key apply in order.",
        ),
        Column("event_type", Text, nullable=False),
        Column("event_version", Integer, nullable=False),
        Column("envelope", Text, nullable=False, comment="The event as it was delivered."),
        Column("state", Text, nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("first_error", Text, nullable=True),
        Column("last_error", Text, nullable=True),
        Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("first_failed_at", DateTime(timezone=True), nullable=True),
        Column("last_failed_at", DateTime(timezone=True), nullable=True),
        Column("next_attempt_at", DateTime(timezone=True), nullable=True),
        Column(
            "dependency_deadline_at",
            DateTime(timezone=True),
            nullable=True,
            comment="While it waits for an event it depends on: parked if that has not "
            "come by then.",
        ),
        CheckConstraint(_check_in("state", ParkedState), name="state"),
    )
    Index("ix_parked_events_queue", table.c.message_key, table.c.topic, table.c.position)
    Index(
        "ix_parked_events_heads",
        table.c.position,
        postgresql_where=table.c.state != ParkedState.QUEUED.value,
    )
    return table


def inbox_parking_sql(schema: str) -> list[str]:
    """The DDL of revision `0004_inbox_parking` of every service that consumes events,
    as it was then: a later change to these tables is a new revision, not an edit here."""
    return [
        f"""ALTER TABLE "{schema}".inbox
            ADD COLUMN outcome text NOT NULL DEFAULT 'applied'""",
        f"""UPDATE "{schema}".inbox SET outcome = 'rejected' WHERE rejection IS NOT NULL""",  # noqa: S608 - the schema is the service's name
        f"""ALTER TABLE "{schema}".inbox ADD CONSTRAINT ck_inbox_outcome
            CHECK (outcome IN ('applied', 'rejected', 'discarded'))""",
        f"""COMMENT ON COLUMN "{schema}".inbox.rejection
            IS 'Why an event was set aside or discarded instead of applied.'""",
        f"""CREATE INDEX ix_inbox_processed_at ON "{schema}".inbox (processed_at)""",
        f"""CREATE TABLE "{schema}".parked_events (
            position bigint GENERATED BY DEFAULT AS IDENTITY,
            event_id uuid NOT NULL,
            topic text NOT NULL,
            message_key text NOT NULL,
            event_type text NOT NULL,
            event_version integer NOT NULL,
            envelope text NOT NULL,
            state text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            first_error text,
            last_error text,
            parked_at timestamptz NOT NULL DEFAULT now(),
            first_failed_at timestamptz,
            last_failed_at timestamptz,
            next_attempt_at timestamptz,
            dependency_deadline_at timestamptz,
            CONSTRAINT pk_parked_events PRIMARY KEY (position),
            CONSTRAINT uq_parked_events_event_id UNIQUE (event_id),
            CONSTRAINT ck_parked_events_state
                CHECK (state IN ('retrying', 'parked', 'retry_requested', 'queued'))
        )""",
        f"""COMMENT ON COLUMN "{schema}".parked_events.position IS 'Arrival order.'""",
        f"""COMMENT ON COLUMN "{schema}".parked_events.message_key
            IS 'The account''s root id: one topic''s events of a key apply in order.'""",
        f"""COMMENT ON COLUMN "{schema}".parked_events.envelope
            IS 'The event as it was delivered.'""",
        f"""COMMENT ON COLUMN "{schema}".parked_events.dependency_deadline_at
            IS 'While it waits for an event it depends on: parked if that has not come by then.'""",
        f"""CREATE INDEX ix_parked_events_queue
            ON "{schema}".parked_events (message_key, topic, position)""",
        f"""CREATE INDEX ix_parked_events_heads ON "{schema}".parked_events (position)
            WHERE state <> 'queued'""",
    ]


def drop_inbox_parking_sql(schema: str) -> list[str]:
    return [
        f'DROP TABLE "{schema}".parked_events',
        f'DROP INDEX "{schema}".ix_inbox_processed_at',
        f"""COMMENT ON COLUMN "{schema}".inbox.rejection
            IS 'Why an event that breaks its contract was set aside instead of applied.'""",
        f'ALTER TABLE "{schema}".inbox DROP COLUMN outcome',
    ]
