"""What the consumer's counters tell an operator: an event applied counts once it has
committed, a failing one counts each attempt that is followed by another, then once
when it is parked."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from contracts.topics import Topic
from shared.inbox import Delivery, ParkedState, RetryPolicy
from shared.metrics import exposition
from shared.testing import eventually
from tests.integration.shared.conftest import MiniService, Watching, created, running
from tests.scrapes import value

pytestmark = pytest.mark.integration


async def test_applied_retried_and_parked_events_are_counted_by_type(
    service: MiniService,
) -> None:
    fine, poison = created(), created()
    consumer = Watching(
        service, policy=RetryPolicy(max_attempts=3, backoff_base=timedelta(seconds=0.05))
    )
    consumer.handlers.failing.add(poison.event_id)

    async with running(consumer):
        topic = Topic.IDENTITY_WORKSPACE.value
        await consumer.consume_batch([Delivery(topic, fine), Delivery(topic, poison)])

        async def parked() -> uuid.UUID | None:
            return next(
                (
                    event.event_id
                    for event in await service.parked()
                    if event.state is ParkedState.PARKED
                ),
                None,
            )

        assert await eventually(parked, timeout=30, what="the poison event to be parked")

    scraped = exposition()
    counted = {"service": consumer.service, "event_type": "workspace.created"}
    assert value(scraped, "atrium_events_applied_total", **counted) == 1
    assert value(scraped, "atrium_events_retried_total", **counted) == 2
    assert value(scraped, "atrium_events_parked_total", **counted) == 1
