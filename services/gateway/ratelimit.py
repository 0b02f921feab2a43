"""Token buckets in one process's memory: each caller may send `burst` requests at once
and `per_second` on average. A bucket may have a rate of its own (an API key's
`rate_limit`: `requests` at once, `requests / period_seconds` on average).

The gateway's budget of refusals per client address lives here; the limits per caller
and per key live in PostgreSQL, shared by every process
(`services.gateway.shared_ratelimit`), and come here only while it cannot answer."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CALLERS = 100_000
"""Buckets kept at most; full buckets (callers at rest) are the first forgotten."""


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int
    per_second: float


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    rate: Rate


@dataclass(frozen=True, slots=True)
class Allowance:
    """One request's share of a bucket, as the `RateLimit-*` headers tell it."""

    limit: int
    remaining: int
    reset_seconds: int
    """Until the bucket is full again."""
    retry_after: int | None
    """None when the request may go; else the whole seconds until it may."""

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_seconds),
        }


class RateLimiter:
    def __init__(
        self,
        *,
        per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = Rate(burst=burst, per_second=per_second)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def per_second(self) -> float:
        return self.rate.per_second

    @property
    def burst(self) -> int:
        return self.rate.burst

    def retry_after(self, caller: str) -> int | None:
        """Take one token for `caller`: None if it had one, else the whole seconds until
        it will have one."""
        return self.take(caller).retry_after

    def take(self, caller: str, rate: Rate | None = None) -> Allowance:
        """Take one token for `caller`, whose bucket has `rate` (the limiter's own by
        default): what is left, and whether there was one."""
        rate = rate or self.rate
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None or bucket.rate != rate:
            if bucket is None and len(self._buckets) >= MAX_CALLERS:
                self._forget_rested(now)
            bucket = self._buckets[caller] = _Bucket(
                tokens=float(rate.burst), updated=now, rate=rate
            )
        else:
            _refill(bucket, now)
        admitted = bucket.tokens >= 1
        if admitted:
            bucket.tokens -= 1
        return allowance(rate, bucket.tokens, admitted=admitted)

    def waiting(self, caller: str) -> int | None:
        """The whole seconds until `caller` has a token again, or None if it has one;
        takes none."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            return None
        _refill(bucket, self.clock())
        return None if bucket.tokens >= 1 else seconds_to_a_token(bucket.rate, bucket.tokens)

    def _forget_rested(self, now: float) -> None:
        rested = [
            caller
            for caller, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * bucket.rate.per_second >= bucket.rate.burst
        ]
        for caller in rested or list(self._buckets):
            del self._buckets[caller]


def _refill(bucket: _Bucket, now: float) -> None:
    rate = bucket.rate
    bucket.tokens = min(float(rate.burst), bucket.tokens + (now - bucket.updated) * rate.per_second)
    bucket.updated = now


def allowance(rate: Rate, tokens: float, *, admitted: bool) -> Allowance:
    """A request's allowance from a bucket of `rate` that holds `tokens` after it."""
    return Allowance(
        limit=rate.burst,
        remaining=math.floor(tokens),
        reset_seconds=math.ceil((rate.burst - tokens) / rate.per_second),
        retry_after=None if admitted else seconds_to_a_token(rate, tokens),
    )


def seconds_to_a_token(rate: Rate, tokens: float) -> int:
    """The whole seconds until a bucket of `rate` that holds `tokens` has one."""
    return max(1, math.ceil((1 - tokens) / rate.per_second))
