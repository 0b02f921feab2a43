"""The avatar flows, each a few units of work in a row, as an entry point runs them:
billing's answer comes between them, and a crash between any two leaves an avatar
`pending` or `deleting` that the reconciler settles (`housekeeping.py`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import Response
from pydantic import BaseModel

from services.assets import library
from services.assets.commands import (
    ClaimAvatarSlot,
    CreateAsset,
    DeleteAsset,
    DiscardPendingAvatar,
    ReleaseAvatarSlot,
)
from services.assets.domain import Asset, BillingUnavailableError
from services.assets.faults import AvatarStep, Checkpoints
from services.assets.upstreams import Upstreams
from shared.errors import DomainError
from shared.idempotency import IdempotentRequest
from shared.unit_of_work import UnitOfWork, UnitsOfWork

logger = logging.getLogger(__name__)


async def create_avatar(
    units: UnitsOfWork,
    billing: Upstreams,
    checkpoints: Checkpoints,
    command: CreateAsset,
    respond: Callable[[Asset], BaseModel],
    idempotency: IdempotentRequest | None,
) -> Response:
    """Pending, then claimed and active in one unit of work (which also keeps the
    answer for the request's `Idempotency-Key`); a refusal discards the pending row."""
    actor = command.caller.actor
    started = await units.perform(lambda uow: library.start_avatar(uow, command), actor=actor)
    checkpoints.reached(AvatarStep.BEFORE_CLAIM)
    pending = started.asset
    claim = ClaimAvatarSlot(command.caller, command.workspace_id, pending.id)

    async def claimed(uow: UnitOfWork) -> BaseModel:
        asset = await library.claim_avatar_slot(uow, claim, billing)
        checkpoints.reached(AvatarStep.AFTER_CLAIM)
        return respond(asset)

    try:
        response = await units.run(claimed, actor=actor, status_code=201, idempotency=idempotency)
    except BillingUnavailableError:
        raise  # undecided: the avatar stays pending for the reconciler
    except DomainError:
        if started.first_attempt:
            async with units.begin(actor=actor) as uow:
                await library.discard_pending_avatar(uow, DiscardPendingAvatar(pending.id))
        raise
    checkpoints.reached(AvatarStep.AFTER_COMMIT)
    return response


async def delete_asset(
    units: UnitsOfWork, billing: Upstreams, checkpoints: Checkpoints, command: DeleteAsset
) -> Asset:
    """Gone for everyone once the first unit of work commits; an avatar's slot is then
    freed in billing. When billing cannot be reached the deletion still stands, and
    the reconciler frees the slot."""
    asset = await units.perform(
        lambda uow: library.delete_asset(uow, command), actor=command.caller.actor
    )
    if not asset.takes_a_slot:
        return asset
    checkpoints.reached(AvatarStep.BEFORE_RELEASE)
    try:
        async with units.begin(actor=command.caller.actor) as uow:
            await library.release_avatar_slot(uow, ReleaseAvatarSlot(asset.id), billing)
    except BillingUnavailableError:
        logger.warning("avatar %s deleted; its slot is freed once billing answers", asset.id)
    return asset
