"""Who is calling: a user's bearer token (JWT), or an API key (verified by
`services.gateway.keys`, not here).

User tokens are HS256, signed with `ATRIUM_JWT_SECRET`, or RS256, signed by a key of
the identity provider whose key set `ATRIUM_JWKS_URL` publishes. Each algorithm is
checked only against its own kind of key: a token cannot pick HS256 and pass the
provider's public key off as the secret. `alg=none` and every other algorithm are
refused.

Whatever a token holds, reading it either names a caller or is a 401: its time claims
must be numbers (`exp` required, within `MAX_TOKEN_LIFETIME_SECONDS` from now; `iat`
and `nbf` when present), and no malformed token gets further than that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt

# Re-exported: `atrium token` and the tests sign development tokens through the gateway's module.
from shared.errors import UnauthenticatedError
from shared.principal import Principal
from shared.settings import Settings

API_KEY_PREFIX = "atr_"
JWKS_CACHE_SECONDS = 300
MAX_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600
"""The latest `exp` accepted, from now: what identity providers allow at most (30
days), so that a token made to live for ever (`exp` in the year 9999) is refused."""
CLOCK_SKEW_SECONDS = 60
"""How far ahead of the gateway's clock a token's `iat` or `nbf` may be."""
_LATEST_MOMENT = 253_402_300_800
"""The year 10000 in seconds since the epoch: past any NumericDate that means a time
(NaN and infinity fail the comparison too)."""
REMEMBERED_TOKENS = 10_000
"""Verified tokens remembered until they expire: checking a signature again on every
request of a client costs more than the rest of the gateway's decision."""


def credentials_from(authorization: str | None, x_api_key: str | None) -> str:
    """`Authorization: Bearer …` (a token or an API key) first; `X-API-Key` when there is
    no `Authorization`, for API keys only."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    elif x_api_key and x_api_key.strip():
        if not x_api_key.strip().startswith(API_KEY_PREFIX):
            msg = f"X-API-Key takes API keys (`{API_KEY_PREFIX}…`); send a user token as Bearer."
            raise UnauthenticatedError(msg)
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
        """The caller of a user token."""
        if credentials.startswith(API_KEY_PREFIX):
            msg = "An API key is not a user token."
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
        except Exception as invalid:  # whatever the reason, a token that cannot be read
            raise _not_valid(invalid) from invalid
        if algorithm == "HS256":
            claims = self._decode(credentials, self.settings.jwt_secret)
        elif algorithm == "RS256" and self._jwks is not None:
            # The key set is fetched (and then cached) with a blocking HTTP call.
            key = await asyncio.to_thread(self._signing_key, self._jwks, credentials)
            claims = self._decode(credentials, key, algorithm="RS256")
        else:
            msg = f"Tokens signed with {algorithm!r} are not accepted."
            raise UnauthenticatedError(msg)
        expires_at = _checked_times(claims, now=self.clock())
        return principal_from_claims(claims), expires_at

    @staticmethod
    def _signing_key(jwks: jwt.PyJWKClient, token: str) -> Any:
        try:
            return jwks.get_signing_key_from_jwt(token).key
        except Exception as invalid:  # whatever the reason, a token whose key is not found
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
                    # PyJWT turns these claims into integers as it finds them, and
                    # some values make that fail with other than its own errors:
                    # `_checked_times` checks them instead.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except Exception as invalid:  # whatever the reason, a token that cannot be read
            raise _not_valid(invalid) from invalid
        return claims


def _not_valid(reason: Exception) -> UnauthenticatedError:
    detail = str(reason) if isinstance(reason, jwt.PyJWTError) else "it cannot be read"
    return UnauthenticatedError(f"The token is not valid: {detail}.")


def _checked_times(claims: dict[str, Any], *, now: float) -> float:
    """The token's expiry, once its time claims are numbers that make sense now."""
    expires_at = _numeric_date(claims, "exp")
    if expires_at is None or expires_at <= now:
        msg = "The token has expired."
        raise UnauthenticatedError(msg)
    if expires_at > now + MAX_TOKEN_LIFETIME_SECONDS:
        msg = f"The token may live {MAX_TOKEN_LIFETIME_SECONDS // 86400} days at most."
        raise UnauthenticatedError(msg)
    for name in ("iat", "nbf"):
        moment = _numeric_date(claims, name)
        if moment is not None and moment > now + CLOCK_SKEW_SECONDS:
            msg = f"The token's `{name}` is in the future."
            raise UnauthenticatedError(msg)
    return expires_at


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim (seconds since the epoch, RFC 7519) as a float, None when it
    is absent; a 401 when it is not a finite number of a sane size."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"The token's `{name}` is not a number."
        raise UnauthenticatedError(msg)
    # Compared before any conversion: a 400-digit integer does not fit in a float.
    if not -_LATEST_MOMENT < value < _LATEST_MOMENT:
        msg = f"The token's `{name}` is not a moment."
        raise UnauthenticatedError(msg)
    return float(value)


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
