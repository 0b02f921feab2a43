"""identity's wiring and entry point: `python -m services.identity.app`."""

from functools import partial

from fastapi import FastAPI

from services.identity import housekeeping, models
from services.identity.api import internal_router, router
from services.identity.consumers import register_consumers
from services.identity.settings import IdentitySettings
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName

SERVICE = ServiceName.IDENTITY


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    runtime = ServiceRuntime.create(
        SERVICE,
        settings,
        outbox_table=models.outbox,
        inbox_table=models.inbox,
        idempotency_table=models.idempotency_keys,
    )
    units = runtime.units_of_work
    register_consumers(runtime.consumer, units)
    runtime.every(
        settings.housekeeping_seconds,
        "expire-invitations",
        partial(housekeeping.expire_due_invitations, units),
    )
    runtime.every(
        settings.housekeeping_seconds,
        "finish-deletions",
        partial(housekeeping.finish_interrupted_deletions, units),
    )
    app = create_service_app(runtime, router, internal_router)
    app.state.policy = settings.policy
    return app


if __name__ == "__main__":
    settings = IdentitySettings()
    serve(create_app(settings), SERVICE, settings)
