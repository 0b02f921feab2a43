"""What becomes of an event that failed: retried later, or parked for an operator.

Pure rules, no I/O, so that they can be read (and tested) on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from shared.inbox.tables import ParkedState
from shared.settings import Settings


class EventNotYetApplicableError(Exception):
    """Raised by a handler for an event that came before one it depends on (events of
    different topics arrive in any order). The event is retried until the other one has
    come, for a while (`ATRIUM_INBOX_NOT_YET_APPLICABLE_SECONDS`), then parked."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    """A failing event is parked after this many attempts."""
    backoff_base: timedelta = timedelta(seconds=0.5)
    """The wait after the first failure; it doubles after each further one."""
    not_yet_applicable_for: timedelta = timedelta(seconds=60)
    """How long an event is retried while it is not applicable yet."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.inbox_max_attempts,
            backoff_base=timedelta(seconds=settings.inbox_backoff_base_seconds),
            not_yet_applicable_for=timedelta(seconds=settings.inbox_not_yet_applicable_seconds),
        )

    def backoff(self, attempts: int) -> timedelta:
        doublings: int = 2 ** max(attempts - 1, 0)
        return self.backoff_base * doublings


class FailureKind(Enum):
    FAILED = "failed"
    NOT_YET_APPLICABLE = "not yet applicable"
    UNKNOWN_EVENT = "unknown event"
    """Its type or version is not in the service's contracts: no retry can help."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One more failed attempt at an event."""

    attempts: int
    """Including this one."""
    at: datetime
    kind: FailureKind
    dependency_deadline_at: datetime | None
    """Set by an earlier attempt that was not applicable yet."""
    requested_by_operator: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    state: ParkedState
    next_attempt_at: datetime | None
    dependency_deadline_at: datetime | None


def judge(failure: Failure, policy: RetryPolicy) -> Verdict:
    """Retry later, or park. An operator's retry parks again at the first failure: they
    asked for one attempt and wait for its outcome."""
    if failure.requested_by_operator or failure.kind is FailureKind.UNKNOWN_EVENT:
        return Verdict(ParkedState.PARKED, None, None)
    retry_at = failure.at + policy.backoff(failure.attempts)
    if failure.kind is FailureKind.NOT_YET_APPLICABLE:
        deadline = failure.dependency_deadline_at or failure.at + policy.not_yet_applicable_for
        if failure.at >= deadline:
            return Verdict(ParkedState.PARKED, None, deadline)
        return Verdict(ParkedState.RETRYING, min(retry_at, deadline), deadline)
    if failure.attempts >= policy.max_attempts:
        return Verdict(ParkedState.PARKED, None, None)
    return Verdict(ParkedState.RETRYING, retry_at, None)
