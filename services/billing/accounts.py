"""Accounts: every workspace identity announces gets one, and keeps it until the
workspace is deleted. These use cases apply identity's events, each in the consumer's
transaction with the event's inbox row; `require_open_account` is how every request
finds the account it acts on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events.identity import BillingMode
from services.billing.domain import (
    CONSUMABLE_POOLS,
    AccountNotOpenYetError,
    Line,
    Plan,
    Pool,
    TransactionKind,
    merged,
)
from services.billing.posting import announce_limits, post
from services.billing.repository.accounts import AccountRepository, AccountView
from services.billing.repository.balances import BalanceRepository
from services.billing.repository.ledger import TransactionRecord
from shared.errors import NotFoundError
from shared.read_your_writes import WorkspaceNotArrivedError, announce_arrival
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class OpenAccount:
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode
    strict_quota: bool
    api_access: bool
    plan: Plan
    """The plan a billing root starts on."""


@dataclass(frozen=True, slots=True)
class ChangeAccountSettings:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode
    strict_quota: bool
    api_access: bool
    plan: Plan
    """The plan a workspace that starts paying for itself starts on."""


@dataclass(frozen=True, slots=True)
class RecordSeatUsage:
    billing_root_id: uuid.UUID
    used: int
    pending: int


@dataclass(frozen=True, slots=True)
class RecordSeatsCap:
    workspace_id: uuid.UUID
    seats_cap: int | None


@dataclass(frozen=True, slots=True)
class CloseAccount:
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode
    plan: Plan


async def require_open_account(session: AsyncSession, workspace_id: uuid.UUID) -> AccountView:
    """The account of a workspace the gateway vouched for. Until its `workspace.created`
    arrives the request waits for it (`WorkspaceNotArrivedError`); once the workspace
    is deleted it is not found."""
    account = await AccountRepository(session).find(workspace_id)
    if account is None:
        raise WorkspaceNotArrivedError(workspace_id)
    if account.closed:
        raise no_such_workspace(workspace_id)
    return account


def no_such_workspace(workspace_id: uuid.UUID) -> NotFoundError:
    """A deleted workspace, as every request about it is answered."""
    return NotFoundError(f"No workspace {workspace_id} that you can see.")


async def open_account(uow: UnitOfWork, command: OpenAccount) -> None:
    """Every workspace gets an account; a billing root starts on the default plan, its
    opening capacity and credits posted from the world account."""
    is_billing_root = command.billing_mode is BillingMode.OWN
    opened = await AccountRepository(uow.session).open(
        workspace_id=command.workspace_id,
        root_id=command.root_id,
        parent_id=command.parent_id,
        billing_root_id=command.billing_root_id,
        billing_mode=command.billing_mode,
        strict_quota=command.strict_quota,
        api_access=command.api_access,
        plan_code=command.plan.code if is_billing_root else None,
    )
    if not opened:
        return
    await announce_arrival(uow.session, command.workspace_id)
    if is_billing_root:
        await _grant_plan(uow, command.workspace_id, command.root_id, command.plan)
    await announce_limits(uow, command.workspace_id)


async def change_account_settings(uow: UnitOfWork, command: ChangeAccountSettings) -> None:
    """Settings act from the change on. A workspace that starts paying for itself
    starts on the default plan; one that goes back to its parent's bill hands its
    plan's seats back, and what it holds now counts as allocated to it."""
    accounts = AccountRepository(uow.session)
    account = await accounts.find(command.workspace_id)
    if account is None:
        msg = f"settings of workspace {command.workspace_id} before its account"
        raise AccountNotOpenYetError(msg)
    if account.closed:
        return
    pays_for_itself = command.billing_mode is BillingMode.OWN
    await accounts.update(
        command.workspace_id,
        parent_id=command.parent_id,
        billing_root_id=command.billing_root_id,
        billing_mode=command.billing_mode.value,
        strict_quota=command.strict_quota,
        api_access=command.api_access,
        plan_code=(account.plan_code or command.plan.code) if pays_for_itself else None,
    )
    if command.billing_mode is account.billing_mode:
        return
    if pays_for_itself:
        await _grant_plan(uow, command.workspace_id, account.root_id, command.plan)
    else:
        await _hand_back_plan_seats(uow, account)
        balances = BalanceRepository(uow.session)
        for pool in (*CONSUMABLE_POOLS, Pool.AVATAR_SLOTS):
            held = account.pools[pool]
            await balances.set_allocated(command.workspace_id, pool, held.balance + held.in_use)
    await announce_limits(uow, command.workspace_id)


async def record_seat_usage(uow: UnitOfWork, command: RecordSeatUsage) -> None:
    if not await AccountRepository(uow.session).record_seat_usage(
        command.billing_root_id, used=command.used, pending=command.pending
    ):
        msg = f"seat usage of billing root {command.billing_root_id} before its account"
        raise AccountNotOpenYetError(msg)


