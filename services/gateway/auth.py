"""Who is calling: a user's bearer token (JWT), or an API key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from shared.errors import UnauthenticatedError
from shared.principal import Principal
from shared.settings import Settings

API_KEY_PREFIX = "atr_"
TOKEN_LIFETIME_SECONDS = 12 * 3600


def credentials_from(authorization: str | None, x_api_key: str | None) -> str:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    msg = "Send `Authorization: Bearer <token or API key>`."
    raise UnauthenticatedError(msg)


def authenticate(credentials: str, settings: Settings) -> Principal:
    if credentials.startswith(API_KEY_PREFIX):
        msg = "API keys are not accepted yet."
        raise UnauthenticatedError(msg)
    return principal_from_token(credentials, settings)


def principal_from_token(token: str, settings: Settings) -> Principal:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": ["sub", "exp"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.PyJWTError as invalid:
        msg = f"The token is not valid: {invalid}."
        raise UnauthenticatedError(msg) from invalid
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip():
        msg = "The token has no subject."
        raise UnauthenticatedError(msg)
    email = claims.get("email")
    return Principal(
        user_id=subject,
        email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
        email_verified=claims.get("email_verified") is True,
    )


def development_token(
    email: str, settings: Settings, *, lifetime: int = TOKEN_LIFETIME_SECONDS
) -> str:
    """A token for `email`, with a subject that stays the same for the same email."""
    normalised = email.strip().lower()
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{normalised}")),
        "email": normalised,
        "email_verified": True,
        "iat": now,
        "exp": now + lifetime,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
