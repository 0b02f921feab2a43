"""API keys: stored by the HMAC of their secret, never the secret."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.apikeys import KeyRateLimit, RevocationReason
from services.apikeys.domain import KeySettings, KeyState
from services.apikeys.models import api_keys

Position = tuple[datetime, uuid.UUID]
"""Where a page of keys, newest first, ends: the last one's creation time and id."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: uuid.UUID
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    name: str
    hash: str
    prefix: str
    last4: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    suspended: bool
    rate_limit: KeyRateLimit | None
    monthly_credit_limit: int | None
    rotated_from: uuid.UUID | None
    last_used_at: datetime | None

    @property
    def state(self) -> KeyState:
        return KeyState(
            expires_at=self.expires_at, revoked_at=self.revoked_at, suspended=self.suspended
        )

    @property
    def settings(self) -> KeySettings:
        return KeySettings(
            name=self.name,
            expires_at=self.expires_at,
            rate_limit=self.rate_limit,
            monthly_credit_limit=self.monthly_credit_limit,
        )


def _record(row: Any) -> KeyRecord:
    requests, period = row["rate_limit_requests"], row["rate_limit_period_seconds"]
    return KeyRecord(
        id=row["id"],
        workspace_id=row["workspace_id"],
        root_id=row["root_id"],
        name=row["name"],
        hash=row["hash"],
        prefix=row["prefix"],
        last4=row["last4"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        suspended=row["suspended"],
        rate_limit=(
            None if requests is None else KeyRateLimit(requests=requests, period_seconds=period)
        ),
        monthly_credit_limit=row["monthly_credit_limit"],
        rotated_from=row["rotated_from"],
        last_used_at=row["last_used_at"],
    )


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: KeyRecord) -> None:
        await self.session.execute(
            api_keys.insert().values(
                id=key.id,
                workspace_id=key.workspace_id,
                root_id=key.root_id,
                name=key.name,
                hash=key.hash,
                prefix=key.prefix,
                last4=key.last4,
                created_by=key.created_by,
                created_at=key.created_at,
                expires_at=key.expires_at,
                suspended=key.suspended,
                rate_limit_requests=None if key.rate_limit is None else key.rate_limit.requests,
                rate_limit_period_seconds=(
                    None if key.rate_limit is None else key.rate_limit.period_seconds
                ),
                monthly_credit_limit=key.monthly_credit_limit,
                rotated_from=key.rotated_from,
            )
        )

    async def find(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, lock: bool = False
    ) -> KeyRecord | None:
        """The workspace's key (a key of another workspace is not found)."""
        query = select(api_keys).where(
            api_keys.c.id == key_id, api_keys.c.workspace_id == workspace_id
        )
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else _record(row)

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        row = (
            (await self.session.execute(select(api_keys).where(api_keys.c.hash == key_hash)))
            .mappings()
            .one_or_none()
        )
        return None if row is None else _record(row)

    async def page(
        self, workspace_id: uuid.UUID, *, limit: int, after: Position | None
    ) -> list[KeyRecord]:
        """The workspace's keys, newest first."""
        query = select(api_keys).where(api_keys.c.workspace_id == workspace_id)
        if after is not None:
            query = query.where(tuple_(api_keys.c.created_at, api_keys.c.id) < tuple_(*after))
        query = query.order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc()).limit(limit)
        return [_record(row) for row in (await self.session.execute(query)).mappings()]

    async def lock_unrevoked(self, workspace_id: uuid.UUID, now: datetime) -> list[KeyRecord]:
        """The workspace's keys whose revocation has not taken effect, locked in id order."""
        query = (
            select(api_keys)
            .where(
                api_keys.c.workspace_id == workspace_id,
                or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now),
            )
            .order_by(api_keys.c.id)
            .with_for_update()
        )
        return [_record(row) for row in (await self.session.execute(query)).mappings()]

    async def revoke(
        self, key_id: uuid.UUID, *, effective_at: datetime, reason: RevocationReason
    ) -> None:
        await self.session.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(revoked_at=effective_at, revocation_reason=reason.value)
        )

    async def set_suspended(self, key_ids: Sequence[uuid.UUID], *, suspended: bool) -> None:
        if key_ids:
            await self.session.execute(
                update(api_keys).where(api_keys.c.id.in_(key_ids)).values(suspended=suspended)
            )

    async def of_workspace(
        self, workspace_id: uuid.UUID, key_ids: set[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Those of `key_ids` that are keys of the workspace."""
        if not key_ids:
            return set()
        found = await self.session.execute(
            select(api_keys.c.id).where(
                api_keys.c.workspace_id == workspace_id, api_keys.c.id.in_(key_ids)
            )
        )
        return set(found.scalars())

    async def record_use(self, last_used: dict[uuid.UUID, datetime]) -> None:
        """Each key's `last_used_at` moves forward to its latest request, never back (a
        batch from another gateway process may come later with earlier requests)."""
        for key_id in sorted(last_used):
            at = literal(last_used[key_id], type_=DateTime(timezone=True))
            await self.session.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(last_used_at=func.greatest(func.coalesce(api_keys.c.last_used_at, at), at))
            )
