"""assets' tables, all in the `assets` schema.

`workspaces` is a copy of identity's tree, from its events: it answers read-your-writes
("has this workspace reached assets yet?") and "same account" without a call. `assets`
holds every library; an avatar is `pending` until billing has taken its slot and fee,
and `deleting` until billing has freed its slot (neither is seen by anyone). `shares`
are read in the same database as the assets, so a share or a revocation holds from
the request that made it on.
"""

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.principal import nonce_table

metadata = service_metadata("assets")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("parent_id", Uuid, nullable=True),
    Column("root_id", Uuid, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    CheckConstraint("status IN ('active', 'deleted')", name="status"),
)
Index("ix_workspaces_parent_id", workspaces.c.parent_id)

assets = Table(
    "assets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("workspace_id", Uuid, ForeignKey("workspaces.id"), nullable=False),
    Column("root_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("properties", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False),
    Column("created_by", Text, nullable=False, comment="`user:<id>` or `apikey:<id>`."),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "billing_principal",
        JSONB,
        nullable=True,
        comment="Avatars: who billing's claim (or release) is made for, so that the "
        "reconciler repeats it as the same caller (the same pool pays).",
    ),
    Column(
        "request_key",
        Text,
        nullable=True,
        comment="Avatars: the creating request's idempotency scope and key, so that its "
        "retry finds the same avatar.",
    ),
    CheckConstraint("kind IN ('avatar', 'voice', 'brand_kit', 'template')", name="kind"),
    CheckConstraint("status IN ('pending', 'active', 'deleting')", name="status"),
    CheckConstraint("status = 'active' OR kind = 'avatar'", name="only_avatars_wait"),
)
Index(
    "ix_assets_library",
    assets.c.workspace_id,
    assets.c.created_at,
    assets.c.id,
    postgresql_where=assets.c.status == "active",
)
Index(
    "ix_assets_library_kind",
    assets.c.workspace_id,
    assets.c.kind,
    assets.c.created_at,
    assets.c.id,
    postgresql_where=assets.c.status == "active",
)
Index(
    "ix_assets_unfinished",
    assets.c.updated_at,
    postgresql_where=assets.c.status != "active",
)
Index("ix_assets_request_key", assets.c.request_key, unique=True)

shares = Table(
    "shares",
    metadata,
    Column("asset_id", Uuid, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("target_workspace_id", Uuid, ForeignKey("workspaces.id"), primary_key=True),
    Column("shared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "asset_created_at",
        DateTime(timezone=True),
        nullable=False,
        comment="The asset's creation time, copied: a target's shared-in assets are read "
        "in library order from the index alone.",
    ),
)
Index(
    "ix_shares_target",
    shares.c.target_workspace_id,
    shares.c.asset_created_at,
    shares.c.asset_id,
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
principal_nonces = nonce_table(metadata)
