"""billing's event subscriptions (thin: each hands the event to a handler, in the
consumer's transaction with the event's inbox row)."""

from __future__ import annotations

from contracts.events.identity import (
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceSettingsChanged,
)
from services.billing.handlers import Billing
from shared.inbox import EventConsumer


def register_consumers(consumer: EventConsumer, billing: Billing) -> None:
    consumer.on(WorkspaceCreated)(billing.open_account)
    consumer.on(WorkspaceSettingsChanged)(billing.change_settings)
    consumer.on(WorkspaceDeleted)(billing.close_account)
    consumer.on(SeatsUsageChanged)(billing.record_seat_usage)
