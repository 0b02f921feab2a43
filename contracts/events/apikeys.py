"""Events published by `apikeys`, keyed by the account's root workspace id.

No event carries a key's secret: `apikey.created` carries its HMAC (`hash`), which is
what the gateway looks a presented key up by, and which cannot be turned back into
the key.
"""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EventPayload
from contracts.topics import Topic

MAX_RATE_LIMIT_REQUESTS = 1_000_000
MAX_RATE_LIMIT_PERIOD_SECONDS = 86_400


class KeyRateLimit(BaseModel):
    """At most `requests` requests in any `period_seconds`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    requests: int = Field(ge=1, le=MAX_RATE_LIMIT_REQUESTS)
    period_seconds: int = Field(ge=1, le=MAX_RATE_LIMIT_PERIOD_SECONDS)


class RevocationReason(StrEnum):
    REVOKED = "revoked"
    """Revoked by a person."""
    ROTATED = "rotated"
    """Replaced by a new key; it stops working at `effective_at` (after the grace)."""
    WORKSPACE_DELETED = "workspace_deleted"


class _KeyEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.APIKEYS_KEY

    key_id: UUID
    workspace_id: UUID = Field(description="The one workspace the key acts in.")
    root_id: UUID


class ApiKeyCreated(_KeyEvent):
    """A key now exists (made by a person, or by rotating another key)."""

    event_type: ClassVar[str] = "apikey.created"
    event_version: ClassVar[int] = 1

    hash: str = Field(
        pattern="^[0-9a-f]{64}$",
        description="HMAC-SHA256 of the whole key under the server's pepper, in hex.",
    )
    prefix: str = Field(description="The key's first characters, for people to tell keys apart.")
    last4: str = Field(min_length=4, max_length=4)
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = Field(description="After it the key is refused; null: never.")
    rate_limit: KeyRateLimit | None = Field(description="The key's own limit, besides the edge's.")
    monthly_credit_limit: int | None = Field(
        ge=0, description="API credits the key may spend per UTC calendar month."
    )
    suspended: bool = Field(
        description="Created while its workspace's `api_access` is off (a rotation then)."
    )
    rotated_from: UUID | None = Field(description="The key this one replaces, if any.")


class ApiKeyRevoked(_KeyEvent):
    """The key stops working at `effective_at` (now, or at the end of a rotation's
    grace), for good."""

    event_type: ClassVar[str] = "apikey.revoked"
    event_version: ClassVar[int] = 1

    effective_at: datetime
    reason: RevocationReason


class ApiKeySuspended(_KeyEvent):
    """The workspace's `api_access` was turned off: the key is refused until restored."""

    event_type: ClassVar[str] = "apikey.suspended"
    event_version: ClassVar[int] = 1


class ApiKeyRestored(_KeyEvent):
    """`api_access` is on again: a suspended key works again (unless revoked or expired)."""

    event_type: ClassVar[str] = "apikey.restored"
    event_version: ClassVar[int] = 1
