"""apikeys' tables, all in the `apikeys` schema.

No table holds a key's secret: `api_keys.hash` is its HMAC under the pepper, and the
responses kept for retried creations and rotations are sealed (`shared.idempotency`).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
)

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.principal import nonce_table

metadata = service_metadata("apikeys")

WORKSPACE_STATUSES_SQL = "('active', 'deleting', 'deleted')"

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("parent_id", Uuid, nullable=True),
    Column("root_id", Uuid, nullable=False),
    Column(
        "api_access",
        Boolean,
        nullable=False,
        comment="From identity: may the workspace hold and see API keys.",
    ),
    Column("status", Text, nullable=False),
    CheckConstraint(f"status IN {WORKSPACE_STATUSES_SQL}", name="status"),
    comment="A copy of identity's workspaces, from its events.",
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("workspace_id", Uuid, nullable=False),
    Column("root_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("hash", Text, nullable=False, unique=True, comment="HMAC-SHA256 under the pepper."),
    Column("prefix", Text, nullable=False),
    Column("last4", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column(
        "revoked_at",
        DateTime(timezone=True),
        nullable=True,
        comment="When revocation takes effect: at once, or at the end of a rotation's grace.",
    ),
    Column("revocation_reason", Text, nullable=True),
    Column(
        "suspended",
        Boolean,
        nullable=False,
        server_default="false",
        comment="While the workspace's api_access is off.",
    ),
    Column("rate_limit_requests", Integer, nullable=True),
    Column("rate_limit_period_seconds", Integer, nullable=True),
    Column("monthly_credit_limit", BigInteger, nullable=True),
    Column("rotated_from", Uuid, nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(
        "(rate_limit_requests IS NULL) = (rate_limit_period_seconds IS NULL)",
        name="rate_limit_whole",
    ),
    CheckConstraint("monthly_credit_limit >= 0", name="credit_limit_not_negative"),
    CheckConstraint(
        "(revoked_at IS NULL) = (revocation_reason IS NULL)", name="revocation_has_reason"
    ),
)
Index(
    "ix_api_keys_workspace_newest",
    api_keys.c.workspace_id,
    api_keys.c.created_at.desc(),
    api_keys.c.id.desc(),
)

key_usage_days = Table(
    "key_usage_days",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True, comment="UTC."),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("errors", BigInteger, nullable=False, server_default="0"),
    Column("credits_spent", BigInteger, nullable=False, server_default="0"),
)

workspace_usage_days = Table(
    "workspace_usage_days",
    metadata,
    Column("workspace_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True, comment="UTC."),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("errors", BigInteger, nullable=False, server_default="0"),
    Column("credits_spent", BigInteger, nullable=False, server_default="0"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
principal_nonces = nonce_table(metadata)
