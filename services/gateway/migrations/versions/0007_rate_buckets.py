"""rate-limit buckets shared by every gateway process

Revision ID: 0007_rate_buckets
Revises: 0006_outbox_headers
Create Date: 2026-12-02 03:31:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_rate_buckets"
down_revision: str | None = "0006_outbox_headers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # UNLOGGED: a bucket is worth no WAL; after a crash PostgreSQL empties the table and
    # every caller starts again with a full bucket.
    op.execute(
        """
        CREATE UNLOGGED TABLE gateway.rate_buckets (
            bucket text NOT NULL,
            tokens double precision NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pk_rate_buckets PRIMARY KEY (bucket)
        )
        """
    )
    op.create_index("ix_rate_buckets_updated_at", "rate_buckets", ["updated_at"], schema="gateway")


def downgrade() -> None:
    op.drop_table("rate_buckets", schema="gateway")
