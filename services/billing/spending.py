"""Spending: an operation is charged at its price, all or nothing. An API key pays with
API credits, a person with generative credits; a sub-workspace without a strict quota
falls through to its parent's pool once its own allocation runs out. A spend made with
a key must also fit in the key's monthly credit limit (`key_budgets`): the key's
budget, the sub-workspace's balance and the parent's pool are each checked and changed
in the one transaction, or none of them is.

The rules are applied in the database, by `billing.spend_batch` (migration
`0009_spend_batches`), so that a spend is one round trip and many spends share one
transaction: `spend_batches` gathers them and turns each outcome into its answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.billing.domain import Operation, Terms
from shared.principal import Principal


@dataclass(frozen=True, slots=True)
class SpendCredits:
    caller: Principal
    workspace_id: uuid.UUID
    operation: Operation
    quantity: int
    reference: str | None
    terms: Terms
