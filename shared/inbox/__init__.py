"""The inbox: effectively-once effects on top of at-least-once delivery, with failing
events retried, parked and kept in order per key.

A consumed event's effect and the record of its `event_id` commit in one
transaction. A redelivered event finds its id already recorded and has no second
effect; two replicas racing on one event serialise on the id's unique index, and the
loser sees it recorded. `consumer` says what becomes of each event; `parking` how a
key's held events keep their order.
"""

from shared.inbox.consumer import EventConsumer
from shared.inbox.parking import (
    Delivery,
    NotFirstOfItsKeyError,
    NotParkedError,
    ParkedEvent,
    QueueKey,
)
from shared.inbox.policy import EventNotYetApplicableError, RetryPolicy
from shared.inbox.store import Inbox, InboxEntry
from shared.inbox.tables import (
    InboxOutcome,
    ParkedState,
    drop_inbox_parking_sql,
    inbox_parking_sql,
    inbox_table,
)

__all__ = [
    "Delivery",
    "EventConsumer",
    "EventNotYetApplicableError",
    "Inbox",
    "InboxEntry",
    "InboxOutcome",
    "NotFirstOfItsKeyError",
    "NotParkedError",
    "ParkedEvent",
    "ParkedState",
    "QueueKey",
    "RetryPolicy",
    "drop_inbox_parking_sql",
    "inbox_parking_sql",
    "inbox_table",
]
