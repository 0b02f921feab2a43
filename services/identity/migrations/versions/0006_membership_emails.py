"""a membership records the verified email its person joined with

A pending invitation holds no seat when its email belongs to a member of the pool.
That was decided on `users.email`, the latest email a person's token carried, so a
member signing in with a new address made invitations to the old one start holding
seats without any request being checked against the pool's limit. The email a
person joined with is now kept on the membership, written under the pool's lock.
Memberships already there get their person's email as last seen, lower-cased.

Revision ID: 0006_membership_emails
Revises: 0005_principal_nonces
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_membership_emails"
down_revision: str | None = "0005_principal_nonces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "identity"


def upgrade() -> None:
    op.add_column(
        "memberships",
        sa.Column(
            "email",
            sa.Text(),
            nullable=True,
            comment="The verified email the person joined with (canonical form): pending "
            "invitations to it take no further seat in the pool.",
        ),
        schema=SCHEMA,
    )
    op.execute(
        f"UPDATE {SCHEMA}.memberships AS m SET email = lower(u.email)"
        f" FROM {SCHEMA}.users AS u WHERE u.id = m.user_id"
    )
    op.alter_column(
        "workspaces",
        "seats_cap",
        comment="Set by a Super Admin from above (PUT .../seats), under the pool's lock.",
        existing_type=sa.Integer(),
        existing_nullable=True,
        schema=SCHEMA,
    )
    op.alter_column(
        "invitations",
        "email",
        comment="Canonical form (shared.fields).",
        existing_type=sa.Text(),
        existing_nullable=False,
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.alter_column(
        "invitations",
        "email",
        comment="Lower-cased.",
        existing_type=sa.Text(),
        existing_nullable=False,
        schema=SCHEMA,
    )
    op.alter_column(
        "workspaces",
        "seats_cap",
        comment="Set by billing's limits.changed.",
        existing_type=sa.Integer(),
        existing_nullable=True,
        schema=SCHEMA,
    )
    op.drop_column("memberships", "email", schema=SCHEMA)
