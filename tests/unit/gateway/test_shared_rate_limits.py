"""The shared rate limits when PostgreSQL cannot answer: the process decides alone,
with its own buckets, rather than refusing every request (tests/integration/gateway
shows them shared)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY, generate_latest

from infra.processes import free_port
from services.gateway.ratelimit import Rate
from services.gateway.shared_ratelimit import SharedRateLimits
from shared.db import Database
from tests.scrapes import moved


@pytest.fixture
async def nowhere() -> AsyncIterator[Database]:
    """A database nothing listens for."""
    database = Database(f"postgresql://gateway:x@127.0.0.1:{free_port()}/atrium", schema="gateway")
    yield database
    await database.dispose()


async def test_without_postgresql_a_process_keeps_the_limits_alone_and_says_so(
    nowhere: Database, caplog: pytest.LogCaptureFixture
) -> None:
    limits = SharedRateLimits(nowhere, per_caller=Rate(burst=2, per_second=0.001))
    before = generate_latest(REGISTRY)

    answers = [await limits.for_caller("user:ann") for _ in range(3)]

    assert [answer.retry_after for answer in answers] == [None, None, 1000]
    assert limits.decided_alone == 3
    after = generate_latest(REGISTRY)
    decided_alone = "atrium_gateway_rate_limits_decided_alone_total"
    assert moved(before, after, decided_alone, service="gateway") == 3
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "decides alone" in warnings[0].getMessage()
    await limits.close()


async def test_limits_that_are_not_shared_are_each_processs_own(nowhere: Database) -> None:
    limits = SharedRateLimits(nowhere, per_caller=Rate(burst=1, per_second=0.001), shared=False)

    answers = [await limits.for_caller("user:ann") for _ in range(2)]

    assert [answer.retry_after is None for answer in answers] == [True, False]
    assert limits.decided_alone == 0
