"""The gateway's event subscriptions: identity's workspaces and memberships, and
apikeys' keys, written to the gateway's tables. Each write notifies every gateway
process, this one included, which reads the changed rows into its in-memory copy
(`services.gateway.projection_changes`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.apikeys import (
    ApiKeyCreated,
    ApiKeyRestored,
    ApiKeyRevoked,
    ApiKeySuspended,
)
from contracts.events.identity import (
    MemberJoined,
    MemberRemoved,
    MemberRoleChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
)
from services.gateway.projections import Membership, WorkspaceNode, WorkspaceStatus
from services.gateway.repository import KeyRepository, ProjectionRepository
from shared.inbox import EventConsumer


def register_consumers(consumer: EventConsumer) -> None:
    @consumer.on(WorkspaceCreated)
    async def workspace_created(
        session: AsyncSession, created: WorkspaceCreated, _: RawEnvelope
    ) -> None:
        workspace = WorkspaceNode(
            id=created.id,
            parent_id=created.parent_id,
            root_id=created.root_id,
            api_access=created.api_access,
        )
        await ProjectionRepository(session).put_workspace(workspace)

    @consumer.on(WorkspaceSettingsChanged)
    async def settings_changed(
        session: AsyncSession, changed: WorkspaceSettingsChanged, _: RawEnvelope
    ) -> None:
        await ProjectionRepository(session).change_settings(
            changed.id, api_access=changed.api_access
        )

    @consumer.on(WorkspaceDeletionStarted)
    async def deletion_started(
        session: AsyncSession, started: WorkspaceDeletionStarted, _: RawEnvelope
    ) -> None:
        await ProjectionRepository(session).mark(started.id, WorkspaceStatus.DELETING)

    @consumer.on(WorkspaceDeleted)
    async def deleted(session: AsyncSession, gone: WorkspaceDeleted, _: RawEnvelope) -> None:
        await ProjectionRepository(session).mark(gone.id, WorkspaceStatus.DELETED)

    @consumer.on(MemberJoined)
    async def member_joined(session: AsyncSession, joined: MemberJoined, _: RawEnvelope) -> None:
        membership = Membership(joined.workspace_id, joined.user_id, joined.role)
        await ProjectionRepository(session).put_member(membership)

    @consumer.on(MemberRoleChanged)
    async def role_changed(
        session: AsyncSession, changed: MemberRoleChanged, _: RawEnvelope
    ) -> None:
        membership = Membership(changed.workspace_id, changed.user_id, changed.role)
        await ProjectionRepository(session).put_member(membership)

    @consumer.on(MemberRemoved)
    async def member_removed(session: AsyncSession, removed: MemberRemoved, _: RawEnvelope) -> None:
        await ProjectionRepository(session).remove_member(removed.workspace_id, removed.user_id)

    @consumer.on(ApiKeyCreated)
    async def key_created(session: AsyncSession, created: ApiKeyCreated, _: RawEnvelope) -> None:
        await KeyRepository(session).key_created(created)

    @consumer.on(ApiKeyRevoked)
    async def key_revoked(session: AsyncSession, revoked: ApiKeyRevoked, _: RawEnvelope) -> None:
        await KeyRepository(session).key_revoked(
            revoked.key_id, revoked.workspace_id, revoked.root_id, at=revoked.effective_at
        )

    @consumer.on(ApiKeySuspended)
    async def key_suspended(
        session: AsyncSession, suspended: ApiKeySuspended, _: RawEnvelope
    ) -> None:
        await KeyRepository(session).key_suspended(
            suspended.key_id, suspended.workspace_id, suspended.root_id, suspended=True
        )

    @consumer.on(ApiKeyRestored)
    async def key_restored(session: AsyncSession, restored: ApiKeyRestored, _: RawEnvelope) -> None:
        await KeyRepository(session).key_suspended(
            restored.key_id, restored.workspace_id, restored.root_id, suspended=False
        )
