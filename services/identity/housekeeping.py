"""identity's background work, an entry point like `api.py` and `consumers.py`: each
job opens a unit of work per command, as the system."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from services.identity import deletion, invitations
from services.identity.commands import ExpireDueInvitations, FinishDeletion
from shared.unit_of_work import UnitsOfWork

SYSTEM = "system"
"""The actor of the events housekeeping causes."""

DELETIONS_PER_RUN = 100


async def expire_due_invitations(units: UnitsOfWork) -> int:
    async with units.begin(actor=SYSTEM) as uow:
        return await invitations.expire_due_invitations(uow, ExpireDueInvitations())


async def finish_deletions(
    units: UnitsOfWork, workspace_ids: Iterable[uuid.UUID], *, actor: str
) -> int:
    """Finish deleting workspaces, deepest first, one unit of work each."""
    finished = 0
    for workspace_id in workspace_ids:
        async with units.begin(actor=actor) as uow:
            finished += await deletion.finish_deletion(
                uow, FinishDeletion(workspace_id=workspace_id)
            )
    return finished


async def finish_interrupted_deletions(units: UnitsOfWork) -> int:
    """Finish deletions that a stopped process left half-way."""
    async with units.begin(actor=SYSTEM) as uow:
        pending = await deletion.workspaces_being_deleted(uow, limit=DELETIONS_PER_RUN)
    return await finish_deletions(units, pending, actor=SYSTEM)
