"""One way to run a use case: one unit of work per command or consumed event.

A use case is an async function `use_case(uow, command) -> domain value`:
- `command` is a frozen model named in the imperative (`InviteMember`,
  `AllocateCredits`) that carries everything the use case needs, the caller
  included;
- it returns domain values, never HTTP schemas: `api.py` maps them to responses,
  so a consumer, the CLI or a test can call the same use case;
- it never opens, commits or rolls back a transaction, and only `flush()`es: the
  entry point opens the unit of work, which commits when the use case returns and
  rolls back when it raises.

Entry points open it the same way: HTTP through `UnitsOfWork.run` (which also
honours `Idempotency-Key`), a consumer through `UnitsOfWork.for_event` on the
inbox's transaction (so the effect and the event's inbox row commit together),
a periodic job through `UnitsOfWork.begin`.

A use case that finds no copy yet of a workspace (or key) the gateway vouched for
raises `shared.read_your_writes.WorkspaceNotArrivedError` (or `NotArrivedError`)
before it changes anything; `UnitsOfWork.run` then waits for its event and runs the
use case again.

Events are staged through `uow.stage` *after* the locks that serialize the change
are taken (see `shared.outbox.Outbox.stage`), so that outbox order is commit
order per key.

The rest of the house rules for a service:
- `Idempotency-Key` is handled in one way only: the endpoint takes the
  `shared.idempotency.Idempotency` (or `RequiredIdempotency`) dependency and hands
  it to `UnitsOfWork.run`; nothing else builds scopes or fingerprints.
- Authorization is checked in one layer: the use case (its first step, through the
  service's policy functions that take the command's `Principal`), never in `api.py`
  and again in the use case. `api.py` only parses the request, builds the command,
  runs it and maps the domain value to a response schema.
- One module of use cases per aggregate, each readable in one sitting (under about
  400 lines, the repository included: split it into a `repository/` package by
  aggregate when it grows).
- The endpoint decorator declares `response_model=` and `status_code=` (the handler
  returns `UnitsOfWork.run`'s Response), so the OpenAPI document stays exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope, EventPayload, RawEnvelope
from shared.db import Database
from shared.idempotency import IdempotencyKeys, IdempotentRequest
from shared.outbox import Outbox
from shared.read_your_writes import Arrivals, NotArrivedError

logger = logging.getLogger(__name__)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Arrived(Generic[T]):
    """What an attempt returned once its workspace arrived (which may be None)."""

    value: T


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """One transaction: the session a use case's repositories use, and the outbox its
    events are staged in, attributed to who caused them."""

    session: AsyncSession
    outbox: Outbox
    actor: str | None
    """Who caused the change (`user:…`, `apikey:…`, `system`), carried by its events."""
    causation_id: UUID | None = None
    """The event this unit of work applies, when it applies one."""

    async def stage(
        self, payload: EventPayload, *, root_id: UUID, workspace_id: UUID | None
    ) -> Envelope[EventPayload]:
        """Stage an event to be published once this unit of work commits. Call it after
        taking the locks that serialize the change."""
        return await self.outbox.stage(
            self.session,
            payload,
            root_id=root_id,
            workspace_id=workspace_id,
            actor=self.actor,
            causation_id=self.causation_id,
        )


class UnitsOfWork:
    """Opens units of work on one service's database and outbox."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        keys: IdempotencyKeys | None,
        arrivals: Arrivals | None = None,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.keys = keys
        self.arrivals = arrivals

    @asynccontextmanager
    async def begin(self, *, actor: str | None) -> AsyncIterator[UnitOfWork]:
        async with self.database.transaction() as session:
            yield UnitOfWork(session, self.outbox, actor)

    def for_event(self, session: AsyncSession, envelope: RawEnvelope) -> UnitOfWork:
        """The unit of work of a consumed event: the inbox's transaction, so that the
        effect and the event's inbox row commit together."""
        return UnitOfWork(session, self.outbox, envelope.actor, causation_id=envelope.event_id)

    async def answer(
        self,
        use_case: Callable[[UnitOfWork], Awaitable[T]],
        respond: Callable[[T], BaseModel | None],
        *,
        actor: str,
        status_code: int = 200,
        idempotency: IdempotentRequest | None = None,
    ) -> Response:
        """`run` for a use case that returns a domain value: `respond` turns the value into
        the answer's body (`no_body` for none), inside the unit of work, so that an
        idempotent retry gets the same body back."""

        async def work(uow: UnitOfWork) -> BaseModel | None:
            return respond(await use_case(uow))

        return await self.run(work, actor=actor, status_code=status_code, idempotency=idempotency)

    async def run(
        self,
        work: Callable[[UnitOfWork], Awaitable[BaseModel | None]],
        *,
        actor: str,
        status_code: int,
        idempotency: IdempotentRequest | None = None,
    ) -> Response:
        """Run an HTTP command in one unit of work and answer with `status_code` and the
        model `work` returns (no body for None).

        With an `Idempotency-Key`, the key is reserved first thing in the same
        transaction: a retry waits for the first request, then gets its status and
        body back and changes nothing more; the same key with another body is 422.
        When the first request fails, nothing is remembered and a retry runs anew.

        When `work` finds that a workspace (or key) the gateway vouched for has not
        reached this service yet (`NotArrivedError`), that attempt is rolled back and
        `work` runs again once it arrives; when the next attempt finds something else
        missing, that is awaited in turn, all within one read-your-writes bound
        (`shared.read_your_writes`).
        """
        return await self.waiting_for_arrivals(
            lambda: self._run_once(
                work, actor=actor, status_code=status_code, idempotency=idempotency
            )
        )

    async def perform(self, work: Callable[[UnitOfWork], Awaitable[T]], *, actor: str) -> T:
        """Run a use case in one unit of work and return its domain value, waiting for
        what has not arrived yet as `run` does: for a step of a flow that spans several
        units of work (an avatar's pending row, then billing's claim)."""

        async def once() -> T:
            async with self.begin(actor=actor) as uow:
                return await work(uow)

        return await self.waiting_for_arrivals(once)

    async def waiting_for_arrivals(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, and once more each time what it found missing arrives; when an
        attempt finds something else missing, that is awaited in turn, all within one
        read-your-writes bound. `run` and `answer` wait this way; an entry point that
        opens its own transaction (billing's spends in batches) calls it itself."""
        arrivals = self.arrivals
        try:
            return await attempt()
        except NotArrivedError as missing:
            if arrivals is None:
                raise
            awaited = missing

        async def once_arrived() -> Arrived[T] | None:
            try:
                return Arrived(await attempt())
            except NotArrivedError as still_missing:
                if still_missing.awaited_id != awaited.awaited_id:
                    raise
                return None

        started = time.monotonic()
        deadline = arrivals.deadline()
        while True:
            try:
                arrived = await arrivals.wait_for(
                    awaited.awaited_id, once_arrived, what=awaited.what, deadline=deadline
                )
            except NotArrivedError as other:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                awaited = other
                continue
            logger.info(
                "a request waited %.0f ms for %s %s to arrive",
                (time.monotonic() - started) * 1000,
                awaited.what.lower(),
                awaited.awaited_id,
            )
            return arrived.value

    async def _run_once(
        self,
        work: Callable[[UnitOfWork], Awaitable[BaseModel | None]],
        *,
        actor: str,
        status_code: int,
        idempotency: IdempotentRequest | None,
    ) -> Response:
        async with self.begin(actor=actor) as uow:
            if idempotency is not None:
                keys = self._keys()
                first = await keys.reserve(
                    uow.session,
                    scope=idempotency.scope,
                    key=idempotency.key,
                    request_fingerprint=idempotency.fingerprint,
                )
                if first is not None:
                    return _response(first.status, first.body)
            result = await work(uow)
            body = None if result is None else result.model_dump(mode="json")
            if idempotency is not None:
                await self._keys().remember(
                    uow.session,
                    scope=idempotency.scope,
                    key=idempotency.key,
                    status=status_code,
                    body=body,
                )
        return _response(status_code, body)

    def _keys(self) -> IdempotencyKeys:
        if self.keys is None:
            msg = f"{self.database.schema} keeps no idempotency keys"
            raise RuntimeError(msg)
        return self.keys


def _response(status_code: int, body: object) -> Response:
    if body is None:
        return Response(status_code=status_code)
    return JSONResponse(body, status_code=status_code)


def no_body(_: object) -> None:
    """The `respond` of a use case whose answer has no body (a 204)."""
    return
