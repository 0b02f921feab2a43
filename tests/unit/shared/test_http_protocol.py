"""What a client meets at the HTTP level, before any application: deadlines for the
request's head and body, a bound on its headers, a cap on one address's connections,
and problem answers. A real server on loopback, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from infra.processes import free_port
from shared.http_protocol import HttpLimits, guarded_protocol

LIMITS = HttpLimits(
    header_timeout_seconds=0.5,
    body_timeout_seconds=0.5,
    max_header_bytes=2048,
    max_connections_per_address=3,
)


@dataclass
class EchoApp:
    """Answers 200 with the size of the whole body, after `delay` seconds."""

    delay: float = 0.0
    disconnects: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects.append(scope["path"])
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await asyncio.sleep(self.delay)
        body = json.dumps({"size": size}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class Server:
    port: int
    app: EchoApp

    async def connect(
        self, source: str = "127.0.0.1"
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0))


@contextlib.asynccontextmanager
async def serving(limits: HttpLimits = LIMITS) -> AsyncIterator[Server]:
    app = EchoApp()
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    protocol = guarded_protocol(limits)
    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", port
    )
    try:
        yield Server(port, app)
    finally:
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def problem(self) -> Any:
        assert self.headers["content-type"] == "application/problem+json"
        return json.loads(self.body)


async def answer_to(reader: asyncio.StreamReader, *, started: float) -> Answer | None:
    """The whole answer on a connection the server closes afterwards; None when it
    closes without one."""
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


async def exchange(server: Server, data: bytes) -> Answer:
    reader, writer = await server.connect()
    started = time.monotonic()
    writer.write(data)
    answer = await answer_to(reader, started=started)
    writer.close()
    assert answer is not None
    return answer


async def test_a_request_that_is_not_http_is_a_400_problem() -> None:
    async with serving() as server:
        answer = await exchange(server, b"HELLO\x00 THERE\r\n\r\n")

    assert answer.status == 400
    assert answer.problem()["type"] == "malformed-request"
    assert answer.headers["x-request-id"] == answer.problem()["request_id"]


@pytest.mark.parametrize("pieces", [1, 8], ids=["at once", "in pieces"])
async def test_headers_over_the_limit_are_a_431_problem(pieces: int) -> None:
    head = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n"
    async with serving() as server:
        reader, writer = await server.connect()
        started = time.monotonic()
        size = len(head) // pieces + 1
        for start in range(0, len(head), size):
            writer.write(head[start : start + size])
            await asyncio.sleep(0.01)
        answer = await answer_to(reader, started=started)
        writer.close()
        fits = await exchange(
            server, b"GET / HTTP/1.1\r\nconnection: close\r\nx-big: " + b"a" * 1500 + b"\r\n\r\n"
        )

    assert answer is not None
    assert answer.status == 431
    assert answer.problem()["type"] == "headers-too-large"
    assert server.app.disconnects == []
    assert fits.status == 200


async def test_headers_that_do_not_arrive_in_time_are_a_408_problem() -> None:
    async with serving() as server:
        reader, writer = await server.connect()
        started = time.monotonic()
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ")
        answer = await answer_to(reader, started=started)
        writer.close()

    assert answer is not None
    assert answer.status == 408
    assert answer.problem()["type"] == "request-timeout"
    assert 0.4 < answer.seconds < 1.5


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout() -> None:
    async with serving() as server:
        reader, writer = await server.connect()
        started = time.monotonic()
        answer = await answer_to(reader, started=started)
        closed_after = time.monotonic() - started
        writer.close()

    assert answer is None
    assert 0.4 < closed_after < 1.5


async def test_a_body_that_does_not_arrive_in_time_is_a_408_and_the_app_hears_the_client_go() -> (
    None
):
    async with serving() as server:
        reader, writer = await server.connect()
        started = time.monotonic()
        writer.write(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        answer = await answer_to(reader, started=started)
        writer.close()
        await asyncio.sleep(0.05)

    assert answer is not None
    assert answer.status == 408
    assert answer.problem()["detail"] == "The request's body did not arrive within 0.5 seconds."
    assert 0.4 < answer.seconds < 1.5
    assert server.app.disconnects == ["/slow"]


async def test_the_deadlines_do_not_cut_short_an_application_that_takes_its_time() -> None:
    async with serving() as server:
        server.app.delay = 1.0
        answer = await exchange(
            server,
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        )

    assert answer.status == 200
    assert json.loads(answer.body) == {"size": 3}


async def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline() -> None:
    async with serving() as server:
        reader, writer = await server.connect()
        for _ in range(3):  # each well within its own deadline, together beyond one
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b'{"size": 0}'), timeout=2)
            await asyncio.sleep(0.3)
        started = time.monotonic()
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")
        answer = await answer_to(reader, started=started)
        writer.close()

    assert answer is not None
    assert answer.status == 408
    assert 0.4 < answer.seconds < 1.5


async def test_connections_over_the_cap_of_one_address_are_closed_at_once() -> None:
    async with serving() as server:
        held = [await server.connect() for _ in range(3)]
        reader, writer = await server.connect()
        started = time.monotonic()
        refused = await answer_to(reader, started=started)
        refused_after = time.monotonic() - started
        writer.close()
        elsewhere = await server.connect(source="127.0.0.2")
        started = time.monotonic()
        elsewhere[1].write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answered_elsewhere = await answer_to(elsewhere[0], started=started)
        held[0][1].close()
        await asyncio.sleep(0.05)
        again = await exchange(server, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        for _, held_writer in held[1:]:
            held_writer.close()

    assert refused is None
    assert refused_after < 0.3
    assert answered_elsewhere is not None
    assert answered_elsewhere.status == 200
    assert again.status == 200
