"""The gateway process under the attacks a public server meets: one address holding
connections open, bodies that never arrive, floods of unauthenticated requests, heads
that are huge or not HTTP. Each seen from outside, as a client would see it.

The gateway here runs with a file-descriptor limit (1,024) below the size of the
flood, as an attacker with a bigger flood would find it; `bench/edge_flood.py` sends
20,000 connections at a gateway with the machine's own limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.processes import free_port
from shared.development_tokens import development_token
from shared.settings import ServiceName, get_settings
from shared.testing import (
    ServiceProcess,
    hold_half_open_connections,
    raw_exchange,
    still_open,
)
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

FLOOD = int(os.environ.get("ATRIUM_TEST_FLOOD_CONNECTIONS", "2000"))
"""Half-open connections from one address: above the gateway's file-descriptor limit
here (`GATEWAY_FILE_LIMIT`) and far above its cap per address."""
GATEWAY_FILE_LIMIT = 1024
PER_ADDRESS = 100
BODY_TIMEOUT = 2.0
SLOW_BODIES = 20
REFUSALS_BURST = 30


@contextlib.contextmanager
def files_for_children(limit: int) -> Iterator[None]:
    """Processes started meanwhile may open `limit` files at most."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def gateway(system: RunningSystem, log_dir: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        ServiceName.GATEWAY,
        port=free_port(),
        environment=system.gateway.environment,
        log_dir=log_dir,
    )
    with files_for_children(GATEWAY_FILE_LIMIT):
        process.start(
            extra_environment={
                "ATRIUM_HTTP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
                "ATRIUM_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
                "ATRIUM_ADDRESS_REFUSALS_BURST": str(REFUSALS_BURST),
                "ATRIUM_ADDRESS_REFUSALS_PER_SECOND": "1",
            }
        )
    try:
        yield process
    finally:
        process.stop()


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {development_token(f'{name}@example.com', get_settings())}"}


def client_from(source: str, gateway: ServiceProcess, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=source),
        base_url=gateway.url,
        timeout=timeout,
    )


async def test_a_flood_of_half_open_connections_from_one_address_leaves_others_served(
    gateway: ServiceProcess,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, FLOOD + 1024)), hard))
    flooded_at = time.monotonic()
    flood = await hold_half_open_connections("127.0.0.1", gateway.port, FLOOD)
    try:
        flood_seconds = time.monotonic() - flooded_at
        started = time.monotonic()
        async with client_from("127.0.0.2", gateway, timeout=5) as other:
            ready = await other.get("/readyz")
            listed = await other.get("/v1/workspaces", headers=bearer("una"))
        answered_in = time.monotonic() - started
        held = still_open(flood)
    finally:
        for connection in flood:
            connection.close()

    print(
        f"{FLOOD} half-open connections from 127.0.0.1 in {flood_seconds:.1f}s, "
        f"{held} held by the gateway; 127.0.0.2 answered in {answered_in:.3f}s"
    )
    assert ready.status_code == 200, ready.text
    assert listed.status_code == 200, listed.text
    assert answered_in < 5
    assert held <= PER_ADDRESS


async def test_bodies_that_do_not_arrive_get_a_408_problem_at_the_body_timeout(
    gateway: ServiceProcess,
) -> None:
    head = (
        "POST /v1/workspaces HTTP/1.1\r\nhost: atrium\r\ncontent-type: application/json\r\n"
        f"authorization: {bearer('vic')['authorization']}\r\ncontent-length: 100\r\n\r\n"
    ).encode()

    async def slow_body() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        started = time.monotonic()
        writer.write(head + b'{"name": ')
        answer = await asyncio.wait_for(reader.read(), timeout=BODY_TIMEOUT + 10)
        writer.close()
        return answer, time.monotonic() - started

    answers = await asyncio.gather(*(slow_body() for _ in range(SLOW_BODIES)))

    seconds = [elapsed for _, elapsed in answers]
    print(f"{SLOW_BODIES} slow bodies answered after {min(seconds):.2f}-{max(seconds):.2f}s")
    for answer, elapsed in answers:
        head_part, _, body = answer.partition(b"\r\n\r\n")
        assert head_part.startswith(b"HTTP/1.1 408 "), answer
        assert b"content-type: application/problem+json" in head_part.lower()
        assert json.loads(body)["type"] == "request-timeout"
        assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + 3


async def test_an_unauthenticated_flood_from_one_address_is_slowed_down(
    gateway: ServiceProcess,
) -> None:
    async with (
        client_from("127.0.0.3", gateway, timeout=5) as flooding,
        client_from("127.0.0.4", gateway, timeout=5) as neighbour,
    ):
        # One token, sent twice: a token minted a second later is another credential.
        wes = bearer("wes")
        known = await flooding.get("/v1/workspaces", headers=wes)
        refused = [
            await flooding.get("/v1/workspaces", headers={"authorization": f"Bearer junk{n}"})
            for n in range(REFUSALS_BURST + 10)
        ]
        still_known = await flooding.get("/v1/workspaces", headers=wes)
        elsewhere = await neighbour.get("/v1/workspaces", headers={"authorization": "Bearer x"})

    statuses = [response.status_code for response in refused]
    assert known.status_code == 200
    assert statuses[:REFUSALS_BURST] == [401] * REFUSALS_BURST
    assert set(statuses[REFUSALS_BURST + 1 :]) == {429}
    throttled = refused[-1]
    assert throttled.headers["content-type"] == "application/problem+json"
    assert int(throttled.headers["retry-after"]) >= 1
    assert still_known.status_code == 200
    assert elsewhere.status_code == 401


async def test_a_megabyte_of_headers_is_a_431_problem(gateway: ServiceProcess) -> None:
    status, head, body = await raw_exchange(
        gateway.port,
        b"GET /v1/workspaces HTTP/1.1\r\nhost: atrium\r\nx-padding: "
        + b"a" * 1024 * 1024
        + b"\r\n\r\n",
    )

    assert status == 431
    assert b"content-type: application/problem+json" in head
    assert json.loads(body)["type"] == "headers-too-large"


async def test_a_request_line_that_is_not_http_is_a_400_problem(gateway: ServiceProcess) -> None:
    status, head, body = await raw_exchange(gateway.port, b"GET /v1/ work spaces HTTP/9\r\n\r\n")

    assert status == 400
    assert b"content-type: application/problem+json" in head
    assert json.loads(body)["type"] == "malformed-request"
