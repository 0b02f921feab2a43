"""assets' copy of identity's workspaces, kept from its events, and what a deleted
workspace takes with it: its assets (an avatar's slot comes back through billing,
which returns the slots a deleted workspace held when it closes its account), the
shares of its assets, and the shares other workspaces made with it."""

from __future__ import annotations

from contracts.events.assets import AssetDeletionReason, AssetUnshared, UnshareReason
from services.assets.commands import CloseLibrary, RecordWorkspace
from services.assets.domain import AssetStatus, WorkspaceStatus
from services.assets.library import announce_deleted
from services.assets.repository.assets import AssetRepository
from services.assets.repository.shares import ShareRepository
from services.assets.repository.workspaces import WorkspaceRepository
from shared.read_your_writes import announce_arrival
from shared.unit_of_work import UnitOfWork


async def record_workspace(uow: UnitOfWork, command: RecordWorkspace) -> None:
    """A new workspace's library exists (empty) from now on; requests waiting for it
    go on. A deletion that came first keeps it deleted."""
    await WorkspaceRepository(uow.session).add(
        command.workspace_id,
        parent_id=command.parent_id,
        root_id=command.root_id,
        status=WorkspaceStatus.ACTIVE,
    )
    await announce_arrival(uow.session, command.workspace_id)


async def close_library(uow: UnitOfWork, command: CloseLibrary) -> None:
    workspaces = WorkspaceRepository(uow.session)
    await workspaces.add(
        command.workspace_id,
        parent_id=command.parent_id,
        root_id=command.root_id,
        status=WorkspaceStatus.DELETED,
    )
    await workspaces.mark_deleted(command.workspace_id)
    shares = ShareRepository(uow.session)
    for ended in await shares.remove_to(command.workspace_id):
        await uow.stage(
            AssetUnshared(
                asset_id=ended.asset_id,
                workspace_id=ended.owner_id,
                root_id=ended.root_id,
                target_workspace_id=command.workspace_id,
                reason=UnshareReason.TARGET_DELETED,
            ),
            root_id=ended.root_id,
            workspace_id=ended.owner_id,
        )
    assets = AssetRepository(uow.session)
    for asset_id in await assets.ids_in(command.workspace_id):
        asset = await assets.lock(asset_id)
        if asset is None:
            continue
        ended_shares = await shares.remove_all(asset.id)
        await assets.remove(asset.id)
        if asset.status is AssetStatus.ACTIVE:  # the others were announced, or never were
            await announce_deleted(uow, asset, ended_shares, AssetDeletionReason.WORKSPACE_DELETED)
    await announce_arrival(uow.session, command.workspace_id)
