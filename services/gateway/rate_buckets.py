"""The SQL of the token buckets every gateway process shares (`gateway.rate_buckets`).

PostgreSQL does the arithmetic, with its own clock, in the statement that takes the
tokens: a bucket's row is locked while it is refilled and drawn on, so two processes
that race for its last token cannot both get it, and the processes' clocks never
enter into it. A bucket has no row until it is first drawn on (it is full until then),
and loses it once it is full again (`delete_full_buckets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.ratelimit import Rate

KEY_BUCKET_PREFIX = "key:"
"""Buckets of the keys' own rates (`key:<uuid>`); the others are the callers'
(`user:<id>`, `apikey:<uuid>`, each at the gateway's rate per caller)."""

# One row per bucket: `wanted` tokens. The bucket refills from `updated_at` to now, up
# to `burst`; it grants as many whole tokens as it has, up to `wanted`, and keeps the
# rest. A new bucket starts full. Rows are taken in the order of their names, in
# every process, so that two statements that lock the same buckets cannot deadlock.
# `old` (PostgreSQL 18) is the row as this statement found it, once locked: what the
# bucket held before, from which the caller learns how many tokens it granted.
_TAKE = text(
    """
    WITH asked (bucket, wanted, burst, per_second) AS (
        SELECT * FROM unnest(
            CAST(:buckets AS text[]),
            CAST(:wanted AS integer[]),
            CAST(:bursts AS integer[]),
            CAST(:per_second AS double precision[])
        )
    )
    INSERT INTO rate_buckets AS held (bucket, tokens, updated_at)
    SELECT bucket, burst - least(wanted, burst), now() FROM asked ORDER BY bucket
    ON CONFLICT (bucket) DO UPDATE SET (tokens, updated_at) = (
        SELECT refilled - least(asked.wanted, floor(refilled)), refilled_at
        FROM asked,
            LATERAL (SELECT greatest(now(), held.updated_at) AS refilled_at) AS clock,
            LATERAL (
                SELECT least(
                    asked.burst,
                    held.tokens
                    + extract(epoch FROM refilled_at - held.updated_at) * asked.per_second
                ) AS refilled
            ) AS refill
        WHERE asked.bucket = excluded.bucket
    )
    RETURNING held.bucket, old.tokens AS tokens_before, old.updated_at AS updated_before,
        new.tokens AS tokens, new.updated_at AS updated_at
    """
)

_DELETE_FULL = text(
    """
    DELETE FROM rate_buckets
    WHERE updated_at < now() - make_interval(secs => :callers_full_after)
      AND (
        NOT starts_with(bucket, :key_prefix)
        OR updated_at < now() - make_interval(secs => :keys_full_after)
      )
    """
)


@dataclass(frozen=True, slots=True)
class Wanted:
    """Tokens wanted from one bucket, whose rate is `rate`."""

    bucket: str
    tokens: int
    rate: Rate


@dataclass(frozen=True, slots=True)
class Drawn:
    """What a bucket had and what it granted."""

    bucket: str
    available: float
    """Its tokens, refilled, before this draw."""
    granted: int

    @property
    def left(self) -> float:
        return self.available - self.granted


async def draw_tokens(connection: AsyncConnection, wanted: Sequence[Wanted]) -> list[Drawn]:
    """Take what each bucket can give of what is wanted, in one statement."""
    asked = sorted(wanted, key=lambda one: one.bucket)
    rows = await connection.execute(
        _TAKE,
        {
            "buckets": [one.bucket for one in asked],
            "wanted": [one.tokens for one in asked],
            "bursts": [one.rate.burst for one in asked],
            "per_second": [one.rate.per_second for one in asked],
        },
    )
    rates = {one.bucket: one.rate for one in asked}
    drawn = []
    for bucket, tokens_before, updated_before, tokens, updated_at in rows:
        available = _available(rates[bucket], tokens_before, updated_before, updated_at)
        drawn.append(Drawn(bucket=bucket, available=available, granted=round(available - tokens)))
    return drawn


def _available(
    rate: Rate, tokens_before: float | None, updated_before: datetime | None, now: datetime
) -> float:
    """The bucket's tokens as the statement refilled them (the same arithmetic, on the
    same timestamps): full if it had no row."""
    if tokens_before is None or updated_before is None:
        return float(rate.burst)
    elapsed = (now - updated_before).total_seconds()
    return min(float(rate.burst), tokens_before + elapsed * rate.per_second)


async def delete_full_buckets(
    connection: AsyncConnection, *, callers_full_after: float, keys_full_after: float
) -> int:
    """Delete the buckets that are full again (a missing bucket is a full one): the
    callers' after `callers_full_after` seconds at rest, the keys' own after
    `keys_full_after` (the longest a key's rate takes to refill an empty bucket)."""
    result = await connection.execute(
        _DELETE_FULL,
        {
            "callers_full_after": callers_full_after,
            "keys_full_after": keys_full_after,
            "key_prefix": KEY_BUCKET_PREFIX,
        },
    )
    deleted: int = result.rowcount
    return deleted
