"""The gateway's own settings, on top of the shared ones."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class GatewaySettings(Settings):
    jwks_url: str | None = Field(
        default=None,
        description="JWKS of an identity provider whose RS256 user tokens the gateway "
        "accepts, next to the HS256 tokens signed with `ATRIUM_JWT_SECRET`.",
    )
    rate_limit_per_second: float = Field(
        default=50.0, gt=0, description="Requests per second each caller may sustain."
    )
    rate_limit_burst: int = Field(
        default=100, ge=1, description="Requests a caller may send at once before waiting."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=0, description="Largest request body.")
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a service may take to answer."
    )
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    access_check_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long identity may take to say whether a caller the projection "
        "does not know yet has access (read-your-writes).",
    )
