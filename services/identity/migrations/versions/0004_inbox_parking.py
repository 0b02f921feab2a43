"""inbox outcomes and retention index, parked events

Revision ID: 0004_inbox_parking
Revises: 0002
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from shared.inbox import drop_inbox_parking_sql, inbox_parking_sql

revision: str = "0004_inbox_parking"
down_revision: str | None = "0003_outbox_lanes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "identity"


def upgrade() -> None:
    for statement in inbox_parking_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_inbox_parking_sql(SCHEMA):
        op.execute(statement)
