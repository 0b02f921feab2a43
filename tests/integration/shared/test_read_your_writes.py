"""Read-your-writes across services: a request waits for a workspace's arrival, woken by
the NOTIFY of the transaction that applied it (not by polling), and gives up with 503
`not-ready-yet` at the bound."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select

from services.billing.models import accounts
from services.billing.models import outbox as billing_outbox
from shared.db import Database
from shared.outbox import Outbox
from shared.read_your_writes import (
    Arrivals,
    NotReadyYetError,
    WorkspaceNotArrivedError,
    announce_arrival,
)
from shared.settings import ServiceName, Settings
from shared.unit_of_work import UnitOfWork, UnitsOfWork

pytestmark = pytest.mark.integration

BOUND_SECONDS = 5.0


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    yield database
    await database.dispose()


@pytest.fixture
async def arrivals(database: Database) -> AsyncIterator[Arrivals]:
    arrivals = Arrivals(database, timeout_seconds=BOUND_SECONDS)
    yield arrivals
    await arrivals.close()


class Copy:
    """A service's copy of one workspace, as `wait_for` checks it: each check is a
    query of its own, and is counted."""

    def __init__(self, database: Database, workspace_id: uuid.UUID | None = None) -> None:
        self.database = database
        self.workspace_id = workspace_id or uuid.uuid4()
        self.checks = 0

    async def find(self) -> uuid.UUID | None:
        self.checks += 1
        async with self.database.transaction() as session:
            found: uuid.UUID | None = await session.scalar(
                select(accounts.c.workspace_id).where(accounts.c.workspace_id == self.workspace_id)
            )
        return found

    async def arrive(self, *, after: float, announce: uuid.UUID | None = None) -> None:
        """Apply the workspace's event after `after` seconds, announcing `announce` (the
        workspace itself unless told otherwise) in the same transaction."""
        await asyncio.sleep(after)
        async with self.database.transaction() as session:
            await session.execute(
                insert(accounts).values(
                    workspace_id=self.workspace_id,
                    root_id=self.workspace_id,
                    billing_root_id=self.workspace_id,
                    billing_mode="parent",
                )
            )
            await announce_arrival(session, announce or self.workspace_id)


async def test_a_waiting_request_is_woken_when_the_workspace_arrives_well_before_the_bound(
    database: Database, arrivals: Arrivals
) -> None:
    copy = Copy(database)
    started = time.monotonic()

    found, _ = await asyncio.gather(
        arrivals.wait_for(copy.workspace_id, copy.find), copy.arrive(after=0.3)
    )

    waited = time.monotonic() - started
    assert found == copy.workspace_id
    assert 0.3 <= waited < BOUND_SECONDS
    assert copy.checks == 2, "one check before the arrival, one when woken: no polling"


async def test_a_workspace_that_is_already_there_is_answered_at_once(
    database: Database, arrivals: Arrivals
) -> None:
    copy = Copy(database)
    await copy.arrive(after=0)

    assert await arrivals.wait_for(copy.workspace_id, copy.find) == copy.workspace_id
    assert copy.checks == 1


async def test_past_the_bound_the_answer_is_503_not_ready_yet_with_retry_after(
    database: Database,
) -> None:
    arrivals = Arrivals(database, timeout_seconds=0.3)
    copy = Copy(database)
    started = time.monotonic()
    try:
        with pytest.raises(NotReadyYetError) as refused:
            await arrivals.wait_for(copy.workspace_id, copy.find)
    finally:
        await arrivals.close()

    assert 0.3 <= time.monotonic() - started < 1.0
    assert refused.value.problem.slug == "not-ready-yet"
    assert refused.value.problem.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert copy.checks == 2, "one check at once, one at the bound"


async def test_another_workspace_arriving_wakes_nobody_waiting_for_this_one(
    database: Database,
) -> None:
    arrivals = Arrivals(database, timeout_seconds=1.0)
    awaited = Copy(database)
    other = Copy(database)
    try:
        with pytest.raises(NotReadyYetError):
            await asyncio.gather(
                arrivals.wait_for(awaited.workspace_id, awaited.find),
                other.arrive(after=0.2),
            )
    finally:
        await arrivals.close()

    assert awaited.checks == 2


async def test_an_arrival_that_rolls_back_wakes_nobody(database: Database) -> None:
    arrivals = Arrivals(database, timeout_seconds=1.0)
    copy = Copy(database)

    async def arrive_and_roll_back() -> None:
        await asyncio.sleep(0.2)
        with pytest.raises(RuntimeError):
            async with database.transaction() as session:
                await announce_arrival(session, copy.workspace_id)
                msg = "the consumer failed after announcing"
                raise RuntimeError(msg)

    try:
        with pytest.raises(NotReadyYetError):
            await asyncio.gather(
                arrivals.wait_for(copy.workspace_id, copy.find), arrive_and_roll_back()
            )
    finally:
        await arrivals.close()

    assert copy.checks == 2


async def test_many_requests_waiting_for_one_workspace_are_all_woken_by_its_arrival(
    database: Database, arrivals: Arrivals
) -> None:
    copy = Copy(database)
    started = time.monotonic()

    *found, _ = await asyncio.gather(
        *(arrivals.wait_for(copy.workspace_id, copy.find) for _ in range(20)),
        copy.arrive(after=0.2),
    )

    assert found == [copy.workspace_id] * 20
    # Woken by the arrival: a waiter left to its bound would have waited all of it.
    assert time.monotonic() - started < BOUND_SECONDS


async def test_a_step_performed_in_a_unit_of_work_waits_for_its_workspace_and_returns_its_value(
    database: Database, arrivals: Arrivals
) -> None:
    copy = Copy(database)
    units = UnitsOfWork(database, Outbox(billing_outbox, producer="billing"), None, arrivals)

    async def step(uow: UnitOfWork) -> uuid.UUID:
        found: uuid.UUID | None = await uow.session.scalar(
            select(accounts.c.workspace_id).where(accounts.c.workspace_id == copy.workspace_id)
        )
        if found is None:
            raise WorkspaceNotArrivedError(copy.workspace_id)
        return found

    found, _ = await asyncio.gather(units.perform(step, actor="test"), copy.arrive(after=0.3))

    assert found == copy.workspace_id
