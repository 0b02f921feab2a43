"""The use cases of a library's assets, each one unit of work.

An avatar takes a slot and pays its fee in billing, never one without the other; the
steps that get there are use cases of their own, run one after the other by
`avatars.py`:

1. `start_avatar`: a `pending` row, committed (its id is the claim's key);
2. `claim_avatar_slot`: under the row's lock, billing's claim, then `active`;
   or, when billing refused and changed nothing, `discard_pending_avatar`.

Deleting an avatar marks it `deleting` (it is gone for everyone at once, its shares
end), then `release_avatar_slot` frees its slot in billing and removes the row. The
reconciler (`housekeeping.py`) finishes what a stopped process left between steps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.events.assets import (
    AssetCreated,
    AssetDeleted,
    AssetDeletionReason,
    AssetKind,
    AssetUpdated,
)
from contracts.permissions import Permission
from services.assets import authorization
from services.assets.commands import (
    ChangeAsset,
    ClaimAvatarSlot,
    CreateAsset,
    DeleteAsset,
    DiscardPendingAvatar,
    ReleaseAvatarSlot,
)
from services.assets.domain import (
    Asset,
    AssetReadOnlyError,
    AssetStatus,
    BillingUnavailableError,
    avatar_refused,
    checked_properties,
)
from services.assets.repository.assets import AssetRepository, UnfinishedAvatar
from services.assets.repository.shares import ShareRepository
from services.assets.upstreams import Upstreams
from shared.errors import NotFoundError
from shared.unit_of_work import UnitOfWork


async def create_asset(uow: UnitOfWork, command: CreateAsset) -> Asset:
    """A voice, brand kit or template: in the library at once."""
    workspace = await authorization.library(
        uow, command.caller, command.workspace_id, Permission.EDIT_ASSETS
    )
    assert command.kind is not AssetKind.AVATAR, "an avatar starts pending"
    asset = _new_asset(command, workspace.root_id, AssetStatus.ACTIVE)
    await AssetRepository(uow.session).add(asset)
    await _announce_created(uow, asset)
    return asset


@dataclass(frozen=True, slots=True)
class StartedAvatar:
    asset: Asset
    first_attempt: bool
    """False for a retry that found the avatar of an earlier attempt: that attempt (or
    the reconciler) owns it, and only it may undo it."""


async def start_avatar(uow: UnitOfWork, command: CreateAsset) -> StartedAvatar:
    """Step 1: the pending avatar, seen by nobody yet. A retry of the same request
    (same idempotency scope and key) finds the one its first attempt left."""
    workspace = await authorization.library(
        uow, command.caller, command.workspace_id, Permission.EDIT_ASSETS
    )
    repository = AssetRepository(uow.session)
    if command.request_key is not None:
        earlier = await repository.find_by_request_key(command.request_key)
        if earlier is not None:
            return StartedAvatar(earlier, first_attempt=False)
    asset = _new_asset(command, workspace.root_id, AssetStatus.PENDING)
    if await repository.add(
        asset, billing_principal=command.caller, request_key=command.request_key
    ):
        return StartedAvatar(asset, first_attempt=True)
    assert command.request_key is not None, "only a request key can be taken already"
    earlier = await repository.find_by_request_key(command.request_key)
    if earlier is None:  # its first attempt was refused and undone meanwhile
        msg = "The first attempt with this Idempotency-Key was just undone; try again."
        raise BillingUnavailableError(msg, headers={"Retry-After": "1"})
    return StartedAvatar(earlier, first_attempt=False)


async def claim_avatar_slot(uow: UnitOfWork, command: ClaimAvatarSlot, billing: Upstreams) -> Asset:
    """Step 2: billing takes the slot and the fee for the pending avatar (idempotently,
    keyed by its id), and the avatar becomes active in the same unit of work. The row
    stays locked while billing answers, so that the reconciler keeps off it. When
    billing refuses, this unit of work rolls back and the refusal is raised."""
    await authorization.library(uow, command.caller, command.workspace_id, Permission.EDIT_ASSETS)
    repository = AssetRepository(uow.session)
    asset = await repository.lock(command.asset_id)
    if asset is None or asset.workspace_id != command.workspace_id:
        msg = f"Avatar {command.asset_id} was undone: its slot was not taken."
        raise NotFoundError(msg)
    if asset.status is AssetStatus.ACTIVE:  # the reconciler finished it first
        return asset
    refusal = await billing.claim_avatar_slot(command.caller, asset.workspace_id, asset.id)
    if refusal is not None:
        raise avatar_refused(refusal.problem_type, refusal.detail)
    return await activate_avatar(uow, asset.id)


async def activate_avatar(uow: UnitOfWork, asset_id: uuid.UUID) -> Asset:
    """billing holds the avatar's slot and fee: it joins its library. The row is
    locked by the caller."""
    asset = await AssetRepository(uow.session).activate(asset_id)
    await _announce_created(uow, asset)
    return asset


async def discard_pending_avatar(uow: UnitOfWork, command: DiscardPendingAvatar) -> None:
    """billing refused the avatar's slot and changed nothing: the pending row goes."""
    repository = AssetRepository(uow.session)
    asset = await repository.lock(command.asset_id)
    if asset is not None and asset.status is AssetStatus.PENDING:
        await repository.remove(asset.id)


