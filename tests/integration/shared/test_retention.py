"""Inbox rows and idempotency keys are kept for the retention, then deleted; parked
events are kept until an operator deals with them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from shared.inbox import Delivery, InboxEntry, ParkedState
from shared.inbox.parking import Entering
from shared.retention import Retention, expiring_records
from tests.integration.shared.conftest import MiniService, created, topic_of

pytestmark = pytest.mark.integration


async def test_retention_deletes_old_inbox_rows_and_idempotency_keys_and_keeps_the_rest(
    service: MiniService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.retention.CHUNK", 3)  # several rounds of deletion
    inbox = service.inbox.table
    keys = service.metadata.tables[f"{inbox.schema}.idempotency_keys"]
    old_ids = [uuid.uuid4() for _ in range(7)]
    recent_id = uuid.uuid4()
    forgotten = created()
    async with service.database.transaction() as session:
        await service.inbox.record(
            session, [InboxEntry(event_id, "workspace.created") for event_id in old_ids]
        )
        await service.inbox.record(session, [InboxEntry(recent_id, "workspace.created")])
        await session.execute(
            update(inbox)
            .where(inbox.c.event_id.in_(old_ids))
            .values(processed_at=func.now() - timedelta(days=8))
        )
        await session.execute(
            insert(keys).values(
                [
                    {"scope": "user:ada POST /v1/workspaces", "key": "old", "fingerprint": "f"},
                    {"scope": "user:ada POST /v1/workspaces", "key": "new", "fingerprint": "f"},
                ]
            )
        )
        await session.execute(
            update(keys)
            .where(keys.c.key == "old")
            .values(created_at=func.now() - timedelta(days=8))
        )
        await service.inbox.parked.enter(
            session,
            [Entering(Delivery(topic_of(forgotten), forgotten), ParkedState.PARKED, error="a bug")],
        )
        parked = service.inbox.parked.table
        await session.execute(update(parked).values(parked_at=func.now() - timedelta(days=30)))

    retention = Retention(service.database, expiring_records(service.metadata), days=7)
    deleted = await retention.delete_expired()

    assert deleted == {"inbox": 7, "idempotency_keys": 1}
    async with service.database.transaction() as session:
        assert set(await session.scalars(select(inbox.c.event_id))) == {recent_id}
        assert set(await session.scalars(select(keys.c.key))) == {"new"}
    assert [event.event_id for event in await service.parked()] == [forgotten.event_id]
