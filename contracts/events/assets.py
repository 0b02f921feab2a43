"""Events published by `assets`, keyed by the account's root workspace id.

They tell what happened to a library (for audit and for whoever keeps a copy); no
service needs them to stay consistent, so they carry ids and names, never an asset's
`properties`.
"""

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.envelope import EventPayload
from contracts.topics import Topic


class AssetKind(StrEnum):
    AVATAR = "avatar"
    VOICE = "voice"
    BRAND_KIT = "brand_kit"
    TEMPLATE = "template"


class AssetDeletionReason(StrEnum):
    DELETED = "deleted"
    """Deleted by a person or an API key of its workspace."""
    WORKSPACE_DELETED = "workspace_deleted"
    """Its workspace was deleted."""


class UnshareReason(StrEnum):
    REVOKED = "revoked"
    """A Super Admin of the owner workspace revoked the share."""
    TARGET_DELETED = "target_deleted"
    """The workspace it was shared with was deleted."""


class _AssetEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.ASSETS_ASSET

    asset_id: UUID
    workspace_id: UUID = Field(description="The workspace that owns the asset.")
    root_id: UUID


class AssetCreated(_AssetEvent):
    """An asset is in its workspace's library (an avatar: once its slot is taken and
    its fee paid)."""

    event_type: ClassVar[str] = "asset.created"
    event_version: ClassVar[int] = 1

    kind: AssetKind
    name: str = Field(min_length=1, max_length=100)
    created_by: str = Field(description="`user:<id>` or `apikey:<id>`.")


class AssetUpdated(_AssetEvent):
    """An asset's name or properties changed."""

    event_type: ClassVar[str] = "asset.updated"
    event_version: ClassVar[int] = 1

    name: str = Field(min_length=1, max_length=100, description="The name now.")
    properties_changed: bool


class AssetDeleted(_AssetEvent):
    """An asset is gone, and with it its shares; an avatar's slot is freed (its fee
    stays paid)."""

    event_type: ClassVar[str] = "asset.deleted"
    event_version: ClassVar[int] = 1

    kind: AssetKind
    reason: AssetDeletionReason
    ended_shares: list[UUID] = Field(description="The workspaces it was shared with.")


class AssetShared(_AssetEvent):
    """An asset is now readable in more workspaces of its account."""

    event_type: ClassVar[str] = "asset.shared"
    event_version: ClassVar[int] = 1

    target_workspace_ids: list[UUID] = Field(
        min_length=1, description="The workspaces that got it with this change."
    )


class AssetUnshared(_AssetEvent):
    """An asset is no longer readable in a workspace it was shared with."""

    event_type: ClassVar[str] = "asset.unshared"
    event_version: ClassVar[int] = 1

    target_workspace_id: UUID
    reason: UnshareReason
