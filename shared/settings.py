"""Settings from the environment (prefix `ATRIUM_`), with embedded-runner defaults.

Every address points at what `make run` starts on this machine, and every one can
be overridden to point at an external PostgreSQL or Kafka. Secrets have no default:
`make run` generates them once per installation (`installation_secrets_file`) and
hands them to the services through the environment, and a service refuses to start
without them (`Settings.check_secrets`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parent.parent

PUBLISHED_SECRETS = frozenset(
    {
        "atrium-development-jwt-secret-change-me",
        "atrium-development-internal-secret-change-me",
    }
)
"""Values this project once shipped as defaults: anyone may sign with them."""


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

    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT",
        description="How clients reach Kafka: SASL_SSL for a cluster beyond this machine; "
        "PLAINTEXT only for a cluster without authentication.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_ssl_cafile: str | None = Field(
        default=None,
        description="CA bundle that signed the brokers' certificates (SASL_SSL); "
        "the system's trust store when unset.",
    )
    kafka_admin_username: str = Field(
        default="atrium",
        description="Kafka principal that provisioning creates topics and ACLs as.",
    )
    kafka_admin_password: str = ""
    identity_kafka_password: str = Field(
        default="", description="identity's Kafka password (principal `atrium_identity`)."
    )
    billing_kafka_password: str = ""
    assets_kafka_password: str = ""
    apikeys_kafka_password: str = ""
    gateway_kafka_password: str = ""

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
        default="",
        description="HS256 secret of user tokens; the gateway refuses to start without one.",
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss`, if set.")
    jwt_audience: str | None = Field(default=None, description="Required `aud`, if set.")

    internal_secret: str = Field(
        default="",
        description="Signs the principal the gateway forwards to services; every service "
        "shares it and refuses to start without it.",
    )
    apikey_pepper: str = Field(
        default="", description="HMAC key under which API keys are stored (apikeys)."
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
    metrics_sample_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a service samples the gauges of `/metrics` it reads from its "
        "tables and consumers: outbox backlog, events held, consumer lag.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="Base URL of an OpenTelemetry collector's OTLP/HTTP receiver (for "
        "example http://collector:4318): spans go to its /v1/traces. When unset, the "
        "standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; when "
        "none is set, nothing is traced.",
    )

    identity_processes: int = Field(
        default=1,
        ge=1,
        description="Processes of identity that `make run` starts on its one address "
        "(the kernel spreads the connections among them).",
    )
    billing_processes: int = Field(default=1, ge=1, description="Processes of billing.")
    assets_processes: int = Field(default=1, ge=1, description="Processes of assets.")
    apikeys_processes: int = Field(default=1, ge=1, description="Processes of apikeys.")
    gateway_processes: int = Field(
        default=2,
        ge=1,
        description="Processes of the gateway: more than one by default, so that the "
        "scaled shape is the one that runs and is tested.",
    )
    stop_drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="How long a process asked to stop (SIGTERM) still answers on the "
        "connections it holds, its /readyz 503 `stopping`, before it closes them and "
        "finishes; it takes no new connection meanwhile. For a load balancer that "
        "polls readiness over kept-alive connections.",
    )

    def database_url_for(self, service: ServiceName) -> str:
        """The service's own login: explicit `ATRIUM_<SERVICE>_DATABASE_URL`, or the
        administrative URL with the user and password replaced by `atrium_<service>`."""
        explicit: str | None = getattr(self, f"{service.value}_database_url")
        if explicit:
            return explicit
        role = service_role(service)
        return _with_credentials(self.database_url, user=role, password=role)

    def processes_for(self, service: ServiceName) -> int:
        """How many processes of `service` share its address."""
        processes: int = getattr(self, f"{service.value}_processes")
        return processes

    def base_url_for(self, service: ServiceName) -> str:
        url: str = getattr(self, f"{service.value}_url")
        return url.rstrip("/")

    def kafka_for(self, service: ServiceName) -> KafkaConnection:
        """How `service` reaches Kafka: as its own principal, `atrium_<service>`, which
        may write only its own topics and read only those it consumes."""
        return self._kafka_as(service_role(service), self.kafka_password(service))

    def kafka_password(self, service: ServiceName) -> str:
        password: str = getattr(self, f"{service.value}_kafka_password")
        return password

    def kafka_admin(self) -> KafkaConnection:
        """How provisioning reaches Kafka: as the principal that may create topics and ACLs."""
        return self._kafka_as(self.kafka_admin_username, self.kafka_admin_password)

    def _kafka_as(self, username: str, password: str) -> KafkaConnection:
        authenticated = self.kafka_security_protocol != "PLAINTEXT"
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism if authenticated else None,
            username=username if authenticated else None,
            password=password if authenticated else None,
            ssl_cafile=self.kafka_ssl_cafile,
        )

    def check_secrets(self, service: ServiceName) -> None:
        """Refuse to run `service` on a secret that is missing or that anyone knows."""
        needed = [*SECRETS_OF[service]]
        if self.kafka_security_protocol != "PLAINTEXT":
            needed.append(f"{service.value}_kafka_password")
        self.refuse_insecure(needed, refusing=f"{service.value} refuses to start")

    def refuse_insecure(self, names: Iterable[str], *, refusing: str) -> None:
        """Raise, saying what to set, when one of the named secrets is missing or published."""
        problems = []
        for name in names:
            value: str = getattr(self, name)
            variable = f"ATRIUM_{name.upper()}"
            if not value:
                problems.append(f"{variable} is not set")
            elif value in PUBLISHED_SECRETS:
                problems.append(f"{variable} is a published development value")
        if problems:
            msg = (
                f"{refusing}: {'; '.join(problems)}. Set each to a long random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), the same in "
                "every process of the system; `make run` generates them once in "
                f"{installation_secrets_file()} and passes them on."
            )
            raise InsecureSettingsError(msg)


SECRETS_OF: dict[ServiceName, tuple[str, ...]] = {
    ServiceName.IDENTITY: ("internal_secret",),
    ServiceName.BILLING: ("internal_secret",),
    ServiceName.ASSETS: ("internal_secret",),
    ServiceName.APIKEYS: ("internal_secret", "apikey_pepper"),
    ServiceName.GATEWAY: ("internal_secret", "jwt_secret", "apikey_pepper"),
}
"""The secrets each service signs or checks with, besides its own Kafka password."""


class InsecureSettingsError(RuntimeError):
    """A secret is missing, or is one that anyone can read in this project's history."""


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """One principal's way to the brokers, as aiokafka and FastStream take it."""

    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str | None
    username: str | None
    password: str | None = field(repr=False)
    ssl_cafile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol == "SASL_SSL"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ssl_cafile) if self.uses_tls else None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "ssl_context": self.ssl_context(),
        }
        if self.sasl_mechanism is not None:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options


def service_role(service: ServiceName) -> str:
    """A service's login: its PostgreSQL role and its Kafka principal."""
    return f"atrium_{service.value}"


def atrium_home() -> Path:
    """The installation's own folder: data of the embedded servers, and its secrets."""
    return Path(os.environ.get("ATRIUM_HOME", REPO / ".atrium"))


def installation_secrets_file() -> Path:
    """The secrets `make run` generated for this installation, as `ATRIUM_…=value` lines."""
    return atrium_home() / "secrets.env"


def _with_credentials(url: str, *, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@cache
def get_settings() -> Settings:
    return Settings()


def installation_settings() -> Settings:
    """The settings of a command run next to `make run`: the environment, and for a
    secret the environment does not set, the installation's secrets file."""
    return Settings(_env_file=installation_secrets_file())
