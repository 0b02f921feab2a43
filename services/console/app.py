"""The console's web application: its pages (one router per screen), its static files,
and one rendering of every error."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from clients.gateway import Problem
from services.console import assets, keys, members, signin, usage, workspaces
from services.console.rendering import HERE, on_http_error, on_not_signed_in, on_problem
from services.console.session import NotSignedIn
from services.console.settings import ConsoleSettings, get_console_settings


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    app = FastAPI(title="Atrium console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings or get_console_settings()
    for screen in (signin, workspaces, members, keys, usage, assets):
        app.include_router(screen.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(NotSignedIn, on_not_signed_in)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
