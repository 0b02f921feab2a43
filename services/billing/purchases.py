"""Purchases: a billing root's Super Admin buys credits or capacity through the
payment provider; the provider charges before the credits are posted, in the
purchase's own transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.events.identity import BillingMode
from services.billing.accounts import require_open_account
from services.billing.domain import (
    CONSUMABLE_POOLS,
    Line,
    NotABillingRootError,
    Pool,
    TransactionKind,
)
from services.billing.payments import PaymentProvider
from services.billing.policy import require_purchaser
from services.billing.posting import announce_limits, balance_after, post
from services.billing.repository.ledger import TransactionRecord
from shared.principal import Principal
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class PurchaseCredits:
    caller: Principal
    workspace_id: uuid.UUID
    pool: Pool
    quantity: int
    payments: PaymentProvider
    payment_key: str | None
    """The request's `Idempotency-Key`: the provider charges a retried purchase once."""


@dataclass(frozen=True, slots=True)
class Purchase:
    transaction_id: uuid.UUID
    pool: Pool
    quantity: int
    balance_after: int
    payment_provider: str
    payment_reference: str


async def purchase_credits(uow: UnitOfWork, command: PurchaseCredits) -> Purchase:
    require_purchaser(command.caller, command.workspace_id)
    account = await require_open_account(uow.session, command.workspace_id)
    if account.billing_mode is not BillingMode.OWN:
        msg = "Purchases are made by the workspace that pays: its billing root."
        raise NotABillingRootError(msg)
    payment = await command.payments.charge(
        workspace_id=command.workspace_id,
        pool=command.pool,
        quantity=command.quantity,
        idempotency_key=command.payment_key,
    )
    transaction_id = uuid.uuid4()
    posted = await post(
        uow,
        TransactionRecord(
            id=transaction_id,
            kind=TransactionKind.PURCHASE,
            workspace_id=command.workspace_id,
            root_id=account.root_id,
            reference=payment.reference,
        ),
        [
            Line(command.workspace_id, command.pool, command.quantity),
            Line(None, command.pool, -command.quantity),
        ],
    )
    if command.pool not in CONSUMABLE_POOLS:
        await announce_limits(uow, command.workspace_id)
    return Purchase(
        transaction_id=transaction_id,
        pool=command.pool,
        quantity=command.quantity,
        balance_after=balance_after(posted, command.workspace_id),
        payment_provider=payment.provider,
        payment_reference=payment.reference,
    )
