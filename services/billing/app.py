"""billing's wiring and entry point: `python -m services.billing.app`."""

from fastapi import FastAPI

from services.billing import models
from services.billing.api import internal_router, router
from services.billing.consumers import register_consumers
from services.billing.payments import PROVIDERS
from services.billing.settings import BillingSettings
from services.billing.spend_batches import SpendBatches
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName

SERVICE = ServiceName.BILLING


def create_app(settings: BillingSettings | None = None) -> FastAPI:
    settings = settings or BillingSettings()
    runtime = ServiceRuntime.create(
        SERVICE,
        settings,
        outbox_table=models.outbox,
        inbox_table=models.inbox,
        idempotency_table=models.idempotency_keys,
    )
    terms = settings.terms
    register_consumers(runtime, terms.plan)
    app = create_service_app(runtime, router, internal_router)
    app.state.terms = terms
    app.state.payments = PROVIDERS[settings.payment_provider]()
    spend_batches = SpendBatches(
        runtime.database,
        runtime.units_of_work,
        producer=SERVICE.value,
        wait_seconds=settings.billing_spend_batch_ms / 1000,
        max_spends=settings.billing_spend_batch_max,
    )
    runtime.on_stop(spend_batches.stop)
    app.state.spend_batches = spend_batches
    return app


if __name__ == "__main__":
    settings = BillingSettings()
    serve(create_app(settings), SERVICE, settings)
