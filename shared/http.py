"""ASGI plumbing shared by every service: request ids and health endpoints."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import problems
from shared.errors import install_problem_handlers, problem_response
from shared.logging import correlation_id_var, request_id_var
from shared.openapi import install_problem_documentation, problems_for
from shared.tracing import RequestTracing

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

ReadinessCheck = Callable[[], Awaitable[None]]


class NotReadyError(Exception):
    """Raised by a readiness check that says in a word what is missing (`stopping`)."""


class RequestIdMiddleware:
    """Echo the caller's `X-Request-Id` (or make one) on every response, and carry it
    in the logs and as the correlation id of every event the request causes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = sent if _ACCEPTABLE_REQUEST_ID.match(sent) else uuid.uuid4().hex
        request_token = request_id_var.set(request_id)
        correlation_token = correlation_id_var.set(request_id)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(request_token)
            correlation_id_var.reset(correlation_token)


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every dependency reachable",
        response_model=None,
        responses=problems_for(problems.SERVICE_UNAVAILABLE),
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
            except NotReadyError as exc:
                results[name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = f"unavailable: {type(exc).__name__}"
            else:
                results[name] = "ok"
        if all(result == "ok" for result in results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        response = problem_response(
            problems.SERVICE_UNAVAILABLE,
            "Not ready: " + ", ".join(f"{k} {v}" for k, v in results.items() if v != "ok"),
        )
        response.headers["retry-after"] = "1"
        return response

    return router


def install_http_plumbing(
    app: FastAPI, checks: dict[str, ReadinessCheck], *, public_edge: bool = False
) -> None:
    """`public_edge`: the app faces public clients, whose trace context is linked
    rather than continued (`shared.tracing.RequestTracing`)."""
    install_problem_handlers(app)
    install_problem_documentation(app)
    app.include_router(health_router(checks))
    # Inside RequestIdMiddleware, so that the span knows the request's id.
    app.add_middleware(RequestTracing, continue_callers_trace=not public_edge)
    app.add_middleware(RequestIdMiddleware)
