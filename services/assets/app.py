"""assets' wiring and entry point: `python -m services.assets.app`."""

from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from services.assets import housekeeping, models
from services.assets.api import router
from services.assets.consumers import register_consumers
from services.assets.faults import Checkpoints
from services.assets.settings import AssetsSettings
from services.assets.upstreams import Upstreams
from shared.service import ServiceRuntime, create_service_app, serve
from shared.settings import ServiceName

SERVICE = ServiceName.ASSETS


def create_app(settings: AssetsSettings | None = None) -> FastAPI:
    settings = settings or AssetsSettings()
    runtime = ServiceRuntime.create(
        SERVICE,
        settings,
        outbox_table=models.outbox,
        inbox_table=models.inbox,
        idempotency_table=models.idempotency_keys,
    )
    units = runtime.units_of_work
    upstreams = Upstreams(settings)
    register_consumers(runtime.consumer, units)
    runtime.every(
        settings.reconcile_seconds,
        "settle-unfinished-avatars",
        partial(
            housekeeping.settle_unfinished_avatars,
            units,
            upstreams,
            older_than=timedelta(seconds=settings.unfinished_after_seconds),
        ),
    )
    runtime.on_stop(upstreams.close)
    app = create_service_app(runtime, router)
    app.state.upstreams = upstreams
    app.state.checkpoints = Checkpoints(settings.assets_kill_at)
    return app


if __name__ == "__main__":
    settings = AssetsSettings()
    serve(create_app(settings), SERVICE, settings)
