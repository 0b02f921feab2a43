"""Who is calling a service, as the gateway vouches for it.

The gateway authenticates the caller, decides what they may do, and forwards the
request with `X-Atrium-Principal`: the principal as JSON, signed with HMAC-SHA256
under `ATRIUM_INTERNAL_SECRET` together with the request's method and path and a
short expiry. A service accepts no request without a valid signature, and checks
that the workspace in its path is the one the gateway vouched for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from contracts.permissions import Permission, Role, role_allows
from shared.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from shared.settings import Settings, get_settings

PRINCIPAL_HEADER = "x-atrium-principal"
SIGNATURE_LIFETIME_SECONDS = 60


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
    as Super Admin here); None for an API key or where no workspace is involved."""
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


def _mac(secret: str, method: str, path: str, body: str) -> bytes:
    message = f"{method.upper()} {path}\n{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def sign_principal(
    principal: Principal, *, method: str, path: str, secret: str, now: float | None = None
) -> str:
    """The `X-Atrium-Principal` value for one request."""
    claims = {**principal.to_json(), "exp": int((now or time.time()) + SIGNATURE_LIFETIME_SECONDS)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, method, path, body))}"


def verify_principal(
    header: str, *, method: str, path: str, secret: str, now: float | None = None
) -> Principal:
    try:
        body, signature = header.split(".", 1)
        expected = _mac(secret, method, path, body)
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("signature")
        claims = json.loads(_unb64(body))
        if float(claims["exp"]) < (now or time.time()):
            raise ValueError("expired")
        return Principal.from_json(claims)
    except (ValueError, KeyError, TypeError) as invalid:
        msg = "This service is reached through the gateway only."
        raise UnauthenticatedError(msg) from invalid


async def current_principal(request: Request) -> Principal:
    header = request.headers.get(PRINCIPAL_HEADER)
    if not header:
        msg = "This service is reached through the gateway only."
        raise UnauthenticatedError(msg)
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return verify_principal(
        header, method=request.method, path=request.url.path, secret=settings.internal_secret
    )


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
