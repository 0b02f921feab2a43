"""A stub upstream that stands for every service behind the gateway, and tokens.

The stub answers 200 to every forwarded request and records it with the principal it
verified; it answers identity's access question with 404 unless a test says
otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from infra.processes import free_port
from services.gateway.settings import GatewaySettings
from shared.errors import DomainError
from shared.principal import PRINCIPAL_HEADER, Principal, verify_principal

JWT_SECRET = "unit-test-jwt-secret-" + "x" * 48
INTERNAL_SECRET = "unit-test-internal-secret"
APIKEY_PEPPER = "unit-test-apikey-pepper"


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    query: str
    principal: Principal
    headers: dict[str, str]
    body: bytes


@dataclass
class StubUpstream:
    port: int
    forwarded: list[Forwarded] = field(default_factory=list)
    access_checks: list[tuple[str, Principal]] = field(default_factory=list)
    access_answers: dict[tuple[str | None, str], dict[str, Any]] = field(default_factory=dict)
    """identity's answer to (user_id, workspace_id); absent: 404."""
    access_unavailable: bool = False
    """identity cannot answer about access (503)."""
    delay_seconds: float = 0.0
    statuses: dict[tuple[str, str], int] = field(default_factory=dict)
    """The status of a forwarded (method, path); absent: 200."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        principal = verify_principal(
            request.headers.get(PRINCIPAL_HEADER, ""),
            method=request.method,
            target=request.raw_path,
            body=await request.read(),
            secret=INTERNAL_SECRET,
        ).principal
        if request.path.startswith("/internal/"):
            workspace_id = request.path.split("/")[4]
            self.access_checks.append((workspace_id, principal))
            if self.access_unavailable:
                return web.json_response({"type": "service-unavailable"}, status=503)
            answer = self.access_answers.get((principal.user_id, workspace_id))
            if answer is None:
                return web.json_response({"type": "not-found"}, status=404)
            return web.json_response(answer)
        await asyncio.sleep(self.delay_seconds)
        self.forwarded.append(
            Forwarded(
                method=request.method,
                path=request.path,
                query=request.query_string,
                principal=principal,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=await request.read(),
            )
        )
        status = self.statuses.get((request.method, request.path), 200)
        if status == 204:
            return web.Response(status=204, headers={"x-upstream": "stub"})
        return web.json_response({"ok": True}, status=status, headers={"x-upstream": "stub"})


@contextlib.asynccontextmanager
async def running_stub() -> AsyncIterator[StubUpstream]:
    upstream = StubUpstream(port=free_port())

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await upstream.handle(request)
        except DomainError:
            return web.json_response({"type": "unauthenticated"}, status=401)

    runner = web.ServerRunner(web.Server(handle))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", upstream.port).start()
    try:
        yield upstream
    finally:
        await runner.cleanup()


def gateway_settings(upstream_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "jwt_secret": JWT_SECRET,
        "internal_secret": INTERNAL_SECRET,
        "apikey_pepper": APIKEY_PEPPER,
        "gateway_kafka_password": "unit-test-kafka-password",
        "identity_url": upstream_url,
        "billing_url": upstream_url,
        "assets_url": upstream_url,
        "apikeys_url": upstream_url,
        "rate_limit_per_second": 100_000,
        "rate_limit_burst": 100_000,
        # No PostgreSQL here: each test's gateway keeps its buckets in its memory.
        "shared_rate_limits": False,
        **overrides,
    }
    return GatewaySettings(**values)


def token_for(
    user_id: str,
    *,
    email: str | None = None,
    email_verified: bool = True,
    lifetime: int = 600,
    secret: str = JWT_SECRET,
) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "email": email or f"{user_id}@example.test",
        "email_verified": email_verified,
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(user_id: str, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(user_id, **claims)}"}
