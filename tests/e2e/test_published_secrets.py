"""Nothing runs on a secret this project once published: a token or a principal signed
with one is refused by the real processes, and a service given one does not start."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest

from contracts.permissions import Role
from infra.processes import free_port
from infra.sandbox import Sandbox
from shared.development_tokens import development_user_id
from shared.settings import ServiceName
from shared.testing import ServiceProcess, SignedAs

from .conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

PUBLISHED_JWT_SECRET = "atrium-development-jwt-secret-change-me"
PUBLISHED_INTERNAL_SECRET = "atrium-development-internal-secret-change-me"


def token_signed_with(secret: str, email: str) -> str:
    now = int(time.time())
    claims = {
        "sub": development_user_id(email),
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_a_token_signed_with_the_published_jwt_secret_is_refused_at_the_gateway(
    system: RunningSystem,
) -> None:
    forged = token_signed_with(PUBLISHED_JWT_SECRET, "mallory@example.com")

    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as gateway:
        created = await gateway.post(
            "/v1/workspaces",
            json={"name": "Mallory's"},
            headers={"authorization": f"Bearer {forged}"},
        )

    assert created.status_code == 401, created.text
    assert created.json()["type"] == "unauthenticated"


@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        (ServiceName.IDENTITY, "POST", "/v1/workspaces", {"name": "Mallory's"}),
        (ServiceName.BILLING, "GET", f"/v1/workspaces/{uuid.uuid4()}/balances", None),
    ],
)
async def test_a_principal_signed_with_the_published_internal_secret_is_refused_by_the_services(
    system: RunningSystem,
    service: ServiceName,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    target: ServiceProcess = getattr(system, service.value)
    forged = SignedAs(
        "mallory",
        email="mallory@example.com",
        role=Role.SUPER_ADMIN,
        secret=PUBLISHED_INTERNAL_SECRET,
    )

    async with httpx.AsyncClient(base_url=target.url, timeout=10) as client:
        response = await client.request(method, path, json=body, auth=forged)

    assert response.status_code == 401, response.text


def test_a_service_given_a_published_secret_does_not_start(atrium: Sandbox, log_dir: Path) -> None:
    billing = ServiceProcess(
        ServiceName.BILLING, port=free_port(), environment=atrium.environment, log_dir=log_dir
    )

    try:
        with pytest.raises(RuntimeError, match="exited at start-up") as refused:
            billing.start(extra_environment={"ATRIUM_INTERNAL_SECRET": PUBLISHED_INTERNAL_SECRET})
    finally:
        billing.stop()

    assert "ATRIUM_INTERNAL_SECRET is a published development value" in str(refused.value)
