"""workspaces, memberships, users, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:15:38.214457
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
        schema="identity",
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
        schema="identity",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        schema="identity",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False, comment="The token's stable `sub`."),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        schema="identity",
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("billing_mode", sa.Text(), nullable=False),
        sa.Column("api_access", sa.Boolean(), nullable=False),
        sa.Column("strict_quota", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(parent_id IS NULL AND depth = 0 AND root_id = id AND billing_mode = 'own') OR (parent_id IS NOT NULL AND depth > 0)",
            name=op.f("ck_workspaces_root_shape"),
        ),
        sa.CheckConstraint(
            "billing_mode IN ('parent', 'own')", name=op.f("ck_workspaces_billing_mode")
        ),
        sa.CheckConstraint("status IN ('active', 'deleting')", name=op.f("ck_workspaces_status")),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["identity.workspaces.id"],
            name=op.f("fk_workspaces_parent_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        schema="identity",
    )
    op.create_index(
        op.f("ix_identity_workspaces_root_id"),
        "workspaces",
        ["root_id"],
        unique=False,
        schema="identity",
    )
    op.create_table(
        "memberships",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "role IN ('super_admin', 'developer', 'creator', 'viewer')",
            name=op.f("ck_memberships_role"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["identity.users.id"], name=op.f("fk_memberships_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["identity.workspaces.id"],
            name=op.f("fk_memberships_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name=op.f("pk_memberships")),
        schema="identity",
    )
    op.create_index(
        op.f("ix_identity_memberships_user_id"),
        "memberships",
        ["user_id"],
        unique=False,
        schema="identity",
    )
    for statement in create_notify_trigger_sql("identity"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_notify_trigger_sql("identity"):
        op.execute(statement)
    op.drop_index(
        op.f("ix_identity_memberships_user_id"), table_name="memberships", schema="identity"
    )
    op.drop_table("memberships", schema="identity")
    op.drop_index(
        op.f("ix_identity_workspaces_root_id"), table_name="workspaces", schema="identity"
    )
    op.drop_table("workspaces", schema="identity")
    op.drop_table("users", schema="identity")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="identity",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="identity")
    op.drop_table("inbox", schema="identity")
