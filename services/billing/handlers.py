"""billing's use cases: one transaction each.

A command opens its own transaction; an event's handler runs in the consumer's,
together with the event's inbox row. Every change to a balance is a balanced
ledger transaction staged in the outbox as `transaction.posted`; every change to a
limit is staged as `limits.changed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import problems
from contracts.envelope import RawEnvelope
from contracts.events.billing import CreditsLowReached, LedgerLine, LimitsChanged, TransactionPosted
from contracts.events.identity import (
    BillingMode,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceSettingsChanged,
)
from contracts.permissions import Permission, Role
from services.billing import models
from services.billing.domain import (
    CONSUMABLE_POOLS,
    AccountNotOpenYetError,
    AvatarSlotLimitError,
    Charge,
    HeldPool,
    InsufficientCreditsError,
    Line,
    NotABillingRootError,
    NotParentBilledError,
    Operation,
    Plan,
    Pool,
    PriceTable,
    TransactionKind,
    allocation_change,
    fell_below,
    pool_paying_for,
    split_charge,
)
from services.billing.payments import PaymentProvider
from services.billing.repository import (
    AccountView,
    BillingRepository,
    PostedLine,
    TransactionRecord,
)
from services.billing.schemas import (
    AllocationsResponse,
    AvatarClaimReceipt,
    BalancesResponse,
    CapacityBalance,
    ConsumableBalance,
    LedgerItem,
    LedgerPage,
    PurchaseReceipt,
    SpendReceipt,
    UsageGrouping,
    UsageItem,
    UsageReport,
)
from shared.errors import DomainError, ForbiddenError, NotFoundError
from shared.idempotency import IdempotencyKeys, IdempotentRequest, fingerprint, run_idempotently
from shared.outbox import Outbox
from shared.pagination import InvalidCursorError, decode_cursor, encode_cursor
from shared.principal import Principal, require_permission
from shared.service import ServiceRuntime


class AvatarAlreadyClaimedError(DomainError):
    problem = problems.AVATAR_ALREADY_CLAIMED


@dataclass(frozen=True)
class Billing:
    """What billing's use cases work with."""

    runtime: ServiceRuntime
    plan: Plan
    prices: PriceTable
    payments: PaymentProvider
    credits_low_threshold: int

    @property
    def outbox(self) -> Outbox:
        return self.runtime.outbox

    @property
    def idempotency(self) -> IdempotencyKeys:
        return IdempotencyKeys(models.idempotency_keys)

    # Events -----------------------------------------------------------------------

    async def open_account(
        self, session: AsyncSession, workspace: WorkspaceCreated, envelope: RawEnvelope
    ) -> None:
        """Every workspace gets an account; a billing root starts on the default plan,
        its opening capacity and credits posted from the world account."""
        repository = BillingRepository(session)
        is_billing_root = workspace.billing_mode is BillingMode.OWN
        opened = await repository.open_account(
            workspace_id=workspace.id,
            root_id=workspace.root_id,
            parent_id=workspace.parent_id,
            billing_root_id=workspace.billing_root_id,
            billing_mode=workspace.billing_mode,
            strict_quota=workspace.strict_quota,
            plan_code=self.plan.code if is_billing_root else None,
        )
        if not opened:
            return
        if is_billing_root:
            await self._grant_plan(session, workspace.id, workspace.root_id, envelope)
        await self._publish_limits(session, workspace.id, envelope)

    async def change_settings(
        self, session: AsyncSession, change: WorkspaceSettingsChanged, envelope: RawEnvelope
    ) -> None:
        """Settings act from the change on. A workspace that starts paying for itself
        starts on the default plan; one that goes back to its parent's bill hands its
        plan's seats back, and what it holds now counts as allocated to it."""
        repository = BillingRepository(session)
        account = await repository.account(change.id)
        if account is None:
            msg = f"settings of workspace {change.id} before its account"
            raise AccountNotOpenYetError(msg)
        if account.closed:
            return
        await repository.update_account(
            change.id,
            parent_id=change.parent_id,
            billing_root_id=change.billing_root_id,
            billing_mode=change.billing_mode.value,
            strict_quota=change.strict_quota,
            plan_code=(account.plan_code or self.plan.code)
            if change.billing_mode is BillingMode.OWN
            else None,
        )
        if change.billing_mode is account.billing_mode:
            return
        if change.billing_mode is BillingMode.OWN:
            await self._grant_plan(session, change.id, account.root_id, envelope)
        else:
            locked = await repository.lock_balances([(change.id, Pool.SEATS)])
            seats = locked[(change.id, Pool.SEATS)].balance
            if seats:
                await self._post(
                    session,
                    TransactionRecord(
                        id=uuid.uuid4(),
                        kind=TransactionKind.RECLAIM,
                        workspace_id=change.id,
                        root_id=account.root_id,
                        actor=envelope.actor,
                    ),
                    [Line(change.id, Pool.SEATS, -seats), Line(None, Pool.SEATS, seats)],
                    causation_id=envelope.event_id,
                )
            for pool in (*CONSUMABLE_POOLS, Pool.AVATAR_SLOTS):
                held = account.pools[pool]
                await repository.set_allocated(change.id, pool, held.balance + held.in_use)
        await self._publish_limits(session, change.id, envelope)

    async def record_seat_usage(
        self, session: AsyncSession, usage: SeatsUsageChanged, _: RawEnvelope
    ) -> None:
        if not await BillingRepository(session).record_seat_usage(
            usage.billing_root_id, used=usage.used, pending=usage.pending
        ):
            msg = f"seat usage of billing root {usage.billing_root_id} before its account"
            raise AccountNotOpenYetError(msg)

    async def close_account(
        self, session: AsyncSession, deleted: WorkspaceDeleted, envelope: RawEnvelope
    ) -> None:
        """Unspent credits and free capacity go back to the parent in one balanced
        transaction and the account closes. A `parent`-billed workspace returns its
        avatar slots too; one that paid for itself hands its plan's capacity back to
        the world. A deletion that comes first leaves a closed account behind, so that
        the late `workspace.created` opens nothing."""
        repository = BillingRepository(session)
        account = await repository.account(deleted.id)
        if account is None:
            await repository.open_account(
                workspace_id=deleted.id,
                root_id=deleted.root_id,
                parent_id=deleted.parent_id,
                billing_root_id=deleted.billing_root_id,
                billing_mode=deleted.billing_mode,
                strict_quota=True,
                plan_code=self.plan.code if deleted.billing_mode is BillingMode.OWN else None,
            )
            await repository.close_account(deleted.id)
            return
        if account.closed:
            return
        parent = None if account.parent_id is None else await repository.account(account.parent_id)
        heir = None if parent is None or parent.closed else parent.workspace_id
        locked = await repository.lock_balances(
            [(deleted.id, pool) for pool in Pool]
            + ([] if heir is None else [(heir, pool) for pool in Pool])
        )
        returns_capacity = account.billing_mode is BillingMode.PARENT
        lines: list[Line] = []
        for pool in Pool:
            held = locked[(deleted.id, pool)]
            to_heir = pool in CONSUMABLE_POOLS or (pool is Pool.AVATAR_SLOTS and returns_capacity)
            if held.balance:
                lines.append(Line(deleted.id, pool, -held.balance))
            if pool is Pool.AVATAR_SLOTS and held.in_use and to_heir and heir is not None:
                # Slots held by avatars went to the world when claimed; they come back.
                lines.append(Line(None, pool, -held.in_use))
                lines.append(Line(heir, pool, held.in_use))
            if held.balance:
                lines.append(Line(heir if to_heir else None, pool, held.balance))
        if lines:
            await self._post(
                session,
                TransactionRecord(
                    id=uuid.uuid4(),
                    kind=TransactionKind.RECLAIM,
                    workspace_id=deleted.id,
                    root_id=account.root_id,
                    actor=envelope.actor,
                ),
                _merged(lines),
                causation_id=envelope.event_id,
            )
        await repository.close_account(deleted.id)
        if heir is not None and any(
            line.workspace_id == heir and line.pool is Pool.AVATAR_SLOTS for line in lines
        ):
            await self._publish_limits(session, heir, envelope)

    # Commands ---------------------------------------------------------------------

    async def purchase(
        self,
        workspace_id: uuid.UUID,
        caller: Principal,
        *,
        pool: Pool,
        quantity: int,
        idempotency_key: str | None,
    ) -> PurchaseReceipt:
        if caller.role is not Role.SUPER_ADMIN:
            msg = "Only a Super Admin makes purchases."
            raise ForbiddenError(msg)
        scope = f"purchase:{workspace_id}:{caller.actor}"
        async with self.runtime.database.transaction() as session:

            async def execute() -> PurchaseReceipt:
                repository = BillingRepository(session)
                account = _open(await repository.account(workspace_id), workspace_id)
                if account.billing_mode is not BillingMode.OWN:
                    msg = "Purchases are made by the workspace that pays: its billing root."
                    raise NotABillingRootError(msg)
                payment = await self.payments.charge(
                    workspace_id=workspace_id,
                    pool=pool,
                    quantity=quantity,
                    idempotency_key=idempotency_key,
                )
                transaction_id = uuid.uuid4()
                posted = await self._post(
                    session,
                    TransactionRecord(
                        id=transaction_id,
                        kind=TransactionKind.PURCHASE,
                        workspace_id=workspace_id,
                        root_id=account.root_id,
                        actor=caller.actor,
                        reference=payment.reference,
                    ),
                    [Line(workspace_id, pool, quantity), Line(None, pool, -quantity)],
                )
                if pool not in CONSUMABLE_POOLS:
                    await self._publish_limits(session, workspace_id, None, actor=caller.actor)
                return PurchaseReceipt(
                    transaction_id=transaction_id,
                    pool=pool,
                    quantity=quantity,
                    balance_after=_balance_after(posted, workspace_id),
                    payment_provider=payment.provider,
                    payment_reference=payment.reference,
                )

            return await run_idempotently(
                self.idempotency,
                session,
                None
                if idempotency_key is None
                else IdempotentRequest(
                    scope=scope, key=idempotency_key, fingerprint=fingerprint(pool, quantity)
                ),
                PurchaseReceipt,
                execute,
            )

    async def allocate(
        self, workspace_id: uuid.UUID, caller: Principal, targets: dict[Pool, int]
    ) -> AllocationsResponse:
        """Bring a `parent`-billed sub-workspace's allocations to `targets`, moving the
        differences from or to its parent in one transaction."""
        if not caller.ancestor_super_admin:
            msg = "Allocations are set by a Super Admin of the parent."
            raise ForbiddenError(msg)
        async with self.runtime.database.transaction() as session:
            repository = BillingRepository(session)
            account = _open(await repository.account(workspace_id), workspace_id)
            if account.billing_mode is not BillingMode.PARENT or account.parent_id is None:
                msg = "This workspace pays for itself; nothing is allocated to it."
                raise NotParentBilledError(msg)
            parent_id = account.parent_id
            movable = [pool for pool in targets if pool is not Pool.SEATS]
            locked = await repository.lock_balances(
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
                await repository.set_allocated(workspace_id, pool, targets[pool])
            if Pool.SEATS in targets:
                await repository.update_account(workspace_id, seats_cap=targets[Pool.SEATS])
            if lines:
                await self._post(
                    session,
                    TransactionRecord(
                        id=uuid.uuid4(),
                        kind=TransactionKind.ALLOCATION,
                        workspace_id=workspace_id,
                        root_id=account.root_id,
                        actor=caller.actor,
                    ),
                    lines,
                )
            if Pool.SEATS in targets or Pool.AVATAR_SLOTS in targets:
                await self._publish_limits(session, workspace_id, None, actor=caller.actor)
            if any(line.pool is Pool.AVATAR_SLOTS for line in lines):
                await self._publish_limits(session, parent_id, None, actor=caller.actor)
            return _allocations(_open(await repository.account(workspace_id), workspace_id))

    async def spend(
        self,
        workspace_id: uuid.UUID,
        caller: Principal,
        *,
        operation: Operation,
        quantity: int,
        reference: str | None,
        idempotency_key: str,
    ) -> SpendReceipt:
        """Charge an operation at its price, all or nothing: an API key pays with API
        credits, a person with generative credits."""
        _require_spender(caller, Permission.SPEND_CREDITS)
        pool = pool_paying_for(by_api_key=caller.api_key_id is not None)
        amount = self.prices.price(operation, quantity)
        scope = f"spend:{workspace_id}:{caller.actor}"
        async with self.runtime.database.transaction() as session:

            async def execute() -> SpendReceipt:
                repository = BillingRepository(session)
                transaction_id = uuid.uuid4()
                charged = await self._charge(repository, workspace_id, pool, amount)
                await self._record(
                    session,
                    TransactionRecord(
                        id=transaction_id,
                        kind=TransactionKind.SPEND,
                        workspace_id=workspace_id,
                        root_id=charged.root_id,
                        actor=caller.actor,
                        pool=pool,
                        amount=amount,
                        operation=operation.value,
                        quantity=quantity,
                        reference=reference,
                        api_key_id=caller.api_key_id,
                    ),
                    charged.lines,
                )
                await self._warn_if_low(session, workspace_id, charged.root_id, pool, charged.lines)
                return SpendReceipt(
                    transaction_id=transaction_id,
                    pool=pool,
                    amount=amount,
                    balance_after=charged.balance_after,
                )

            return await run_idempotently(
                self.idempotency,
                session,
                IdempotentRequest(
                    scope=scope,
                    key=idempotency_key,
                    fingerprint=fingerprint(operation, quantity, reference),
                ),
                SpendReceipt,
                execute,
            )

    async def claim_avatar_slot(
        self,
        workspace_id: uuid.UUID,
        caller: Principal,
        *,
        avatar_id: uuid.UUID,
        idempotency_key: str,
    ) -> AvatarClaimReceipt:
        """An avatar takes a slot and pays the avatar fee in one transaction: neither
        happens without the other."""
        _require_spender(caller, Permission.EDIT_ASSETS)
        pool = pool_paying_for(by_api_key=caller.api_key_id is not None)
        fee = self.prices.price(Operation.AVATAR_FEE, 1)
        scope = f"avatar-claim:{workspace_id}:{caller.actor}"
        async with self.runtime.database.transaction() as session:

            async def execute() -> AvatarClaimReceipt:
                repository = BillingRepository(session)
                account = _open(await repository.account(workspace_id), workspace_id)
                parent_id = account.parent_id if account.falls_through_to_parent else None
                locked = await repository.lock_balances(
                    [(workspace_id, Pool.AVATAR_SLOTS), (workspace_id, pool)]
                    + ([] if parent_id is None else [(parent_id, pool)])
                )
                if locked[(workspace_id, Pool.AVATAR_SLOTS)].balance < 1:
                    msg = "Every avatar slot of this workspace is taken."
                    raise AvatarSlotLimitError(msg)
                charge = split_charge(
                    fee,
                    own_balance=locked[(workspace_id, pool)].balance,
                    parent_balance=None if parent_id is None else locked[(parent_id, pool)].balance,
                )
                if await repository.avatar_claim(workspace_id, avatar_id) is not None:
                    msg = f"Avatar {avatar_id} already held a slot here."
                    raise AvatarAlreadyClaimedError(msg)
                transaction_id = uuid.uuid4()
                posted = await self._post(
                    session,
                    TransactionRecord(
                        id=transaction_id,
                        kind=TransactionKind.AVATAR_CLAIM,
                        workspace_id=workspace_id,
                        root_id=account.root_id,
                        actor=caller.actor,
                        pool=pool,
                        amount=fee,
                        operation=Operation.AVATAR_FEE.value,
                        quantity=1,
                        reference=str(avatar_id),
                        api_key_id=caller.api_key_id,
                    ),
                    [
                        Line(workspace_id, Pool.AVATAR_SLOTS, -1),
                        Line(None, Pool.AVATAR_SLOTS, 1),
                        *_charge_lines(workspace_id, parent_id, pool, charge),
                    ],
                )
                await repository.change_in_use(workspace_id, Pool.AVATAR_SLOTS, 1)
                await repository.add_avatar_claim(workspace_id, avatar_id, transaction_id)
                await self._warn_if_low(session, workspace_id, account.root_id, pool, posted)
                slots = locked[(workspace_id, Pool.AVATAR_SLOTS)]
                return AvatarClaimReceipt(
                    avatar_id=avatar_id,
                    transaction_id=transaction_id,
                    pool=pool,
                    fee=fee,
                    balance_after=_balance_after(
                        posted, workspace_id, pool, otherwise=locked[(workspace_id, pool)].balance
                    ),
                    avatar_slots=CapacityBalance(
                        limit=slots.balance + slots.in_use, used=slots.in_use + 1
                    ),
                )

            return await run_idempotently(
                self.idempotency,
                session,
                IdempotentRequest(
                    scope=scope, key=idempotency_key, fingerprint=fingerprint(avatar_id)
                ),
                AvatarClaimReceipt,
                execute,
            )

    async def release_avatar_slot(
        self, workspace_id: uuid.UUID, caller: Principal, avatar_id: uuid.UUID
    ) -> None:
        """Free the slot an avatar held; the fee stays paid. Releasing a slot that is
        not held (never claimed, already freed, workspace deleted) changes nothing."""
        _require_spender(caller, Permission.EDIT_ASSETS)
        async with self.runtime.database.transaction() as session:
            repository = BillingRepository(session)
            account = await repository.account(workspace_id)
            if account is None:
                msg = f"No workspace {workspace_id} that you can see."
                raise NotFoundError(msg)
            if account.closed:
                return
            await repository.lock_balances([(workspace_id, Pool.AVATAR_SLOTS)])
            claim = await repository.avatar_claim(workspace_id, avatar_id)
            if claim is None or claim[1]:
                return
            transaction_id = uuid.uuid4()
            await self._post(
                session,
                TransactionRecord(
                    id=transaction_id,
                    kind=TransactionKind.AVATAR_RELEASE,
                    workspace_id=workspace_id,
                    root_id=account.root_id,
                    actor=caller.actor,
                    reference=str(avatar_id),
                ),
                [Line(None, Pool.AVATAR_SLOTS, -1), Line(workspace_id, Pool.AVATAR_SLOTS, 1)],
            )
            await repository.change_in_use(workspace_id, Pool.AVATAR_SLOTS, -1)
            await repository.release_avatar_claim(workspace_id, avatar_id, transaction_id)

    # Reads ------------------------------------------------------------------------

    async def balances(self, workspace_id: uuid.UUID) -> BalancesResponse:
        """A `parent`-billed workspace's seats are its pool's (its billing root's),
        limited by its cap if it has one."""
        async with self.runtime.database.transaction() as session:
            repository = BillingRepository(session)
            account = _open(await repository.account(workspace_id), workspace_id)
            seat_pool = account
            if account.billing_mode is BillingMode.PARENT:
                seat_pool = await repository.account(account.billing_root_id) or account
        seats_limit = (
            seat_pool.pools[Pool.SEATS].balance
            if seat_pool.billing_mode is BillingMode.OWN
            else None
        )
        if account.seats_cap is not None:
            seats_limit = (
                account.seats_cap if seats_limit is None else min(seats_limit, account.seats_cap)
            )

        def consumable(pool: Pool) -> ConsumableBalance:
            held = account.pools[pool]
            return ConsumableBalance(balance=held.balance, allocated=held.allocated)

        return BalancesResponse(
            generative_credits=consumable(Pool.GENERATIVE_CREDITS),
            api_credits=consumable(Pool.API_CREDITS),
            avatar_slots=CapacityBalance(
                limit=account.avatar_slots_limit(), used=account.pools[Pool.AVATAR_SLOTS].in_use
            ),
            seats=CapacityBalance(limit=seats_limit, used=seat_pool.seats_used),
        )

    async def allocations(self, workspace_id: uuid.UUID) -> AllocationsResponse:
        async with self.runtime.database.transaction() as session:
            account = await BillingRepository(session).account(workspace_id)
        return _allocations(_open(account, workspace_id))

    async def ledger(
        self, workspace_id: uuid.UUID, *, pool: Pool | None, limit: int, cursor: str | None
    ) -> LedgerPage:
        before = _line_before(cursor)
        async with self.runtime.database.transaction() as session:
            repository = BillingRepository(session)
            _open(await repository.account(workspace_id), workspace_id)
            entries = await repository.ledger(
                workspace_id, pool=pool, before_line_id=before, limit=limit + 1
            )
        page = entries[:limit]
        return LedgerPage(
            items=[
                LedgerItem(
                    id=entry.id,
                    transaction_id=entry.transaction_id,
                    kind=entry.kind,
                    pool=Pool(entry.pool),
                    amount=entry.amount,
                    balance_after=entry.balance_after,
                    operation=entry.operation,
                    reference=entry.reference,
                    created_at=entry.created_at,
                )
                for entry in page
            ],
            next_cursor=encode_cursor([page[-1].id]) if len(entries) > limit else None,
        )

    async def usage(
        self,
        workspace_id: uuid.UUID,
        *,
        group_by: UsageGrouping,
        since: datetime | None,
        until: datetime | None,
    ) -> UsageReport:
        async with self.runtime.database.transaction() as session:
            repository = BillingRepository(session)
            _open(await repository.account(workspace_id), workspace_id)
            rows = await repository.usage(workspace_id, group_by=group_by, since=since, until=until)
        return UsageReport(
            group_by=group_by,
            items=[UsageItem(key=row.group, credits=row.credits, count=row.count) for row in rows],
        )

    # Parts ------------------------------------------------------------------------

    async def _charge(
        self, repository: BillingRepository, workspace_id: uuid.UUID, pool: Pool, amount: int
    ) -> _Charged:
        """Take `amount` of `pool`, falling through to the parent where allowed; the lines
        are applied to the balances but not yet recorded."""
        if amount:
            debited = await repository.debit_if_covered(workspace_id, pool, amount)
            if debited is not None:
                balance_after, root_id = debited
                return _Charged(
                    root_id=root_id,
                    balance_after=balance_after,
                    lines=[
                        PostedLine(Line(workspace_id, pool, -amount), balance_after),
                        PostedLine(Line(None, pool, amount), None),
                    ],
                )
        account = _open(await repository.account(workspace_id), workspace_id)
        if not amount:
            return _Charged(account.root_id, account.pools[pool].balance, [])
        if not account.falls_through_to_parent or account.parent_id is None:
            msg = f"This costs {amount} credits; {account.pools[pool].balance} are left."
            raise InsufficientCreditsError(msg)
        parent_id = account.parent_id
        locked = await repository.lock_balances([(workspace_id, pool), (parent_id, pool)])
        charge = split_charge(
            amount,
            own_balance=locked[(workspace_id, pool)].balance,
            parent_balance=locked[(parent_id, pool)].balance,
        )
        lines = _charge_lines(workspace_id, parent_id, pool, charge)
        posted = [
            PostedLine(line, None if line.workspace_id is None else await repository.move(line))
            for line in lines
        ]
        return _Charged(
            root_id=account.root_id,
            balance_after=_balance_after(
                posted, workspace_id, pool, otherwise=locked[(workspace_id, pool)].balance
            ),
            lines=posted,
        )

    async def _grant_plan(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        envelope: RawEnvelope,
    ) -> None:
        grants = self.plan.grants()
        if not grants:
            return
        await self._post(
            session,
            TransactionRecord(
                id=uuid.uuid4(),
                kind=TransactionKind.PLAN,
                workspace_id=workspace_id,
                root_id=root_id,
                actor=envelope.actor,
                reference=self.plan.code,
            ),
            [
                line
                for pool, amount in grants.items()
                for line in (Line(workspace_id, pool, amount), Line(None, pool, -amount))
            ],
            causation_id=envelope.event_id,
        )

    async def _post(
        self,
        session: AsyncSession,
        transaction: TransactionRecord,
        lines: Sequence[Line],
        *,
        causation_id: uuid.UUID | None = None,
    ) -> list[PostedLine]:
        posted = await BillingRepository(session).post(transaction, lines)
        await self._stage_posted(session, transaction, posted, causation_id=causation_id)
        return posted

    async def _record(
        self,
        session: AsyncSession,
        transaction: TransactionRecord,
        posted: Sequence[PostedLine],
    ) -> None:
        await BillingRepository(session).record(transaction, posted)
        await self._stage_posted(session, transaction, posted, causation_id=None)

    async def _stage_posted(
        self,
        session: AsyncSession,
        transaction: TransactionRecord,
        posted: Sequence[PostedLine],
        *,
        causation_id: uuid.UUID | None,
    ) -> None:
        await self.outbox.stage(
            session,
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
            actor=transaction.actor,
            causation_id=causation_id,
        )

    async def _warn_if_low(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        root_id: uuid.UUID,
        pool: Pool,
        posted: Sequence[PostedLine],
    ) -> None:
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
        if fell_below(self.credits_low_threshold, before=before, after=after):
            await self.outbox.stage(
                session,
                CreditsLowReached(
                    workspace_id=workspace_id,
                    root_id=root_id,
                    pool=pool.value,
                    balance=after,
                    threshold=self.credits_low_threshold,
                ),
                root_id=root_id,
                workspace_id=workspace_id,
                actor=None,
            )

    async def _publish_limits(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        envelope: RawEnvelope | None,
        *,
        actor: str | None = None,
    ) -> None:
        account = await BillingRepository(session).account(workspace_id)
        assert account is not None
        is_billing_root = account.billing_mode is BillingMode.OWN
        await self.outbox.stage(
            session,
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
            actor=envelope.actor if envelope is not None else actor,
            causation_id=None if envelope is None else envelope.event_id,
        )


@dataclass(frozen=True, slots=True)
class _Charged:
    root_id: uuid.UUID
    balance_after: int
    lines: list[PostedLine]


def _require_spender(caller: Principal, permission: Permission) -> None:
    """An API key acts within its own workspace with what the gateway let it do; a
    person needs the permission in their role."""
    if caller.api_key_id is None:
        require_permission(caller, permission)


def _open(account: AccountView | None, workspace_id: uuid.UUID) -> AccountView:
    if account is None or account.closed:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)
    return account


