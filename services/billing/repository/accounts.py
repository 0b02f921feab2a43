"""Accounts: one per workspace billing has heard of, open until the workspace is deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from services.billing.domain import Pool
from services.billing.models import accounts, balances


@dataclass(frozen=True, slots=True)
class PoolBalance:
    balance: int
    allocated: int
    in_use: int


@dataclass(frozen=True, slots=True)
class AccountView:
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode
    strict_quota: bool
    api_access: bool
    plan_code: str | None
    seats_used: int
    seats_pending: int
    seats_cap: int | None
    closed: bool
    pools: dict[Pool, PoolBalance]

    @property
    def falls_through_to_parent(self) -> bool:
        """A `parent`-billed sub-workspace without a strict quota spends from its parent's
        pool once its own allocation runs out."""
        return (
            self.billing_mode is BillingMode.PARENT
            and not self.strict_quota
            and self.parent_id is not None
        )

    def avatar_slots_limit(self) -> int:
        slots = self.pools[Pool.AVATAR_SLOTS]
        return slots.balance + slots.in_use


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(
        self,
        *,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        billing_root_id: uuid.UUID,
        billing_mode: BillingMode,
        strict_quota: bool,
        api_access: bool,
        plan_code: str | None,
    ) -> bool:
        """Open the workspace's account with an empty balance in every pool; False if it
        was already open."""
        opened = await self.session.execute(
            insert(accounts)
            .values(
                workspace_id=workspace_id,
                root_id=root_id,
                parent_id=parent_id,
                billing_root_id=billing_root_id,
                billing_mode=billing_mode.value,
                strict_quota=strict_quota,
                api_access=api_access,
                plan_code=plan_code,
            )
            .on_conflict_do_nothing(index_elements=[accounts.c.workspace_id])
            .returning(accounts.c.workspace_id),
        )
        if opened.first() is None:
            return False
        await self.session.execute(
            balances.insert(),
            [{"workspace_id": workspace_id, "pool": pool.value, "balance": 0} for pool in Pool],
        )
        return True

    async def find(self, workspace_id: uuid.UUID) -> AccountView | None:
        account = (
            (
                await self.session.execute(
                    select(accounts).where(accounts.c.workspace_id == workspace_id),
                )
            )
            .mappings()
            .one_or_none()
        )
        if account is None:
            return None
        pools = (
            await self.session.execute(
                select(
                    balances.c.pool, balances.c.balance, balances.c.allocated, balances.c.in_use
                ).where(balances.c.workspace_id == workspace_id),
            )
        ).all()
        return AccountView(
            workspace_id=account["workspace_id"],
            root_id=account["root_id"],
            parent_id=account["parent_id"],
            billing_root_id=account["billing_root_id"],
            billing_mode=BillingMode(account["billing_mode"]),
            strict_quota=account["strict_quota"],
            api_access=account["api_access"],
            plan_code=account["plan_code"],
            seats_used=account["seats_used"],
            seats_pending=account["seats_pending"],
            seats_cap=account["seats_cap"],
            closed=account["closed_at"] is not None,
            pools={
                Pool(row.pool): PoolBalance(
                    balance=row.balance, allocated=row.allocated, in_use=row.in_use
                )
                for row in pools
            },
        )

    async def update(self, workspace_id: uuid.UUID, **values: object) -> None:
        await self.session.execute(
            update(accounts).where(accounts.c.workspace_id == workspace_id).values(**values),
        )

    async def close(self, workspace_id: uuid.UUID) -> None:
        await self.session.execute(
            update(accounts)
            .where(accounts.c.workspace_id == workspace_id)
            .values(closed_at=func.now()),
        )
        await self.session.execute(
            update(balances)
            .where(balances.c.workspace_id == workspace_id)
            .values(allocated=0, in_use=0),
        )

    async def record_seat_usage(
        self, billing_root_id: uuid.UUID, *, used: int, pending: int
    ) -> bool:
        """Keep the seat pool's usage; False when the billing root is not known yet."""
        updated = await self.session.execute(
            update(accounts)
            .where(accounts.c.workspace_id == billing_root_id)
            .values(seats_used=used, seats_pending=pending)
            .returning(accounts.c.workspace_id),
        )
        return updated.first() is not None
