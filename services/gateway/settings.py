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
    address_refusals_per_second: float = Field(
        default=10.0,
        gt=0,
        description="Requests refused before their caller is known (unauthenticated, no "
        "such route) that one client address may make per second on average...",
    )
    address_refusals_burst: int = Field(
        default=100,
        ge=1,
        description="...and at once; past them, its requests are 429 until it slows down "
        "(except those with credentials the gateway has verified already).",
    )
    max_connections_per_address: int = Field(
        default=100,
        ge=1,
        description="Connections one client address may hold open; the next ones are "
        "closed as soon as they are accepted.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=0, description="Largest request body.")
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a service may take to answer."
    )
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    usage_flush_seconds: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="How often the requests made with API keys are written out as usage "
        "events; a killed process loses at most this long's worth.",
    )
    access_check_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long identity may take to say whether a caller the projection "
        "does not know yet has access, and apikeys whether a key it does not know yet "
        "exists (read-your-writes).",
    )
    shared_rate_limits: bool = Field(
        default=True,
        description="Keep the buckets per caller and per key in PostgreSQL, shared by "
        "every gateway process, so that the limits hold across them; off: each process "
        "keeps its own (N processes allow N times the limits).",
    )
