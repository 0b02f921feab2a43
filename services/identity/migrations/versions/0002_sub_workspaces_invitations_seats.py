"""sub-workspaces, invitations, seat pools, idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:31:18.710351
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "identity"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text(), nullable=False, comment="Who called, and which operation."),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False, comment="SHA-256 of the request."),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        schema=SCHEMA,
    )

    op.add_column("workspaces", sa.Column("billing_root_id", sa.Uuid()), schema=SCHEMA)
    op.add_column(
        "workspaces",
        sa.Column(
            "path",
            sa.ARRAY(sa.Uuid()),
            comment="Ancestors from the root down to the workspace itself.",
        ),
        schema=SCHEMA,
    )
    # Only roots existed before this revision.
    op.execute(f"UPDATE {SCHEMA}.workspaces SET billing_root_id = id, path = ARRAY[id]")
    op.alter_column("workspaces", "billing_root_id", nullable=False, schema=SCHEMA)
    op.alter_column("workspaces", "path", nullable=False, schema=SCHEMA)
    op.add_column(
        "workspaces",
        sa.Column("seats_cap", sa.Integer(), comment="Set by billing's limits.changed."),
        schema=SCHEMA,
    )
    op.add_column("workspaces", sa.Column("deleted_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.drop_constraint("ck_workspaces_status", "workspaces", schema=SCHEMA)
    op.create_check_constraint(
        "ck_workspaces_status",
        "workspaces",
        "status IN ('active', 'deleting', 'deleted')",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_workspaces_path_depth", "workspaces", "cardinality(path) = depth + 1", schema=SCHEMA
    )
    op.create_check_constraint(
        "ck_workspaces_own_billing_root",
        "workspaces",
        "billing_mode = 'parent' OR billing_root_id = id",
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_identity_workspaces_billing_root_id"),
        "workspaces",
        ["billing_root_id"],
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_identity_workspaces_parent_id"), "workspaces", ["parent_id"], schema=SCHEMA
    )

    op.create_table(
        "invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False, comment="Lower-cased."),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("invited_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('super_admin', 'developer', 'creator', 'viewer')",
            name=op.f("ck_invitations_role"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')",
            name=op.f("ck_invitations_status"),
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_invitations_email_lower")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            [f"{SCHEMA}.workspaces.id"],
            name=op.f("fk_invitations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_invitations_pending_by_email",
        "invitations",
        ["email"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_invitations_pending_by_expiry",
        "invitations",
        ["expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "uq_invitations_one_pending_per_email",
        "invitations",
        ["workspace_id", "email"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "seat_pools",
        sa.Column("billing_root_id", sa.Uuid(), nullable=False),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column(
            "seats_limit",
            sa.Integer(),
            nullable=True,
            comment="From billing's limits.changed; null until it arrives (the default plan's).",
        ),
        sa.Column(
            "used", sa.Integer(), server_default="0", nullable=False, comment="Last published."
        ),
        sa.Column(
            "pending", sa.Integer(), server_default="0", nullable=False, comment="Last published."
        ),
        sa.ForeignKeyConstraint(
            ["billing_root_id"],
            [f"{SCHEMA}.workspaces.id"],
            name=op.f("fk_seat_pools_billing_root_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("billing_root_id", name=op.f("pk_seat_pools")),
        schema=SCHEMA,
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.seat_pools (billing_root_id, root_id, used) "
        f"SELECT w.id, w.root_id, (SELECT count(*) FROM {SCHEMA}.memberships m "
        f"WHERE m.workspace_id = w.id) FROM {SCHEMA}.workspaces w"
    )


def downgrade() -> None:
    op.drop_table("seat_pools", schema=SCHEMA)
    op.drop_table("invitations", schema=SCHEMA)
    op.drop_index(op.f("ix_identity_workspaces_parent_id"), "workspaces", schema=SCHEMA)
    op.drop_index(op.f("ix_identity_workspaces_billing_root_id"), "workspaces", schema=SCHEMA)
    op.drop_constraint("ck_workspaces_own_billing_root", "workspaces", schema=SCHEMA)
    op.drop_constraint("ck_workspaces_path_depth", "workspaces", schema=SCHEMA)
    op.drop_constraint("ck_workspaces_status", "workspaces", schema=SCHEMA)
    op.create_check_constraint(
        "ck_workspaces_status", "workspaces", "status IN ('active', 'deleting')", schema=SCHEMA
    )
    for column in ("deleted_at", "seats_cap", "path", "billing_root_id"):
        op.drop_column("workspaces", column, schema=SCHEMA)
    op.drop_table("idempotency_keys", schema=SCHEMA)
