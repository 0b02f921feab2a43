"""`Idempotency-Key`: a retried write returns its first response and changes nothing
more; the same key with a different request is refused.

The key is reserved inside the command's own transaction, before the command
runs. A concurrent retry with the same key waits on that reservation; once the
first commits, it finds the stored response and returns it; if the first rolled
back, the retry runs as if it were first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Depends, Header, Request
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import problems
from shared.errors import DomainError
from shared.json_body import read_json
from shared.principal import CurrentPrincipal, Principal

MAX_KEY_LENGTH = 255


class IdempotencyKeyReusedError(DomainError):
    problem = problems.IDEMPOTENCY_KEY_REUSED

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request.")


class InvalidIdempotencyKeyError(DomainError):
    problem = problems.VALIDATION_FAILED


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("scope", Text, primary_key=True, comment="Who called, and which operation."),
        Column("key", Text, primary_key=True),
        Column("fingerprint", Text, nullable=False, comment="SHA-256 of the request."),
        Column("status", Integer, nullable=True),
        Column("response", JSONB, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def fingerprint(*parts: Any) -> str:
    """A stable digest of what makes two requests the same request."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: Any


SEALED = "sealed"
"""The one member of a sealed stored response: nonce and ciphertext, in base64."""
_NONCE_BYTES = 12


class ResponseSeal:
    """Encrypts and authenticates stored responses (AES-256-GCM), under a key derived
    with HKDF-SHA256 from a service secret and what the key is for: the secret itself
    never encrypts anything, and another purpose derives another key."""

    def __init__(self, secret: str, *, purpose: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"atrium idempotency responses: {purpose}".encode(),
        ).derive(secret.encode())
        self._aead = AESGCM(derived)

    def seal(self, body: Any, *, scope: str, key: str) -> dict[str, str]:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(body, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, _bound_to(scope, key))
        return {SEALED: base64.b64encode(nonce + sealed).decode()}

    def open(self, stored: Any, *, scope: str, key: str) -> Any:
        """The body `seal` was given; raises `cryptography.exceptions.InvalidTag` for
        anything it did not seal under this scope and key."""
        raw = base64.b64decode(stored[SEALED])
        plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound_to(scope, key))
        return json.loads(plain)


def _bound_to(scope: str, key: str) -> bytes:
    return json.dumps([scope, key]).encode()


class IdempotencyKeys:
    """The keys of one service, in its `idempotency_table`; with a `seal`, every
    response is stored sealed and opened on replay."""

    def __init__(self, table: Table, *, seal: ResponseSeal | None = None) -> None:
        self.table = table
        self.seal = seal

    async def reserve(
        self, session: AsyncSession, *, scope: str, key: str, request_fingerprint: str
    ) -> StoredResponse | None:
        """Reserve `key` for this request, or return the response of the request that
        used it first. Call it first thing in the command's transaction."""
        if not key or len(key) > MAX_KEY_LENGTH:
            msg = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters."
            raise InvalidIdempotencyKeyError(msg)
        reserved = await session.execute(
            insert(self.table)
            .values(scope=scope, key=key, fingerprint=request_fingerprint)
            .on_conflict_do_nothing()
            .returning(self.table.c.key),
        )
        if reserved.first() is not None:
            return None
        first = (
            await session.execute(
                select(self.table.c.fingerprint, self.table.c.status, self.table.c.response).where(
                    self.table.c.scope == scope, self.table.c.key == key
                ),
            )
        ).one()
        if first.fingerprint != request_fingerprint:
            raise IdempotencyKeyReusedError
        body = first.response
        if self.seal is not None and body is not None:
            body = self.seal.open(body, scope=scope, key=key)
        return StoredResponse(status=first.status, body=body)

    async def remember(
        self, session: AsyncSession, *, scope: str, key: str, status: int, body: Any
    ) -> None:
        """Store the response of the request that reserved `key`, in its transaction."""
        if self.seal is not None and body is not None:
            body = self.seal.seal(body, scope=scope, key=key)
        await session.execute(
            update(self.table)
            .where(self.table.c.scope == scope, self.table.c.key == key)
            .values(status=status, response=body),
        )


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A write that carried an `Idempotency-Key`."""

    scope: str
    """Who asked, and for what: e.g. `user:42 POST /v1/workspaces`."""
    key: str
    fingerprint: str
    """What makes a retry the same request: the query and the whole body."""


def request_fingerprint(query: str, body: bytes) -> str:
    """The query and the body, with a JSON body canonicalised so that a retry that only
    reorders keys or spacing is still the same request."""
    try:
        canonical: Any = read_json(body) if body else None
    except ValueError:  # not JSON, or JSON refused (nested past reason, keys twice)
        canonical = body.hex()
    return fingerprint(query, canonical)


async def _idempotent_request(
    request: Request, caller: Principal, key: str | None
) -> IdempotentRequest | None:
    if key is None:
        return None
    return IdempotentRequest(
        scope=f"{caller.actor} {request.method} {request.url.path}",
        key=key,
        fingerprint=request_fingerprint(request.url.query, await request.body()),
    )


_KEY_DESCRIPTION = "A retry with the same key and body returns the first response."


async def optional_idempotency(
    request: Request,
    caller: CurrentPrincipal,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description=_KEY_DESCRIPTION,
        ),
    ] = None,
) -> IdempotentRequest | None:
    return await _idempotent_request(request, caller, key)


async def required_idempotency(
    request: Request,
    caller: CurrentPrincipal,
    key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description=_KEY_DESCRIPTION,
        ),
    ],
) -> IdempotentRequest:
    request_ = await _idempotent_request(request, caller, key)
    assert request_ is not None
    return request_


Idempotency = Annotated[IdempotentRequest | None, Depends(optional_idempotency)]
"""An endpoint parameter: the request's `Idempotency-Key`, if it sent one, scoped to the
caller, the method and the path. Hand it to `UnitsOfWork.run`."""
RequiredIdempotency = Annotated[IdempotentRequest, Depends(required_idempotency)]
"""The same, for writes that must carry a key (spends)."""
