"""assets' event subscriptions (thin: each turns identity's event into a command and
runs its use case in the consumer's transaction, with the event's inbox row)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.identity import WorkspaceCreated, WorkspaceDeleted
from services.assets import workspaces
from services.assets.commands import CloseLibrary, RecordWorkspace
from shared.inbox import EventConsumer
from shared.unit_of_work import UnitsOfWork


def register_consumers(consumer: EventConsumer, units: UnitsOfWork) -> None:
    @consumer.on(WorkspaceCreated)
    async def workspace_created(
        session: AsyncSession, event: WorkspaceCreated, envelope: RawEnvelope
    ) -> None:
        command = RecordWorkspace(
            workspace_id=event.id, parent_id=event.parent_id, root_id=event.root_id
        )
        await workspaces.record_workspace(units.for_event(session, envelope), command)

    @consumer.on(WorkspaceDeleted)
    async def workspace_deleted(
        session: AsyncSession, event: WorkspaceDeleted, envelope: RawEnvelope
    ) -> None:
        command = CloseLibrary(
            workspace_id=event.id, parent_id=event.parent_id, root_id=event.root_id
        )
        await workspaces.close_library(units.for_event(session, envelope), command)
