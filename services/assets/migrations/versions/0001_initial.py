"""workspaces, assets and shares; outbox, inbox, idempotency keys and principal nonces

The plumbing tables are made by the shared definitions every service's latest
migration arrives at (outbox in lanes, inbox with parked events).

Revision ID: 0001
Revises:
Create Date: 2026-12-02 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import inbox_table
from shared.outbox import create_lane_notify_trigger_sql, drop_notify_trigger_sql, outbox_table
from shared.principal import nonce_table

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "assets"


def _plumbing() -> sa.MetaData:
    metadata = service_metadata(SCHEMA)
    outbox_table(metadata)
    inbox_table(metadata)
    idempotency_table(metadata)
    nonce_table(metadata)
    return metadata


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.CheckConstraint("status IN ('active', 'deleted')", name=op.f("ck_workspaces_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        schema=SCHEMA,
    )
    op.create_index("ix_workspaces_parent_id", "workspaces", ["parent_id"], schema=SCHEMA)
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("properties", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False, comment="`user:<id>` or `apikey:<id>`."),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "billing_principal",
            postgresql.JSONB(),
            nullable=True,
            comment="Avatars: who billing's claim (or release) is made for, so that the "
            "reconciler repeats it as the same caller (the same pool pays).",
        ),
        sa.Column(
            "request_key",
            sa.Text(),
            nullable=True,
            comment="Avatars: the creating request's idempotency scope and key, so that its "
            "retry finds the same avatar.",
        ),
        sa.CheckConstraint(
            "kind IN ('avatar', 'voice', 'brand_kit', 'template')", name=op.f("ck_assets_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'deleting')", name=op.f("ck_assets_status")
        ),
        sa.CheckConstraint(
            "status = 'active' OR kind = 'avatar'", name=op.f("ck_assets_only_avatars_wait")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            [f"{SCHEMA}.workspaces.id"],
            name=op.f("fk_assets_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_assets_library",
        "assets",
        ["workspace_id", "created_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_assets_library_kind",
        "assets",
        ["workspace_id", "kind", "created_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_assets_unfinished",
        "assets",
        ["updated_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status <> 'active'"),
    )
    op.create_index("ix_assets_request_key", "assets", ["request_key"], unique=True, schema=SCHEMA)
    op.create_table(
        "shares",
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("target_workspace_id", sa.Uuid(), nullable=False),
        sa.Column(
            "shared_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "asset_created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="The asset's creation time, copied: a target's shared-in assets are read "
            "in library order from the index alone.",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            [f"{SCHEMA}.assets.id"],
            name=op.f("fk_shares_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_workspace_id"],
            [f"{SCHEMA}.workspaces.id"],
            name=op.f("fk_shares_target_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("asset_id", "target_workspace_id", name=op.f("pk_shares")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_shares_target",
        "shares",
        ["target_workspace_id", "asset_created_at", "asset_id"],
        schema=SCHEMA,
    )
    _plumbing().create_all(op.get_bind())
    for statement in create_lane_notify_trigger_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_notify_trigger_sql(SCHEMA):
        op.execute(statement)
    _plumbing().drop_all(op.get_bind())
    op.drop_table("shares", schema=SCHEMA)
    op.drop_table("assets", schema=SCHEMA)
    op.drop_table("workspaces", schema=SCHEMA)
