"""Which workspaces each asset is shared with. Rows are changed only under the asset's
row lock (`AssetRepository.lock`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.assets.domain import Share
from services.assets.models import assets, shares
from shared.pagination import Moment

SharePosition = tuple[Moment, uuid.UUID]


@dataclass(frozen=True, slots=True)
class EndedShare:
    asset_id: uuid.UUID
    owner_id: uuid.UUID
    root_id: uuid.UUID


class ShareRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, asset_id: uuid.UUID, asset_created_at: datetime, targets: Iterable[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Share with `targets`; the ones it was not shared with before."""
        rows = [
            {
                "asset_id": asset_id,
                "target_workspace_id": target,
                "asset_created_at": asset_created_at,
            }
            for target in targets
        ]
        added = await self.session.execute(
            insert(shares)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(shares.c.target_workspace_id)
        )
        return list(added.scalars())

    async def of(self, asset_id: uuid.UUID) -> list[Share]:
        rows = await self.session.execute(
            select(shares.c.target_workspace_id, shares.c.shared_at)
            .where(shares.c.asset_id == asset_id)
            .order_by(shares.c.shared_at, shares.c.target_workspace_id)
        )
        return [Share(row.target_workspace_id, row.shared_at) for row in rows]

    async def page(
        self, asset_id: uuid.UUID, *, after: SharePosition | None, limit: int
    ) -> list[Share]:
        query = select(shares.c.target_workspace_id, shares.c.shared_at).where(
            shares.c.asset_id == asset_id
        )
        if after is not None:
            query = query.where(
                tuple_(shares.c.shared_at, shares.c.target_workspace_id) > tuple_(*after)
            )
        rows = await self.session.execute(
            query.order_by(shares.c.shared_at, shares.c.target_workspace_id).limit(limit)
        )
        return [Share(row.target_workspace_id, row.shared_at) for row in rows]

    async def remove(self, asset_id: uuid.UUID, target_id: uuid.UUID) -> bool:
        removed = await self.session.execute(
            delete(shares)
            .where(shares.c.asset_id == asset_id, shares.c.target_workspace_id == target_id)
            .returning(shares.c.asset_id)
        )
        return removed.first() is not None

    async def remove_all(self, asset_id: uuid.UUID) -> list[uuid.UUID]:
        removed = await self.session.execute(
            delete(shares)
            .where(shares.c.asset_id == asset_id)
            .returning(shares.c.target_workspace_id)
        )
        return list(removed.scalars())

    async def remove_to(self, target_id: uuid.UUID) -> list[EndedShare]:
        """End every share with a (deleted) workspace."""
        removed = await self.session.execute(
            delete(shares)
            .where(shares.c.target_workspace_id == target_id)
            .returning(shares.c.asset_id)
        )
        asset_ids = list(removed.scalars())
        if not asset_ids:
            return []
        owners = await self.session.execute(
            select(assets.c.id, assets.c.workspace_id, assets.c.root_id).where(
                assets.c.id.in_(asset_ids)
            )
        )
        return [EndedShare(row.id, row.workspace_id, row.root_id) for row in owners]
