"""Posting to the ledger, and telling the other services about it.

Every change to a balance is a balanced ledger transaction, staged in the outbox as
`transaction.posted`; every change to a limit is staged as `limits.changed`; a spend
that takes a pool below the warning threshold stages `credits.low`. Each is
staged by the use case after the locks that serialize its change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from contracts.events.billing import CreditsLow, LedgerLine, LimitsChanged, TransactionPosted
from contracts.events.identity import BillingMode
from services.billing.domain import Line, Pool, fell_below
from services.billing.repository.accounts import AccountRepository
from services.billing.repository.ledger import LedgerRepository, PostedLine, TransactionRecord
from shared.unit_of_work import UnitOfWork


async def post(
    uow: UnitOfWork, transaction: TransactionRecord, lines: Sequence[Line]
) -> list[PostedLine]:
    """Apply the lines to the balances, record the transaction and announce it."""
    posted = await LedgerRepository(uow.session).post(transaction, lines, actor=uow.actor)
    await _announce_posted(uow, transaction, posted)
    return posted


async def announce_limits(uow: UnitOfWork, workspace_id: uuid.UUID) -> None:
    """The workspace's seat and avatar-slot limits as they stand now, for identity,
    assets and the gateway."""
    account = await AccountRepository(uow.session).find(workspace_id)
    assert account is not None
    is_billing_root = account.billing_mode is BillingMode.OWN
    await uow.stage(
        LimitsChanged(
            workspace_id=workspace_id,
            root_id=account.root_id,
            billing_root_id=account.billing_root_id,
            seats_limit=account.pools[Pool.SEATS].balance if is_billing_root else None,
            seats_cap=account.seats_cap,
            avatar_slots_limit=account.avatar_slots_limit(),
        ),
        root_id=account.root_id,
        workspace_id=workspace_id,
    )


async def warn_if_low(
    uow: UnitOfWork,
    workspace_id: uuid.UUID,
    root_id: uuid.UUID,
    pool: Pool,
    posted: Sequence[PostedLine],
    *,
    threshold: int,
) -> None:
    """Announce that the workspace's pool went below `threshold` with these lines (once:
    not when it was below already)."""
    own = [
        entry
        for entry in posted
        if entry.line.workspace_id == workspace_id and entry.line.pool is pool
    ]
    if not own:
        return
    after = own[-1].balance_after
    assert after is not None
    before = after - sum(entry.line.amount for entry in own)
    if fell_below(threshold, before=before, after=after):
        await uow.stage(
            CreditsLow(
                workspace_id=workspace_id,
                root_id=root_id,
                pool=pool.value,
                balance=after,
                threshold=threshold,
            ),
            root_id=root_id,
            workspace_id=workspace_id,
        )


def balance_after(
    posted: Sequence[PostedLine],
    workspace_id: uuid.UUID,
    pool: Pool | None = None,
    *,
    otherwise: int = 0,
) -> int:
    """The workspace's balance after its last line in `pool` (or in any pool)."""
    for entry in reversed(posted):
        if entry.line.workspace_id == workspace_id and (pool is None or entry.line.pool is pool):
            assert entry.balance_after is not None
            return entry.balance_after
    return otherwise


async def _announce_posted(
    uow: UnitOfWork, transaction: TransactionRecord, posted: Sequence[PostedLine]
) -> None:
    await uow.stage(
        TransactionPosted(
            transaction_id=transaction.id,
            workspace_id=transaction.workspace_id,
            root_id=transaction.root_id,
            kind=transaction.kind.value,
            operation=transaction.operation,
            api_key_id=transaction.api_key_id,
            lines=tuple(
                LedgerLine(
                    workspace_id=entry.line.workspace_id,
                    pool=entry.line.pool.value,
                    amount=entry.line.amount,
                )
                for entry in posted
            ),
        ),
        root_id=transaction.root_id,
        workspace_id=transaction.workspace_id,
    )
