"""Spends in batches (group commit): the spend endpoint's way to charge an operation.

A spend is one call of `billing.spend_batch` (migration 0009): it reserves the
Idempotency-Key, checks and takes the credits (falling through to the parent, within
the key's monthly budget), records the balanced transaction and its lines, stages
`transaction.posted` (and `credits.low`) and remembers the answer, all in the
database. The spends that arrive at one billing process close together (at most
`max_spends`) go in one call and one transaction per workspace group, as TigerBeetle
batches transfers: one commit for many, so that spends on one hot workspace no
longer wait one commit each for its balance's lock; the groups (by workspace, at most
`BATCHES_IN_FLIGHT`) commit at once, on as many connections. "Close together" is,
with `wait_seconds` > 0, within that long of the batch's first spend; with 0, while
an earlier batch commits: a spend that finds none committing goes at once, and
batching adds no wait when there is nothing to share a transaction with.

Each spend of a batch is applied, in arrival order, all or nothing and on its own: a
refused one (402, 403, 404, a reused key's 422) changes nothing, its key's reservation
included, and the others go on. A failure of the database fails every spend of the
batch with the same error (nothing of it committed: it is one transaction). A spend
whose workspace or key has not reached billing yet waits for it and goes in a later
batch (`UnitsOfWork.waiting_for_arrivals`). The function takes its locks in the order
written down in the migration, the order of every other change to the same rows
(avatar claims, allocations), so that they never deadlock with each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import Response

from contracts.events.billing import CreditsLow, TransactionPosted
from contracts.permissions import Permission
from services.billing.accounts import no_such_workspace
from services.billing.domain import (
    KEY_REFUSALS,
    ApiKeyNotArrivedError,
    InsufficientCreditsError,
    KeyCreditLimitReachedError,
    limit_reached,
    not_enough,
    pool_paying_for,
)
from services.billing.policy import require_spender
from services.billing.spending import SpendCredits
from shared.db import Database
from shared.errors import ForbiddenError
from shared.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyKeyReusedError,
    IdempotentRequest,
    InvalidIdempotencyKeyError,
)
from shared.logging import correlation_id_var
from shared.read_your_writes import WorkspaceNotArrivedError
from shared.tracing import staged_context
from shared.unit_of_work import UnitsOfWork

SPENT = 201
"""The status of a spend's answer, remembered for its retries."""

_SPEND_BATCH = "SELECT * FROM billing.spend_batch($1::jsonb, $2::jsonb)"
"""One statement, run on its own: it is its transaction, and a batch costs one round
trip (no BEGIN, COMMIT or pool ping around it)."""

BATCHES_IN_FLIGHT = 4
"""Batches committing at once, each on its connection: the spends gathered together are
split by workspace into as many batches, so that PostgreSQL applies them on several
cores (one batch is one backend), and the next ones gather while those commit."""


@dataclass(slots=True)
class _Pending:
    request: dict[str, Any]
    """One `billing.spend_request`, as JSON."""
    answer: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def idempotency_key(self) -> tuple[str, str] | None:
        key = self.request["key"]
        return None if key is None else (self.request["scope"], key)


