"""apikeys' wiring and entry point: `python -m services.apikeys.app`."""

from fastapi import FastAPI

from services.apikeys import models
from services.apikeys.api import internal_router, router
from services.apikeys.consumers import register_consumers
from services.apikeys.settings import ApikeysSettings
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName

SERVICE = ServiceName.APIKEYS


def create_app(settings: ApikeysSettings | None = None) -> FastAPI:
    settings = settings or ApikeysSettings()
    runtime = ServiceRuntime.create(
        SERVICE,
        settings,
        outbox_table=models.outbox,
        inbox_table=models.inbox,
        idempotency_table=models.idempotency_keys,
        idempotency_seal=settings.response_seal(),
    )
    register_consumers(runtime)
    return create_service_app(runtime, router, internal_router)


if __name__ == "__main__":
    settings = ApikeysSettings()
    serve(create_app(settings), SERVICE, settings)
