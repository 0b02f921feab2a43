"""All of the gateway's SQL: its projection tables.

Every write to a projection table notifies, in the same transaction, what it changed
(`KEY_CHANNEL`, `ACCESS_CHANNEL`): PostgreSQL delivers the notification at commit to
every gateway process, which reads the changed rows into its in-memory copy
(`services.gateway.projection_changes`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.apikeys import ApiKeyCreated
from contracts.permissions import Role
from services.gateway.keys import KeyRateLimit, KeyRecord
from services.gateway.models import api_keys, memberships, workspaces
from services.gateway.projections import Membership, WorkspaceNode, WorkspaceStatus

KEY_CHANNEL = "atrium_gateway_keys"
"""Each change to `api_keys` is notified here with the key's id."""
ACCESS_CHANNEL = "atrium_gateway_access"
"""Each change to `workspaces` is notified here with the workspace's id, each change to
`memberships` with the workspace's id and the user's, separated by a space (a user id
may hold anything but starts after the fixed-length workspace id)."""


@dataclass(frozen=True, slots=True)
class AccessChange:
    """What one notification on `ACCESS_CHANNEL` names: a workspace, or one member of
    it."""

    workspace_id: uuid.UUID
    user_id: str | None = None

    def payload(self) -> str:
        return (
            str(self.workspace_id)
            if self.user_id is None
            else f"{self.workspace_id} {self.user_id}"
        )

    @classmethod
    def from_payload(cls, payload: str) -> AccessChange:
        """Raises `ValueError` for a payload that names no workspace."""
        workspace_id, separator, user_id = payload.partition(" ")
        return cls(uuid.UUID(workspace_id), user_id if separator else None)