class SpendBatches:
    """Gathers the spends of one process into batches, one transaction each."""

    def __init__(
        self,
        database: Database,
        units_of_work: UnitsOfWork,
        *,
        producer: str,
        wait_seconds: float,
        max_spends: int,
    ) -> None:
        keys = units_of_work.keys
        # The answer is remembered by the database as it is made: it cannot be sealed.
        assert keys is not None, "billing keeps idempotency keys"
        assert keys.seal is None, "spend answers are stored unsealed"
        self.database = database
        self.units_of_work = units_of_work
        self.wait_seconds = wait_seconds
        self.max_spends = max_spends
        self._context = json.dumps(
            {
                "producer": producer,
                "status": SPENT,
                "posted": _event(TransactionPosted),
                "low": _event(CreditsLow),
            }
        )
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._idle = asyncio.Event()
        self._in_flight = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        self._gathering: asyncio.Task[None] | None = None
        self._committing: set[asyncio.Task[None]] = set()

    async def spend(self, command: SpendCredits, idempotency: IdempotentRequest | None) -> Response:
        """Charge the operation in the next batch: 201 and the receipt (the first one
        again for a retry with the same key and body), or the problem that refused it."""
        require_spender(command.caller, command.workspace_id, Permission.SPEND_CREDITS)
        if idempotency is not None and not 0 < len(idempotency.key) <= MAX_KEY_LENGTH:
            msg = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters."
            raise InvalidIdempotencyKeyError(msg)
        return await self.units_of_work.waiting_for_arrivals(
            lambda: self._spend_once(command, idempotency)
        )

    async def _spend_once(
        self, command: SpendCredits, idempotency: IdempotentRequest | None
    ) -> Response:
        caller = command.caller
        pool = pool_paying_for(by_api_key=caller.api_key_id is not None)
        amount = command.terms.prices.price(command.operation, command.quantity)
        pending = _Pending(
            {
                "scope": None if idempotency is None else idempotency.scope,
                "key": None if idempotency is None else idempotency.key,
                "fingerprint": None if idempotency is None else idempotency.fingerprint,
                "workspace_id": str(command.workspace_id),
                "pool": pool.value,
                "amount": amount,
                "operation": command.operation.value,
                "quantity": command.quantity,
                "reference": command.reference,
                "api_key_id": None if caller.api_key_id is None else str(caller.api_key_id),
                "actor": caller.actor,
                "threshold": command.terms.credits_low_threshold,
                "correlation_id": correlation_id_var.get(),
                "headers": staged_context(),
            }
        )
        self._submit(pending)
        outcome = await pending.answer
        if outcome["outcome"] in ("spent", "replayed"):
            # The receipt as the database wrote and remembered it: JSON already.
            return Response(
                outcome["answer"],
                status_code=outcome["answer_status"],
                media_type="application/json",
            )
        raise _refusal(command, amount, outcome)

    def _submit(self, pending: _Pending) -> None:
        self._queue.append(pending)
        self._arrived.set()
        if len(self._queue) >= self.max_spends:
            self._full.set()
        if self._gathering is None:
            self._gathering = asyncio.create_task(self._gather(), name="spend-batches")

    async def _gather(self) -> None:
        """Forever: wait for a spend, gather more (until the batch is full, or for
        `wait_seconds`; with 0, while another batch commits), then commit them."""
        while True:
            await self._arrived.wait()
            if self.wait_seconds > 0:
                await _first_of(self._full, at_most=self.wait_seconds)
            elif self._committing:
                await _first_of(self._full, self._idle, at_most=None)
            await self._in_flight.acquire()
            gathered = self._take()
            if not self._queue:
                self._arrived.clear()
            if len(self._queue) < self.max_spends:
                self._full.clear()
            first, *others = _by_workspace(gathered, BATCHES_IN_FLIGHT)
            self._start(first)
            for batch in others:
                await self._in_flight.acquire()
                self._start(batch)

    def _start(self, batch: list[_Pending]) -> None:
        task = asyncio.create_task(self._commit(batch), name="spend-batch")
        self._committing.add(task)
        self._idle.clear()
        task.add_done_callback(self._committed)

    def _take(self) -> list[_Pending]:
        """Up to `max_spends` spends in arrival order; a retry whose key is already in
        the batch waits for the next one (a batch reserves each key once)."""
        batch: list[_Pending] = []
        keys: set[tuple[str, str]] = set()
        later: list[_Pending] = []
        while self._queue and len(batch) < self.max_spends:
            pending = self._queue.popleft()
            key = pending.idempotency_key
            if key is not None and key in keys:
                later.append(pending)
                continue
            if key is not None:
                keys.add(key)
            batch.append(pending)
        self._queue.extendleft(reversed(later))
        return batch

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._committing.discard(task)
        if not self._committing:
            self._idle.set()
        self._in_flight.release()

    async def _commit(self, batch: list[_Pending]) -> None:
        for number, pending in enumerate(batch):
            pending.request["spend"] = number
        try:
            async with self.database.plain() as connection:
                rows = await connection.fetch(
                    _SPEND_BATCH, json.dumps([pending.request for pending in batch]), self._context
                )
        except Exception as failure:  # noqa: BLE001 - every spend of the batch gets it
            _fail(batch, failure)
            return
        except BaseException as failure:
            _fail(batch, failure)
            raise
        for row in rows:
            answer = batch[row["spend"]].answer
            if not answer.done():
                answer.set_result(dict(row))

    async def stop(self) -> None:
        """Stop gathering, commit the spends already waiting and let the batches being
        committed finish: no spend that came is left without an answer."""
        if self._gathering is not None:
            self._gathering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gathering
        while self._queue:
            await self._commit(self._take())
        if self._committing:
            await asyncio.gather(*self._committing, return_exceptions=True)


def _by_workspace(gathered: list[_Pending], at_most: int) -> list[list[_Pending]]:
    """`gathered` split into at most `at_most` batches, each workspace's spends in one of
    them in arrival order (a key acts in one workspace only): the spends of one
    workspace, which would wait for each other's balance, stay in one transaction."""
    parts: dict[int, list[_Pending]] = {}
    for pending in gathered:
        part = hash(pending.request["workspace_id"]) % at_most
        parts.setdefault(part, []).append(pending)
    return list(parts.values())


async def _first_of(*events: asyncio.Event, at_most: float | None) -> None:
    """Return once one of `events` is set, or after `at_most` seconds."""
    waiting = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiting, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiting:
            waiter.cancel()


def _fail(batch: list[_Pending], failure: BaseException) -> None:
    for pending in batch:
        if not pending.answer.done():
            pending.answer.set_exception(failure)


def _event(payload: type[TransactionPosted | CreditsLow]) -> dict[str, Any]:
    return {
        "topic": payload.topic.value,
        "type": payload.event_type,
        "version": payload.event_version,
    }


def _refusal(  # noqa: PLR0911 - one error per refusal
    command: SpendCredits, amount: int, outcome: dict[str, Any]
) -> Exception:
    """The problem that answers a refused spend."""
    match outcome["outcome"]:
        case "workspace_not_arrived":
            return WorkspaceNotArrivedError(command.workspace_id)
        case "key_not_arrived":
            assert command.caller.api_key_id is not None
            return ApiKeyNotArrivedError(command.caller.api_key_id)
        case "workspace_closed":
            return no_such_workspace(command.workspace_id)
        case refused if refused in KEY_REFUSALS:
            return ForbiddenError(KEY_REFUSALS[refused])
        case "key_limit_reached":
            return KeyCreditLimitReachedError(
                limit_reached(outcome["key_limit"], outcome["key_spent"], amount)
            )
        case "insufficient":
            return InsufficientCreditsError(not_enough(amount, outcome["balance"]))
        case "insufficient_with_parent":
            return InsufficientCreditsError(not_enough(amount))
        case "key_reused":
            return IdempotencyKeyReusedError()
    msg = f"unknown spend outcome {outcome['outcome']!r}"
    return RuntimeError(msg)
