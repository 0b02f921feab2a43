"""billing's tables, all in the `billing` schema.

`balances` keeps every account's current amounts in step with the ledger, in the
same transaction; its CHECKs make a negative balance impossible. `ledger_lines` is
append-only, and a deferred trigger refuses to commit a transaction whose lines do
not sum to zero per pool (migration 0002). `api_keys` is billing's copy of the key
events, and `api_key_spending` what each key's budget spent per UTC calendar month
(migration 0007).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.principal import nonce_table

metadata = service_metadata("billing")

POOLS_SQL = "('generative_credits', 'api_credits', 'avatar_slots', 'seats')"

accounts = Table(
    "accounts",
    metadata,
    Column("workspace_id", Uuid, primary_key=True),
    Column("root_id", Uuid, nullable=False, index=True),
    Column("parent_id", Uuid, nullable=True),
    Column("billing_root_id", Uuid, nullable=False),
    Column("billing_mode", Text, nullable=False),
    Column("strict_quota", Boolean, nullable=False, server_default="true"),
    Column(
        "api_access",
        Boolean,
        nullable=False,
        server_default="true",
        comment="From identity: may its own members see API usage.",
    ),
    Column("plan_code", Text, nullable=True, comment="Set on billing roots only."),
    Column(
        "seats_used",
        Integer,
        nullable=False,
        server_default="0",
        comment="Billing roots: people in the seat pool, from seats.usage_changed.",
    ),
    Column(
        "seats_pending",
        Integer,
        nullable=False,
        server_default="0",
        comment="Billing roots: seats held by pending invitations.",
    ),
    Column(
        "seats_cap",
        Integer,
        nullable=True,
        comment="A sub-workspace's seat cap within its pool: a copy of identity's.",
    ),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("billing_mode IN ('parent', 'own')", name="billing_mode"),
    CheckConstraint("billing_mode = 'parent' OR plan_code IS NOT NULL", name="billing_root_plan"),
    CheckConstraint("seats_cap >= 0", name="seats_cap_not_negative"),
)

balances = Table(
    "balances",
    metadata,
    Column("workspace_id", Uuid, ForeignKey("accounts.workspace_id"), primary_key=True),
    Column("pool", Text, primary_key=True),
    Column(
        "balance",
        BigInteger,
        nullable=False,
        comment="Credits left to spend, or capacity free to take (the ledger's sum).",
    ),
    Column(
        "allocated",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="Running total the parent granted (spent or not).",
    ),
    Column(
        "in_use",
        BigInteger,
        nullable=False,
        server_default="0",
        comment="Capacity taken (avatar slots held by avatars).",
    ),
    CheckConstraint("balance >= 0", name="never_negative"),
    CheckConstraint("allocated >= 0", name="allocated_not_negative"),
    CheckConstraint("in_use >= 0", name="in_use_not_negative"),
    CheckConstraint(f"pool IN {POOLS_SQL}", name="pool"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("workspace_id", Uuid, nullable=False, comment="The workspace it was made for."),
    Column("root_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("pool", Text, nullable=True, comment="Spends: the pool that paid."),
    Column("amount", BigInteger, nullable=True, comment="Spends: the credits charged."),
    Column("operation", Text, nullable=True),
    Column("quantity", BigInteger, nullable=True),
    Column("reference", Text, nullable=True),
    Column("api_key_id", Uuid, nullable=True),
    Column("actor", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "kind IN ('plan', 'purchase', 'allocation', 'spend', 'avatar_claim',"
        " 'avatar_release', 'reclaim')",
        name="kind",
    ),
)
Index(
    "ix_transactions_spends",
    transactions.c.workspace_id,
    transactions.c.created_at,
    postgresql_where=transactions.c.amount.is_not(None),
)

ledger_lines = Table(
    "ledger_lines",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("transaction_id", Uuid, ForeignKey("transactions.id"), nullable=False, index=True),
    Column(
        "workspace_id",
        Uuid,
        nullable=True,
        comment="Null: the world account of the pool (purchases, spends).",
    ),
    Column("pool", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column(
        "balance_after",
        BigInteger,
        nullable=True,
        comment="The workspace's balance of the pool after this line; null for the world.",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    CheckConstraint(f"pool IN {POOLS_SQL}", name="pool"),
)
Index("ix_ledger_lines_account", ledger_lines.c.workspace_id, ledger_lines.c.id)

avatar_claims = Table(
    "avatar_claims",
    metadata,
    Column("workspace_id", Uuid, primary_key=True),
    Column("avatar_id", Uuid, primary_key=True),
    Column("claim_transaction_id", Uuid, ForeignKey("transactions.id"), nullable=False),
    Column("release_transaction_id", Uuid, ForeignKey("transactions.id"), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    Column("workspace_id", Uuid, nullable=False, comment="The one workspace the key acts in."),
    Column("root_id", Uuid, nullable=False),
    Column(
        "budget_id",
        Uuid,
        nullable=False,
        comment="Whose monthly spending the key draws on: its own id, or that of the first"
        " key of the line it was rotated from.",
    ),
    Column(
        "monthly_credit_limit",
        BigInteger,
        nullable=True,
        comment="API credits the key may spend per UTC calendar month; null: no limit.",
    ),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column(
        "revoked_at",
        DateTime(timezone=True),
        nullable=True,
        comment="When the key stopped (or stops, after a rotation's grace) working.",
    ),
    Column(
        "suspended",
        Boolean,
        nullable=False,
        server_default="false",
        comment="Its workspace's api_access is off.",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("monthly_credit_limit >= 0", name="monthly_credit_limit_not_negative"),
)

api_key_spending = Table(
    "api_key_spending",
    metadata,
    Column("budget_id", Uuid, primary_key=True, comment="api_keys.budget_id"),
    Column("month", Date, primary_key=True, comment="The first day of the UTC calendar month."),
    Column("spent", BigInteger, nullable=False, comment="API credits spent in the month."),
    CheckConstraint("spent >= 0", name="spent_not_negative"),
    CheckConstraint("extract(day from month) = 1", name="month_starts_on_its_first_day"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
principal_nonces = nonce_table(metadata)
