"""API key budgets: billing's copy of the key events and each budget's monthly spending

A spend made with an API key draws API credits and, when the key has a monthly
credit limit, must fit in what is left of it, checked in the same transaction as the
workspace's balance. billing keeps the keys it needs for that from `apikey.created`,
`apikey.revoked`, `apikey.suspended` and `apikey.restored` (`api_keys`), and what each
budget spent per UTC calendar month (`api_key_spending`, one row per budget and month:
a new month starts at nothing without anyone resetting it). A key rotated from
another draws on the budget of the key it replaces (`budget_id`).

Revision ID: 0007_api_key_budgets
Revises: 0006_account_api_access
Create Date: 2026-12-02 00:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_api_key_budgets"
down_revision: str | None = "0006_account_api_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column(
            "workspace_id",
            sa.Uuid(),
            nullable=False,
            comment="The one workspace the key acts in.",
        ),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column(
            "budget_id",
            sa.Uuid(),
            nullable=False,
            comment="Whose monthly spending the key draws on: its own id, or that of the first"
            " key of the line it was rotated from.",
        ),
        sa.Column(
            "monthly_credit_limit",
            sa.BigInteger(),
            nullable=True,
            comment="API credits the key may spend per UTC calendar month; null: no limit.",
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the key stopped (or stops, after a rotation's grace) working.",
        ),
        sa.Column(
            "suspended",
            sa.Boolean(),
            server_default="false",
            nullable=False,
            comment="Its workspace's api_access is off.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "monthly_credit_limit >= 0",
            name=op.f("ck_api_keys_monthly_credit_limit_not_negative"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        schema=SCHEMA,
    )
    op.create_table(
        "api_key_spending",
        sa.Column("budget_id", sa.Uuid(), nullable=False, comment="api_keys.budget_id"),
        sa.Column(
            "month",
            sa.Date(),
            nullable=False,
            comment="The first day of the UTC calendar month.",
        ),
        sa.Column(
            "spent", sa.BigInteger(), nullable=False, comment="API credits spent in the month."
        ),
        sa.CheckConstraint("spent >= 0", name=op.f("ck_api_key_spending_spent_not_negative")),
        sa.CheckConstraint(
            "extract(day from month) = 1",
            name=op.f("ck_api_key_spending_month_starts_on_its_first_day"),
        ),
        sa.PrimaryKeyConstraint("budget_id", "month", name=op.f("pk_api_key_spending")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("api_key_spending", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)