async def change_asset(uow: UnitOfWork, command: ChangeAsset) -> Asset:
    await authorization.library(uow, command.caller, command.workspace_id, Permission.EDIT_ASSETS)
    repository = AssetRepository(uow.session)
    asset = await _owned(repository, command.workspace_id, command.asset_id, "changed")
    properties = (
        None if command.properties is None else checked_properties(asset.kind, command.properties)
    )
    changed = await repository.change(asset.id, name=command.name, properties=properties)
    await uow.stage(
        AssetUpdated(
            asset_id=changed.id,
            workspace_id=changed.workspace_id,
            root_id=changed.root_id,
            name=changed.name,
            properties_changed=properties is not None,
        ),
        root_id=changed.root_id,
        workspace_id=changed.workspace_id,
    )
    return changed


async def delete_asset(uow: UnitOfWork, command: DeleteAsset) -> Asset:
    """The asset is gone for everyone once this commits, and its shares with it. An
    avatar stays behind as `deleting` until `release_avatar_slot` has freed its slot."""
    await authorization.library(uow, command.caller, command.workspace_id, Permission.EDIT_ASSETS)
    repository = AssetRepository(uow.session)
    asset = await _owned(repository, command.workspace_id, command.asset_id, "deleted")
    ended = await ShareRepository(uow.session).remove_all(asset.id)
    if asset.takes_a_slot:
        await repository.mark_deleting(asset.id, command.caller)
    else:
        await repository.remove(asset.id)
    await announce_deleted(uow, asset, ended, AssetDeletionReason.DELETED)
    return asset


async def release_avatar_slot(
    uow: UnitOfWork, command: ReleaseAvatarSlot, billing: Upstreams
) -> bool:
    """billing frees a deleting avatar's slot (idempotently), then the row goes; False
    when another transaction holds the avatar or it is not deleting."""
    unfinished = await AssetRepository(uow.session).lock_unfinished(command.asset_id)
    if unfinished is None or unfinished.asset.status is not AssetStatus.DELETING:
        return False
    await finish_deletion(uow, unfinished, billing)
    return True


async def finish_deletion(uow: UnitOfWork, deleting: UnfinishedAvatar, billing: Upstreams) -> None:
    """billing frees the slot of a deleting avatar (locked by the caller), then its row
    goes; the fee stays paid."""
    asset = deleting.asset
    await billing.release_avatar_slot(deleting.billing_principal, asset.workspace_id, asset.id)
    await AssetRepository(uow.session).remove(asset.id)


async def announce_deleted(
    uow: UnitOfWork, asset: Asset, ended_shares: list[uuid.UUID], reason: AssetDeletionReason
) -> None:
    await uow.stage(
        AssetDeleted(
            asset_id=asset.id,
            workspace_id=asset.workspace_id,
            root_id=asset.root_id,
            kind=asset.kind,
            reason=reason,
            ended_shares=ended_shares,
        ),
        root_id=asset.root_id,
        workspace_id=asset.workspace_id,
    )


async def _owned(
    repository: AssetRepository, workspace_id: uuid.UUID, asset_id: uuid.UUID, verb: str
) -> Asset:
    """The workspace's own active asset, locked. A shared-in one is read-only here
    (409); any other is 404."""
    seen = await repository.seen_from(asset_id, workspace_id)
    if seen is None:
        msg = f"No asset {asset_id} in this workspace's library."
        raise NotFoundError(msg)
    if seen.shared_from is not None:
        msg = (
            f"Asset {asset_id} is shared with this workspace, read-only: it is "
            f"{verb} in workspace {seen.shared_from}, which owns it."
        )
        raise AssetReadOnlyError(msg)
    asset = await repository.lock(asset_id)
    if asset is None or asset.status is not AssetStatus.ACTIVE:  # deleted meanwhile
        msg = f"No asset {asset_id} in this workspace's library."
        raise NotFoundError(msg)
    return asset


def _new_asset(command: CreateAsset, root_id: uuid.UUID, status: AssetStatus) -> Asset:
    now = datetime.now(UTC)
    return Asset(
        id=uuid.uuid4(),
        workspace_id=command.workspace_id,
        root_id=root_id,
        kind=command.kind,
        name=command.name,
        properties=checked_properties(command.kind, command.properties),
        status=status,
        created_by=command.caller.actor,
        created_at=now,
        updated_at=now,
    )


async def _announce_created(uow: UnitOfWork, asset: Asset) -> None:
    await uow.stage(
        AssetCreated(
            asset_id=asset.id,
            workspace_id=asset.workspace_id,
            root_id=asset.root_id,
            kind=asset.kind,
            name=asset.name,
            created_by=asset.created_by,
        ),
        root_id=asset.root_id,
        workspace_id=asset.workspace_id,
    )
