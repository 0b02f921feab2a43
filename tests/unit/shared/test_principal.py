"""A signed principal is good for the one request it was made for: its method, its
path and query, its body, for a minute, with a nonce of its own."""

from __future__ import annotations

import time
from typing import Any

import pytest

from contracts.permissions import Role
from shared.errors import UnauthenticatedError
from shared.principal import (
    Principal,
    VerifiedPrincipal,
    request_target,
    sign_principal,
    verify_principal,
)

SECRET = "unit-test-internal-secret"
PRINCIPAL = Principal(user_id="ann", email="ann@example.test", role=Role.VIEWER)
METHOD, TARGET, BODY = "POST", "/v1/workspaces?x=1", b'{"name":"A"}'


def signed(*, now: float | None = None) -> str:
    return sign_principal(
        PRINCIPAL, method=METHOD, target=TARGET, body=BODY, secret=SECRET, now=now
    )


def verified(
    header: str,
    *,
    method: str = METHOD,
    target: str = TARGET,
    body: bytes = BODY,
    secret: str = SECRET,
) -> VerifiedPrincipal:
    return verify_principal(header, method=method, target=target, body=body, secret=secret)


def test_the_request_it_was_signed_for_gets_the_principal_and_a_nonce() -> None:
    first, second = verified(signed()), verified(signed())

    assert first.principal == PRINCIPAL
    assert first.expires_at > time.time()
    assert first.nonce != second.nonce


@pytest.mark.parametrize(
    "request_made",
    [
        {"method": "PUT"},
        {"target": "/v1/workspaces"},
        {"target": "/v1/workspaces?x=2"},
        {"target": "/v1/workspaces/other?x=1"},
        {"body": b'{"name":"B"}'},
        {"body": b""},
        {"secret": "another-secret"},
    ],
    ids=lambda changed: "another " + next(iter(changed)),
)
def test_any_other_request_is_refused(request_made: dict[str, Any]) -> None:
    with pytest.raises(UnauthenticatedError):
        verified(signed(), **request_made)


def test_an_expired_principal_is_refused() -> None:
    with pytest.raises(UnauthenticatedError):
        verified(signed(now=time.time() - 61))


@pytest.mark.parametrize("header", ["", "x", "x.y", "a.b.c", signed() + "x", "é.é"])
def test_a_malformed_principal_is_refused(header: str) -> None:
    with pytest.raises(UnauthenticatedError):
        verified(header)


def test_the_target_is_the_path_and_the_query_as_sent() -> None:
    assert request_target(b"/v1/a%20b", b"") == "/v1/a%20b"
    assert request_target(b"/v1/a", b"limit=5&cursor=x%3D") == "/v1/a?limit=5&cursor=x%3D"
