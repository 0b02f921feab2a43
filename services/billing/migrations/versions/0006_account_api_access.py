"""an account knows whether its workspace has API access

API usage by key is closed to a workspace's own members while its `api_access` is
off (409 `api-access-disabled`), so billing keeps the setting from
`workspace.created` and `workspace.settings_changed`. Accounts opened before this
revision did not keep it and start as open (the value every root starts with);
the next `workspace.settings_changed` of such a workspace sets it right. The seat cap
is now identity's: the column stays, as billing's copy of `seats.cap_changed`.

Revision ID: 0006_account_api_access
Revises: 0005_principal_nonces
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_account_api_access"
down_revision: str | None = "0005_principal_nonces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column(
            "api_access",
            sa.Boolean(),
            server_default="true",
            nullable=False,
            comment="From identity: may its own members see API usage.",
        ),
        schema=SCHEMA,
    )
    op.alter_column(
        "accounts",
        "seats_cap",
        comment="A sub-workspace's seat cap within its pool: a copy of identity's.",
        existing_type=sa.Integer(),
        existing_nullable=True,
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.alter_column(
        "accounts",
        "seats_cap",
        comment="A `parent`-billed sub-workspace's seat cap within its pool, if any.",
        existing_type=sa.Integer(),
        existing_nullable=True,
        schema=SCHEMA,
    )
    op.drop_column("accounts", "api_access", schema=SCHEMA)
