"""The campaign's checker knows which service consumes which event type: what each
service's `register_consumers` subscribes, so that an event a service does not handle
(and does not record in its inbox) is not looked for there."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench.campaign.reading import CONSUMERS
from contracts.envelope import EventPayload
from services.apikeys import consumers as apikeys
from services.assets import consumers as assets
from services.billing import consumers as billing
from services.billing.domain import Plan
from services.gateway import consumers as gateway
from services.identity import consumers as identity
from shared.inbox import EventConsumer
from shared.inbox.store import Inbox
from shared.service import ServiceRuntime
from shared.unit_of_work import UnitsOfWork

NO_UNITS = cast("UnitsOfWork", None)
"""Registering handlers runs none of them: they get no unit of work."""


def subscribed(service: str) -> frozenset[type[EventPayload]]:
    consumer = EventConsumer(service=service, inbox=cast("Inbox", None))
    runtime = cast("ServiceRuntime", SimpleNamespace(consumer=consumer, units_of_work=NO_UNITS))
    registrations: dict[str, Any] = {
        "identity": lambda: identity.register_consumers(consumer, NO_UNITS),
        "billing": lambda: billing.register_consumers(
            runtime,
            Plan(code="default", seats=5, avatar_slots=3, generative_credits=0, api_credits=0),
        ),
        "assets": lambda: assets.register_consumers(consumer, NO_UNITS),
        "apikeys": lambda: apikeys.register_consumers(runtime),
        "gateway": lambda: gateway.register_consumers(consumer),
    }
    registrations[service]()
    return consumer.handled


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_the_checker_looks_for_an_event_in_the_inboxes_of_the_services_that_handle_it(
    service: str,
) -> None:
    assert CONSUMERS[service] == subscribed(service)
