"""API keys: created, rotated and revoked by people (developers and Super Admins) of a
workspace that has API access.

A key's secret exists only in the answer to the request that made it: apikeys keeps
its HMAC under the pepper (`shared.api_keys`), and its events carry that HMAC. Every
change locks the workspace's row first (the row that turning `api_access` off locks
to suspend the keys), then the key's, and stages its events after them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from contracts.events.apikeys import ApiKeyCreated, ApiKeyRevoked, RevocationReason
from services.apikeys.authorization import (
    require_api_access,
    require_api_access_on,
    require_key_manager,
)
from services.apikeys.commands import CreateApiKey, RevokeApiKey, RotateApiKey
from services.apikeys.domain import (
    KeyNotActiveError,
    KeySettings,
    WorkspaceDeletingError,
    WorkspaceStatus,
    check_expiry,
    end_of_grace,
    utc_now,
)
from services.apikeys.repository.keys import KeyRecord, KeyRepository
from services.apikeys.repository.workspaces import WorkspaceCopy
from services.apikeys.workspaces import require_workspace
from shared import api_keys
from shared.errors import NotFoundError
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as made: its record, and its secret, which is shown this once."""

    record: KeyRecord
    secret: str


async def create_key(uow: UnitOfWork, command: CreateApiKey) -> NewKey:
    require_key_manager(command.caller, command.workspace_id)
    now = utc_now()
    check_expiry(command.expires_at, now)
    workspace = await _workspace_taking_keys(uow, command.workspace_id)
    settings = KeySettings(
        name=command.name,
        expires_at=command.expires_at,
        rate_limit=command.rate_limit,
        monthly_credit_limit=command.monthly_credit_limit,
    )
    return await _make_key(
        uow, workspace, settings, created_by=command.caller.actor, now=now, pepper=command.pepper
    )


async def rotate_key(uow: UnitOfWork, command: RotateApiKey) -> NewKey:
    """A new key with the old one's settings; the old one stops working at the end of
    the grace (at once without one)."""
    require_key_manager(command.caller, command.workspace_id)
    workspace = await _workspace_taking_keys(uow, command.workspace_id)
    now = utc_now()
    old = await _key_of(uow, workspace, command.key_id)
    if not old.state.may_rotate(now):
        msg = "Only a key that is not revoked, rotated already or expired can be rotated."
        raise KeyNotActiveError(msg)
    new = await _make_key(
        uow,
        workspace,
        old.settings,
        created_by=command.caller.actor,
        now=now,
        pepper=command.pepper,
        rotated_from=old.id,
    )
    await _revoke(
        uow,
        old,
        effective_at=end_of_grace(now, command.grace_seconds),
        reason=RevocationReason.ROTATED,
    )
    return new


async def revoke_key(uow: UnitOfWork, command: RevokeApiKey) -> None:
    """Revoked at once, also a key in a rotation's grace; revoking a revoked key changes
    nothing."""
    require_key_manager(command.caller, command.workspace_id)
    workspace = await require_workspace(uow.session, command.workspace_id, lock=True)
    require_api_access(command.caller, workspace)
    now = utc_now()
    key = await _key_of(uow, workspace, command.key_id)
    if key.revoked_at is not None and key.revoked_at <= now:
        return
    await _revoke(uow, key, effective_at=now, reason=RevocationReason.REVOKED)


async def _workspace_taking_keys(uow: UnitOfWork, workspace_id: uuid.UUID) -> WorkspaceCopy:
    workspace = await require_workspace(uow.session, workspace_id, lock=True)
    require_api_access_on(workspace)
    if workspace.status is WorkspaceStatus.DELETING:
        msg = "The workspace is being deleted: no new keys."
        raise WorkspaceDeletingError(msg)
    return workspace


async def _key_of(uow: UnitOfWork, workspace: WorkspaceCopy, key_id: uuid.UUID) -> KeyRecord:
    key = await KeyRepository(uow.session).find(workspace.id, key_id, lock=True)
    if key is None:
        msg = f"No API key {key_id} in this workspace."
        raise NotFoundError(msg)
    return key


async def _make_key(
    uow: UnitOfWork,
    workspace: WorkspaceCopy,
    settings: KeySettings,
    *,
    created_by: str,
    now: datetime,
    pepper: str,
    rotated_from: uuid.UUID | None = None,
) -> NewKey:
    secret = api_keys.new_key()
    record = KeyRecord(
        id=uuid.uuid4(),
        workspace_id=workspace.id,
        root_id=workspace.root_id,
        name=settings.name,
        hash=api_keys.key_hash(secret, pepper),
        prefix=api_keys.display_prefix(secret),
        last4=api_keys.last4(secret),
        created_by=created_by,
        created_at=now,
        expires_at=settings.expires_at,
        revoked_at=None,
        suspended=False,
        rate_limit=settings.rate_limit,
        monthly_credit_limit=settings.monthly_credit_limit,
        rotated_from=rotated_from,
        last_used_at=None,
    )
    await KeyRepository(uow.session).add(record)
    await uow.stage(
        ApiKeyCreated(
            key_id=record.id,
            workspace_id=record.workspace_id,
            root_id=record.root_id,
            hash=record.hash,
            prefix=record.prefix,
            last4=record.last4,
            name=record.name,
            expires_at=record.expires_at,
            rate_limit=record.rate_limit,
            monthly_credit_limit=record.monthly_credit_limit,
            suspended=record.suspended,
            rotated_from=record.rotated_from,
        ),
        root_id=record.root_id,
        workspace_id=record.workspace_id,
    )
    return NewKey(record=record, secret=secret)


async def _revoke(
    uow: UnitOfWork, key: KeyRecord, *, effective_at: datetime, reason: RevocationReason
) -> None:
    await KeyRepository(uow.session).revoke(key.id, effective_at=effective_at, reason=reason)
    await uow.stage(
        ApiKeyRevoked(
            key_id=key.id,
            workspace_id=key.workspace_id,
            root_id=key.root_id,
            effective_at=effective_at,
            reason=reason,
        ),
        root_id=key.root_id,
        workspace_id=key.workspace_id,
    )
