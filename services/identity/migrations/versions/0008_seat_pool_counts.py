"""seat pools keep their count, moved under the pool's lock by each change

Counting a pool's people and pending invitations on every invitation made an
invitation's cost grow with the account. The pool's row now keeps how many people are
seated and how many emails pending invitations hold (whatever their expiry: a read
takes away the expired ones), and each change moves it by what it did. The counts
start from the rows there are; memberships get an index on the email they joined
with, which the count's existence checks look up.

Revision ID: 0008_seat_pool_counts
Revises: 0007_outbox_headers
Create Date: 2026-12-02 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_seat_pool_counts"
down_revision: str | None = "0007_outbox_headers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "identity"


def upgrade() -> None:
    op.add_column(
        "seat_pools",
        sa.Column(
            "seated",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Distinct people who are members of a live workspace in the pool, kept "
            "under the pool's lock.",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "seat_pools",
        sa.Column(
            "held",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Distinct emails of pending invitations in the pool (whatever their "
            "expiry) that no member joined with, kept under the pool's lock.",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_memberships_email"), "memberships", ["email"], unique=False, schema=SCHEMA
    )
    op.execute(
        f"""
        UPDATE {SCHEMA}.seat_pools AS p SET
          seated = (
            SELECT count(DISTINCT m.user_id) FROM {SCHEMA}.memberships AS m
            JOIN {SCHEMA}.workspaces AS w ON w.id = m.workspace_id
            WHERE w.billing_root_id = p.billing_root_id AND w.status != 'deleted'
          ),
          held = (
            SELECT count(DISTINCT i.email) FROM {SCHEMA}.invitations AS i
            JOIN {SCHEMA}.workspaces AS w ON w.id = i.workspace_id
            WHERE w.billing_root_id = p.billing_root_id AND w.status != 'deleted'
              AND i.status = 'pending'
              AND NOT EXISTS (
                SELECT 1 FROM {SCHEMA}.memberships AS m
                JOIN {SCHEMA}.workspaces AS mw ON mw.id = m.workspace_id
                WHERE m.email = i.email AND mw.billing_root_id = p.billing_root_id
                  AND mw.status != 'deleted'
              )
          )
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_memberships_email"), table_name="memberships", schema=SCHEMA)
    op.drop_column("seat_pools", "held", schema=SCHEMA)
    op.drop_column("seat_pools", "seated", schema=SCHEMA)
