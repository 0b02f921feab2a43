"""billing's event subscriptions (thin: each hands the event to a handler)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.identity import WorkspaceCreated
from services.billing import handlers
from services.billing.domain import Plan
from shared.inbox import EventConsumer


def register_consumers(consumer: EventConsumer, *, default_plan: Plan) -> None:
    @consumer.on(WorkspaceCreated)
    async def workspace_created(
        session: AsyncSession, event: WorkspaceCreated, _: RawEnvelope
    ) -> None:
        await handlers.open_account(session, event, default_plan)
