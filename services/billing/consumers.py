"""billing's event subscriptions (thin: each turns identity's or apikeys' event into a
command and runs its use case in the consumer's transaction, with the event's inbox
row)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.apikeys import ApiKeyCreated, ApiKeyRestored, ApiKeyRevoked, ApiKeySuspended
from contracts.events.identity import (
    SeatsCapChanged,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceSettingsChanged,
)
from services.billing.accounts import (
    ChangeAccountSettings,
    CloseAccount,
    OpenAccount,
    RecordSeatsCap,
    RecordSeatUsage,
    change_account_settings,
    close_account,
    open_account,
    record_seat_usage,
    record_seats_cap,
)
from services.billing.domain import Plan
from services.billing.key_budgets import (
    RecordKeyCreated,
    RecordKeyRevoked,
    RecordKeySuspension,
    record_key_created,
    record_key_revoked,
    record_key_suspension,
)
from shared.service import ServiceRuntime


def register_consumers(runtime: ServiceRuntime, plan: Plan) -> None:
    consumer = runtime.consumer
    units_of_work = runtime.units_of_work

    @consumer.on(WorkspaceCreated)
    async def workspace_created(
        session: AsyncSession, event: WorkspaceCreated, envelope: RawEnvelope
    ) -> None:
        command = OpenAccount(
            workspace_id=event.id,
            root_id=event.root_id,
            parent_id=event.parent_id,
            billing_root_id=event.billing_root_id,
            billing_mode=event.billing_mode,
            strict_quota=event.strict_quota,
            api_access=event.api_access,
            plan=plan,
        )
        await open_account(units_of_work.for_event(session, envelope), command)

    @consumer.on(WorkspaceSettingsChanged)
    async def workspace_settings_changed(
        session: AsyncSession, event: WorkspaceSettingsChanged, envelope: RawEnvelope
    ) -> None:
        command = ChangeAccountSettings(
            workspace_id=event.id,
            parent_id=event.parent_id,
            billing_root_id=event.billing_root_id,
            billing_mode=event.billing_mode,
            strict_quota=event.strict_quota,
            api_access=event.api_access,
            plan=plan,
        )
        await change_account_settings(units_of_work.for_event(session, envelope), command)

    @consumer.on(WorkspaceDeleted)
    async def workspace_deleted(
        session: AsyncSession, event: WorkspaceDeleted, envelope: RawEnvelope
    ) -> None:
        command = CloseAccount(
            workspace_id=event.id,
            root_id=event.root_id,
            parent_id=event.parent_id,
            billing_root_id=event.billing_root_id,
            billing_mode=event.billing_mode,
            plan=plan,
        )
        await close_account(units_of_work.for_event(session, envelope), command)

    @consumer.on(SeatsUsageChanged)
    async def seats_usage_changed(
        session: AsyncSession, event: SeatsUsageChanged, envelope: RawEnvelope
    ) -> None:
        command = RecordSeatUsage(
            billing_root_id=event.billing_root_id, used=event.used, pending=event.pending
        )
        await record_seat_usage(units_of_work.for_event(session, envelope), command)

    @consumer.on(SeatsCapChanged)
    async def seats_cap_changed(
        session: AsyncSession, event: SeatsCapChanged, envelope: RawEnvelope
    ) -> None:
        command = RecordSeatsCap(workspace_id=event.workspace_id, seats_cap=event.seats_cap)
        await record_seats_cap(units_of_work.for_event(session, envelope), command)

    @consumer.on(ApiKeyCreated)
    async def api_key_created(
        session: AsyncSession, event: ApiKeyCreated, envelope: RawEnvelope
    ) -> None:
        command = RecordKeyCreated(
            key_id=event.key_id,
            workspace_id=event.workspace_id,
            root_id=event.root_id,
            monthly_credit_limit=event.monthly_credit_limit,
            expires_at=event.expires_at,
            suspended=event.suspended,
            rotated_from=event.rotated_from,
        )
        await record_key_created(units_of_work.for_event(session, envelope), command)

    @consumer.on(ApiKeyRevoked)
    async def api_key_revoked(
        session: AsyncSession, event: ApiKeyRevoked, envelope: RawEnvelope
    ) -> None:
        command = RecordKeyRevoked(key_id=event.key_id, effective_at=event.effective_at)
        await record_key_revoked(units_of_work.for_event(session, envelope), command)

    @consumer.on(ApiKeySuspended)
    async def api_key_suspended(
        session: AsyncSession, event: ApiKeySuspended, envelope: RawEnvelope
    ) -> None:
        command = RecordKeySuspension(key_id=event.key_id, suspended=True)
        await record_key_suspension(units_of_work.for_event(session, envelope), command)

    @consumer.on(ApiKeyRestored)
    async def api_key_restored(
        session: AsyncSession, event: ApiKeyRestored, envelope: RawEnvelope
    ) -> None:
        command = RecordKeySuspension(key_id=event.key_id, suspended=False)
        await record_key_suspension(units_of_work.for_event(session, envelope), command)
