"""Avatar claims: which avatar holds which workspace's slot, and since when it is free."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.models import avatar_claims


@dataclass(frozen=True, slots=True)
class AvatarClaimRecord:
    claim_transaction_id: uuid.UUID
    released: bool


class AvatarClaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, workspace_id: uuid.UUID, avatar_id: uuid.UUID) -> AvatarClaimRecord | None:
        """The avatar's claim in the workspace; None if it never claimed a slot there."""
        row = (
            await self.session.execute(
                select(
                    avatar_claims.c.claim_transaction_id,
                    avatar_claims.c.release_transaction_id,
                ).where(
                    avatar_claims.c.workspace_id == workspace_id,
                    avatar_claims.c.avatar_id == avatar_id,
                ),
            )
        ).first()
        if row is None:
            return None
        return AvatarClaimRecord(
            claim_transaction_id=row.claim_transaction_id,
            released=row.release_transaction_id is not None,
        )

    async def add(
        self, workspace_id: uuid.UUID, avatar_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> None:
        await self.session.execute(
            avatar_claims.insert().values(
                workspace_id=workspace_id,
                avatar_id=avatar_id,
                claim_transaction_id=transaction_id,
            ),
        )

    async def release(
        self, workspace_id: uuid.UUID, avatar_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> bool:
        """Mark a held claim released; False if it was not held (never, or already freed)."""
        released = await self.session.execute(
            update(avatar_claims)
            .where(
                avatar_claims.c.workspace_id == workspace_id,
                avatar_claims.c.avatar_id == avatar_id,
                avatar_claims.c.release_transaction_id.is_(None),
            )
            .values(release_transaction_id=transaction_id)
            .returning(avatar_claims.c.avatar_id),
        )
        return released.first() is not None
