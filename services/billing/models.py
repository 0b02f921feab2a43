"""billing's tables, all in the `billing` schema."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

metadata = service_metadata("billing")

accounts = Table(
    "accounts",
    metadata,
    Column("workspace_id", Uuid, primary_key=True),
    Column("root_id", Uuid, nullable=False, index=True),
    Column("billing_root_id", Uuid, nullable=False),
    Column("billing_mode", Text, nullable=False),
    Column("plan_code", Text, nullable=True, comment="Set on billing roots only."),
    Column("seats_limit", Integer, nullable=True),
    Column("avatar_slots_limit", Integer, nullable=True),
    Column("seats_used", Integer, nullable=False, server_default="0"),
    Column("avatar_slots_used", Integer, nullable=False, server_default="0"),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("billing_mode IN ('parent', 'own')", name="billing_mode"),
    CheckConstraint(
        "billing_mode = 'parent' OR (plan_code IS NOT NULL AND seats_limit >= 0"
        " AND avatar_slots_limit >= 0)",
        name="billing_root_has_plan",
    ),
)

balances = Table(
    "balances",
    metadata,
    Column("workspace_id", Uuid, ForeignKey("accounts.workspace_id"), primary_key=True),
    Column("pool", Text, primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("allocated", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("balance >= 0", name="never_negative"),
    CheckConstraint("pool IN ('generative_credits', 'api_credits')", name="pool"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
