"""Per-caller token buckets: each caller may send `burst` requests at once and
`per_second` on average."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CALLERS = 100_000
"""Buckets kept at most; full buckets (callers at rest) are the first forgotten."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        *,
        per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, caller: str) -> int | None:
        """Take one token for `caller`: None if it had one, else the whole seconds until
        it will have one."""
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= MAX_CALLERS:
                self._forget_rested(now)
            bucket = self._buckets[caller] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            self._refill(bucket, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return self._seconds_to_a_token(bucket)

    def waiting(self, caller: str) -> int | None:
        """The whole seconds until `caller` has a token again, or None if it has one;
        takes none."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            return None
        self._refill(bucket, self.clock())
        return None if bucket.tokens >= 1 else self._seconds_to_a_token(bucket)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        bucket.tokens = min(
            float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second
        )
        bucket.updated = now

    def _seconds_to_a_token(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.per_second))

    def _forget_rested(self, now: float) -> None:
        rested = [
            caller
            for caller, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.per_second >= self.burst
        ]
        for caller in rested or list(self._buckets):
            del self._buckets[caller]
