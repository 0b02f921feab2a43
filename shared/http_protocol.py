"""The HTTP/1.1 protocol every service's uvicorn speaks: uvicorn's own (httptools), with
the deadlines and limits a server facing untrusted clients needs, and problem+json for
the answers the server gives before the application is involved.

uvicorn alone waits for a request's head and body as long as the client likes (its
keep-alive timeout runs only between requests), takes headers of any size (its
`h11_max_incomplete_event_size` is for the h11 parser, not the httptools one it uses,
and bounds only a head that arrives in pieces), answers a request it cannot parse in
text/plain, and lets one client address hold connections until the process runs out
of file descriptors. A proxy in front (nginx, Envoy) would do all of this, at the
price of one more program for `make run`, the tests and every deployment to start and
configure. uvicorn takes the protocol class as a parameter (`Config(http=...)`), so
this subclass of its httptools protocol adds what is missing, per connection:

- a cap on the open connections of one client address (the peer of the TCP
  connection): one over the cap is closed as soon as it is accepted, so a flood from
  one address costs an accept and a close per connection, never a file descriptor
  held;
- a deadline for the request's head, from the first byte of the request (or the
  opening of the connection), and one for its body, from the end of the head: past
  either the client gets a 408 problem and the connection is closed (a connection that
  sent nothing is closed without an answer), and an application still waiting for the
  body hears that the client disconnected;
- a bound on the size of the request line and headers: past it, a 431 problem;
- a 400 problem for a request that is not HTTP/1.1.

It builds on HttpToolsProtocol's parser callbacks and its `url`, `headers` and `cycle`
attributes (uvicorn 0.54): mypy checks that each `@override` still overrides, and
`tests/unit/shared/test_http_protocol.py` exercises each behaviour against a real
server, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import ClassVar

from typing_extensions import override
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from contracts import problems
from contracts.problems import ProblemType
from shared.errors import PROBLEM_JSON
from shared.http import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)

LINGER_SECONDS = 2.0
"""How long a connection the server has answered on its own stays open for the client
to read the answer and close."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_header_bytes: int
    max_connections_per_address: int | None = None
    """None: no cap, for the services behind the gateway, whose one client (the
    gateway's connection pool) comes from one address."""


@dataclass
class _OpenConnections:
    """The connections one server holds open, by client address."""

    limit: int | None
    by_address: Counter[str] = field(default_factory=Counter)
    refusing: set[str] = field(default_factory=set)

    def admit(self, address: str) -> bool:
        if self.limit is not None and self.by_address[address] >= self.limit:
            if address not in self.refusing:
                self.refusing.add(address)
                logger.warning(
                    "%s holds %d connections: its next ones are closed until it lets some go",
                    address,
                    self.limit,
                )
            return False
        self.by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]
        if self.limit is None or self.by_address[address] < self.limit:
            self.refusing.discard(address)


class _HeadTooLargeError(Exception):
    """Raised in a parser callback: the parser stops, and uvicorn answers through
    `send_400_response`, which tells the reason by `_refusal`."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. Use `guarded_protocol(limits)`, which gives each server its own
    count of open connections."""

    limits: ClassVar[HttpLimits]
    open_connections: ClassVar[_OpenConnections]

    _address: str | None = None
    """The client's address, once the connection is admitted."""
    _deadline: asyncio.TimerHandle | None = None
    _reading_head = True
    _head_bytes = 0
    """Bytes received since the current request's head began, while it is incomplete."""
    _refusal: ProblemType | None = None
    _answered = False
    """The server has answered on its own and is closing the connection."""

    @override
    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        address = _peer_address(transport)
        if not self.open_connections.admit(address):
            transport.close()
            return
        self._address = address
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_seconds, self._head_overdue)

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return  # closed at connection_made: nothing was set up
        self._disarm()
        self.open_connections.release(self._address)
        super().connection_lost(exc)

    @override
    def data_received(self, data: bytes) -> None:
        if self._answered or self.transport.is_closing():
            return
        if self._deadline is None:
            # The first bytes of the next request on a connection kept alive.
            self._arm(self.limits.header_timeout_seconds, self._head_overdue)
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head that is still incomplete is held in the parser: bound what it holds.
        if (
            self._reading_head
            and self._head_bytes > self.limits.max_header_bytes
            and not self._answered
            and not self.transport.is_closing()
        ):
            self._answer(problems.HEADERS_TOO_LARGE, self._headers_too_large())

    @override
    def on_headers_complete(self) -> None:
        self._reading_head = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = problems.HEADERS_TOO_LARGE
            raise _HeadTooLargeError
        self._arm(self.limits.body_timeout_seconds, self._body_overdue)
        super().on_headers_complete()

    @override
    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    @override
    def send_400_response(self, msg: str) -> None:
        if self._refusal is problems.HEADERS_TOO_LARGE:
            self._answer(problems.HEADERS_TOO_LARGE, self._headers_too_large())
        else:
            self._answer(problems.MALFORMED_REQUEST, "The request is not valid HTTP/1.1.")

    def _headers_too_large(self) -> str:
        return f"The request line and headers may have {self.limits.max_header_bytes} bytes."

    def _head_overdue(self) -> None:
        self._deadline = None
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: there is nothing to answer
            return
        self._answer(
            problems.REQUEST_TIMEOUT,
            f"The request's headers did not arrive within "
            f"{self.limits.header_timeout_seconds:g} seconds.",
        )

    def _body_overdue(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # too late for another answer
            return
        self._answer(
            problems.REQUEST_TIMEOUT,
            f"The request's body did not arrive within "
            f"{self.limits.body_timeout_seconds:g} seconds.",
        )

    def _answer(self, problem: ProblemType, detail: str) -> None:
        """Answer with a problem and close the connection; an application still waiting
        for the request hears that the client disconnected, and its answer goes
        nowhere."""
        self._disarm()
        self._answered = True
        request_id = uuid.uuid4().hex
        body = json.dumps(
            {
                "type": problem.slug,
                "title": problem.title,
                "status": problem.status,
                "detail": detail,
                "request_id": request_id,
            }
        ).encode()
        headers = [
            *self.server_state.default_headers,
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (REQUEST_ID_HEADER.encode(), request_id.encode()),
        ]
        status = HTTPStatus(problem.status)
        head = f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() + b"".join(
            name + b": " + value + b"\r\n" for name, value in headers
        )
        self.transport.write(head + b"\r\n" + body)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        # Closing with the client's bytes unread would reset the connection, and the
        # client could lose the answer with it: send it, say that nothing follows, and
        # read (and drop) what the client still sends until it closes, for a moment.
        self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)

    def _arm(self, seconds: float, overdue: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpProtocol]:
    """The protocol class for one server (`uvicorn.Config(http=...)`)."""

    class ServerProtocol(GuardedHttpProtocol):
        pass

    ServerProtocol.limits = limits
    ServerProtocol.open_connections = _OpenConnections(limits.max_connections_per_address)
    return ServerProtocol


def _peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "local"
