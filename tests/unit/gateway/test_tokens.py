"""Only valid user tokens get in: expired, wrongly signed, unsigned or incomplete
tokens, tokens whose times are not numbers or not sane, and API keys passed off as
tokens, are 401 problems; no token, however malformed, is anything else."""

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


def test_x_api_key_takes_api_keys_only() -> None:
    with pytest.raises(UnauthenticatedError, match="X-API-Key takes API keys"):
        credentials_from(None, jwt.encode(claims(), JWT_SECRET, algorithm="HS256"))


DAY = 24 * 3600
YEAR_9999 = 253_402_214_400


def signed_with(**changes: Any) -> str:
    return jwt.encode(claims(**changes), JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (signed_with(exp=str(int(time.time()) + 60)), "exp as a string"),
        (signed_with(exp=True), "exp as a boolean"),
        (signed_with(exp=YEAR_9999), "exp in the year 9999"),
        (signed_with(exp=int(time.time()) + 31 * DAY), "exp beyond 30 days"),
        (signed_with(exp=10**400), "a 400-digit exp"),
        (signed_with(exp=-(10**400)), "a 400-digit negative exp"),
        (signed_with(exp=float("inf")), "exp Infinity"),
        (signed_with(exp=float("nan")), "exp NaN"),
        (signed_with(iat="yesterday"), "iat as a string"),
        (signed_with(iat=10**400), "a 400-digit iat"),
        (signed_with(iat=int(time.time()) + DAY), "iat tomorrow"),
        (signed_with(nbf=[1]), "nbf as a list"),
        (signed_with(nbf=float("inf")), "nbf Infinity"),
        (signed_with(nbf=int(time.time()) + DAY), "nbf tomorrow"),
        (signed_with(email_verified={"yes": True}, sub=["ann"]), "sub as a list"),
        (jwt.encode({"x": [[[]]]}, JWT_SECRET, algorithm="HS256"), "no claims"),
        (
            "eyJhbGciOiJIUzI1NiJ9."
            + jwt.utils.base64url_encode(b"[" * 100_000 + b"]" * 100_000).decode()
            + ".c2ln",
            "claims nested past the recursion limit",
        ),
        ("eyJhbGciOiJIUzI1NiJ9.\u00e9\u00e9.c2ln", "not base64"),
        ("é.é.é", "not ASCII"),
    ],
    ids=lambda value: value if len(value) < 60 else "",
)
async def test_a_token_whose_claims_do_not_make_sense_is_refused(token: str, why: str) -> None:
    with pytest.raises(UnauthenticatedError):
        await Authenticator(SETTINGS).authenticate(token)


async def test_a_token_that_lives_up_to_30_days_is_accepted() -> None:
    token = signed_with(exp=int(time.time()) + 30 * DAY - 60, iat=int(time.time()), nbf=1)
    assert (await Authenticator(SETTINGS).authenticate(token)).user_id == "ann"


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
        {"x-api-key": jwt.encode(claims(), JWT_SECRET, algorithm="HS256")},
        {"authorization": f"Bearer {jwt.encode(claims(exp=10**400), JWT_SECRET)}"},
        {"authorization": f"Bearer {jwt.encode(claims(exp=float('inf')), JWT_SECRET)}"},
    ],
    ids=[
        "none",
        "junk",
        "an API key",
        "an API key in X-API-Key",
        "unsigned",
        "a token in X-API-Key",
        "a 400-digit exp",
        "exp Infinity",
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


async def test_a_malformed_api_key_is_refused_like_any_other_that_is_not_valid(
    in_process: InProcessGateway,
) -> None:
    response = await in_process.client.get("/v1/workspaces", headers={"x-api-key": "atr_x"})
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is not valid."
