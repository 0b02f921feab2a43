"""Payment providers: what takes the money for a purchase.

A purchase asks the provider to charge before its credits are posted, in the
purchase's own transaction. `manual` (the only provider today) stands for an
operator who invoices by hand: it charges nothing and names the purchase with a
reference of its own, so that a real provider can replace it behind the same
interface.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.billing.domain import Pool


@dataclass(frozen=True, slots=True)
class Payment:
    provider: str
    reference: str


class PaymentProvider(Protocol):
    async def charge(
        self, *, workspace_id: uuid.UUID, pool: Pool, quantity: int, idempotency_key: str | None
    ) -> Payment:
        """Take payment for `quantity` of `pool`, or raise a DomainError."""
        ...


class ManualPaymentProvider:
    """Development and invoicing by hand: every charge succeeds at once."""

    name = "manual"

    async def charge(
        self,
        *,
        workspace_id: uuid.UUID,  # noqa: ARG002
        pool: Pool,  # noqa: ARG002
        quantity: int,  # noqa: ARG002
        idempotency_key: str | None,  # noqa: ARG002
    ) -> Payment:
        return Payment(provider=self.name, reference=f"manual:{uuid.uuid4()}")


PROVIDERS: dict[str, Callable[[], PaymentProvider]] = {
    ManualPaymentProvider.name: ManualPaymentProvider,
}
