"""All of billing's SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from services.billing.domain import CONSUMABLE_POOLS, Plan, Pool
from services.billing.models import accounts, balances


@dataclass(frozen=True, slots=True)
class PoolBalance:
    balance: int
    allocated: int


@dataclass(frozen=True, slots=True)
class AccountView:
    workspace_id: uuid.UUID
    billing_root_id: uuid.UUID
    plan_code: str | None
    seats_limit: int | None
    seats_used: int
    avatar_slots_limit: int | None
    avatar_slots_used: int
    pools: dict[Pool, PoolBalance]


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_account(
        self,
        *,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        billing_root_id: uuid.UUID,
        billing_mode: BillingMode,
        plan: Plan | None,
    ) -> bool:
        """Open the workspace's account and its pools; False if it was already open."""
        opened = await self.session.execute(
            insert(accounts)
            .values(
                workspace_id=workspace_id,
                root_id=root_id,
                billing_root_id=billing_root_id,
                billing_mode=billing_mode.value,
                plan_code=None if plan is None else plan.code,
                seats_limit=None if plan is None else plan.seats,
                avatar_slots_limit=None if plan is None else plan.avatar_slots,
            )
            .on_conflict_do_nothing(index_elements=[accounts.c.workspace_id])
            .returning(accounts.c.workspace_id),
        )
        if opened.first() is None:
            return False
        await self.session.execute(
            balances.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "pool": pool.value,
                    "balance": 0 if plan is None else plan.opening_balance(pool),
                }
                for pool in CONSUMABLE_POOLS
            ],
        )
        return True

    async def account(self, workspace_id: uuid.UUID) -> AccountView | None:
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
                select(balances.c.pool, balances.c.balance, balances.c.allocated).where(
                    balances.c.workspace_id == workspace_id,
                ),
            )
        ).all()
        return AccountView(
            workspace_id=account["workspace_id"],
            billing_root_id=account["billing_root_id"],
            plan_code=account["plan_code"],
            seats_limit=account["seats_limit"],
            seats_used=account["seats_used"],
            avatar_slots_limit=account["avatar_slots_limit"],
            avatar_slots_used=account["avatar_slots_used"],
            pools={
                Pool(row.pool): PoolBalance(balance=row.balance, allocated=row.allocated)
                for row in pools
            },
        )
