"""apikeys' rules, free of I/O: a key's status, rotation's grace, usage periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from contracts import problems
from contracts.events.apikeys import KeyRateLimit
from shared.errors import DomainError
from shared.inbox import EventNotYetApplicableError

MAX_GRACE_SECONDS = 7 * 24 * 3600
"""A rotated key works at most a week past its rotation."""
MAX_MONTHLY_CREDIT_LIMIT = 10**12
USAGE_DEFAULT_DAYS = 30
"""Usage without `from` covers the last 30 days, today included."""
_DEFAULT_SPAN = timedelta(days=USAGE_DEFAULT_DAYS - 1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_day(moment: datetime) -> date:
    """The UTC day of a moment (one without a zone is taken as UTC)."""
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


class KeyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    """Its workspace's `api_access` is off."""
    REVOKED = "revoked"
    """Revoked, or rotated and past its grace, or its workspace deleted."""
    EXPIRED = "expired"


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class KeyState:
    """What decides a key's status."""

    expires_at: datetime | None
    revoked_at: datetime | None
    """When revocation takes (or took) effect: now, or the end of a rotation's grace."""
    suspended: bool

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        if self.suspended:
            return KeyStatus.SUSPENDED
        return KeyStatus.ACTIVE

    def is_live(self, now: datetime) -> bool:
        """Neither revoked (in effect) nor expired: suspending or revoking it changes
        something."""
        return self.status(now) in {KeyStatus.ACTIVE, KeyStatus.SUSPENDED}

    def may_rotate(self, now: datetime) -> bool:
        """Only a key nobody has revoked or rotated yet, and that has not expired."""
        return self.revoked_at is None and not (
            self.expires_at is not None and self.expires_at <= now
        )


@dataclass(frozen=True, slots=True)
class KeySettings:
    """What a key carries over to the key that replaces it."""

    name: str
    expires_at: datetime | None
    rate_limit: KeyRateLimit | None
    monthly_credit_limit: int | None


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        msg = "expires_at must be in the future."
        raise ExpiryInThePastError(
            msg, errors=[{"field": "expires_at", "message": msg, "type": "in_the_past"}]
        )


def end_of_grace(now: datetime, grace_seconds: int) -> datetime:
    return now + timedelta(seconds=grace_seconds)


@dataclass(frozen=True, slots=True)
class UsagePeriod:
    """UTC days, both ends included."""

    first: date
    last: date

    @classmethod
    def of(cls, first: date | None, last: date | None, *, today: date) -> UsagePeriod:
        """`from` and `to` as asked; the last 30 days to today when left out. Any length
        is taken: the answer has a row per day a key was used, not per day of the period,
        and a period whose `from` is after its `to` holds no day (as billing's usage)."""
        last = last or today
        if first is None:
            first = last - _DEFAULT_SPAN if last - date.min >= _DEFAULT_SPAN else date.min
        return cls(first, last)


def counts_as_error(status: int) -> bool:
    """A request counts as an error when the caller got a 4xx or 5xx answer: a refusal
    (a 402 for credits, a 429 past the key's rate limit) is something its owner wants
    to see as much as a failure."""
    return status >= 400


class ApiAccessDisabledError(DomainError):
    problem = problems.API_ACCESS_DISABLED


class KeyNotActiveError(DomainError):
    problem = problems.KEY_NOT_ACTIVE


class WorkspaceDeletingError(DomainError):
    problem = problems.WORKSPACE_DELETING


class ExpiryInThePastError(DomainError):
    problem = problems.VALIDATION_FAILED


class WorkspaceNotKnownYetError(EventNotYetApplicableError):
    """An event about a workspace whose `workspace.created` has not arrived yet: retried
    until it has, not dropped."""
