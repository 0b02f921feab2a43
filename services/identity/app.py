"""identity's wiring and entry point: `python -m services.identity.app`."""

from fastapi import FastAPI

from services.identity import models
from services.identity.api import internal_router, router
from services.identity.consumers import register_consumers
from services.identity.handlers import Identity
from services.identity.settings import IdentitySettings
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName

SERVICE = ServiceName.IDENTITY


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    runtime = ServiceRuntime.create(
        SERVICE, settings, outbox_table=models.outbox, inbox_table=models.inbox
    )
    identity = Identity(runtime, settings.policy)
    register_consumers(runtime.consumer, identity)
    runtime.every(
        settings.housekeeping_seconds, "expire-invitations", identity.expire_due_invitations
    )
    runtime.every(
        settings.housekeeping_seconds, "finish-deletions", identity.finish_pending_deletions
    )
    app = create_service_app(runtime, router, internal_router)
    app.state.identity = identity
    return app


if __name__ == "__main__":
    settings = IdentitySettings()
    serve(create_app(settings), SERVICE, settings)
