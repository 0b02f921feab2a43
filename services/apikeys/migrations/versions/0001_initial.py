"""workspaces, api keys, usage per day; outbox, inbox, idempotency keys, nonces

The outbox and the inbox are made the way every service's are (their first shape,
then the shared helpers' lanes and parking), so that they match the code's
definitions exactly.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.inbox import inbox_parking_sql
from shared.outbox import add_outbox_lanes_sql, create_notify_trigger_sql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "apikeys"


def _usage_table(name: str, owner: str) -> None:
    op.create_table(
        name,
        sa.Column(owner, sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False, comment="UTC."),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("errors", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_spent", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(owner, "day", name=op.f(f"pk_{name}")),
        schema=SCHEMA,
    )


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column(
            "api_access",
            sa.Boolean(),
            nullable=False,
            comment="From identity: may the workspace hold and see API keys.",
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'deleting', 'deleted')", name=op.f("ck_workspaces_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        schema=SCHEMA,
        comment="A copy of identity's workspaces, from its events.",
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False, comment="HMAC-SHA256 under the pepper."),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("last4", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When revocation takes effect: at once, or at the end of a rotation's grace.",
        ),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column(
            "suspended",
            sa.Boolean(),
            server_default="false",
            nullable=False,
            comment="While the workspace's api_access is off.",
        ),
        sa.Column("rate_limit_requests", sa.Integer(), nullable=True),
        sa.Column("rate_limit_period_seconds", sa.Integer(), nullable=True),
        sa.Column("monthly_credit_limit", sa.BigInteger(), nullable=True),
        sa.Column("rotated_from", sa.Uuid(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(rate_limit_requests IS NULL) = (rate_limit_period_seconds IS NULL)",
            name=op.f("ck_api_keys_rate_limit_whole"),
        ),
        sa.CheckConstraint(
            "monthly_credit_limit >= 0", name=op.f("ck_api_keys_credit_limit_not_negative")
        ),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revocation_reason IS NULL)",
            name=op.f("ck_api_keys_revocation_has_reason"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("hash", name=op.f("uq_api_keys_hash")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_api_keys_workspace_newest",
        "api_keys",
        ["workspace_id", sa.text("created_at DESC"), sa.text("id DESC")],
        schema=SCHEMA,
    )
    _usage_table("key_usage_days", "key_id")
    _usage_table("workspace_usage_days", "workspace_id")

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
        schema=SCHEMA,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        schema=SCHEMA,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    for statement in (*create_notify_trigger_sql(SCHEMA), *add_outbox_lanes_sql(SCHEMA)):
        op.execute(statement)

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
        sa.Column("rejection", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox")),
        schema=SCHEMA,
    )
    for statement in inbox_parking_sql(SCHEMA):
        op.execute(statement)

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
    op.create_table(
        "principal_nonces",
        sa.Column("nonce", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_principal_nonces")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_apikeys_principal_nonces_expires_at"),
        "principal_nonces",
        ["expires_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "principal_nonces",
        "idempotency_keys",
        "parked_events",
        "inbox",
        "outbox",
        "workspace_usage_days",
        "key_usage_days",
        "api_keys",
        "workspaces",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".notify_outbox()')
