"""accounts, balances, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:16:50.572219
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
        "accounts",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("billing_root_id", sa.Uuid(), nullable=False),
        sa.Column("billing_mode", sa.Text(), nullable=False),
        sa.Column("plan_code", sa.Text(), nullable=True, comment="Set on billing roots only."),
        sa.Column("seats_limit", sa.Integer(), nullable=True),
        sa.Column("avatar_slots_limit", sa.Integer(), nullable=True),
        sa.Column("seats_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("avatar_slots_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "billing_mode = 'parent' OR (plan_code IS NOT NULL AND seats_limit >= 0 AND avatar_slots_limit >= 0)",
            name=op.f("ck_accounts_billing_root_has_plan"),
        ),
        sa.CheckConstraint(
            "billing_mode IN ('parent', 'own')", name=op.f("ck_accounts_billing_mode")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_accounts")),
        schema="billing",
    )
    op.create_index(
        op.f("ix_billing_accounts_root_id"), "accounts", ["root_id"], unique=False, schema="billing"
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
        schema="billing",
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
        schema="billing",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        schema="billing",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "balances",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("pool", sa.Text(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("allocated", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "pool IN ('generative_credits', 'api_credits')", name=op.f("ck_balances_pool")
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_balances_never_negative")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing.accounts.workspace_id"],
            name=op.f("fk_balances_workspace_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "pool", name=op.f("pk_balances")),
        schema="billing",
    )

    for statement in create_notify_trigger_sql("billing"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_notify_trigger_sql("billing"):
        op.execute(statement)
    op.drop_table("balances", schema="billing")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="billing",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="billing")
    op.drop_table("inbox", schema="billing")
    op.drop_index(op.f("ix_billing_accounts_root_id"), table_name="accounts", schema="billing")
    op.drop_table("accounts", schema="billing")
