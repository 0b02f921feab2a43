"""Rate limits shared by gateway processes through PostgreSQL: two processes (each its
own `Database`, as two processes have) draw on the same buckets in
`gateway.rate_buckets`, and together admit what one bucket holds, never more."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway.ratelimit import Allowance, Rate
from services.gateway.shared_ratelimit import SharedRateLimits
from shared.db import Database
from shared.settings import ServiceName, Settings

pytestmark = pytest.mark.integration

NO_REFILL = 0.0001
"""Tokens per second of a bucket that must not refill while a test runs."""


class Processes:
    """Two gateway processes' limits, each on its own connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.databases: list[Database] = []
        self.limits: list[SharedRateLimits] = []

    def start(self, per_caller: Rate) -> tuple[SharedRateLimits, SharedRateLimits]:
        for _ in range(2):
            database = Database(
                self.settings.database_url_for(ServiceName.GATEWAY), schema="gateway"
            )
            self.databases.append(database)
            self.limits.append(SharedRateLimits(database, per_caller=per_caller))
        return self.limits[-2], self.limits[-1]

    async def stop(self) -> None:
        for limits in self.limits:
            await limits.close()
        for database in self.databases:
            await database.dispose()


@pytest.fixture
async def processes(settings: Settings) -> AsyncIterator[Processes]:
    started = Processes(settings)
    try:
        yield started
    finally:
        await started.stop()


@contextmanager
def statements_sent(limits: SharedRateLimits) -> Iterator[list[str]]:
    """The statements on the buckets that `limits`' process sends meanwhile."""
    sent: list[str] = []

    def note(*arguments: Any) -> None:
        if "rate_buckets" in arguments[2]:
            sent.append(arguments[2])

    engine = limits.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def admitted(answers: list[Allowance]) -> int:
    return sum(answer.retry_after is None for answer in answers)


def caller() -> str:
    return f"user:{uuid.uuid4()}"


async def test_two_processes_racing_for_one_callers_bucket_admit_exactly_its_burst(
    processes: Processes,
) -> None:
    first, second = processes.start(Rate(burst=40, per_second=NO_REFILL))
    ann = caller()

    async def wave(limits: SharedRateLimits) -> list[Allowance]:
        return list(await asyncio.gather(*(limits.for_caller(ann) for _ in range(25))))

    waves = await asyncio.gather(*(wave(limits) for _ in range(2) for limits in (first, second)))

    answers = [answer for one_wave in waves for answer in one_wave]
    assert admitted(answers) == 40
    assert len(answers) == 100
    assert first.decided_alone == second.decided_alone == 0
    refused = [answer for answer in answers if answer.retry_after is not None]
    assert {answer.remaining for answer in refused} == {0}


async def test_requests_waiting_together_are_drawn_in_one_statement_in_their_order(
    processes: Processes,
) -> None:
    first, _ = processes.start(Rate(burst=5, per_second=NO_REFILL))
    ann, bo = caller(), caller()

    with statements_sent(first) as sent:
        answers = await asyncio.gather(
            *(first.for_caller(ann) for _ in range(8)), first.for_caller(bo)
        )

    assert len(sent) == 1
    assert [answer.remaining for answer in answers[:5]] == [4, 3, 2, 1, 0]
    assert [answer.retry_after is None for answer in answers[:8]] == [True] * 5 + [False] * 3
    assert answers[8].retry_after is None
    assert answers[8].remaining == 4


async def test_a_bucket_known_to_be_empty_is_refused_without_asking(
    processes: Processes,
) -> None:
    first, second = processes.start(Rate(burst=2, per_second=0.5))
    ann = caller()
    await asyncio.gather(first.for_caller(ann), first.for_caller(ann))
    with statements_sent(first) as sent:
        refused = await first.for_caller(ann)

    assert refused.retry_after == 2
    assert sent == []
    # The other process does not know: it asks, and is refused too.
    with statements_sent(second) as sent:
        assert (await second.for_caller(ann)).retry_after == 2
    assert len(sent) == 1


async def test_a_bucket_refills_at_its_rate_for_every_process(processes: Processes) -> None:
    first, second = processes.start(Rate(burst=2, per_second=4))
    ann = caller()
    emptied = await asyncio.gather(*(first.for_caller(ann) for _ in range(3)))
    assert [answer.retry_after for answer in emptied] == [None, None, 1]

    await asyncio.sleep(1)  # more than the 0.5 s that refill two tokens
    refilled = await asyncio.gather(*(second.for_caller(ann) for _ in range(3)))

    assert [answer.retry_after is None for answer in refilled] == [True, True, False]
    assert refilled[0].remaining == 1


async def test_a_keys_own_rate_holds_across_processes_with_its_headers(
    processes: Processes,
) -> None:
    first, second = processes.start(Rate(burst=1000, per_second=1000))
    key_id = uuid.uuid4()
    three_a_minute = Rate(burst=3, per_second=3 / 60)

    answers = [
        await limits.for_key(key_id, three_a_minute) for limits in (first, second, first, second)
    ]

    assert [answer.retry_after is None for answer in answers] == [True, True, True, False]
    assert [answer.limit for answer in answers] == [3] * 4
    assert [answer.remaining for answer in answers] == [2, 1, 0, 0]
    assert 0 < answers[0].reset_seconds <= 20
    assert 50 <= answers[3].reset_seconds <= 60
    assert answers[3].retry_after is not None
    assert 1 <= answers[3].retry_after <= 20
    # The key's own bucket is not its bucket as a caller.
    assert (await first.for_caller(f"apikey:{key_id}")).retry_after is None


async def test_buckets_full_again_are_deleted_and_the_others_kept(
    processes: Processes, admin_engine: AsyncEngine
) -> None:
    first, _ = processes.start(Rate(burst=1, per_second=50))
    ann, key_id = caller(), uuid.uuid4()
    await first.for_caller(ann)
    await first.for_key(key_id, Rate(burst=1, per_second=50))
    await asyncio.sleep(0.1)  # five times what a caller's bucket takes to refill

    await first.delete_full_buckets()

    async with admin_engine.connect() as connection:
        left = await connection.execute(
            text("SELECT bucket FROM gateway.rate_buckets WHERE bucket = ANY(:buckets)"),
            {"buckets": [ann, f"key:{key_id}"]},
        )
    # A key's own bucket is kept for the longest a key's rate may take to refill.
    assert [row.bucket for row in left] == [f"key:{key_id}"]
