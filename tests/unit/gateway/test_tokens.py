"""Only valid user tokens get in: expired, wrongly signed, unsigned or incomplete
tokens, and API keys for now, are 401 problems."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web

from infra.processes import free_port
from services.gateway.auth import Authenticator, credentials_from
from services.gateway.settings import GatewaySettings
from shared.errors import UnauthenticatedError

from .conftest import InProcessGateway
from .support import JWT_SECRET, StubUpstream

SETTINGS = GatewaySettings(jwt_secret=JWT_SECRET)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "ann",
        "email": "Ann@Example.test",
        "email_verified": True,
        "exp": now + 60,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


async def test_a_valid_token_names_the_caller() -> None:
    principal = await Authenticator(SETTINGS).authenticate(
        jwt.encode(claims(), JWT_SECRET, algorithm="HS256")
    )
    assert (principal.user_id, principal.email, principal.email_verified) == (
        "ann",
        "ann@example.test",
        True,
    )


async def test_a_remembered_token_stops_working_when_it_expires() -> None:
    now = [time.time()]
    authenticator = Authenticator(SETTINGS, clock=lambda: now[0])
    token = jwt.encode(claims(exp=int(now[0]) + 5), JWT_SECRET, algorithm="HS256")
    assert (await authenticator.authenticate(token)).user_id == "ann"

    now[0] += 10

    with pytest.raises(UnauthenticatedError):
        await authenticator.authenticate(token)


def unsigned(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, None, algorithm="none")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (jwt.encode(claims(exp=int(time.time()) - 1), JWT_SECRET, algorithm="HS256"), "expired"),
        (jwt.encode(claims(), "another-secret-of-enough-length!", algorithm="HS256"), "signature"),
        (unsigned(claims()), "alg=none"),
        (jwt.encode(claims(sub=None), JWT_SECRET, algorithm="HS256"), "no sub"),
        (jwt.encode(claims(exp=None), JWT_SECRET, algorithm="HS256"), "no exp"),
        (jwt.encode(claims(sub="  "), JWT_SECRET, algorithm="HS256"), "blank sub"),
        (jwt.encode(claims(), JWT_SECRET, algorithm="HS512"), "another algorithm"),
        ("not-a-token", "garbage"),
        ("atr_live_1234567890", "an API key"),
    ],
    ids=lambda value: value if len(value) < 20 else "",
)
async def test_a_token_that_is_not_valid_is_refused(token: str, why: str) -> None:
    with pytest.raises(UnauthenticatedError):
        await Authenticator(SETTINGS).authenticate(token)


def test_credentials_come_from_a_bearer_header_or_x_api_key() -> None:
    assert credentials_from("Bearer abc", None) == "abc"
    assert credentials_from("bearer abc ", None) == "abc"
    assert credentials_from(None, "atr_key") == "atr_key"
    with pytest.raises(UnauthenticatedError):
        credentials_from("Basic abc", None)
    with pytest.raises(UnauthenticatedError):
        credentials_from(None, None)


@contextlib.asynccontextmanager
async def serving_key_set(key_set: dict[str, Any]) -> AsyncIterator[str]:
    port = free_port()

    async def jwks(_: web.BaseRequest) -> web.StreamResponse:
        return web.json_response(key_set)

    runner = web.ServerRunner(web.Server(jwks))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        await runner.cleanup()


async def test_an_rs256_token_is_checked_against_the_providers_key_set() -> None:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    key_set = {"keys": [{**public_jwk, "kid": "k1", "use": "sig"}]}

    async with serving_key_set(key_set) as jwks_url:
        authenticator = Authenticator(SETTINGS, jwks_url=jwks_url)
        token = jwt.encode(claims(), private_key, algorithm="RS256", headers={"kid": "k1"})
        assert (await authenticator.authenticate(token)).user_id == "ann"

        forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(UnauthenticatedError):
            await authenticator.authenticate(
                jwt.encode(claims(), forged, algorithm="RS256", headers={"kid": "k1"})
            )
        with pytest.raises(UnauthenticatedError):
            await authenticator.authenticate(
                jwt.encode(claims(), private_key, algorithm="RS256", headers={"kid": "unknown"})
            )
        # HS256 tokens are still checked against the HS256 secret alone.
        with pytest.raises(UnauthenticatedError):
            await authenticator.authenticate(
                jwt.encode(claims(), JWT_SECRET + "x", algorithm="HS256")
            )


async def test_rs256_is_refused_when_no_key_set_is_configured() -> None:
    header = {"alg": "RS256", "typ": "JWT"}
    segments = [
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
        for part in (header, claims())
    ]
    with pytest.raises(UnauthenticatedError):
        await Authenticator(SETTINGS).authenticate(".".join([*segments, "c2ln"]))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer nonsense"},
        {"authorization": "Bearer atr_1234"},
        {"x-api-key": "atr_1234"},
        {"authorization": f"Bearer {unsigned(claims())}"},
    ],
)
async def test_the_gateway_answers_401_problems_and_forwards_nothing(
    in_process: InProcessGateway, stub: StubUpstream, headers: dict[str, str]
) -> None:
    response = await in_process.client.get("/v1/workspaces", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-request-id"]
    assert response.json()["type"] == "unauthenticated"
    assert stub.forwarded == []


async def test_an_api_key_is_told_that_keys_are_not_accepted_yet(
    in_process: InProcessGateway,
) -> None:
    response = await in_process.client.get("/v1/workspaces", headers={"x-api-key": "atr_x"})
    assert response.json()["detail"] == "API keys are not accepted yet."
