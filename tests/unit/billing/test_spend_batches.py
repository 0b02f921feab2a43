"""Spends in batches, when the database cannot be reached: every spend of the batch
fails with the same error (the 500 problem an unexpected error gets), none is lost
silently, and the batches after it go on."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts.permissions import Role
from infra.processes import free_port
from services.billing import models
from services.billing.domain import Operation
from services.billing.settings import BillingSettings
from services.billing.spend_batches import SpendBatches, _by_workspace, _Pending
from services.billing.spending import SpendCredits
from shared.db import Database
from shared.idempotency import IdempotencyKeys, IdempotentRequest
from shared.outbox import Outbox
from shared.principal import Principal
from shared.unit_of_work import UnitsOfWork


def a_spend(workspace_id: uuid.UUID) -> SpendCredits:
    return SpendCredits(
        caller=Principal(user_id="ada", workspace_id=workspace_id, role=Role.CREATOR),
        workspace_id=workspace_id,
        operation=Operation.IMAGE_CREATION,
        quantity=1,
        reference=None,
        terms=BillingSettings().terms,
    )


async def test_every_spend_of_a_batch_fails_alike_when_the_database_is_unreachable() -> None:
    database = Database(
        f"postgresql+asyncpg://billing:secret@127.0.0.1:{free_port()}/atrium", schema="billing"
    )
    units_of_work = UnitsOfWork(
        database,
        Outbox(models.outbox, producer="billing"),
        IdempotencyKeys(models.idempotency_keys),
    )
    spends = SpendBatches(
        database, units_of_work, producer="billing", wait_seconds=0.05, max_spends=8
    )
    workspace_id = uuid.uuid4()  # one workspace's spends share one batch

    try:
        outcomes = await asyncio.gather(
            *(
                spends.spend(
                    a_spend(workspace_id),
                    IdempotentRequest(scope="user:ada", key=f"spend-{n}", fingerprint="f"),
                )
                for n in range(5)
            ),
            return_exceptions=True,
        )
        again = await asyncio.gather(
            spends.spend(a_spend(uuid.uuid4()), None), return_exceptions=True
        )
    finally:
        await spends.stop()
        await database.dispose()

    assert all(isinstance(outcome, OSError) for outcome in outcomes), outcomes
    assert len({id(outcome) for outcome in outcomes}) == 1  # one failure, one batch
    assert isinstance(again[0], OSError)


def test_a_batch_holds_at_least_one_spend() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        BillingSettings(billing_spend_batch_max=0)


async def test_spends_gathered_together_are_split_by_workspace_each_in_arrival_order() -> None:
    workspaces = [uuid.uuid4() for _ in range(6)]
    gathered = [_Pending({"workspace_id": str(workspaces[n % 6]), "n": n}) for n in range(30)]

    batches = _by_workspace(gathered, 4)

    assert 1 <= len(batches) <= 4
    assert sorted(pending.request["n"] for batch in batches for pending in batch) == list(range(30))
    for workspace_id in workspaces:
        holding = [
            [
                pending.request["n"]
                for pending in batch
                if pending.request["workspace_id"] == str(workspace_id)
            ]
            for batch in batches
        ]
        spends = [found for found in holding if found]
        assert len(spends) == 1  # all of a workspace's spends in one batch
        assert spends[0] == sorted(spends[0])  # in arrival order
    assert _by_workspace(gathered, 1) == [gathered]
