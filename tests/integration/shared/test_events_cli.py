"""`atrium-infra events`: an operator lists what a service parked, retries it once the
cause is fixed, or discards it. The running service applies a retry with its own
handlers; here billing's inbox is consumed by a test's consumer standing in for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.identity import WorkspaceCreated, WorkspaceUpdated
from infra import cli
from services.billing import models
from shared.db import Database
from shared.inbox import EventConsumer, Inbox, InboxOutcome, ParkedState
from shared.settings import ServiceName, Settings
from shared.testing import eventually
from tests.integration.shared.conftest import FAST, created, renamed, running, with_version

pytestmark = pytest.mark.integration


@pytest.fixture
async def billing_inbox(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Inbox]:
    monkeypatch.setenv("ATRIUM_DATABASE_URL", settings.database_url)
    database = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    yield Inbox(database, models.inbox)
    await database.dispose()


async def atrium_infra(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = await asyncio.to_thread(cli.main, list(argv))
    return status, capsys.readouterr().out


async def test_an_operator_lists_retries_and_discards_parked_events(
    billing_inbox: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    root_id = uuid.uuid4()
    broken, behind = created(root_id), renamed(root_id, "Acme 2")
    newer = with_version(created(), 2)
    applied: list[uuid.UUID] = []
    failing = {broken.event_id}
    consumer = EventConsumer(service="test-cli", inbox=billing_inbox, policy=FAST)

    async def apply(_: AsyncSession, __: object, envelope: RawEnvelope) -> None:
        if envelope.event_id in failing:
            msg = "the handler has a bug"
            raise RuntimeError(msg)
        applied.append(envelope.event_id)

    consumer.on(WorkspaceCreated)(apply)
    consumer.on(WorkspaceUpdated)(apply)

    async with running(consumer):
        await consumer.consume(broken)

        async def parked() -> bool | None:
            async with billing_inbox.database.transaction() as session:
                event = await billing_inbox.parked.find(session, broken.event_id)
            return True if event is not None and event.state is ParkedState.PARKED else None

        await eventually(parked, timeout=30, what="the broken event to be parked")
        await consumer.consume(behind)
        await consumer.consume(newer, topic=WorkspaceCreated.topic.value)

        status, listed = await atrium_infra(capsys, "events", "parked", "--service", "billing")
        assert status == 0
        assert f"billing  {broken.event_id}  workspace.created v1" in listed
        assert "parked after 3 attempts" in listed
        assert "first error: RuntimeError: the handler has a bug" in listed
        assert f"billing  {behind.event_id}  workspace.updated v1" in listed
        assert f"queued behind {broken.event_id}" in listed
        assert f"billing  {newer.event_id}  workspace.created v2" in listed

        status, refused = await atrium_infra(capsys, "events", "retry", str(behind.event_id))
        assert status == 1
        assert f"waits behind {broken.event_id}" in refused

        failing.clear()  # the bug is fixed
        status, retried = await atrium_infra(capsys, "events", "retry", str(broken.event_id))
        assert status == 0, retried
        assert retried.splitlines() == [
            f"billing applied {broken.event_id} (workspace.created)",
            f"billing applied {behind.event_id} (workspace.updated)",
        ]
        assert applied == [broken.event_id, behind.event_id]

        status, discarded = await atrium_infra(capsys, "events", "discard", str(newer.event_id))
        assert status == 0
        assert f"billing discarded {newer.event_id}" in discarded
        status, gone = await atrium_infra(capsys, "events", "retry", str(newer.event_id))
        assert status == 1
        assert f"no parked event {newer.event_id}" in gone

    async with billing_inbox.database.transaction() as session:
        outcome = await session.scalar(
            select(models.inbox.c.outcome).where(models.inbox.c.event_id == newer.event_id)
        )
    assert outcome == InboxOutcome.DISCARDED
