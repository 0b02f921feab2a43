"""Read-your-writes across services, through the gateway: a workspace created in one
request has its balances read, credits bought and an allocation made in the very next
request, while billing still waits for identity's event; when the event is held up
past the bound, the answer is 503 `not-ready-yet` and nothing is written."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import models as billing_models
from services.identity import models as identity_models
from shared.db import Database
from shared.development_tokens import development_token
from shared.outbox import OutboxRelay
from shared.settings import ServiceName, Settings, get_settings
from shared.testing import eventually

from .conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

ROUNDS = 20
HELD_BACK_SECONDS = 0.3


class HeldBackRelay(OutboxRelay):
    """identity's outbox relay, run by the test, holding every batch back before it
    publishes it: the events reach billing (and the gateway) that much later."""

    def __init__(self, database: Database, settings: Settings, hold_seconds: float) -> None:
        super().__init__(
            database, identity_models.outbox, kafka=settings.kafka_for(ServiceName.IDENTITY)
        )
        self.hold_seconds = hold_seconds

    async def publish_lane(self, lane: int) -> int:
        await asyncio.sleep(self.hold_seconds)
        return await super().publish_lane(lane)


RelayFactory = Callable[[float], Awaitable[OutboxRelay]]


@pytest.fixture
async def identity_relay_in_the_test(
    system: RunningSystem, settings: Settings
) -> AsyncIterator[RelayFactory]:
    """identity without its own relay; the test starts one, held back as it likes."""
    database = Database(settings.database_url_for(ServiceName.IDENTITY), schema="identity")
    relays: list[OutboxRelay] = []

    async def start_relay(hold_seconds: float) -> OutboxRelay:
        relay = HeldBackRelay(database, settings, hold_seconds)
        await relay.start()
        relays.append(relay)
        return relay

    system.identity.stop()
    system.identity.start(extra_environment={"ATRIUM_OUTBOX_RELAY_ENABLED": "false"})
    try:
        yield start_relay
    finally:
        for relay in relays:
            await relay.stop()
        await database.dispose()
        system.identity.stop()
        system.identity.start()


class Founder:
    def __init__(self) -> None:
        email = f"founder.{uuid.uuid4().hex[:8]}@example.com"
        self.headers = {"authorization": f"Bearer {development_token(email, get_settings())}"}


class Timings:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    async def timed(self, what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = await request
        self.seconds.setdefault(what, []).append(time.perf_counter() - started)
        return response

    def report(self, title: str) -> None:
        print(f"\n{title} ({ROUNDS} rounds), ms: min / median / max")
        for what, seconds in self.seconds.items():
            ms = sorted(second * 1000 for second in seconds)
            print(f"  {what:<48}{ms[0]:>6.0f} {statistics.median(ms):>6.0f} {ms[-1]:>6.0f}")


async def use_new_workspaces_at_once(gateway: httpx.AsyncClient, timings: Timings) -> None:
    """A root, then in each very next request: its balances, a purchase; a
    sub-workspace, then at once an allocation to it."""
    founder = Founder()
    root = await timings.timed(
        "POST /v1/workspaces",
        gateway.post("/v1/workspaces", json={"name": "Agency"}, headers=founder.headers),
    )
    assert root.status_code == 201, root.text
    root_id = root.json()["id"]

    balances = await timings.timed(
        "next: GET balances of the new root",
        gateway.get(f"/v1/workspaces/{root_id}/balances", headers=founder.headers),
    )
    assert balances.status_code == 200, balances.text
    assert balances.json()["generative_credits"] == {"balance": 0, "allocated": 0}

    bought = await timings.timed(
        "next: POST purchases",
        gateway.post(
            f"/v1/workspaces/{root_id}/purchases",
            json={"pool": "generative_credits", "quantity": 1_000},
            headers=founder.headers,
        ),
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["balance_after"] == 1_000

    sub = await timings.timed(
        "POST sub-workspaces",
        gateway.post(
            f"/v1/workspaces/{root_id}/sub-workspaces",
            json={"name": "Client", "billing_mode": "parent", "api_access": False},
            headers=founder.headers,
        ),
    )
    assert sub.status_code == 201, sub.text
    sub_id = sub.json()["id"]

    allocated = await timings.timed(
        "next: PUT allocations of the new sub-workspace",
        gateway.put(
            f"/v1/workspaces/{sub_id}/allocations",
            json={"generative_credits": 300},
            headers=founder.headers,
        ),
    )
    assert allocated.status_code == 200, allocated.text
    assert allocated.json()["generative_credits"] == 300


async def test_a_new_root_and_sub_workspace_are_usable_in_the_very_next_request(
    system: RunningSystem,
) -> None:
    timings = Timings()
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as gateway:
        for _ in range(ROUNDS):
            await use_new_workspaces_at_once(gateway, timings)
    timings.report("identity's relay as deployed")


async def test_the_next_request_waits_for_events_that_identity_holds_back(
    system: RunningSystem, identity_relay_in_the_test: RelayFactory
) -> None:
    await identity_relay_in_the_test(HELD_BACK_SECONDS)
    timings = Timings()
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as gateway:
        for _ in range(ROUNDS):
            await use_new_workspaces_at_once(gateway, timings)
    timings.report(f"identity's events held back {HELD_BACK_SECONDS * 1000:.0f} ms")
    assert statistics.median(timings.seconds["next: GET balances of the new root"]) >= (
        HELD_BACK_SECONDS * 0.8
    ), "the reads really waited for the held-back events"


async def count_rows(admin_engine: AsyncEngine, table: Any, *conditions: Any) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(table).where(*conditions))
    return int(count or 0)


async def test_past_the_bound_the_answer_is_not_ready_yet_and_nothing_is_written(
    system: RunningSystem, identity_relay_in_the_test: RelayFactory, admin_engine: AsyncEngine
) -> None:
    founder = Founder()
    purchase = {"pool": "generative_credits", "quantity": 250}
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as gateway:
        root = await gateway.post("/v1/workspaces", json={"name": "Held"}, headers=founder.headers)
        assert root.status_code == 201, root.text
        root_id = root.json()["id"]

        started = time.perf_counter()
        balances = await gateway.get(f"/v1/workspaces/{root_id}/balances", headers=founder.headers)
        waited = time.perf_counter() - started
        bought = await gateway.post(
            f"/v1/workspaces/{root_id}/purchases",
            json=purchase,
            headers={**founder.headers, **key},
        )
        print(f"\nidentity's relay stopped: 503 not-ready-yet after {waited * 1000:.0f} ms")

        for refused in (balances, bought):
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "not-ready-yet"
            assert int(refused.headers["retry-after"]) >= 1
        assert waited >= get_settings().read_your_writes_timeout_seconds

        await identity_relay_in_the_test(0)

        async def opened() -> dict[str, Any] | None:
            response = await gateway.get(
                f"/v1/workspaces/{root_id}/balances", headers=founder.headers
            )
            return dict(response.json()) if response.status_code == 200 else None

        arrived = await eventually(opened, timeout=30, what="billing to open the account")
        assert arrived["generative_credits"] == {"balance": 0, "allocated": 0}
        transactions = billing_models.transactions
        assert (
            await count_rows(
                admin_engine,
                transactions,
                transactions.c.workspace_id == uuid.UUID(root_id),
                transactions.c.kind == "purchase",
            )
            == 0
        )

        retried = await gateway.post(
            f"/v1/workspaces/{root_id}/purchases",
            json=purchase,
            headers={**founder.headers, **key},
        )
        assert retried.status_code == 201, retried.text
        assert retried.json()["balance_after"] == 250
