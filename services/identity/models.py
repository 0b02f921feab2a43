"""identity's tables, all in the `identity` schema."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.principal import nonce_table

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
    Column("parent_id", Uuid, ForeignKey("workspaces.id"), nullable=True, index=True),
    Column("root_id", Uuid, nullable=False, index=True),
    Column("billing_root_id", Uuid, nullable=False, index=True),
    Column(
        "path",
        ARRAY(Uuid),
        nullable=False,
        comment="Ancestors from the root down to the workspace itself.",
    ),
    Column("depth", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("image_url", Text, nullable=True),
    Column("billing_mode", Text, nullable=False),
    Column("api_access", Boolean, nullable=False),
    Column("strict_quota", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column(
        "seats_cap",
        Integer,
        nullable=True,
        comment="Set by a Super Admin from above (PUT .../seats), under the pool's lock.",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("billing_mode IN ('parent', 'own')", name="billing_mode"),
    CheckConstraint("status IN ('active', 'deleting', 'deleted')", name="status"),
    CheckConstraint(
        "(parent_id IS NULL AND depth = 0 AND root_id = id AND billing_mode = 'own')"
        " OR (parent_id IS NOT NULL AND depth > 0)",
        name="root_shape",
    ),
    CheckConstraint("cardinality(path) = depth + 1", name="path_depth"),
    CheckConstraint("billing_mode = 'parent' OR billing_root_id = id", name="own_billing_root"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", Uuid, ForeignKey("workspaces.id"), primary_key=True),
    Column("user_id", Text, ForeignKey("users.id"), primary_key=True, index=True),
    Column("role", Text, nullable=False),
    Column(
        "email",
        Text,
        nullable=True,
        comment="The verified email the person joined with (canonical form): pending "
        "invitations to it take no further seat in the pool.",
    ),
    Column("joined_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "role IN ('super_admin', 'developer', 'creator', 'viewer')",
        name="role",
    ),
)

Index("ix_memberships_email", memberships.c.email)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("workspace_id", Uuid, ForeignKey("workspaces.id"), nullable=False),
    Column("email", Text, nullable=False, comment="Canonical form (shared.fields)."),
    Column("role", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("invited_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("responded_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(
        "status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')", name="status"
    ),
    CheckConstraint(
        "role IN ('super_admin', 'developer', 'creator', 'viewer')",
        name="role",
    ),
    CheckConstraint("email = lower(email)", name="email_lower"),
)
Index(
    "uq_invitations_one_pending_per_email",
    invitations.c.workspace_id,
    invitations.c.email,
    unique=True,
    postgresql_where=text("status = 'pending'"),
)
Index(
    "ix_invitations_pending_by_email",
    invitations.c.email,
    postgresql_where=text("status = 'pending'"),
)
Index(
    "ix_invitations_pending_by_expiry",
    invitations.c.expires_at,
    postgresql_where=text("status = 'pending'"),
)

seat_pools = Table(
    "seat_pools",
    metadata,
    Column("billing_root_id", Uuid, ForeignKey("workspaces.id"), primary_key=True),
    Column("root_id", Uuid, nullable=False),
    Column(
        "seats_limit",
        BigInteger,
        nullable=True,
        comment="From billing's limits.changed (a pool of billing's, as large as purchases make "
        "it); null until it arrives (the default plan's).",
    ),
    Column("used", Integer, nullable=False, server_default="0", comment="Last published."),
    Column("pending", Integer, nullable=False, server_default="0", comment="Last published."),
    Column(
        "seated",
        Integer,
        nullable=False,
        server_default="0",
        comment="Distinct people who are members of a live workspace in the pool, kept under "
        "the pool's lock.",
    ),
    Column(
        "held",
        Integer,
        nullable=False,
        server_default="0",
        comment="Distinct emails of pending invitations in the pool (whatever their expiry) "
        "that no member joined with, kept under the pool's lock.",
    ),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
principal_nonces = nonce_table(metadata)
