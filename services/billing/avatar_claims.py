"""Avatar claims, for the assets service: an avatar takes one of its workspace's slots
and pays the avatar fee in one transaction, neither without the other; releasing the
slot later keeps the fee paid. Slots never fall through to the parent; the fee does,
as any spend, and a claim made with an API key pays it with API credits within the
key's monthly credit limit (`key_budgets`), all in the one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.permissions import Permission
from services.billing.accounts import require_open_account
from services.billing.domain import (
    AvatarAlreadyClaimedError,
    AvatarSlotLimitError,
    CapacityHeld,
    Line,
    Operation,
    Pool,
    Terms,
    TransactionKind,
    charge_lines,
    pool_paying_for,
    split_charge,
)
from services.billing.key_budgets import draw_on_key_budget
from services.billing.policy import require_spender
from services.billing.posting import balance_after, post, warn_if_low
from services.billing.repository.accounts import AccountRepository
from services.billing.repository.avatar_claims import AvatarClaimRepository
from services.billing.repository.balances import BalanceRepository
from services.billing.repository.ledger import TransactionRecord
from shared.principal import Principal
from shared.read_your_writes import WorkspaceNotArrivedError
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class ClaimAvatarSlot:
    caller: Principal
    workspace_id: uuid.UUID
    avatar_id: uuid.UUID
    terms: Terms


@dataclass(frozen=True, slots=True)
class ReleaseAvatarSlot:
    caller: Principal
    workspace_id: uuid.UUID
    avatar_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AvatarClaim:
    avatar_id: uuid.UUID
    transaction_id: uuid.UUID
    pool: Pool
    """The pool that paid the avatar fee."""
    fee: int
    balance_after: int
    avatar_slots: CapacityHeld


async def claim_avatar_slot(uow: UnitOfWork, command: ClaimAvatarSlot) -> AvatarClaim:
    caller, workspace_id = command.caller, command.workspace_id
    require_spender(caller, workspace_id, Permission.EDIT_ASSETS)
    pool = pool_paying_for(by_api_key=caller.api_key_id is not None)
    fee = command.terms.prices.price(Operation.AVATAR_FEE, 1)
    await draw_on_key_budget(uow, caller, workspace_id, fee)
    account = await require_open_account(uow.session, workspace_id)
    parent_id = account.parent_id if account.falls_through_to_parent else None
    balances = BalanceRepository(uow.session)
    locked = await balances.lock(
        [(workspace_id, Pool.AVATAR_SLOTS), (workspace_id, pool)]
        + ([] if parent_id is None else [(parent_id, pool)])
    )
    slots = locked[(workspace_id, Pool.AVATAR_SLOTS)]
    if slots.balance < 1:
        msg = "Every avatar slot of this workspace is taken."
        raise AvatarSlotLimitError(msg)
    charge = split_charge(
        fee,
        own_balance=locked[(workspace_id, pool)].balance,
        parent_balance=None if parent_id is None else locked[(parent_id, pool)].balance,
    )
    claims = AvatarClaimRepository(uow.session)
    if await claims.find(workspace_id, command.avatar_id) is not None:
        msg = f"Avatar {command.avatar_id} already held a slot here."
        raise AvatarAlreadyClaimedError(msg)
    transaction_id = uuid.uuid4()
    posted = await post(
        uow,
        TransactionRecord(
            id=transaction_id,
            kind=TransactionKind.AVATAR_CLAIM,
            workspace_id=workspace_id,
            root_id=account.root_id,
            pool=pool,
            amount=fee,
            operation=Operation.AVATAR_FEE.value,
            quantity=1,
            reference=str(command.avatar_id),
            api_key_id=caller.api_key_id,
        ),
        [
            Line(workspace_id, Pool.AVATAR_SLOTS, -1),
            Line(None, Pool.AVATAR_SLOTS, 1),
            *charge_lines(workspace_id, parent_id, pool, charge),
        ],
    )
    await balances.change_in_use(workspace_id, Pool.AVATAR_SLOTS, 1)
    await claims.add(workspace_id, command.avatar_id, transaction_id)
    await warn_if_low(
        uow,
        workspace_id,
        account.root_id,
        pool,
        posted,
        threshold=command.terms.credits_low_threshold,
    )
    return AvatarClaim(
        avatar_id=command.avatar_id,
        transaction_id=transaction_id,
        pool=pool,
        fee=fee,
        balance_after=balance_after(
            posted, workspace_id, pool, otherwise=locked[(workspace_id, pool)].balance
        ),
        avatar_slots=CapacityHeld(limit=slots.balance + slots.in_use, used=slots.in_use + 1),
    )


async def release_avatar_slot(uow: UnitOfWork, command: ReleaseAvatarSlot) -> None:
    """Free the slot an avatar held; the fee stays paid. Releasing a slot that is not
    held (never claimed, already freed, workspace deleted) changes nothing."""
    workspace_id, avatar_id = command.workspace_id, command.avatar_id
    require_spender(command.caller, workspace_id, Permission.EDIT_ASSETS)
    account = await AccountRepository(uow.session).find(workspace_id)
    if account is None:
        raise WorkspaceNotArrivedError(workspace_id)
    if account.closed:
        return
    balances = BalanceRepository(uow.session)
    await balances.lock([(workspace_id, Pool.AVATAR_SLOTS)])
    claims = AvatarClaimRepository(uow.session)
    claim = await claims.find(workspace_id, avatar_id)
    if claim is None or claim.released:
        return
    transaction_id = uuid.uuid4()
    await post(
        uow,
        TransactionRecord(
            id=transaction_id,
            kind=TransactionKind.AVATAR_RELEASE,
            workspace_id=workspace_id,
            root_id=account.root_id,
            reference=str(avatar_id),
        ),
        [Line(None, Pool.AVATAR_SLOTS, -1), Line(workspace_id, Pool.AVATAR_SLOTS, 1)],
    )
    await balances.change_in_use(workspace_id, Pool.AVATAR_SLOTS, -1)
    await claims.release(workspace_id, avatar_id, transaction_id)
