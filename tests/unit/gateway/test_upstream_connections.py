"""A connection the gateway keeps to a service can be closed by the service just as a
request goes down it. That request is sent again when it may be repeated, and is
its own caller's 502 otherwise: never another request's failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.processes import free_port

from .conftest import InProcessGateway
from .support import bearer


@dataclass
class ClosingService:
    """Answers the first request on each connection and keeps the connection, as
    HTTP/1.1 allows; closes it without an answer when a second request arrives on it,
    as a service does with a connection it has let go while the client's pool still
    held it."""

    port: int
    answered: int = 0
    lost: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self._read_request(reader)
            body = b'{"items": [], "next_cursor": null}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.answered += 1
            await self._read_request(reader)
            self.lost += 1
        writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                await reader.readexactly(int(value))


@pytest.fixture
async def service() -> AsyncIterator[ClosingService]:
    closing = ClosingService(port=free_port())
    server = await asyncio.start_server(closing.serve, "127.0.0.1", closing.port)
    async with server:
        yield closing


@pytest.fixture
def settings_overrides(service: ClosingService) -> dict[str, Any]:
    return {"identity_url": service.url}


async def test_a_read_lost_on_a_connection_the_service_closed_is_sent_again(
    in_process: InProcessGateway, service: ClosingService
) -> None:
    answers = [
        await in_process.client.get("/v1/workspaces", headers=bearer("ann")) for _ in range(3)
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert service.lost >= 1


async def test_a_write_with_an_idempotency_key_is_sent_again(
    in_process: InProcessGateway, service: ClosingService
) -> None:
    read = await in_process.client.get("/v1/workspaces", headers=bearer("ann"))
    written = await in_process.client.post(
        "/v1/workspaces",
        json={"name": "Acme"},
        headers={**bearer("ann"), "idempotency-key": "k1"},
    )

    assert read.status_code == 200
    assert written.status_code == 200
    assert (service.answered, service.lost) == (2, 1)


async def test_a_write_without_an_idempotency_key_is_not_sent_twice(
    in_process: InProcessGateway, service: ClosingService
) -> None:
    read = await in_process.client.get("/v1/workspaces", headers=bearer("ann"))
    written = await in_process.client.post(
        "/v1/workspaces", json={"name": "Acme"}, headers=bearer("ann")
    )
    after = await in_process.client.get("/v1/workspaces", headers=bearer("bo"))

    assert read.status_code == 200
    assert written.status_code == 502
    assert written.json()["type"] == "bad-gateway"
    assert after.status_code == 200
    assert (service.answered, service.lost) == (2, 1)
