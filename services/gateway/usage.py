"""What was asked of the gateway with API keys: recorded in memory as each request is
answered, and written out about every half second as `api.request_recorded` events,
one per workspace (and per `MAX_REQUESTS_PER_EVENT`), all in one transaction through
the gateway's outbox. The relay publishes them on `atrium.gateway.usage`; each event's
id makes a redelivery harmless to apikeys and billing.

A process that is killed loses what it had not written yet: at most the last flush
interval's requests (DESIGN.md allows a second). Credits are never at stake: spending
is billing's own transaction.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from contracts.events.gateway import ApiRequestsRecorded, RecordedRequest
from services.gateway.keys import KeyRecord
from shared.unit_of_work import UnitsOfWork

logger = logging.getLogger(__name__)

UNMATCHED = "unmatched"
"""The route of a request whose path or method the gateway does not serve."""
MAX_REQUESTS_PER_EVENT = 1_000
"""A busy workspace's second is split into events of this many requests at most, so
that no event comes near Kafka's largest message."""
MAX_PENDING = 1_000_000
"""Requests held at most while the database cannot take them; the oldest go first."""


@dataclass(frozen=True, slots=True)
class _Recorded:
    """One request, as cheaply as it can be kept: the event's model is made at flush."""

    workspace_id: uuid.UUID
    root_id: uuid.UUID
    key_id: uuid.UUID
    route: str
    status: int
    latency_ms: float
    at: datetime

    def request(self) -> RecordedRequest:
        return RecordedRequest.model_construct(
            key_id=self.key_id,
            route=self.route,
            status=self.status,
            latency_ms=self.latency_ms,
            at=self.at,
        )


class UsageRecorder:
    def __init__(self, units_of_work: UnitsOfWork) -> None:
        self.units_of_work = units_of_work
        self._pending: list[_Recorded] = []
        self._flushing = asyncio.Lock()
        """One flush at a time: the last one, at stop, waits for the periodic one."""

    @property
    def pending(self) -> list[tuple[uuid.UUID, RecordedRequest]]:
        """What is recorded and not yet written: (the key's workspace, the request)."""
        return [(recorded.workspace_id, recorded.request()) for recorded in self._pending]

    def record(
        self, key: KeyRecord, *, route: str, status: int, latency_ms: float, at: datetime
    ) -> None:
        self._pending.append(
            _Recorded(key.workspace_id, key.root_id, key.key_id, route, status, latency_ms, at)
        )

    async def flush(self) -> int:
        """Write what was recorded since the last flush, in one transaction; on failure
        it is kept for the next. Returns the number of requests written."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        by_workspace: dict[tuple[uuid.UUID, uuid.UUID], list[RecordedRequest]] = defaultdict(list)
        for recorded in batch:
            by_workspace[recorded.workspace_id, recorded.root_id].append(recorded.request())
        try:
            async with self.units_of_work.begin(actor="system") as uow:
                for (workspace_id, root_id), requests in by_workspace.items():
                    for start in range(0, len(requests), MAX_REQUESTS_PER_EVENT):
                        await uow.stage(
                            ApiRequestsRecorded(
                                workspace_id=workspace_id,
                                root_id=root_id,
                                requests=tuple(requests[start : start + MAX_REQUESTS_PER_EVENT]),
                            ),
                            root_id=root_id,
                            workspace_id=workspace_id,
                        )
        except BaseException:  # cancelled too: what was not written waits for the next
            self._pending = (batch + self._pending)[-MAX_PENDING:]
            raise
        return len(batch)
