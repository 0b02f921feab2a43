"""double-entry ledger, four pools, avatar claims, idempotency keys

Every account now holds all four pools in `balances` (capacity too), the ledger's
transactions and lines are append-only, and a deferred constraint trigger refuses
to commit a transaction whose lines do not sum to zero per pool. Existing accounts
keep their limits and credits: they become the balances of their new pools, posted
as `plan` transactions from the world account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:31:59.599228
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "billing"
POOLS_SQL = "('generative_credits', 'api_credits', 'avatar_slots', 'seats')"

BALANCED_TRIGGER = [
    """
    CREATE FUNCTION billing.ledger_transaction_is_balanced() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        unbalanced text;
    BEGIN
        SELECT string_agg(pool || ' ' || total, ', ') INTO unbalanced
        FROM (
            SELECT pool, sum(amount) AS total FROM billing.ledger_lines
            WHERE transaction_id = NEW.transaction_id GROUP BY pool
        ) AS sums
        WHERE total <> 0;
        IF unbalanced IS NOT NULL THEN
            RAISE EXCEPTION 'ledger transaction % does not balance: %',
                NEW.transaction_id, unbalanced USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_lines_balanced AFTER INSERT ON billing.ledger_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION billing.ledger_transaction_is_balanced()
    """,
    """
    CREATE FUNCTION billing.ledger_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_lines_append_only BEFORE UPDATE OR DELETE ON billing.ledger_lines
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_is_append_only()
    """,
    """
    CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON billing.transactions
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_is_append_only()
    """,
]

CARRY_OVER_EXISTING_ACCOUNTS = [
    """
    INSERT INTO billing.balances (workspace_id, pool, balance)
    SELECT workspace_id, 'seats', coalesce(seats_limit, 0) FROM billing.accounts
    UNION ALL
    SELECT workspace_id, 'avatar_slots', coalesce(avatar_slots_limit, 0) FROM billing.accounts
    """,
    """
    CREATE TEMPORARY TABLE opening ON COMMIT DROP AS
    SELECT gen_random_uuid() AS id, a.workspace_id, a.root_id
    FROM billing.accounts AS a
    WHERE EXISTS (
        SELECT 1 FROM billing.balances AS b
        WHERE b.workspace_id = a.workspace_id AND b.balance > 0
    )
    """,
    """
    INSERT INTO billing.transactions (id, workspace_id, root_id, kind, actor)
    SELECT id, workspace_id, root_id, 'plan', 'system' FROM opening
    """,
    """
    INSERT INTO billing.ledger_lines (transaction_id, workspace_id, pool, amount, balance_after)
    SELECT o.id, b.workspace_id, b.pool, b.balance, b.balance
    FROM opening AS o JOIN billing.balances AS b USING (workspace_id) WHERE b.balance > 0
    UNION ALL
    SELECT o.id, NULL, b.pool, -b.balance, NULL
    FROM opening AS o JOIN billing.balances AS b USING (workspace_id) WHERE b.balance > 0
    """,
]


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text(), nullable=False, comment="Who called, and which operation."),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False, comment="SHA-256 of the request."),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        schema=SCHEMA,
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "workspace_id", sa.Uuid(), nullable=False, comment="The workspace it was made for."
        ),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("pool", sa.Text(), nullable=True, comment="Spends: the pool that paid."),
        sa.Column("amount", sa.BigInteger(), nullable=True, comment="Spends: the credits charged."),
        sa.Column("operation", sa.Text(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('plan', 'purchase', 'allocation', 'spend', 'avatar_claim',"
            " 'avatar_release', 'reclaim')",
            name=op.f("ck_transactions_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_transactions_spends",
        "transactions",
        ["workspace_id", "created_at"],
        unique=False,
        schema=SCHEMA,
        postgresql_where=sa.text("amount IS NOT NULL"),
    )
    op.create_table(
        "avatar_claims",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("avatar_id", sa.Uuid(), nullable=False),
        sa.Column("claim_transaction_id", sa.Uuid(), nullable=False),
        sa.Column("release_transaction_id", sa.Uuid(), nullable=True),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["claim_transaction_id"],
            ["billing.transactions.id"],
            name=op.f("fk_avatar_claims_claim_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["release_transaction_id"],
            ["billing.transactions.id"],
            name=op.f("fk_avatar_claims_release_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "avatar_id", name=op.f("pk_avatar_claims")),
        schema=SCHEMA,
    )
    op.create_table(
        "ledger_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column(
            "workspace_id",
            sa.Uuid(),
            nullable=True,
            comment="Null: the world account of the pool (purchases, spends).",
        ),
        sa.Column("pool", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column(
            "balance_after",
            sa.BigInteger(),
            nullable=True,
            comment="The workspace's balance of the pool after this line; null for the world.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"pool IN {POOLS_SQL}", name=op.f("ck_ledger_lines_pool")),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_lines_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["billing.transactions.id"],
            name=op.f("fk_ledger_lines_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_lines")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_billing_ledger_lines_transaction_id"),
        "ledger_lines",
        ["transaction_id"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_ledger_lines_account",
        "ledger_lines",
        ["workspace_id", "id"],
        unique=False,
        schema=SCHEMA,
    )
    for statement in BALANCED_TRIGGER:
        op.execute(statement)

    op.add_column("accounts", sa.Column("parent_id", sa.Uuid(), nullable=True), schema=SCHEMA)
    op.add_column(
        "accounts",
        sa.Column("strict_quota", sa.Boolean(), server_default="true", nullable=False),
        schema=SCHEMA,
    )
    op.add_column(
        "accounts",
        sa.Column(
            "seats_pending",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Billing roots: seats held by pending invitations.",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "accounts",
        sa.Column(
            "seats_cap",
            sa.Integer(),
            nullable=True,
            comment="A `parent`-billed sub-workspace's seat cap within its pool, if any.",
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "accounts", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
    )
    op.create_check_constraint(
        op.f("ck_accounts_seats_cap_not_negative"), "accounts", "seats_cap >= 0", schema=SCHEMA
    )
    op.alter_column(
        "accounts",
        "seats_used",
        existing_type=sa.INTEGER(),
        comment="Billing roots: people in the seat pool, from seats.usage_changed.",
        existing_nullable=False,
        schema=SCHEMA,
    )
    op.add_column(
        "balances",
        sa.Column(
            "in_use",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="Capacity taken (avatar slots held by avatars).",
        ),
        schema=SCHEMA,
    )
    op.alter_column(
        "balances",
        "balance",
        existing_type=sa.BIGINT(),
        comment="Credits left to spend, or capacity free to take (the ledger's sum).",
        existing_nullable=False,
        schema=SCHEMA,
    )
    op.alter_column(
        "balances",
        "allocated",
        existing_type=sa.BIGINT(),
        comment="Running total the parent granted (spent or not).",
        existing_nullable=False,
        schema=SCHEMA,
    )
    op.drop_constraint(op.f("ck_balances_pool"), "balances", schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_balances_pool"), "balances", f"pool IN {POOLS_SQL}", schema=SCHEMA
    )
    op.create_check_constraint(
        op.f("ck_balances_allocated_not_negative"), "balances", "allocated >= 0", schema=SCHEMA
    )
    op.create_check_constraint(
        op.f("ck_balances_in_use_not_negative"), "balances", "in_use >= 0", schema=SCHEMA
    )

    for statement in CARRY_OVER_EXISTING_ACCOUNTS:
        op.execute(statement)

    op.drop_constraint(op.f("ck_accounts_billing_root_has_plan"), "accounts", schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_accounts_billing_root_plan"),
        "accounts",
        "billing_mode = 'parent' OR plan_code IS NOT NULL",
        schema=SCHEMA,
    )
    op.drop_column("accounts", "avatar_slots_limit", schema=SCHEMA)
    op.drop_column("accounts", "avatar_slots_used", schema=SCHEMA)
    op.drop_column("accounts", "seats_limit", schema=SCHEMA)


def downgrade() -> None:
    op.add_column("accounts", sa.Column("seats_limit", sa.INTEGER(), nullable=True), schema=SCHEMA)
    op.add_column(
        "accounts",
        sa.Column("avatar_slots_used", sa.INTEGER(), server_default="0", nullable=False),
        schema=SCHEMA,
    )
    op.add_column(
        "accounts", sa.Column("avatar_slots_limit", sa.INTEGER(), nullable=True), schema=SCHEMA
    )
    op.execute(
        """
        UPDATE billing.accounts AS a SET
            seats_limit = s.balance,
            avatar_slots_limit = v.balance + v.in_use,
            avatar_slots_used = v.in_use
        FROM billing.balances AS s, billing.balances AS v
        WHERE s.workspace_id = a.workspace_id AND s.pool = 'seats'
          AND v.workspace_id = a.workspace_id AND v.pool = 'avatar_slots'
          AND a.billing_mode = 'own'
        """
    )
    op.drop_constraint(op.f("ck_accounts_billing_root_plan"), "accounts", schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_accounts_billing_root_has_plan"),
        "accounts",
        "billing_mode = 'parent' OR (plan_code IS NOT NULL AND seats_limit >= 0"
        " AND avatar_slots_limit >= 0)",
        schema=SCHEMA,
    )
    op.execute("DELETE FROM billing.balances WHERE pool IN ('seats', 'avatar_slots')")
    op.drop_constraint(op.f("ck_balances_in_use_not_negative"), "balances", schema=SCHEMA)
    op.drop_constraint(op.f("ck_balances_allocated_not_negative"), "balances", schema=SCHEMA)
    op.drop_constraint(op.f("ck_balances_pool"), "balances", schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_balances_pool"),
        "balances",
        "pool IN ('generative_credits', 'api_credits')",
        schema=SCHEMA,
    )
    op.drop_column("balances", "in_use", schema=SCHEMA)
    op.drop_constraint(op.f("ck_accounts_seats_cap_not_negative"), "accounts", schema=SCHEMA)
    for column in ("closed_at", "seats_cap", "seats_pending", "strict_quota", "parent_id"):
        op.drop_column("accounts", column, schema=SCHEMA)
    op.drop_table("ledger_lines", schema=SCHEMA)
    op.execute("DROP FUNCTION billing.ledger_transaction_is_balanced()")
    op.drop_table("avatar_claims", schema=SCHEMA)
    op.drop_table("transactions", schema=SCHEMA)
    op.execute("DROP FUNCTION billing.ledger_is_append_only()")
    op.drop_table("idempotency_keys", schema=SCHEMA)
