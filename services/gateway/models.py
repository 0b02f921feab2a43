"""The gateway's tables, all in the `gateway` schema: projections it can rebuild from
the topics, and its inbox and outbox."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

metadata = service_metadata("gateway")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("parent_id", Uuid, nullable=True),
    Column("root_id", Uuid, nullable=False),
    Column("api_access", Boolean, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('active', 'deleting', 'deleted')", name="status"),
)

memberships = Table(
    "memberships",
    metadata,
    # No foreign key to `workspaces`: a membership may arrive before its workspace.
    Column("workspace_id", Uuid, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role IN ('super_admin', 'developer', 'creator', 'viewer')", name="role"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    # Null while only a later event has arrived (one that overtook `apikey.created`).
    Column("hash", Text, nullable=True, unique=True),
    Column("workspace_id", Uuid, nullable=False),
    Column("root_id", Uuid, nullable=False),
    Column("suspended", Boolean, nullable=False, server_default="false"),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("rate_limit_requests", Integer, nullable=True),
    Column("rate_limit_period_seconds", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "(rate_limit_requests IS NULL) = (rate_limit_period_seconds IS NULL)",
        name="rate_limit_whole",
    ),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    # One token bucket, shared by every process: a caller's (`user:<id>`, `apikey:<uuid>`)
    # or a key's own `rate_limit` (`key:<uuid>`); see services/gateway/rate_buckets.py.
    Column("bucket", Text, primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_rate_buckets_updated_at", "updated_at"),
    prefixes=["UNLOGGED"],
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
