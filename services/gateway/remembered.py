"""Answers of the service that owns something the gateway's projection does not know
yet (read-your-writes): asked once, then remembered for a while.

A positive answer stands in for the projection until an event about the same thing
arrives (which makes the projection the authority again) or for `positive_seconds` at
most. A negative one is remembered only for `negative_seconds`: long enough to spare
the owner a flood of probes for things that do not exist, short enough not to hide one
made a moment later. An answer that comes back while an event was applied may be older
than the event: it serves its own request only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_REMEMBERED = 100_000
"""Remembered answers at most; beyond that the oldest are forgotten first."""


@dataclass(frozen=True, slots=True)
class _Remembered(Generic[V]):
    answer: V | None
    until: float


class RememberedAnswers(Generic[K, V]):
    def __init__(
        self,
        *,
        positive_seconds: float,
        negative_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_remembered: int = MAX_REMEMBERED,
    ) -> None:
        self.positive_seconds = positive_seconds
        self.negative_seconds = negative_seconds
        self.clock = clock
        self.max_remembered = max_remembered
        self._remembered: dict[K, _Remembered[V]] = {}
        self._events_applied = 0

    async def ask(self, key: K, owner: Callable[[], Awaitable[V | None]]) -> V | None:
        """The remembered answer for `key`, or the owner's (raises when it raises)."""
        now = self.clock()
        remembered = self._remembered.get(key)
        if remembered is not None and remembered.until > now:
            return remembered.answer
        events_before = self._events_applied
        answer = await owner()
        if self._events_applied == events_before:
            self._remember(key, answer, now)
        return answer

    def forget(self, about: Callable[[K, V | None], bool]) -> None:
        """An event was applied: forget the answers it is `about` (and the expired)."""
        # Few answers are remembered at a time (only until an event catches up, or for a
        # moment), so a scan that also drops the expired ones costs less than an index.
        self._events_applied += 1
        now = self.clock()
        for key in [
            key
            for key, entry in self._remembered.items()
            if entry.until <= now or about(key, entry.answer)
        ]:
            del self._remembered[key]

    def _remember(self, key: K, answer: V | None, now: float) -> None:
        if len(self._remembered) >= self.max_remembered:
            for expired in [k for k, entry in self._remembered.items() if entry.until <= now]:
                del self._remembered[expired]
            while len(self._remembered) >= self.max_remembered:
                del self._remembered[next(iter(self._remembered))]
        seconds = self.positive_seconds if answer is not None else self.negative_seconds
        self._remembered[key] = _Remembered(answer, now + seconds)
