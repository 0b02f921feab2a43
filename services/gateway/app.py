"""The gateway's wiring and entry point: `python -m services.gateway.app`.

It forwards each public request to the service that owns its path, over one
pooled HTTP client, and turns an unreachable or slow service into a 502 or 504
problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import cast

import aiohttp
from fastapi import FastAPI, Request, Response

from contracts import problems
from services.gateway.auth import authenticate, credentials_from
from services.gateway.routes import owning_service, workspace_in_path
from shared.errors import problem_response
from shared.http import ReadinessCheck, install_http_plumbing
from shared.logging import request_id_var
from shared.principal import PRINCIPAL_HEADER, sign_principal
from shared.service import serve
from shared.settings import ServiceName, Settings, get_settings

SERVICE = ServiceName.GATEWAY
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=2)
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)
# Credentials stay at the edge; a principal the caller made up never reaches a service.
_FORWARDED_AWAY = _HOP_BY_HOP | {"authorization", "x-api-key", PRINCIPAL_HEADER}
_UPSTREAMS = (ServiceName.IDENTITY, ServiceName.BILLING)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state: dict[str, aiohttp.ClientSession] = {}

    def client() -> aiohttp.ClientSession:
        return state["client"]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["client"] = aiohttp.ClientSession(
            timeout=UPSTREAM_TIMEOUT,
            connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300),
            auto_decompress=False,
        )
        try:
            yield
        finally:
            await state["client"].close()

    def upstream_ready(service: ServiceName) -> ReadinessCheck:
        async def check() -> None:
            url = f"{settings.base_url_for(service)}/readyz"
            async with client().get(url, timeout=aiohttp.ClientTimeout(total=3)) as response:
                response.raise_for_status()

        return check

    app = FastAPI(title="Atrium", version="1.0.0", lifespan=lifespan)
    install_http_plumbing(app, {service.value: upstream_ready(service) for service in _UPSTREAMS})

    @app.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def forward(request: Request) -> Response:
        service = owning_service(request.url.path)
        if service is None:
            return problem_response(problems.NOT_FOUND, f"No route for {request.url.path}.")
        caller = authenticate(
            credentials_from(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            ),
            settings,
        )
        vouched = replace(caller, workspace_id=workspace_in_path(request.url.path))
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _FORWARDED_AWAY
        }
        headers[PRINCIPAL_HEADER] = sign_principal(
            vouched,
            method=request.method,
            path=request.url.path,
            secret=settings.internal_secret,
        )
        headers["x-request-id"] = cast("str", request_id_var.get())
        url = f"{settings.base_url_for(service)}{request.url.path}"
        try:
            async with client().request(
                request.method,
                url,
                params=list(request.query_params.multi_items()),
                data=await request.body(),
                headers=headers,
            ) as upstream:
                body = await upstream.read()
                return Response(
                    content=body,
                    status_code=upstream.status,
                    headers={
                        name: value
                        for name, value in upstream.headers.items()
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "x-request-id"
                    },
                )
        except TimeoutError:
            return problem_response(problems.GATEWAY_TIMEOUT, f"{service.value} did not answer.")
        except aiohttp.ClientError:
            return problem_response(problems.BAD_GATEWAY, f"{service.value} is unreachable.")

    return app


if __name__ == "__main__":
    serve(create_app(), SERVICE, get_settings())
