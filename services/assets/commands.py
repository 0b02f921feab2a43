"""Every command of the assets service: frozen, named in the imperative, carrying the
caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from contracts.events.assets import AssetKind
from shared.principal import Principal


@dataclass(frozen=True, slots=True)
class CreateAsset:
    caller: Principal
    workspace_id: uuid.UUID
    kind: AssetKind
    name: str
    properties: dict[str, Any]
    request_key: str | None = None
    """An avatar's creating request (idempotency scope and key): its retry finds it."""


@dataclass(frozen=True, slots=True)
class ClaimAvatarSlot:
    """Ask billing for the pending avatar's slot and fee, then make it active."""

    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DiscardPendingAvatar:
    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ChangeAsset:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID
    name: str | None
    properties: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DeleteAsset:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReleaseAvatarSlot:
    """Free a deleting avatar's slot in billing, then remove the avatar."""

    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class FinishUnfinishedAvatar:
    """The reconciler: settle an avatar a stopped process left pending or deleting."""

    asset_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ShareAsset:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID
    target_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class RevokeShare:
    caller: Principal
    workspace_id: uuid.UUID
    asset_id: uuid.UUID
    target_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RecordWorkspace:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class CloseLibrary:
    """identity deleted a workspace: its assets go, and the shares to and from it."""

    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
