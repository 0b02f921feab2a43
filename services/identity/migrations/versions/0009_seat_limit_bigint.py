"""a seat pool's limit is as large as billing's pool

Billing keeps a seat pool's limit as a pool of its own (bigint), which purchases add to:
a few large purchases took it past 2,147,483,647, and identity could not store the
`limits.changed` that said so (the event was parked, and the account's later limits
behind it).

Revision ID: 0009_seat_limit_bigint
Revises: 0008_seat_pool_counts
Create Date: 2026-12-02 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_seat_limit_bigint"
down_revision: str | None = "0008_seat_pool_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "identity"
INT32_MAX = 2_147_483_647
OLD_COMMENT = "From billing's limits.changed; null until it arrives (the default plan's)."
COMMENT = (
    "From billing's limits.changed (a pool of billing's, as large as purchases make it); "
    "null until it arrives (the default plan's)."
)


def upgrade() -> None:
    op.alter_column(
        "seat_pools",
        "seats_limit",
        type_=sa.BigInteger(),
        existing_type=sa.Integer(),
        existing_nullable=True,
        comment=COMMENT,
        existing_comment=OLD_COMMENT,
        schema=SCHEMA,
    )


def downgrade() -> None:
    # A limit past what the old column holds is as good as unlimited there: it is kept
    # as the largest it can hold rather than refusing to go back.
    op.alter_column(
        "seat_pools",
        "seats_limit",
        type_=sa.Integer(),
        existing_type=sa.BigInteger(),
        existing_nullable=True,
        comment=OLD_COMMENT,
        existing_comment=COMMENT,
        schema=SCHEMA,
        postgresql_using=f"LEAST(seats_limit, {INT32_MAX})",
    )
