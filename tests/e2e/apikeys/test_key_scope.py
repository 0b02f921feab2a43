"""What a key may reach: its own workspace as a developer, and nothing else; no key
management; no key from a query string; a key with a wrong checksum refused before any
lookup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from infra.processes import free_port
from shared import api_keys
from shared.settings import ServiceName, get_settings
from shared.testing import ServiceProcess
from tests.e2e.conftest import RunningSystem

from .support import Api, Person, bearer, problem_type

pytestmark = pytest.mark.e2e


async def test_a_key_reaches_no_other_workspace(api: Api) -> None:
    owner, stranger = Person.new("owner"), Person.new("stranger")
    root = await api.account(owner)
    client = await api.sub_workspace(root["id"], owner, billing_mode="own", name="Client")
    sibling = await api.sub_workspace(root["id"], owner, name="Sibling")
    grandchild = await api.sub_workspace(client["id"], owner, name="Grandchild")
    elsewhere = await api.account(stranger, "Elsewhere")
    key = await api.new_key(client["id"], owner)
    assert (await api.read_with(client["id"], key["key"])).status_code == 200

    for name, workspace in [
        ("parent", root),
        ("sibling", sibling),
        ("own sub-workspace", grandchild),
        ("another account", elsewhere),
    ]:
        for method, path in [
            ("GET", ""),
            ("GET", "/balances"),
            ("GET", "/members"),
            ("GET", "/sub-workspaces"),
            ("GET", "/api-keys"),
            ("POST", "/spend"),
        ]:
            response = await api.client.request(
                method,
                f"/v1/workspaces/{workspace['id']}{path}",
                json={"operation": "image_creation", "quantity": 1} if method == "POST" else None,
                headers={**bearer(key["key"]), "idempotency-key": "k"},
            )
            assert response.status_code == 404, (name, method, path, response.text)
            assert problem_type(response) == "not-found"


async def test_a_key_acts_as_a_developer_and_cannot_manage_keys(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    key = await api.new_key(root["id"], owner)
    other = await api.new_key(root["id"], owner)
    as_key = bearer(key["key"])
    keys = f"/v1/workspaces/{root['id']}/api-keys"

    allowed = [
        await api.client.get(f"/v1/workspaces/{root['id']}", headers=as_key),
        await api.client.get(f"/v1/workspaces/{root['id']}/balances", headers=as_key),
        await api.client.get(f"/v1/workspaces/{root['id']}/members", headers=as_key),
    ]
    refused = {
        "create a key": await api.client.post(keys, json={"name": "Minted"}, headers=as_key),
        "rotate itself": await api.client.post(f"{keys}/{key['id']}/rotate", headers=as_key),
        "rotate another": await api.client.post(f"{keys}/{other['id']}/rotate", headers=as_key),
        "revoke another": await api.client.delete(f"{keys}/{other['id']}", headers=as_key),
        "revoke itself": await api.client.delete(f"{keys}/{key['id']}", headers=as_key),
        "invite": await api.client.post(
            f"/v1/workspaces/{root['id']}/invitations",
            json={"email": "x@example.com", "role": "viewer"},
            headers=as_key,
        ),
        "change settings": await api.client.patch(
            f"/v1/workspaces/{root['id']}", json={"name": "Mine"}, headers=as_key
        ),
        "buy": await api.client.post(
            f"/v1/workspaces/{root['id']}/purchases",
            json={"pool": "api_credits", "quantity": 10},
            headers=as_key,
        ),
        "list my workspaces": await api.client.get("/v1/workspaces", headers=as_key),
        "create an account": await api.client.post(
            "/v1/workspaces", json={"name": "Mine"}, headers=as_key
        ),
        "read invitations": await api.client.get("/v1/invitations", headers=as_key),
    }

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert {what: response.status_code for what, response in refused.items()} == dict.fromkeys(
        refused, 403
    ), {what: response.text for what, response in refused.items()}
    listed = await api.keys(root["id"], owner)
    assert set(listed) == {key["id"], other["id"]}
    assert {entry["status"] for entry in listed.values()} == {"active"}
    assert (await api.read_with(root["id"], key["key"])).status_code == 200


@pytest.mark.parametrize("parameter", ["api_key", "key", "access_token", "token"])
async def test_a_key_in_a_query_string_is_refused(api: Api, parameter: str) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    key = await api.new_key(root["id"], owner)

    refused = await api.client.get(f"/v1/workspaces/{root['id']}", params={parameter: key["key"]})
    refused_with_header_too = await api.client.get(
        f"/v1/workspaces/{root['id']}", params={parameter: key["key"]}, headers=bearer(key["key"])
    )

    assert refused.status_code == 400, refused.text
    assert refused_with_header_too.status_code == 400, refused_with_header_too.text
    assert refused.headers["content-type"] == "application/problem+json"


class CountingApikeys:
    """Stands in front of the real apikeys for a second gateway: forwards every request
    and remembers each path it forwarded."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.paths: list[str] = []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lookups(self) -> list[str]:
        return [path for path in self.paths if path.startswith("/internal/")]

    async def forward(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                headers={
                    name: value
                    for name, value in request.headers.items()
                    if name.lower() not in {"host", "content-length", "transfer-encoding"}
                },
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                headers={
                    name: value
                    for name, value in answer.headers.items()
                    if name.lower() not in {"content-length", "transfer-encoding", "connection"}
                },
            )

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[CountingApikeys]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def gateway_in_front_of(
    system: RunningSystem, apikeys_url: str, log_dir: Path
) -> AsyncIterator[ServiceProcess]:
    """A second gateway that reaches apikeys at `apikeys_url`. Started and stopped off
    the event loop: the forwarder it asks while starting runs on that loop."""
    gateway = ServiceProcess(
        ServiceName.GATEWAY,
        port=free_port(),
        environment={**system.gateway.environment, "ATRIUM_APIKEYS_URL": apikeys_url},
        log_dir=log_dir,
    )
    try:
        yield await asyncio.to_thread(gateway.start)
    finally:
        await asyncio.to_thread(gateway.stop)


