"""Development tokens: HS256 user tokens signed with `ATRIUM_JWT_SECRET`, which the
gateway accepts like any other. `atrium token EMAIL`, the console's development sign-in
and the tests make them here; production's tokens come from an identity provider."""

from __future__ import annotations

import time
import uuid

import jwt

from shared.settings import Settings

TOKEN_LIFETIME_SECONDS = 12 * 3600


def development_user_id(email: str) -> str:
    """The subject of `email`'s development tokens: the id Atrium knows them by."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email.strip().lower()}"))


def development_token(
    email: str, settings: Settings, *, lifetime: int = TOKEN_LIFETIME_SECONDS
) -> str:
    """A token for `email`, with a subject that stays the same for the same email."""
    normalised = email.strip().lower()
    now = int(time.time())
    claims = {
        "sub": development_user_id(normalised),
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
