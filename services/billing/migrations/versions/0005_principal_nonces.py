"""the nonces of the principals billing has accepted, each good for one request

Revision ID: 0005_principal_nonces
Revises: 0004_inbox_parking
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_principal_nonces"
down_revision: str | None = "0004_inbox_parking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "principal_nonces",
        sa.Column("nonce", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_principal_nonces")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_billing_principal_nonces_expires_at"),
        "principal_nonces",
        ["expires_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_billing_principal_nonces_expires_at"), "principal_nonces", schema=SCHEMA)
    op.drop_table("principal_nonces", schema=SCHEMA)
