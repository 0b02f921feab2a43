"""workspaces and memberships projections, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.outbox import create_notify_trigger_sql, drop_notify_trigger_sql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("api_access", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'deleting', 'deleted')", name=op.f("ck_workspaces_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        schema="gateway",
    )
    op.create_table(
        "memberships",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('super_admin', 'developer', 'creator', 'viewer')",
            name=op.f("ck_memberships_role"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name=op.f("pk_memberships")),
        schema="gateway",
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "rejection",
            sa.Text(),
            nullable=True,
            comment="Why an event that breaks its contract was set aside instead of applied.",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox")),
        schema="gateway",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema="gateway",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        schema="gateway",
        postgresql_where=sa.text("published_at IS NULL"),
    )

    for statement in create_notify_trigger_sql("gateway"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_notify_trigger_sql("gateway"):
        op.execute(statement)
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="gateway",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="gateway")
    op.drop_table("inbox", schema="gateway")
    op.drop_table("memberships", schema="gateway")
    op.drop_table("workspaces", schema="gateway")
