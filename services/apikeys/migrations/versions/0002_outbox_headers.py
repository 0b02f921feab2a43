"""the Kafka headers each outbox row is published with (its trace context)

Revision ID: 0002_outbox_headers
Revises: 0001
Create Date: 2026-12-02 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_outbox_headers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="apikeys",
    )


def downgrade() -> None:
    op.drop_column("outbox", "headers", schema="apikeys")
