"""How the campaign's checks read the services' schemas: the accounts they look at
(`Scope`), what they report (`Violation`), and the events that each service wrote and
each one consumes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import EventPayload
from contracts.events.apikeys import ApiKeyCreated, ApiKeyRestored, ApiKeyRevoked, ApiKeySuspended
from contracts.events.billing import LimitsChanged, TransactionPosted
from contracts.events.gateway import ApiRequestsRecorded
from contracts.events.identity import (
    MemberJoined,
    MemberRemoved,
    MemberRoleChanged,
    SeatsCapChanged,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
)

SERVICES = ("identity", "billing", "assets", "apikeys", "gateway")
"""Every service's schema: each has an outbox."""

_WORKSPACE_EVENTS = (WorkspaceCreated, WorkspaceSettingsChanged, WorkspaceDeleted)
_KEY_EVENTS = (ApiKeyCreated, ApiKeyRevoked, ApiKeySuspended, ApiKeyRestored)

CONSUMERS: Mapping[str, frozenset[type[EventPayload]]] = {
    "identity": frozenset({LimitsChanged}),
    "billing": frozenset(
        {*_WORKSPACE_EVENTS, SeatsUsageChanged, SeatsCapChanged, *_KEY_EVENTS},
    ),
    "assets": frozenset({WorkspaceCreated, WorkspaceDeleted}),
    "apikeys": frozenset(
        {*_WORKSPACE_EVENTS, WorkspaceDeletionStarted, ApiRequestsRecorded, TransactionPosted},
    ),
    "gateway": frozenset(
        {
            *_WORKSPACE_EVENTS,
            WorkspaceDeletionStarted,
            MemberJoined,
            MemberRoleChanged,
            MemberRemoved,
            *_KEY_EVENTS,
        },
    ),
}
"""The event types each service handles, and so records in its inbox."""


@dataclass(frozen=True)
class Violation:
    invariant: str
    """A short stable name, e.g. "balance-is-sum-of-lines"."""
    detail: str
    """What was found, with ids."""


@dataclass(frozen=True)
class Scope:
    """The accounts looked at, as the parameters every query takes."""

    roots: list[uuid.UUID]

    @classmethod
    def of(cls, root_ids: Collection[str]) -> Scope:
        return cls(sorted(uuid.UUID(str(root_id)) for root_id in root_ids))

    @property
    def params(self) -> dict[str, Any]:
        return {"roots": self.roots, "keys": [str(root) for root in self.roots]}


async def rows(connection: AsyncConnection, sql: str, scope: Scope, **params: Any) -> Sequence[Any]:
    return (await connection.execute(text(sql), scope.params | params)).all()


OUTBOXES = " UNION ALL ".join(
    f"SELECT '{producer}' AS producer, id, event_id, event_type, published_at"
    f" FROM {producer}.outbox WHERE message_key = ANY(:keys)"
    for producer in SERVICES
)
"""Every outbox row of these accounts, with the service that wrote it."""


async def unconsumed(
    connection: AsyncConnection, scope: Scope, *, waiting_for_an_operator: bool
) -> Sequence[Any]:
    """The events of these accounts that a service handles and has not applied: rows of
    (consumer, producer, event_id, event_type, outcome). Those held behind an event
    parked for an operator are left out unless `waiting_for_an_operator`: they wait for
    someone, not for time."""
    queries = []
    for consumer, payloads in CONSUMERS.items():
        types = ", ".join(f"'{payload.event_type}'" for payload in sorted(payloads, key=str))
        held_up = (
            ""
            if waiting_for_an_operator
            else f""" AND NOT EXISTS (
                SELECT 1 FROM {consumer}.parked_events AS held
                JOIN {consumer}.parked_events AS head
                  ON head.message_key = held.message_key AND head.topic = held.topic
                 AND head.state = 'parked'
                WHERE held.event_id = o.event_id)"""
        )
        queries.append(
            f"SELECT '{consumer}' AS consumer, o.producer, o.id, o.event_id, o.event_type,"
            f" i.outcome FROM ({OUTBOXES}) AS o"
            f" LEFT JOIN {consumer}.inbox AS i ON i.event_id = o.event_id"
            f" WHERE o.event_type IN ({types})"
            f" AND (i.event_id IS NULL OR i.outcome <> 'applied'){held_up}"
        )
    return await rows(
        connection, " UNION ALL ".join(queries) + " ORDER BY consumer, producer, id", scope
    )
