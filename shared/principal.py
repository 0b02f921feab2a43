"""Who is calling a service, as the gateway vouches for it.

The gateway authenticates the caller, decides what they may do, and forwards the
request with `X-Atrium-Principal`: the principal as JSON with a short expiry and a
random nonce, signed with HMAC-SHA256 under `ATRIUM_INTERNAL_SECRET` together with
the request's method, its target (the path and query as sent) and a SHA-256 digest of
its body. A service accepts no request without a valid signature, accepts each nonce
once (`SpentNonces`), and checks that the workspace in its path is the one the gateway
vouched for. A principal seen on the way is therefore good for nothing: not for
another request, another body, nor the same request again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Column, DateTime, MetaData, Table, Uuid

from contracts.permissions import Permission, Role, role_allows
from shared.db import Database
from shared.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

PRINCIPAL_HEADER = "x-atrium-principal"
SIGNATURE_LIFETIME_SECONDS = 60
SWEEP_SECONDS = 60.0
"""How often each process deletes the nonces of expired principals."""
_GATEWAY_ONLY = "This service is reached through the gateway only."


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str | None = None
    """The person's stable id (a token's `sub`); None for an API key."""
    email: str | None = None
    email_verified: bool = False
    api_key_id: uuid.UUID | None = None
    workspace_id: uuid.UUID | None = None
    """The workspace of the request's path that the gateway authorised, if any."""
    role: Role | None = None
    """The caller's effective role in `workspace_id` (a Super Admin of an ancestor acts
    as Super Admin here; an API key is a developer of its own workspace); None where no
    workspace is involved."""
    ancestor_super_admin: bool = False
    """The caller is a Super Admin of a strict ancestor of `workspace_id`: what acting
    on a sub-workspace from above (allocating to it, deleting it) requires."""

    @property
    def actor(self) -> str:
        return f"apikey:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "api_key_id": None if self.api_key_id is None else str(self.api_key_id),
            "workspace_id": None if self.workspace_id is None else str(self.workspace_id),
            "role": None if self.role is None else self.role.value,
            "ancestor_super_admin": self.ancestor_super_admin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Principal:
        return cls(
            user_id=data.get("user_id"),
            email=data.get("email"),
            email_verified=bool(data.get("email_verified")),
            api_key_id=uuid.UUID(data["api_key_id"]) if data.get("api_key_id") else None,
            workspace_id=uuid.UUID(data["workspace_id"]) if data.get("workspace_id") else None,
            role=Role(data["role"]) if data.get("role") else None,
            ancestor_super_admin=bool(data.get("ancestor_super_admin")),
        )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def request_target(raw_path: bytes, query_string: bytes) -> str:
    """A request's target as it was sent: its path and, when it has one, its query."""
    target = raw_path.decode("latin-1")
    return f"{target}?{query_string.decode('latin-1')}" if query_string else target