class ProjectionRepository:
    """`workspaces` and `memberships`, written only from identity's events. Each write
    notifies `ACCESS_CHANNEL` in the same transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put_workspace(self, workspace: WorkspaceNode) -> None:
        values = {
            "parent_id": workspace.parent_id,
            "root_id": workspace.root_id,
            "api_access": workspace.api_access,
            "updated_at": func.now(),
        }
        await self.session.execute(
            insert(workspaces)
            .values(id=workspace.id, status=workspace.status.value, **values)
            .on_conflict_do_update(index_elements=[workspaces.c.id], set_=values)
        )
        await self._announce(AccessChange(workspace.id))

    async def change_settings(self, workspace_id: uuid.UUID, *, api_access: bool) -> None:
        await self.session.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(api_access=api_access, updated_at=func.now())
        )
        await self._announce(AccessChange(workspace_id))

    async def mark(self, workspace_id: uuid.UUID, status: WorkspaceStatus) -> None:
        await self.session.execute(
            update(workspaces)
            .where(workspaces.c.id == workspace_id)
            .values(status=status.value, updated_at=func.now())
        )
        if status is WorkspaceStatus.DELETED:
            await self.session.execute(
                delete(memberships).where(memberships.c.workspace_id == workspace_id)
            )
        await self._announce(AccessChange(workspace_id))

    async def put_member(self, membership: Membership) -> None:
        await self.session.execute(
            insert(memberships)
            .values(
                workspace_id=membership.workspace_id,
                user_id=membership.user_id,
                role=membership.role.value,
            )
            .on_conflict_do_update(
                index_elements=[memberships.c.workspace_id, memberships.c.user_id],
                set_={"role": membership.role.value, "updated_at": func.now()},
            )
        )
        await self._announce(AccessChange(membership.workspace_id, membership.user_id))

    async def remove_member(self, workspace_id: uuid.UUID, user_id: str) -> None:
        await self.session.execute(
            delete(memberships).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        )
        await self._announce(AccessChange(workspace_id, user_id))

    async def workspaces(self, workspace_ids: Collection[uuid.UUID]) -> list[WorkspaceNode]:
        """The rows of those of `workspace_ids` that have one."""
        rows = await self.session.execute(
            _WORKSPACE_COLUMNS.where(workspaces.c.id.in_(list(workspace_ids)))
        )
        return [_workspace_node(row) for row in rows]

    async def all_workspaces(self) -> list[WorkspaceNode]:
        return [_workspace_node(row) for row in await self.session.execute(_WORKSPACE_COLUMNS)]

    async def memberships(self, members: Collection[tuple[uuid.UUID, str]]) -> list[Membership]:
        """The rows of those of `members` (workspace id, user id) that have one."""
        rows = await self.session.execute(
            _MEMBERSHIP_COLUMNS.where(
                tuple_(memberships.c.workspace_id, memberships.c.user_id).in_(list(members))
            )
        )
        return [_membership(row) for row in rows]

    async def all_memberships(self) -> list[Membership]:
        return [_membership(row) for row in await self.session.execute(_MEMBERSHIP_COLUMNS)]

    async def _announce(self, change: AccessChange) -> None:
        await self.session.execute(select(func.pg_notify(ACCESS_CHANNEL, change.payload())))


_WORKSPACE_COLUMNS = select(
    workspaces.c.id,
    workspaces.c.parent_id,
    workspaces.c.root_id,
    workspaces.c.api_access,
    workspaces.c.status,
)
_MEMBERSHIP_COLUMNS = select(memberships.c.workspace_id, memberships.c.user_id, memberships.c.role)


def _workspace_node(row: Row[Any, Any, Any, Any, Any]) -> WorkspaceNode:
    return WorkspaceNode(
        id=row.id,
        parent_id=row.parent_id,
        root_id=row.root_id,
        api_access=row.api_access,
        status=WorkspaceStatus(row.status),
    )


def _membership(row: Row[Any, Any, Any]) -> Membership:
    return Membership(workspace_id=row.workspace_id, user_id=row.user_id, role=Role(row.role))


class KeyRepository:
    """`api_keys`, written only from apikeys' events. A row is never deleted: a revoked
    or expired key stays, so that it keeps being refused. Each write notifies
    `KEY_CHANNEL` in the same transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def key_created(self, created: ApiKeyCreated) -> None:
        limit = created.rate_limit
        values: dict[str, Any] = {
            "hash": created.hash,
            "workspace_id": created.workspace_id,
            "root_id": created.root_id,
            "expires_at": created.expires_at,
            "rate_limit_requests": None if limit is None else limit.requests,
            "rate_limit_period_seconds": None if limit is None else limit.period_seconds,
            "updated_at": func.now(),
        }
        # An event that overtook this one (revoked, suspended) has its say on the rest.
        await self.session.execute(
            insert(api_keys)
            .values(key_id=created.key_id, suspended=created.suspended, **values)
            .on_conflict_do_update(index_elements=[api_keys.c.key_id], set_=values)
        )
        await self._announce(created.key_id)

    async def key_revoked(
        self, key_id: uuid.UUID, workspace_id: uuid.UUID, root_id: uuid.UUID, *, at: datetime
    ) -> None:
        # For good: a second revocation (a revoke during a rotation's grace) can only
        # bring the moment forward. LEAST ignores a NULL.
        await self.session.execute(
            insert(api_keys)
            .values(key_id=key_id, workspace_id=workspace_id, root_id=root_id, revoked_at=at)
            .on_conflict_do_update(
                index_elements=[api_keys.c.key_id],
                set_={
                    "revoked_at": func.least(api_keys.c.revoked_at, at),
                    "updated_at": func.now(),
                },
            )
        )
        await self._announce(key_id)

    async def key_suspended(
        self, key_id: uuid.UUID, workspace_id: uuid.UUID, root_id: uuid.UUID, *, suspended: bool
    ) -> None:
        await self.session.execute(
            insert(api_keys)
            .values(key_id=key_id, workspace_id=workspace_id, root_id=root_id, suspended=suspended)
            .on_conflict_do_update(
                index_elements=[api_keys.c.key_id],
                set_={"suspended": suspended, "updated_at": func.now()},
            )
        )
        await self._announce(key_id)

    async def keys(self, key_ids: Collection[uuid.UUID]) -> list[KeyRecord]:
        """The keys of `key_ids` that have a hash."""
        rows = await self.session.execute(
            _KEY_COLUMNS.where(api_keys.c.key_id.in_(list(key_ids)), api_keys.c.hash.is_not(None))
        )
        return [_key_record(row) for row in rows]

    async def all_keys(self) -> list[KeyRecord]:
        rows = await self.session.execute(_KEY_COLUMNS.where(api_keys.c.hash.is_not(None)))
        return [_key_record(row) for row in rows]

    async def _announce(self, key_id: uuid.UUID) -> None:
        await self.session.execute(select(func.pg_notify(KEY_CHANNEL, str(key_id))))


_KEY_COLUMNS = select(
    api_keys.c.key_id,
    api_keys.c.hash,
    api_keys.c.workspace_id,
    api_keys.c.root_id,
    api_keys.c.suspended,
    api_keys.c.revoked_at,
    api_keys.c.expires_at,
    api_keys.c.rate_limit_requests,
    api_keys.c.rate_limit_period_seconds,
)


def _key_record(row: Row[Any, Any, Any, Any, Any, Any, Any, Any, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        hash=row.hash,
        workspace_id=row.workspace_id,
        root_id=row.root_id,
        suspended=row.suspended,
        revoked_at=None if row.revoked_at is None else row.revoked_at.timestamp(),
        expires_at=None if row.expires_at is None else row.expires_at.timestamp(),
        rate_limit=None
        if row.rate_limit_requests is None
        else KeyRateLimit(row.rate_limit_requests, row.rate_limit_period_seconds),
    )
