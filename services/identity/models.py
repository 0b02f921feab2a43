"""identity's tables, all in the `identity` schema."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

metadata = service_metadata("identity")

users = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True, comment="The token's stable `sub`."),
    Column("email", Text, nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("parent_id", Uuid, ForeignKey("workspaces.id"), nullable=True),
    Column("root_id", Uuid, nullable=False, index=True),
    Column("depth", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("image_url", Text, nullable=True),
    Column("billing_mode", Text, nullable=False),
    Column("api_access", Boolean, nullable=False),
    Column("strict_quota", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("billing_mode IN ('parent', 'own')", name="billing_mode"),
    CheckConstraint("status IN ('active', 'deleting')", name="status"),
    CheckConstraint(
        "(parent_id IS NULL AND depth = 0 AND root_id = id AND billing_mode = 'own')"
        " OR (parent_id IS NOT NULL AND depth > 0)",
        name="root_shape",
    ),
)

memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", Uuid, ForeignKey("workspaces.id"), primary_key=True),
    Column("user_id", Text, ForeignKey("users.id"), primary_key=True, index=True),
    Column("role", Text, nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "role IN ('super_admin', 'developer', 'creator', 'viewer')",
        name="role",
    ),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
