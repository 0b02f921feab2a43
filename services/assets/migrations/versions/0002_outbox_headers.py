"""the Kafka headers each outbox row is published with (its trace context)

Revision ID: 0002_outbox_headers
Revises: 0001
Create Date: 2026-12-02 03:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_outbox_headers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0001 makes the outbox from the shared definition of the day: an installation made
    # after this revision was written has the column already.
    op.execute("ALTER TABLE assets.outbox ADD COLUMN IF NOT EXISTS headers jsonb")


def downgrade() -> None:
    op.drop_column("outbox", "headers", schema="assets")
