"""assets' background work: the reconciler of avatars that a stopped process (or an
unreachable billing) left `pending` or `deleting`. Each avatar is settled in a unit of
work of its own, as the system, holding its row's lock while billing answers so that
a request still working on it and another replica keep off it.

- pending: billing's claim is asked again with the same key (the avatar's id) for the
  same caller. billing answers its first result when the claim was made (or makes it
  now): the avatar becomes active. When billing refuses, nothing was charged and the
  pending row goes.
- deleting: billing frees the slot (idempotently), then the row goes.

Whatever billing cannot answer now stays as it is for the next run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from services.assets import library
from services.assets.commands import FinishUnfinishedAvatar
from services.assets.domain import AssetStatus, BillingUnavailableError
from services.assets.repository.assets import AssetRepository
from services.assets.upstreams import Upstreams
from shared.unit_of_work import UnitOfWork, UnitsOfWork

logger = logging.getLogger(__name__)

SYSTEM = "system"
AVATARS_PER_RUN = 100


async def settle_unfinished_avatars(
    units: UnitsOfWork, billing: Upstreams, *, older_than: timedelta
) -> int:
    """Settle the avatars left unfinished for longer than `older_than`; how many."""
    async with units.begin(actor=SYSTEM) as uow:
        unfinished = await AssetRepository(uow.session).unfinished(
            older_than=older_than, limit=AVATARS_PER_RUN
        )
    settled = 0
    for asset_id in unfinished:
        try:
            async with units.begin(actor=SYSTEM) as uow:
                settled += await settle_avatar(uow, FinishUnfinishedAvatar(asset_id), billing)
        except BillingUnavailableError:
            logger.info("avatar %s stays unfinished until billing answers", asset_id)
    return settled


async def settle_avatar(
    uow: UnitOfWork, command: FinishUnfinishedAvatar, billing: Upstreams
) -> bool:
    repository = AssetRepository(uow.session)
    unfinished = await repository.lock_unfinished(command.asset_id)
    if unfinished is None:
        return False
    asset = unfinished.asset
    if asset.status is AssetStatus.DELETING:
        await library.finish_deletion(uow, unfinished, billing)
        logger.info("avatar %s: its deletion is finished, its slot freed", asset.id)
        return True
    refusal = await billing.claim_avatar_slot(
        unfinished.billing_principal, asset.workspace_id, asset.id
    )
    if refusal is None:
        await library.activate_avatar(uow, asset.id)
        logger.info("avatar %s: billing holds its slot and fee, it is active", asset.id)
    else:
        await repository.remove(asset.id)
        logger.info("avatar %s: billing refused it (%s), undone", asset.id, refusal.problem_type)
    return True
