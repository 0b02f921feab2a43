"""Stored responses that hold a secret are sealed: unreadable in the table, and opened
only under the secret, scope and key they were sealed under."""

from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidTag

from shared.idempotency import ResponseSeal

BODY = {"id": "k1", "key": "atr_secretsecretsecretsecretsecret0123AB"}


def test_a_sealed_response_opens_to_what_was_sealed() -> None:
    seal = ResponseSeal("pepper", purpose="keys")
    stored = seal.seal(BODY, scope="user:ada POST /x", key="retry-1")

    assert seal.open(stored, scope="user:ada POST /x", key="retry-1") == BODY


def test_the_stored_form_holds_nothing_of_the_body() -> None:
    stored = json.dumps(ResponseSeal("pepper", purpose="keys").seal(BODY, scope="s", key="k"))

    assert "atr_" not in stored
    assert "secret" not in stored
    assert "k1" not in stored


def test_two_seals_of_one_body_differ() -> None:
    seal = ResponseSeal("pepper", purpose="keys")

    assert seal.seal(BODY, scope="s", key="k") != seal.seal(BODY, scope="s", key="k")


@pytest.mark.parametrize(
    ("secret", "purpose", "scope", "key"),
    [
        ("another pepper", "keys", "s", "k"),
        ("pepper", "another purpose", "s", "k"),
        ("pepper", "keys", "another scope", "k"),
        ("pepper", "keys", "s", "another key"),
    ],
)
def test_a_sealed_response_opens_only_where_it_was_sealed(
    secret: str, purpose: str, scope: str, key: str
) -> None:
    stored = ResponseSeal("pepper", purpose="keys").seal(BODY, scope="s", key="k")

    with pytest.raises(InvalidTag):
        ResponseSeal(secret, purpose=purpose).open(stored, scope=scope, key=key)