async def record_seats_cap(uow: UnitOfWork, command: RecordSeatsCap) -> None:
    """A workspace's seat cap is identity's (it holds it under the seat pool's lock);
    billing keeps a copy for balances and allocations, and passes it on in its limits."""
    accounts = AccountRepository(uow.session)
    account = await accounts.find(command.workspace_id)
    if account is None:
        msg = f"seat cap of workspace {command.workspace_id} before its account"
        raise AccountNotOpenYetError(msg)
    if account.closed or account.seats_cap == command.seats_cap:
        return
    await accounts.update(command.workspace_id, seats_cap=command.seats_cap)
    await announce_limits(uow, command.workspace_id)


async def close_account(uow: UnitOfWork, command: CloseAccount) -> None:
    """Unspent credits and free capacity go back to the parent in one balanced
    transaction and the account closes. A `parent`-billed workspace returns its
    avatar slots too; one that paid for itself hands its plan's capacity back to
    the world. A deletion that comes first leaves a closed account behind, so that
    the late `workspace.created` opens nothing."""
    accounts = AccountRepository(uow.session)
    account = await accounts.find(command.workspace_id)
    if account is None:
        await accounts.open(
            workspace_id=command.workspace_id,
            root_id=command.root_id,
            parent_id=command.parent_id,
            billing_root_id=command.billing_root_id,
            billing_mode=command.billing_mode,
            strict_quota=True,
            api_access=True,
            plan_code=command.plan.code if command.billing_mode is BillingMode.OWN else None,
        )
        await accounts.close(command.workspace_id)
        await announce_arrival(uow.session, command.workspace_id)
        return
    if account.closed:
        return
    parent = None if account.parent_id is None else await accounts.find(account.parent_id)
    heir = None if parent is None or parent.closed else parent.workspace_id
    lines = await _reclaim_lines(uow, account, heir)
    if lines:
        await post(
            uow,
            TransactionRecord(
                id=uuid.uuid4(),
                kind=TransactionKind.RECLAIM,
                workspace_id=account.workspace_id,
                root_id=account.root_id,
            ),
            lines,
        )
    await accounts.close(account.workspace_id)
    if heir is not None and any(
        line.workspace_id == heir and line.pool is Pool.AVATAR_SLOTS for line in lines
    ):
        await announce_limits(uow, heir)


async def _reclaim_lines(
    uow: UnitOfWork, account: AccountView, heir: uuid.UUID | None
) -> list[Line]:
    """What a deleted workspace holds, back to its heir (its parent) or to the world;
    the balances involved are locked."""
    locked = await BalanceRepository(uow.session).lock(
        [(account.workspace_id, pool) for pool in Pool]
        + ([] if heir is None else [(heir, pool) for pool in Pool])
    )
    returns_capacity = account.billing_mode is BillingMode.PARENT
    lines: list[Line] = []
    for pool in Pool:
        held = locked[(account.workspace_id, pool)]
        to_heir = pool in CONSUMABLE_POOLS or (pool is Pool.AVATAR_SLOTS and returns_capacity)
        if held.balance:
            lines.append(Line(account.workspace_id, pool, -held.balance))
        if pool is Pool.AVATAR_SLOTS and held.in_use and to_heir and heir is not None:
            # Slots held by avatars went to the world when claimed; they come back.
            lines.append(Line(None, pool, -held.in_use))
            lines.append(Line(heir, pool, held.in_use))
        if held.balance:
            lines.append(Line(heir if to_heir else None, pool, held.balance))
    return merged(lines)


async def _hand_back_plan_seats(uow: UnitOfWork, account: AccountView) -> None:
    locked = await BalanceRepository(uow.session).lock([(account.workspace_id, Pool.SEATS)])
    seats = locked[(account.workspace_id, Pool.SEATS)].balance
    if seats:
        await post(
            uow,
            TransactionRecord(
                id=uuid.uuid4(),
                kind=TransactionKind.RECLAIM,
                workspace_id=account.workspace_id,
                root_id=account.root_id,
            ),
            [Line(account.workspace_id, Pool.SEATS, -seats), Line(None, Pool.SEATS, seats)],
        )


async def _grant_plan(
    uow: UnitOfWork, workspace_id: uuid.UUID, root_id: uuid.UUID, plan: Plan
) -> None:
    grants = plan.grants()
    if not grants:
        return
    await post(
        uow,
        TransactionRecord(
            id=uuid.uuid4(),
            kind=TransactionKind.PLAN,
            workspace_id=workspace_id,
            root_id=root_id,
            reference=plan.code,
        ),
        [
            line
            for pool, amount in grants.items()
            for line in (Line(workspace_id, pool, amount), Line(None, pool, -amount))
        ],
    )
