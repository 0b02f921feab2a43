"""What each service keeps only for the retention."""

from __future__ import annotations

from sqlalchemy import MetaData

from services.billing import models as billing
from services.gateway import models as gateway
from services.identity import models as identity
from shared.retention import expiring_records


def kept(metadata: MetaData) -> set[str]:
    return {record.table.name for record in expiring_records(metadata)}


def test_a_service_keeps_its_inbox_and_idempotency_keys_for_the_retention_only() -> None:
    assert kept(billing.metadata) == {"inbox", "idempotency_keys"}
    assert kept(identity.metadata) == {"inbox", "idempotency_keys"}
    assert kept(gateway.metadata) == {"inbox"}
