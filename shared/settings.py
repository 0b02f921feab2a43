"""Settings from the environment (prefix `ATRIUM_`), with embedded-runner defaults.

Every default points at what `make run` starts on this machine, so the system
runs with no configuration at all; every one can be overridden to point at an
external PostgreSQL or Kafka.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceName(StrEnum):
    IDENTITY = "identity"
    BILLING = "billing"
    ASSETS = "assets"
    APIKEYS = "apikeys"
    GATEWAY = "gateway"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql://atrium:atrium@127.0.0.1:55432/atrium",
        description="Administrative connection: provisioning creates each service's schema "
        "and login role through it. Services never use it.",
    )
    identity_database_url: str | None = Field(
        default=None, description="identity's own login (default: derived, see README)."
    )
    billing_database_url: str | None = None
    assets_database_url: str | None = None
    apikeys_database_url: str | None = None
    gateway_database_url: str | None = None

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092", description="Comma-separated Kafka bootstrap servers."
    )
    kafka_topic_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)

    gateway_url: str = "http://127.0.0.1:8000"
    identity_url: str = "http://127.0.0.1:8101"
    billing_url: str = "http://127.0.0.1:8102"
    assets_url: str = "http://127.0.0.1:8103"
    apikeys_url: str = "http://127.0.0.1:8104"

    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a client may take to send a request's line and headers; past "
        "it the answer is 408 and the connection is closed.",
    )
    http_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a client may take to send a request's body once its headers "
        "have arrived; past it the answer is 408 and the connection is closed.",
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line and headers together; larger ones get 431.",
    )

    jwt_secret: str = Field(
        default="atrium-development-jwt-secret-change-me",
        description="HS256 secret of user tokens. Set a long random value in production.",
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss`, if set.")
    jwt_audience: str | None = Field(default=None, description="Required `aud`, if set.")

    internal_secret: str = Field(
        default="atrium-development-internal-secret-change-me",
        description="Signs the principal the gateway forwards to services. Set a long "
        "random value in production.",
    )

    default_plan_code: str = "default"
    default_plan_seats: int = Field(default=5, ge=0, description="Seats of a new billing root.")
    default_plan_avatar_slots: int = Field(default=3, ge=0)
    default_plan_generative_credits: int = Field(default=0, ge=0)
    default_plan_api_credits: int = Field(default=0, ge=0)

    log_level: str = "INFO"
    log_json: bool = Field(default=True, description="JSON log lines (false: plain text).")

    outbox_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the outbox relay looks for rows when no notification came.",
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_lanes: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Lanes the outbox relay publishes in, by a hash of the message key; "
        "every process of a service should use the same number. A lane that publishes "
        "holds one of the service's database connections.",
    )
    outbox_relay_enabled: bool = Field(
        default=True, description="Run the outbox relay in this process."
    )
    read_your_writes_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long a request about a workspace whose event has not reached this "
        "service yet waits for it before the answer is 503 `not-ready-yet`.",
    )

    inbox_max_attempts: int = Field(
        default=5, ge=1, description="A failing event is parked after this many attempts."
    )
    inbox_backoff_base_seconds: float = Field(
        default=0.5,
        gt=0,
        description="The wait before a failed event's second attempt; it doubles each time.",
    )
    inbox_not_yet_applicable_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long an event that came before one it depends on is retried "
        "before it is parked.",
    )
    inbox_retry_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often a service looks for parked events due for another attempt.",
    )
    retention_days: int = Field(
        default=7,
        ge=1,
        description="Inbox rows and idempotency keys older than this are deleted; a "
        "redelivery must come sooner to be recognised.",
    )

    def database_url_for(self, service: ServiceName) -> str:
        """The service's own login: explicit `ATRIUM_<SERVICE>_DATABASE_URL`, or the
        administrative URL with the user and password replaced by `atrium_<service>`."""
        explicit: str | None = getattr(self, f"{service.value}_database_url")
        if explicit:
            return explicit
        role = service_role(service)
        return _with_credentials(self.database_url, user=role, password=role)

    def base_url_for(self, service: ServiceName) -> str:
        url: str = getattr(self, f"{service.value}_url")
        return url.rstrip("/")


def service_role(service: ServiceName) -> str:
    return f"atrium_{service.value}"


def _with_credentials(url: str, *, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@cache
def get_settings() -> Settings:
    return Settings()