def _charge_lines(
    workspace_id: uuid.UUID, parent_id: uuid.UUID | None, pool: Pool, charge: Charge
) -> list[Line]:
    lines = []
    if charge.from_workspace:
        lines.append(Line(workspace_id, pool, -charge.from_workspace))
    if charge.from_parent:
        assert parent_id is not None
        lines.append(Line(parent_id, pool, -charge.from_parent))
    total = charge.from_workspace + charge.from_parent
    if total:
        lines.append(Line(None, pool, total))
    return lines


def _balance_after(
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


def _merged(lines: Sequence[Line]) -> list[Line]:
    """One line per account and pool: the sum of the given ones, zeros left out."""
    totals: dict[tuple[uuid.UUID | None, Pool], int] = {}
    for line in lines:
        key = (line.workspace_id, line.pool)
        totals[key] = totals.get(key, 0) + line.amount
    return [Line(workspace, pool, amount) for (workspace, pool), amount in totals.items() if amount]


def _allocations(account: AccountView) -> AllocationsResponse:
    return AllocationsResponse(
        generative_credits=account.pools[Pool.GENERATIVE_CREDITS].allocated,
        api_credits=account.pools[Pool.API_CREDITS].allocated,
        avatar_slots=account.pools[Pool.AVATAR_SLOTS].allocated,
        seats=account.seats_cap,
    )


def _line_before(cursor: str | None) -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    if len(position) != 1 or not isinstance(position[0], int):
        msg = "The cursor is not one this API gave out."
        raise InvalidCursorError(msg)
    return position[0]