def _mac(secret: str, *, method: str, target: str, body: bytes, claims: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{method.upper()} {target}\n{digest}\n{claims}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def sign_principal(
    principal: Principal,
    *,
    method: str,
    target: str,
    body: bytes,
    secret: str,
    now: float | None = None,
) -> str:
    """The `X-Atrium-Principal` value for one request, good once: `target` is its path
    and query as they will be sent, `body` its bytes."""
    claims = {
        **principal.to_json(),
        "exp": int((now or time.time()) + SIGNATURE_LIFETIME_SECONDS),
        "nonce": str(uuid.uuid4()),
    }
    encoded = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = _mac(secret, method=method, target=target, body=body, claims=encoded)
    return f"{encoded}.{_b64(mac)}"


@dataclass(frozen=True, slots=True)
class VerifiedPrincipal:
    principal: Principal
    nonce: uuid.UUID
    """Good once: the service records it (`SpentNonces`) before it believes the rest."""
    expires_at: float


def verify_principal(
    header: str,
    *,
    method: str,
    target: str,
    body: bytes,
    secret: str,
    now: float | None = None,
) -> VerifiedPrincipal:
    try:
        encoded, signature = header.split(".", 1)
        expected = _mac(secret, method=method, target=target, body=body, claims=encoded)
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("signature")
        claims = json.loads(_unb64(encoded))
        expires_at = float(claims["exp"])
        if expires_at < (now or time.time()):
            raise ValueError("expired")
        return VerifiedPrincipal(
            principal=Principal.from_json(claims),
            nonce=uuid.UUID(claims["nonce"]),
            expires_at=expires_at,
        )
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as invalid:
        raise UnauthenticatedError(_GATEWAY_ONLY) from invalid


def nonce_table(metadata: MetaData) -> Table:
    """The nonces a service has accepted, in its own schema; a row can go once its
    principal has expired (`SpentNonces` deletes it)."""
    return Table(
        "principal_nonces",
        metadata,
        Column("nonce", Uuid, primary_key=True),
        Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    )


class SpentNonces:
    """Each principal's nonce, accepted once by any process of the service.

    The nonces live in the service's own schema (the table of `nonce_table`), so that
    every replica sees what the others accepted: an in-process set would let a
    principal through once per process. Spending one is a single INSERT that commits
    on its own, before the request's own transaction: a request that then fails has
    still used its principal, and the gateway signs every attempt anew. It is a
    prepared statement on a plain asyncpg connection (`Database.plain`): through a
    SQLAlchemy connection, its checkout's ping and statement handling cost three
    times its CPU.
    """

    # The table unqualified: the connection's search_path is the service's schema.
    _SPEND = (
        "INSERT INTO principal_nonces (nonce, expires_at) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING nonce"
    )
    _SWEEP = "DELETE FROM principal_nonces WHERE expires_at < $1"

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.clock = clock
        self._next_sweep = 0.0
        self._sweeping: set[asyncio.Task[None]] = set()

    async def spend(self, nonce: uuid.UUID, expires_at: float) -> bool:
        """True the first time `nonce` is spent, False ever after (until it expires)."""
        async with self.database.plain() as connection:
            inserted = await connection.fetchval(
                self._SPEND, nonce, datetime.fromtimestamp(expires_at, UTC)
            )
        first = inserted is not None
        self._sweep_when_due()
        return first

    def _sweep_when_due(self) -> None:
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        task = asyncio.create_task(self._sweep(now))
        self._sweeping.add(task)
        task.add_done_callback(self._sweeping.discard)

    async def _sweep(self, now: float) -> None:
        # A lifetime's margin: a replica whose clock runs behind this one's still
        # refuses what is deleted here as expired.
        cutoff = datetime.fromtimestamp(now - SIGNATURE_LIFETIME_SECONDS, UTC)
        try:
            async with self.database.plain() as connection:
                await connection.execute(self._SWEEP, cutoff)
        except Exception:  # the next sweep deletes what this one left
            logger.warning("could not delete the nonces of expired principals", exc_info=True)


def _spent_nonces(request: Request) -> SpentNonces:
    """The service's `SpentNonces`, made on first use from the app's runtime, so that
    every service app has one without being told."""
    state = request.app.state
    nonces: SpentNonces | None = getattr(state, "spent_nonces", None)
    if nonces is None:
        nonces = state.spent_nonces = SpentNonces(state.runtime.database)
    return nonces


async def current_principal(request: Request) -> Principal:
    header = request.headers.get(PRINCIPAL_HEADER)
    if not header:
        raise UnauthenticatedError(_GATEWAY_ONLY)
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    verified = verify_principal(
        header,
        method=request.method,
        target=request_target(
            request.scope.get("raw_path") or request.url.path.encode(),
            request.scope.get("query_string", b""),
        ),
        body=await request.body(),
        secret=settings.internal_secret,
    )
    if not await _spent_nonces(request).spend(verified.nonce, verified.expires_at):
        msg = "This principal was used already; each one is good for one request."
        raise UnauthenticatedError(msg)
    return verified.principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_user(principal: Principal) -> str:
    """The calling person's id; an API key cannot act as a person."""
    if principal.user_id is None:
        msg = "This operation is for signed-in people, not API keys."
        raise ForbiddenError(msg)
    return principal.user_id


def vouched_workspace(principal: Principal, workspace_id: uuid.UUID) -> None:
    """Defence in depth: the path's workspace must be the one the gateway authorised."""
    if principal.workspace_id != workspace_id:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)


def require_permission(principal: Principal, permission: Permission) -> None:
    if principal.role is None or not role_allows(principal.role, permission):
        msg = "Your role in this workspace does not allow this."
        raise ForbiddenError(msg)
