"""Who is calling: a user's bearer token (JWT), or an API key.

User tokens are HS256, signed with `ATRIUM_JWT_SECRET`, or RS256, signed by a key of
the identity provider whose key set `ATRIUM_JWKS_URL` publishes. Each algorithm is
checked only against its own kind of key: a token cannot pick HS256 and pass the
provider's public key off as the secret. `alg=none` and every other algorithm are
refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from shared.errors import UnauthenticatedError
from shared.principal import Principal
from shared.settings import Settings

API_KEY_PREFIX = "atr_"
TOKEN_LIFETIME_SECONDS = 12 * 3600
JWKS_CACHE_SECONDS = 300
REMEMBERED_TOKENS = 10_000
"""Verified tokens remembered until they expire: checking a signature again on every
request of a client costs more than the rest of the gateway's decision."""


def credentials_from(authorization: str | None, x_api_key: str | None) -> str:
    """`Authorization: Bearer …` first; `X-API-Key` when there is no `Authorization`."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    elif x_api_key and x_api_key.strip():
        return x_api_key.strip()
    msg = "Send `Authorization: Bearer <token or API key>`."
    raise UnauthenticatedError(msg)


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        *,
        jwks_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._jwks = (
            None
            if jwks_url is None
            else jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS)
        )
        self._verified: dict[str, tuple[Principal, float]] = {}

    def remembered(self, credentials: str) -> Principal | None:
        """The caller of credentials verified already and not expired since, with no
        work beyond a lookup; None for any others."""
        remembered = self._verified.get(credentials)
        if remembered is not None and remembered[1] > self.clock():
            return remembered[0]
        return None

    async def authenticate(self, credentials: str) -> Principal:
        if credentials.startswith(API_KEY_PREFIX):
            msg = "API keys are not accepted yet."
            raise UnauthenticatedError(msg)
        remembered = self.remembered(credentials)
        if remembered is not None:
            return remembered
        principal, expires_at = await self._verify(credentials)
        if len(self._verified) >= REMEMBERED_TOKENS:
            self._verified.clear()
        self._verified[credentials] = (principal, expires_at)
        return principal

    async def _verify(self, credentials: str) -> tuple[Principal, float]:
        try:
            algorithm = jwt.get_unverified_header(credentials).get("alg")
        except jwt.PyJWTError as invalid:
            msg = f"The token is not valid: {invalid}."
            raise UnauthenticatedError(msg) from invalid
        if algorithm == "HS256":
            claims = self._decode(credentials, self.settings.jwt_secret)
        elif algorithm == "RS256" and self._jwks is not None:
            # The key set is fetched (and then cached) with a blocking HTTP call.
            key = await asyncio.to_thread(self._signing_key, self._jwks, credentials)
            claims = self._decode(credentials, key, algorithm="RS256")
        else:
            msg = f"Tokens signed with {algorithm!r} are not accepted."
            raise UnauthenticatedError(msg)
        expires_at = float(claims["exp"])
        if expires_at <= self.clock():
            msg = "The token has expired."
            raise UnauthenticatedError(msg)
        return principal_from_claims(claims), expires_at

    @staticmethod
    def _signing_key(jwks: jwt.PyJWKClient, token: str) -> Any:
        try:
            return jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as invalid:
            msg = f"The token's signing key is not known: {invalid}."
            raise UnauthenticatedError(msg) from invalid

    def _decode(self, token: str, key: Any, *, algorithm: str = "HS256") -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": self.settings.jwt_audience is not None,
                },
            )
        except jwt.PyJWTError as invalid:
            msg = f"The token is not valid: {invalid}."
            raise UnauthenticatedError(msg) from invalid
        return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
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
