"""Allocations: what a parent grants a `parent`-billed sub-workspace, as a running
total; bringing it to a new target moves the difference between them in one balanced
transaction. Seats are not allocated: a sub-workspace's seat cap is identity's (it is
checked against the seats in use under the pool's lock there), and billing keeps a
copy of it (`accounts.record_seats_cap`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from contracts.events.identity import BillingMode
from services.billing.accounts import require_open_account
from services.billing.domain import (
    HeldPool,
    Line,
    NotParentBilledError,
    Pool,
    TransactionKind,
    allocation_change,
)
from services.billing.policy import require_allocator
from services.billing.posting import announce_limits, post
from services.billing.repository.accounts import AccountView
from services.billing.repository.balances import BalanceRepository
from services.billing.repository.ledger import TransactionRecord
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class AllocateCredits:
    caller: Principal
    workspace_id: uuid.UUID
    targets: Mapping[Pool, int]
    """The new allocation of each pool named (credits and avatar slots); the others keep
    theirs."""


async def allocate_credits(uow: UnitOfWork, command: AllocateCredits) -> AccountView:
    """Bring the sub-workspace's allocations to the targets, moving the differences from
    or to its parent in one transaction; the account as it is afterwards."""
    require_allocator(command.caller, command.workspace_id)
    workspace_id = command.workspace_id
    account = await require_open_account(uow.session, workspace_id)
    if account.billing_mode is not BillingMode.PARENT or account.parent_id is None:
        msg = "This workspace pays for itself; nothing is allocated to it."
        raise NotParentBilledError(msg)
    parent_id = account.parent_id
    targets = command.targets
    assert Pool.SEATS not in targets, "a seat cap is identity's, not an allocation"
    movable = list(targets)
    balances = BalanceRepository(uow.session)
    locked = await balances.lock(
        [(workspace_id, pool) for pool in movable] + [(parent_id, pool) for pool in movable]
    )
    lines: list[Line] = []
    for pool in movable:
        held = locked[(workspace_id, pool)]
        delta = allocation_change(
            pool,
            targets[pool],
            HeldPool(allocated=held.allocated, balance=held.balance),
            parent_balance=locked[(parent_id, pool)].balance,
        )
        if delta:
            lines += [Line(parent_id, pool, -delta), Line(workspace_id, pool, delta)]
        await balances.set_allocated(workspace_id, pool, targets[pool])
    if lines:
        await post(
            uow,
            TransactionRecord(
                id=uuid.uuid4(),
                kind=TransactionKind.ALLOCATION,
                workspace_id=workspace_id,
                root_id=account.root_id,
            ),
            lines,
        )
    if Pool.AVATAR_SLOTS in targets:
        await announce_limits(uow, workspace_id)
    if any(line.pool is Pool.AVATAR_SLOTS for line in lines):
        await announce_limits(uow, parent_id)
    return await require_open_account(uow.session, workspace_id)
