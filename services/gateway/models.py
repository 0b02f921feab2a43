"""The gateway's tables, all in the `gateway` schema: projections it can rebuild from
the topics, and its inbox and outbox."""

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Table, Text, Uuid, func

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

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
