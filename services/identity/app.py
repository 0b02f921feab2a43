"""identity's wiring and entry point: `python -m services.identity.app`."""

from fastapi import FastAPI

from services.identity import models
from services.identity.api import router
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName, Settings, get_settings

SERVICE = ServiceName.IDENTITY


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime.create(
        SERVICE,
        settings or get_settings(),
        outbox_table=models.outbox,
        inbox_table=models.inbox,
    )
    return create_service_app(runtime, router)


if __name__ == "__main__":
    serve(create_app(), SERVICE, get_settings())
