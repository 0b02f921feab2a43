"""identity's event subscriptions (thin: each hands the event to a use case)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.billing import LimitsChanged
from services.identity.handlers import Identity
from shared.inbox import EventConsumer


def register_consumers(consumer: EventConsumer, identity: Identity) -> None:
    @consumer.on(LimitsChanged)
    async def limits_changed(session: AsyncSession, event: LimitsChanged, _: RawEnvelope) -> None:
        await identity.apply_limits(session, event)
