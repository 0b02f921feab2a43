"""identity's event subscriptions. Each turns an event into a command and runs it in
the event's unit of work (the inbox's transaction), so that the effect and the
event's inbox row commit together."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.billing import LimitsChanged
from services.identity import seat_pool
from services.identity.commands import ApplyLimits
from shared.inbox import EventConsumer
from shared.unit_of_work import UnitsOfWork


def register_consumers(consumer: EventConsumer, units: UnitsOfWork) -> None:
    @consumer.on(LimitsChanged)
    async def limits_changed(
        session: AsyncSession, event: LimitsChanged, envelope: RawEnvelope
    ) -> None:
        await seat_pool.apply_limits(
            units.for_event(session, envelope),
            ApplyLimits(workspace_id=event.workspace_id, seats_limit=event.seats_limit),
        )