def with_wrong_checksum(key: str) -> list[str]:
    """The same key with one character changed in its random part, in its checksum,
    one character short, and one longer: none passes `well_formed`."""
    body, check = key[: -api_keys.CHECKSUM_LENGTH], key[-api_keys.CHECKSUM_LENGTH :]
    swapped = "A" if body[10] != "A" else "B"
    changed = body[:10] + swapped + body[11:] + check
    check_changed = body + ("0" if check[0] != "0" else "1") + check[1:]
    forged = [changed, check_changed, key[:-1], key + "x"]
    assert not any(api_keys.well_formed(candidate) for candidate in forged)
    return forged


async def test_a_key_with_a_wrong_checksum_is_refused_without_a_lookup(
    system: RunningSystem, api: Api, log_dir: Path
) -> None:
    """The gateway under test asks apikeys through a forwarder that counts what it is
    asked. The control shows that a well-formed key the gateway does not know is looked
    up there (by its hash): so a lookup could not go unseen. Keys with a wrong checksum,
    sent after it, add no lookup."""
    owner = Person.new("owner")
    root = await api.account(owner)
    real = await api.new_key(root["id"], owner)
    pepper = get_settings().apikey_pepper

    async with (
        CountingApikeys(system.apikeys.url).serving() as counting,
        gateway_in_front_of(system, counting.url, log_dir) as gateway,
    ):
        gateway_url = gateway.url
        read = f"{gateway_url}/v1/workspaces/{root['id']}"

        unknown = api_keys.new_key()
        control = await api.client.get(read, headers=bearer(unknown))
        assert control.status_code == 401, control.text
        control_lookups = counting.lookups()
        assert any(api_keys.key_hash(unknown, pepper) in path for path in control_lookups), (
            counting.paths
        )

        forged = with_wrong_checksum(real["key"]) + with_wrong_checksum(unknown)
        answers = []
        for candidate in forged:
            answers.append(await api.client.get(read, headers=bearer(candidate)))
            answers.append(await api.client.get(read, headers={"x-api-key": candidate}))
        after = counting.lookups()
        works = await api.client.get(read, headers=bearer(real["key"]))

    assert [answer.status_code for answer in answers] == [401] * len(answers)
    assert {problem_type(answer) for answer in answers} == {"unauthenticated"}
    assert after == control_lookups, after[len(control_lookups) :]
    assert works.status_code == 200, works.text
