"""apikeys' event subscriptions (thin: each turns an event into a command and runs its
use case in the consumer's transaction, with the event's inbox row).

identity's workspace events keep apikeys' copy of the workspaces and suspend, restore
or revoke their keys; the gateway's batches of recorded requests and billing's
transactions made with a key are counted as usage."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.billing import TransactionPosted
from contracts.events.gateway import ApiRequestsRecorded
from contracts.events.identity import (
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
)
from services.apikeys.commands import (
    ChangeApiAccess,
    CountCreditsSpent,
    CountRequests,
    DeleteWorkspace,
    RecordWorkspace,
    StartWorkspaceDeletion,
)
from services.apikeys.domain import utc_day
from services.apikeys.usage import count_credits_spent, count_requests
from services.apikeys.workspaces import (
    change_api_access,
    delete_workspace,
    record_workspace,
    start_workspace_deletion,
)
from shared.service import ServiceRuntime


def register_consumers(runtime: ServiceRuntime) -> None:
    consumer = runtime.consumer
    units_of_work = runtime.units_of_work

    @consumer.on(WorkspaceCreated)
    async def workspace_created(
        session: AsyncSession, event: WorkspaceCreated, envelope: RawEnvelope
    ) -> None:
        command = RecordWorkspace(
            workspace_id=event.id,
            parent_id=event.parent_id,
            root_id=event.root_id,
            api_access=event.api_access,
        )
        await record_workspace(units_of_work.for_event(session, envelope), command)

    @consumer.on(WorkspaceSettingsChanged)
    async def workspace_settings_changed(
        session: AsyncSession, event: WorkspaceSettingsChanged, envelope: RawEnvelope
    ) -> None:
        command = ChangeApiAccess(
            workspace_id=event.id, parent_id=event.parent_id, api_access=event.api_access
        )
        await change_api_access(units_of_work.for_event(session, envelope), command)

    @consumer.on(WorkspaceDeletionStarted)
    async def workspace_deletion_started(
        session: AsyncSession, event: WorkspaceDeletionStarted, envelope: RawEnvelope
    ) -> None:
        command = StartWorkspaceDeletion(
            workspace_id=event.id, parent_id=event.parent_id, root_id=event.root_id
        )
        await start_workspace_deletion(units_of_work.for_event(session, envelope), command)

    @consumer.on(WorkspaceDeleted)
    async def workspace_deleted(
        session: AsyncSession, event: WorkspaceDeleted, envelope: RawEnvelope
    ) -> None:
        command = DeleteWorkspace(
            workspace_id=event.id, parent_id=event.parent_id, root_id=event.root_id
        )
        await delete_workspace(units_of_work.for_event(session, envelope), command)

    @consumer.on(ApiRequestsRecorded)
    async def requests_recorded(
        session: AsyncSession, event: ApiRequestsRecorded, envelope: RawEnvelope
    ) -> None:
        command = CountRequests(workspace_id=event.workspace_id, requests=event.requests)
        await count_requests(units_of_work.for_event(session, envelope), command)

    @consumer.on(TransactionPosted)
    async def transaction_posted(
        session: AsyncSession, event: TransactionPosted, envelope: RawEnvelope
    ) -> None:
        if event.api_key_id is None:
            return
        command = CountCreditsSpent(
            workspace_id=event.workspace_id,
            api_key_id=event.api_key_id,
            lines=event.lines,
            day=utc_day(envelope.occurred_at),
        )
        await count_credits_spent(units_of_work.for_event(session, envelope), command)
