"""the outbox publishes in lanes by a hash of the message key

Each row gets its key hash (rows already there too, so what waits unpublished at
the upgrade is published in its lane), and each inserted row notifies its key hash
instead of each statement notifying nothing in particular. Stop the relays of the
earlier version before relays in lanes start: they skip rows another relay holds,
so next to a lane they could publish a key's later event before its earlier one.

Revision ID: 0003_outbox_lanes
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from shared.outbox import add_outbox_lanes_sql, remove_outbox_lanes_sql

revision: str = "0003_outbox_lanes"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gateway"


def upgrade() -> None:
    for statement in add_outbox_lanes_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_outbox_lanes_sql(SCHEMA):
        op.execute(statement)
