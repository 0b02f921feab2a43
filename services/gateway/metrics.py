"""The gateway's own metrics, next to those every service reports (`shared.metrics`):
what it refuses before a request reaches a service, and what verifying an API key
costs (a lookup in its projection, or a question to apikeys for a key it does not know
yet)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import wraps
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Histogram

from contracts.problems import ProblemType
from shared.settings import ServiceName

SERVICE = ServiceName.GATEWAY.value

P = ParamSpec("P")
T = TypeVar("T")


class Limit(StrEnum):
    """Which limit refused a request with 429."""

    CALLER = "caller"
    """The caller's own requests per second (a person, or a key)."""
    KEY = "key"
    """An API key's own `rate_limit`."""
    ADDRESS = "address"
    """A client address's budget of requests refused before their caller is known."""


AUTHENTICATION_REFUSALS = Counter(
    "atrium_gateway_authentication_refusals",
    "Requests refused with 401: no credentials, or a token or API key that is not valid.",
    ["service"],
)
AUTHORIZATION_REFUSALS = Counter(
    "atrium_gateway_authorization_refusals",
    "Requests of a known caller refused by role or by the workspace tree, by problem type "
    "(a foreign workspace is `not-found`).",
    ["service", "problem"],
)
RATE_LIMIT_REFUSALS = Counter(
    "atrium_gateway_rate_limit_refusals",
    "Requests refused with 429, by the limit that refused them (caller, key, address).",
    ["service", "limit"],
)
RATE_LIMITS_DECIDED_ALONE = Counter(
    "atrium_gateway_rate_limits_decided_alone",
    "Requests whose rate limits a process decided with its own buckets because PostgreSQL "
    "could not answer: while this moves, N processes allow up to N times the limits.",
    ["service"],
)
KEY_VERIFICATION_SECONDS = Histogram(
    "atrium_gateway_key_verification_duration_seconds",
    "Time to verify a presented API key: checksum, HMAC and lookup, and for a key the "
    "projection does not know yet, apikeys' answer.",
    ["service"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
)

# Started at 0, so that a rate over them exists before the first refusal does.
AUTHENTICATION_REFUSALS.labels(SERVICE)
RATE_LIMITS_DECIDED_ALONE.labels(SERVICE)
for _limit in Limit:
    RATE_LIMIT_REFUSALS.labels(SERVICE, _limit.value)


def authentication_refused() -> None:
    AUTHENTICATION_REFUSALS.labels(SERVICE).inc()


def authorization_refused(problem: ProblemType) -> None:
    AUTHORIZATION_REFUSALS.labels(SERVICE, problem.slug).inc()


def rate_limited(limit: Limit) -> None:
    RATE_LIMIT_REFUSALS.labels(SERVICE, limit.value).inc()


def rate_limits_decided_alone() -> None:
    RATE_LIMITS_DECIDED_ALONE.labels(SERVICE).inc()


def timed_key_verification(
    verify: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Observe how long each verification takes, whether it admits or refuses the key
    (prometheus-client's own `time()` would time only the coroutine's creation)."""
    histogram = KEY_VERIFICATION_SECONDS.labels(SERVICE)

    @wraps(verify)
    async def timed_verify(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        try:
            return await verify(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    return timed_verify
