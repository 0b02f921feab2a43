"""Read-your-writes across services: a request about something whose event has not
reached this service yet (a workspace, an API key) waits for it, bounded, instead of
answering 404 or refusing it.

The gateway vouches for a workspace as soon as identity has created it, and for an API
key as soon as apikeys has; a service that keeps its own copy (billing's account and key
budget, an asset library, API key settings) hears of it only when the event reaches its
consumer, tens of milliseconds later. A client that creates a workspace or a key and
uses it in its very next request must not be told that it does not exist. A service
takes part in three steps, each with the id of what is awaited (ids are UUIDs, so
workspaces and keys share one channel):

1. The use case that applies the event announces it in the event's own transaction:
   `await announce_arrival(uow.session, workspace_id)` (or the key's id). It is a
   `pg_notify` on the service's channel, which PostgreSQL delivers at commit: nobody
   wakes up before the copy is visible, and nobody at all when the transaction rolls
   back.
2. A use case that finds no copy of something the gateway vouched for raises
   `WorkspaceNotArrivedError(workspace_id)`, or `NotArrivedError(awaited_id,
   what="API key")` for anything else, before it changes or charges anything.
3. `UnitsOfWork.run` rolls that attempt back and runs the use case again as soon as the
   awaited id is announced, for at most `ATRIUM_READ_YOUR_WRITES_TIMEOUT_SECONDS`
   (default 2 s) in all, also when the next attempt finds something else missing
   (the key has come, its workspace not yet); past that the answer is 503
   `not-ready-yet` with `Retry-After`. A workspace the service knows as deleted stays
   the use case's own 404.

Anything else waits with `Arrivals.wait_for(awaited_id, check)`: `check` runs at once
and again after each announcement of that id, until it returns something other than
None, e.g. `await arrivals.wait_for(workspace_id, lambda: repository.find(id))`.

Each process holds one LISTEN connection (opened by its first wait) on its schema's
channel, and hands each notification to the waiters of that id. A waiter is registered
and listening before it checks, so an announcement that commits between its check and
its wait still wakes it; nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import problems
from shared.db import Database, plain_url, tls_arguments
from shared.errors import DomainError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL_PREFIX = "atrium_arrivals_"
RETRY_AFTER_SECONDS = 1
"""Once the bound has passed, the event is held up somewhere (a stopped relay, Kafka
away): a client that comes back a second later usually finds it arrived."""


def arrival_channel(schema: str) -> str:
    return CHANNEL_PREFIX + schema


class NotReadyYetError(DomainError):
    """Something the gateway vouched for has still not reached this service: 503, and
    the client may retry after `Retry-After`."""

    problem = problems.NOT_READY_YET

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class NotArrivedError(NotReadyYetError):
    """This service has no copy yet of something the gateway vouched for (`what`, with
    id `awaited_id`). Raised by a use case before it changes anything; `UnitsOfWork.run`
    waits for its announcement and runs the use case again."""

    def __init__(self, awaited_id: uuid.UUID, *, what: str) -> None:
        super().__init__(not_arrived(what, awaited_id))
        self.awaited_id = awaited_id
        self.what = what


class WorkspaceNotArrivedError(NotArrivedError):
    """This service has no copy of the workspace yet."""

    def __init__(self, workspace_id: uuid.UUID) -> None:
        super().__init__(workspace_id, what="Workspace")
        self.workspace_id = workspace_id


def not_arrived(what: str, awaited_id: uuid.UUID) -> str:
    return f"{what} {awaited_id} has not reached this service yet."


async def announce_arrival(session: AsyncSession, awaited_id: uuid.UUID) -> None:
    """Wake the requests waiting for `awaited_id` (a workspace's, a key's) once this
    transaction commits.

    The channel is the one of the session's schema: every service's sessions have
    their own schema first on the search path (`shared.db.Database`)."""
    await session.execute(
        select(func.pg_notify(func.concat(CHANNEL_PREFIX, func.current_schema()), str(awaited_id))),
    )


class Arrivals:
    """The requests of one process that wait for workspaces (or keys), and the one
    connection that hears about their arrival."""

    def __init__(self, database: Database, *, timeout_seconds: float) -> None:
        self.database = database
        self.timeout_seconds = timeout_seconds
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}
        self._listener: Any = None
        self._connecting = asyncio.Lock()

    def deadline(self) -> float:
        """The event loop's time at which a wait that starts now gives up."""
        return asyncio.get_running_loop().time() + self.timeout_seconds

    async def wait_for(
        self,
        awaited_id: uuid.UUID,
        check: Callable[[], Awaitable[T | None]],
        *,
        what: str = "Workspace",
        deadline: float | None = None,
    ) -> T:
        """What `check` returns once it returns something: it runs now, and again each
        time `awaited_id` is announced. Raises `NotReadyYetError` when the bound (or the
        given `deadline`, for a wait that continues an earlier one) passes first."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline() if deadline is None else deadline
        announced = asyncio.Event()
        waiters = self._waiters.setdefault(awaited_id, set())
        waiters.add(announced)
        try:
            while True:
                await self._listen()
                announced.clear()
                found = await check()
                if found is not None:
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    msg = not_arrived(what, awaited_id).removesuffix(".")
                    raise NotReadyYetError(f"{msg}; try again in a moment.")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await announced.wait()
        finally:
            waiters.discard(announced)
            if not waiters and self._waiters.get(awaited_id) is waiters:
                del self._waiters[awaited_id]

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove_termination_listener(self._on_lost)
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)

    async def _listen(self) -> None:
        if self._listening():
            return
        async with self._connecting:
            if self._listening():
                return
            url = self.database.url
            connection = await asyncpg.connect(plain_url(url), **tls_arguments(url))
            connection.add_termination_listener(self._on_lost)
            await connection.add_listener(
                arrival_channel(self.database.schema), self._on_announcement
            )
            self._listener = connection

    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _on_announcement(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            awaited_id = uuid.UUID(payload)
        except ValueError:
            logger.warning("ignored an arrival announcement that is no id: %r", payload)
            return
        for announced in self._waiters.get(awaited_id, ()):
            announced.set()

    def _on_lost(self, connection: Any) -> None:
        # Announcements made while no connection listens are lost: every waiter checks
        # again (and listens anew) rather than sleep through the arrival it awaits.
        if self._listener is not connection:
            return
        logger.warning("lost the connection that listens for arrivals")
        self._listener = None
        for waiters in self._waiters.values():
            for announced in waiters:
                announced.set()
