"""billing's use cases: one transaction each."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode, WorkspaceCreated
from services.billing.domain import Plan
from services.billing.repository import AccountView, BillingRepository
from shared.errors import NotFoundError
from shared.service import ServiceRuntime


async def open_account(session: AsyncSession, workspace: WorkspaceCreated, plan: Plan) -> None:
    """Every workspace gets an account; a billing root starts on `plan`."""
    await BillingRepository(session).open_account(
        workspace_id=workspace.id,
        root_id=workspace.root_id,
        billing_root_id=workspace.billing_root_id,
        billing_mode=workspace.billing_mode,
        plan=plan if workspace.billing_mode is BillingMode.OWN else None,
    )


async def get_account(runtime: ServiceRuntime, workspace_id: uuid.UUID) -> AccountView:
    async with runtime.database.transaction() as session:
        account = await BillingRepository(session).account(workspace_id)
    if account is None:
        msg = f"No billing account for workspace {workspace_id}."
        raise NotFoundError(msg)
    return account
