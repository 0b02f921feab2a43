"""A process asked to stop (SIGTERM) says so on /readyz at once, takes no new
connection, answers the request it has in flight, and exits 0.

The module stops the system's gateway: it runs one test."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.development_tokens import development_token
from shared.settings import get_settings
from shared.testing import eventually
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

DRAIN_SECONDS = 10


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return {"ATRIUM_STOP_DRAIN_SECONDS": str(DRAIN_SECONDS)}


async def waiting_at_a_lock(engine: AsyncEngine, role: str) -> bool | None:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE usename = :role AND wait_event_type = 'Lock'"
            ),
            {"role": role},
        )
    return True if waiting else None


async def test_a_stopping_gateway_answers_the_request_in_flight_and_exits_0(
    system: RunningSystem, admin_engine: AsyncEngine
) -> None:
    owner = f"stopping.{uuid.uuid4().hex[:8]}@example.com"
    headers = {"authorization": f"Bearer {development_token(owner, get_settings())}"}
    gateway = system.gateway
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as balancer,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as caller,
        admin_engine.connect() as blocker,
    ):
        assert (await balancer.get("/readyz")).status_code == 200
        # identity cannot add a workspace until the blocker lets go: the creation stays
        # in flight, in the gateway as in identity.
        await blocker.execute(text("LOCK TABLE identity.workspaces IN SHARE MODE"))
        creating = asyncio.create_task(
            caller.post("/v1/workspaces", json={"name": "In flight"}, headers=headers)
        )
        await eventually(
            lambda: waiting_at_a_lock(admin_engine, "atrium_identity"),
            what="the creation to wait at the lock",
        )

        gateway.ask_to_stop()

        async def not_ready() -> httpx.Response | None:
            # On the connection the balancer holds: a draining process keeps it open.
            answer = await balancer.get("/readyz")
            return answer if answer.status_code == 503 else None

        refused = await eventually(not_ready, timeout=DRAIN_SECONDS, what="/readyz 503")
        assert refused.headers["content-type"] == "application/problem+json"
        assert "process stopping" in refused.json()["detail"], refused.text

        async def no_new_connection() -> bool | None:
            async with httpx.AsyncClient(base_url=gateway.url) as newcomer:
                try:
                    await newcomer.get("/healthz")
                except httpx.ConnectError:
                    return True
            return None

        await eventually(no_new_connection, timeout=5, what="connections refused")
        assert not creating.done()

        await blocker.rollback()
        created = await creating
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "In flight"

    await asyncio.to_thread(gateway.wait_stopped)
    assert gateway.returncodes() == [0] * len(gateway.pids), gateway.log_tail()
