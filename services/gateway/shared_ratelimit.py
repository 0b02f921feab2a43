"""Rate limits that hold across every gateway process: each caller's (at the gateway's
rate per caller) and each API key's own `rate_limit`, kept as token buckets in
PostgreSQL (`services.gateway.rate_buckets`), so that N processes allow what one
would, not N times as much.

A round trip per request would cost more than the rest of the gateway's work, so:

- The requests of a process that wait at the same moment are drawn in one statement:
  while one statement is out, the next requests gather, and go together in the next
  one (one row per bucket, with how many tokens they want). Each request gets its own
  answer, first come first served. At rest a request waits for one round trip; under
  load the statements carry more rows, not more round trips.
- A bucket that the last answer left with less than a token, and that cannot have
  refilled to one since, is refused here without asking: the other processes can
  only take tokens from it, never add any.

When PostgreSQL cannot answer (down, or slower than `ANSWER_WITHIN_SECONDS`), the
process counts on its own, with buckets in its memory, for `RETRY_AFTER_SECONDS`
before it asks again: N processes then allow up to N times the limits, which is
better than refusing every request. It logs a warning when that starts and counts
the requests it decided alone (`decided_alone`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events.apikeys import MAX_RATE_LIMIT_PERIOD_SECONDS
from services.gateway import metrics
from services.gateway.rate_buckets import (
    KEY_BUCKET_PREFIX,
    Drawn,
    Wanted,
    delete_full_buckets,
    draw_tokens,
)
from services.gateway.ratelimit import (
    MAX_CALLERS,
    Allowance,
    Rate,
    RateLimiter,
    allowance,
)
from shared.db import Database

logger = logging.getLogger(__name__)

ANSWER_WITHIN_SECONDS = 2.0
"""How long the requests of a statement wait for PostgreSQL before their process
decides alone (as long as the gateway waits for identity's word on a member)."""
RETRY_AFTER_SECONDS = 5.0
"""How long a process decides alone after PostgreSQL failed to answer: a PostgreSQL
that does not answer at all holds up one statement's requests this often."""
DELETE_FULL_EVERY_SECONDS = 30.0
"""How often each process deletes the buckets that are full again."""


@dataclass(slots=True)
class _Waiting:
    bucket: str
    rate: Rate
    answer: asyncio.Future[Allowance]


@dataclass(frozen=True, slots=True)
class _Emptied:
    """A bucket that the last answer left with less than a token."""

    tokens: float
    asked_at: float
    """When the statement that said so was sent: the bucket has had at least this
    long to refill since."""


class SharedRateLimits:
    def __init__(
        self,
        database: Database,
        *,
        per_caller: Rate,
        shared: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`shared` off: every process keeps its own buckets."""
        self.database = database
        self.per_caller = per_caller
        self.shared = shared
        self.clock = clock
        self.alone = RateLimiter(
            per_second=per_caller.per_second, burst=per_caller.burst, clock=clock
        )
        """The process's own buckets, when it decides alone."""
        self.decided_alone = 0
        """Requests this process decided alone because PostgreSQL could not answer."""
        self._waiting: list[_Waiting] = []
        self._drawing: asyncio.Task[None] | None = None
        self._emptied: dict[str, _Emptied] = {}
        self._connection: AsyncConnection | None = None
        self._failing = False
        self._ask_again_at = 0.0

    async def for_caller(self, actor: str) -> Allowance:
        """One token of the caller's bucket (`Principal.actor`), at the rate per caller."""
        return await self._take(actor, self.per_caller)

    async def for_key(self, key_id: uuid.UUID, rate: Rate) -> Allowance:
        """One token of the bucket of a key that has a `rate_limit` of its own."""
        return await self._take(f"{KEY_BUCKET_PREFIX}{key_id}", rate)

    async def _take(self, bucket: str, rate: Rate) -> Allowance:
        if not self.shared:
            return self.alone.take(bucket, rate)
        now = self.clock()
        still_empty = self._still_empty(bucket, rate, now)
        if still_empty is not None:
            return still_empty
        if self._failing and now < self._ask_again_at:
            return self._decide_alone(bucket, rate)
        waiting = _Waiting(bucket, rate, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._drawing is None:
            self._drawing = asyncio.create_task(self._draw_all(), name="gateway-rate-limits")
        return await waiting.answer

    def _still_empty(self, bucket: str, rate: Rate, now: float) -> Allowance | None:
        emptied = self._emptied.get(bucket)
        if emptied is None:
            return None
        tokens = min(float(rate.burst), emptied.tokens + (now - emptied.asked_at) * rate.per_second)
        if tokens >= 1:
            del self._emptied[bucket]
            return None
        return allowance(rate, tokens, admitted=False)

    def _decide_alone(self, bucket: str, rate: Rate) -> Allowance:
        self.decided_alone += 1
        metrics.rate_limits_decided_alone()
        return self.alone.take(bucket, rate)

    async def _draw_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._draw(batch)
        finally:
            self._drawing = None

    async def _draw(self, batch: list[_Waiting]) -> None:
        wanted = Counter(waiting.bucket for waiting in batch)
        rates = {waiting.bucket: waiting.rate for waiting in batch}
        asked_at = self.clock()
        try:
            async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
                drawn = await self._draw_tokens(
                    [Wanted(bucket, tokens, rates[bucket]) for bucket, tokens in wanted.items()]
                )
        except asyncio.CancelledError:
            # The process stops: the requests it still holds get their answers first.
            self._answer_alone(batch)
            raise
        except Exception as failed:  # noqa: BLE001 - whatever it was, the requests go on
            self._fail(failed)
            self._answer_alone(batch)
            return
        if self._failing:
            logger.info("the shared rate limits are answered again")
            self._failing = False
        by_bucket = {one.bucket: one for one in drawn}
        served: Counter[str] = Counter()
        for waiting in batch:
            one = by_bucket[waiting.bucket]
            admitted = served[waiting.bucket] < one.granted
            served[waiting.bucket] += 1
            tokens = one.available - served[waiting.bucket] if admitted else one.left
            _answer(waiting, allowance(rates[waiting.bucket], tokens, admitted=admitted))
        for one in drawn:
            self._remember(one, asked_at)

    def _remember(self, drawn: Drawn, asked_at: float) -> None:
        if drawn.left >= 1:
            self._emptied.pop(drawn.bucket, None)
            return
        if len(self._emptied) >= MAX_CALLERS:
            # What is known of empty buckets only spares round trips: it may be forgotten.
            self._emptied.clear()
        self._emptied[drawn.bucket] = _Emptied(tokens=drawn.left, asked_at=asked_at)

    async def _draw_tokens(self, wanted: list[Wanted]) -> list[Drawn]:
        """One statement on the process's own connection (kept open: no checkout, no
        ping, no transaction of its own); a connection that failed is not used again."""
        try:
            if self._connection is None:
                connection = await self.database.engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            return await draw_tokens(self._connection, wanted)
        except BaseException:
            await self._let_go()
            raise

    def _answer_alone(self, batch: list[_Waiting]) -> None:
        for waiting in batch:
            _answer(waiting, self._decide_alone(waiting.bucket, waiting.rate))

    def _fail(self, failed: Exception) -> None:
        if not self._failing:
            logger.warning(
                "PostgreSQL cannot answer for the shared rate limits (%s): this process "
                "decides alone, with its own buckets, until it can",
                repr(failed),
            )
        self._failing = True
        self._ask_again_at = self.clock() + RETRY_AFTER_SECONDS

    async def delete_full_buckets(self) -> None:
        """Forget the buckets that are full again: a bucket without a row is full."""
        if not self.shared:
            return
        async with self.database.engine.begin() as connection:
            await delete_full_buckets(
                connection,
                callers_full_after=self.per_caller.burst / self.per_caller.per_second,
                keys_full_after=MAX_RATE_LIMIT_PERIOD_SECONDS,
            )

    async def close(self) -> None:
        if self._drawing is not None:
            self._drawing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drawing
        await self._let_go()

    async def _let_go(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()


def _answer(waiting: _Waiting, given: Allowance) -> None:
    # A request whose client has gone no longer waits for its answer.
    if not waiting.answer.done():
        waiting.answer.set_result(given)
