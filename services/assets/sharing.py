"""Sharing an asset with other workspaces of its account, and revoking a share.

A Super Admin of the owner workspace shares; the targets must be workspaces of the
same account that the caller sees. A Super Admin of a workspace sees all of its
descendants (assets' copy of the tree answers that without a call); any other target
(a sibling, a parent) is visible only if identity says the caller is a member there
or a Super Admin above it. One refused target refuses the whole request (404 naming
every refused one) and nothing is shared. Shares are rows next to the assets, so the
request after a share or a revocation already sees it.
"""

from __future__ import annotations

import uuid

from contracts.events.assets import AssetShared, AssetUnshared, UnshareReason
from contracts.permissions import Permission
from services.assets import authorization
from services.assets.commands import RevokeShare, ShareAsset
from services.assets.domain import Asset, NotShareableError, Share, WorkspaceStatus
from services.assets.repository.assets import AssetRepository
from services.assets.repository.shares import ShareRepository
from services.assets.repository.workspaces import WorkspaceRepository
from services.assets.upstreams import Upstreams
from shared.errors import NotFoundError
from shared.principal import Principal
from shared.read_your_writes import WorkspaceNotArrivedError
from shared.unit_of_work import UnitOfWork


async def share_asset(uow: UnitOfWork, command: ShareAsset, identity: Upstreams) -> list[Share]:
    """Every workspace the asset is shared with, once the new targets are added."""
    owner = await authorization.library(
        uow, command.caller, command.workspace_id, Permission.PURCHASE_AND_SHARE
    )
    authorization.require_share_manager(command.caller)
    asset = await shareable_asset(uow, command.workspace_id, command.asset_id)
    refused = [
        target
        for target in command.target_ids
        if not await _may_receive(uow, command.caller, owner.root_id, asset, target, identity)
    ]
    if refused:
        names = ", ".join(str(target) for target in refused)
        msg = (
            f"Nothing was shared: no workspace {names} of this account that you can see "
            "(the owner workspace itself cannot be a target)."
        )
        raise NotFoundError(msg)
    shares = ShareRepository(uow.session)
    added = await shares.add(asset.id, asset.created_at, command.target_ids)
    if added:
        await uow.stage(
            AssetShared(
                asset_id=asset.id,
                workspace_id=asset.workspace_id,
                root_id=asset.root_id,
                target_workspace_ids=sorted(added),
            ),
            root_id=asset.root_id,
            workspace_id=asset.workspace_id,
        )
    return await shares.of(asset.id)


async def revoke_share(uow: UnitOfWork, command: RevokeShare) -> None:
    await authorization.library(
        uow, command.caller, command.workspace_id, Permission.PURCHASE_AND_SHARE
    )
    authorization.require_share_manager(command.caller)
    asset = await shareable_asset(uow, command.workspace_id, command.asset_id)
    if not await ShareRepository(uow.session).remove(asset.id, command.target_id):
        msg = f"Asset {asset.id} is not shared with workspace {command.target_id}."
        raise NotFoundError(msg)
    await uow.stage(
        AssetUnshared(
            asset_id=asset.id,
            workspace_id=asset.workspace_id,
            root_id=asset.root_id,
            target_workspace_id=command.target_id,
            reason=UnshareReason.REVOKED,
        ),
        root_id=asset.root_id,
        workspace_id=asset.workspace_id,
    )


async def shareable_asset(uow: UnitOfWork, workspace_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
    """The workspace's own active asset, locked against other changes of its shares.
    A shared-in asset is 409 `not-shareable`: only its owner workspace shares it."""
    repository = AssetRepository(uow.session)
    seen = await repository.seen_from(asset_id, workspace_id)
    if seen is None:
        msg = f"No asset {asset_id} in this workspace's library."
        raise NotFoundError(msg)
    if seen.shared_from is not None:
        msg = (
            f"Asset {asset_id} is shared with this workspace by workspace "
            f"{seen.shared_from}; only its owner shares it."
        )
        raise NotShareableError(msg)
    asset = await repository.lock(asset_id)
    if asset is None or asset.workspace_id != workspace_id:  # deleted meanwhile
        msg = f"No asset {asset_id} in this workspace's library."
        raise NotFoundError(msg)
    return asset


async def _may_receive(
    uow: UnitOfWork,
    caller: Principal,
    root_id: uuid.UUID,
    asset: Asset,
    target_id: uuid.UUID,
    identity: Upstreams,
) -> bool:
    if target_id == asset.workspace_id:
        return False
    workspaces = WorkspaceRepository(uow.session)
    target = await workspaces.find(target_id, share=True)
    if target is None:
        # Not here yet: a workspace the caller created a moment ago is waited for; any
        # other id is refused without waiting.
        if await identity.sees_workspace(caller, target_id):
            raise WorkspaceNotArrivedError(target_id)
        return False
    if target.status is WorkspaceStatus.DELETED or target.root_id != root_id:
        return False
    if await workspaces.is_descendant(target_id, asset.workspace_id):
        return True
    return await identity.sees_workspace(caller, target_id)
