"""The libraries' assets: one query per question, all SQL here.

Lock order: a workspace's copy (share lock, `WorkspaceRepository.find`), then an
asset's row, then its shares. A change to an asset locks its row first, so that a
share and the asset's deletion, or two edits, happen one after the other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Row,
    Select,
    delete,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.assets import AssetKind
from services.assets.domain import Asset, AssetStatus, SeenAsset
from services.assets.models import assets, shares
from shared.pagination import Moment
from shared.principal import Principal

Position = tuple[Moment, uuid.UUID]
"""Where a page of a library ends: the last asset's creation time and id."""

_COLUMNS = (
    assets.c.id,
    assets.c.workspace_id,
    assets.c.root_id,
    assets.c.kind,
    assets.c.name,
    assets.c.properties,
    assets.c.status,
    assets.c.created_by,
    assets.c.created_at,
    assets.c.updated_at,
)


def _asset(row: Row[*tuple[Any, ...]]) -> Asset:
    return Asset(
        id=row.id,
        workspace_id=row.workspace_id,
        root_id=row.root_id,
        kind=AssetKind(row.kind),
        name=row.name,
        properties=row.properties,
        status=AssetStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class UnfinishedAvatar:
    """A pending or deleting avatar, and who billing's call about it is made for."""

    asset: Asset
    billing_principal: Principal


class AssetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        asset: Asset,
        *,
        billing_principal: Principal | None = None,
        request_key: str | None = None,
    ) -> bool:
        """False when an asset with the same `request_key` exists already (a retry of
        the request that made it, which may have run at the same time)."""
        added = await self.session.execute(
            insert(assets)
            .values(
                id=asset.id,
                workspace_id=asset.workspace_id,
                root_id=asset.root_id,
                kind=asset.kind.value,
                name=asset.name,
                properties=asset.properties,
                status=asset.status.value,
                created_by=asset.created_by,
                created_at=asset.created_at,
                updated_at=asset.updated_at,
                billing_principal=None
                if billing_principal is None
                else billing_principal.to_json(),
                request_key=request_key,
            )
            .on_conflict_do_nothing(index_elements=[assets.c.request_key])
            .returning(assets.c.id)
        )
        return added.first() is not None

    async def find_by_request_key(self, request_key: str) -> Asset | None:
        row = (
            await self.session.execute(select(*_COLUMNS).where(assets.c.request_key == request_key))
        ).first()
        return None if row is None else _asset(row)

    async def lock(self, asset_id: uuid.UUID) -> Asset | None:
        """The asset's row, locked against every other change (whatever its status)."""
        row = (
            await self.session.execute(
                select(*_COLUMNS).where(assets.c.id == asset_id).with_for_update()
            )
        ).first()
        return None if row is None else _asset(row)

    async def lock_unfinished(self, asset_id: uuid.UUID) -> UnfinishedAvatar | None:
        """A pending or deleting avatar that no one else is working on, locked; None when
        it is finished or another transaction holds it (a request still under way)."""
        row = (
            await self.session.execute(
                select(*_COLUMNS, assets.c.billing_principal)
                .where(assets.c.id == asset_id, assets.c.status != AssetStatus.ACTIVE.value)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return None
        return UnfinishedAvatar(_asset(row), Principal.from_json(row.billing_principal))

    async def unfinished(self, *, older_than: timedelta, limit: int) -> list[uuid.UUID]:
        """Avatars left pending or deleting for longer than `older_than`."""
        found = await self.session.execute(
            select(assets.c.id)
            .where(
                assets.c.status != AssetStatus.ACTIVE.value,
                assets.c.updated_at < func.now() - older_than,
            )
            .order_by(assets.c.updated_at)
            .limit(limit)
        )
        return list(found.scalars())

    async def seen_from(self, asset_id: uuid.UUID, workspace_id: uuid.UUID) -> SeenAsset | None:
        """The asset as `workspace_id` sees it: its own or shared with it, active."""
        shared_here = exists().where(
            shares.c.asset_id == assets.c.id, shares.c.target_workspace_id == workspace_id
        )
        row = (
            await self.session.execute(
                select(*_COLUMNS).where(
                    assets.c.id == asset_id,
                    assets.c.status == AssetStatus.ACTIVE.value,
                    or_(assets.c.workspace_id == workspace_id, shared_here),
                )
            )
        ).first()
        if row is None:
            return None
        asset = _asset(row)
        return SeenAsset(asset, None if asset.workspace_id == workspace_id else asset.workspace_id)

    async def library_page(
        self,
        workspace_id: uuid.UUID,
        *,
        kind: AssetKind | None,
        include_shared: bool,
        after: Position | None,
        limit: int,
    ) -> list[SeenAsset]:
        """Up to `limit` assets seen from `workspace_id` after `after`, by creation time
        and id (`library_query`)."""
        query = library_query(
            workspace_id, kind=kind, include_shared=include_shared, after=after, limit=limit
        )
        rows = (await self.session.execute(query)).all()
        return [SeenAsset(_asset(row), row.workspace_id if row.shared else None) for row in rows]

    async def change(
        self, asset_id: uuid.UUID, *, name: str | None, properties: dict[str, Any] | None
    ) -> Asset:
        values: dict[str, Any] = {"updated_at": func.now()}
        if name is not None:
            values["name"] = name
        if properties is not None:
            values["properties"] = properties
        row = (
            await self.session.execute(
                update(assets).where(assets.c.id == asset_id).values(**values).returning(*_COLUMNS)
            )
        ).one()
        return _asset(row)

    async def activate(self, asset_id: uuid.UUID) -> Asset:
        row = (
            await self.session.execute(
                update(assets)
                .where(assets.c.id == asset_id)
                .values(status=AssetStatus.ACTIVE.value, billing_principal=null())
                .returning(*_COLUMNS)
            )
        ).one()
        return _asset(row)

    async def mark_deleting(self, asset_id: uuid.UUID, billing_principal: Principal) -> None:
        await self.session.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(
                status=AssetStatus.DELETING.value,
                billing_principal=billing_principal.to_json(),
                updated_at=func.now(),
            )
        )

    async def remove(self, asset_id: uuid.UUID) -> None:
        await self.session.execute(delete(assets).where(assets.c.id == asset_id))

    async def ids_in(self, workspace_id: uuid.UUID) -> list[uuid.UUID]:
        """Every asset of a workspace, whatever its status."""
        found = await self.session.execute(
            select(assets.c.id).where(assets.c.workspace_id == workspace_id).order_by(assets.c.id)
        )
        return list(found.scalars())


def library_query(
    workspace_id: uuid.UUID,
    *,
    kind: AssetKind | None,
    include_shared: bool,
    after: Position | None,
    limit: int,
) -> Select[Any]:
    """A page of a library: the workspace's own assets (index `ix_assets_library`, or
    `ix_assets_library_kind` for one kind) merged with those shared with it (index
    `ix_shares_target`), each branch cut at `limit` first, so that a page reads about
    two pages of rows however deep it is."""

    def branch(*conditions: Any, shared: bool) -> Select[Any]:
        # The shared-in branch walks the target's shares in library order (their copy
        # of the asset's creation time), so that it stops after `limit` too.
        created_at = shares.c.asset_created_at if shared else assets.c.created_at
        order = (created_at, shares.c.asset_id if shared else assets.c.id)
        query = select(*_COLUMNS, literal(shared).label("shared")).where(
            assets.c.status == AssetStatus.ACTIVE.value, *conditions
        )
        if shared:
            query = query.select_from(shares.join(assets, shares.c.asset_id == assets.c.id))
        if kind is not None:
            query = query.where(assets.c.kind == kind.value)
        if after is not None:
            query = query.where(tuple_(*order) > tuple_(*after))
        return query.order_by(*order).limit(limit)

    own = branch(assets.c.workspace_id == workspace_id, shared=False)
    if not include_shared:
        return own
    both = union_all(own, branch(shares.c.target_workspace_id == workspace_id, shared=True))
    merged = both.subquery()
    return select(merged).order_by(merged.c.created_at, merged.c.id).limit(limit)
