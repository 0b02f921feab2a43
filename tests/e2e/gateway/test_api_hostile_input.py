"""Hostile input through the gateway, as an attacker or a broken client sends it: bodies
too large, too deep, not UTF-8 or naming a key twice, numbers at the edges of int64,
page sizes and cursors that are junk or another tenant's, headers with line breaks in
them or sent twice. Each is a clear 4xx `application/problem+json` (RFC 9457: `type`,
`status`, `detail`) and changes nothing: the account's balances, ledger, allocations,
keys and library read the same through the API afterwards.

(The edge's own defences, floods, slow bodies and huge heads, are in
`test_edge_protection.py`.)
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.system import NO_RATE_LIMITS
from contracts.permissions import Role
from shared.testing import eventually, raw_exchange
from tests.e2e.assets.conftest import Account, ok
from tests.e2e.conftest import RunningSystem

pytestmark = pytest.mark.e2e

CREDITS = 1_000
INT64_MAX = 2**63 - 1
JSON = {"content-type": "application/json"}
SPEND = {"operation": "image_creation", "quantity": 1}


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    # Every refusal here is one more from this address: the address's budget of
    # refusals is not what these tests are about.
    return NO_RATE_LIMITS


@pytest.fixture(scope="module")
async def gateway(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def account(gateway: httpx.AsyncClient) -> Account:
    """A root with bought credits, a parent-billed sub-workspace with an allocation, an
    API key and a voice in its library: one for the module, each test showing that it
    is unchanged by what the test sends."""
    account = await Account.open(gateway, "Hostile")
    root = f"/v1/workspaces/{account.root_id}"
    owner = account.owner.headers
    for pool in ("generative_credits", "api_credits"):
        bought = {"pool": pool, "quantity": CREDITS}
        ok(await gateway.post(f"{root}/purchases", json=bought, headers=owner), 201)
    sub = await account.sub_workspace("Client")

    async def allocated() -> httpx.Response | None:
        answer = await gateway.put(
            f"/v1/workspaces/{sub}/allocations", json={"generative_credits": 100}, headers=owner
        )
        return None if answer.status_code == 503 else answer  # billing hears of it soon

    ok(await eventually(allocated, what="an allocation to the new sub-workspace"), 200)
    ok(await gateway.post(f"{root}/api-keys", json={"name": "ci"}, headers=owner), 201)
    ok(await account.create(account.root_id, "voice", name="Narrator"), 201)

    await eventually(lambda: seats_used(account, 1), what="the owner's seat counted by billing")
    return account


async def seats_used(account: Account, seats: int) -> dict[str, Any] | None:
    """The account's snapshot once billing counts `seats` seats in use (it hears of
    members from identity's events), else None."""
    seen = await snapshot(account)
    return seen if seen["balances"]["seats"]["used"] == seats else None


async def snapshot(account: Account) -> dict[str, Any]:
    """Everything a hostile request might have changed, as the API shows it."""
    gateway, owner = account.gateway, account.owner.headers
    sub = await sub_workspace_of(account)
    root = f"/v1/workspaces/{account.root_id}"
    parts = {
        "balances": f"{root}/balances",
        "ledger": f"{root}/ledger?limit=200",
        "keys": f"{root}/api-keys?limit=200",
        "library": f"{root}/assets?limit=200",
        "sub balances": f"/v1/workspaces/{sub}/balances",
        "sub allocations": f"/v1/workspaces/{sub}/allocations",
    }
    seen = {name: ok(await gateway.get(path, headers=owner), 200) for name, path in parts.items()}
    for key in seen["keys"]["items"]:
        key.pop("last_used_at", None)
    return seen


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A 4xx problem+json with the RFC 9457 members a client reads."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json", response.text[:200]
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    assert problem["type"]
    assert problem["detail"]
    return problem


def field_error(problem: dict[str, Any]) -> tuple[str, str]:
    [error] = problem["errors"]
    return error["field"], error["type"]


async def send(
    account: Account, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """`body` as it is, by the Super Admin, with a fresh Idempotency-Key."""
    return await account.gateway.request(
        method,
        path,
        content=body,
        headers={
            **account.owner.headers,
            **JSON,
            "idempotency-key": uuid.uuid4().hex,
            **(headers or {}),
        },
    )


def writes(account: Account) -> dict[str, tuple[str, str, str]]:
    """The writes that move credits or set limits: method, path, and a body with one
    `{}` where a hostile value goes."""
    root = f"/v1/workspaces/{account.root_id}"
    return {
        "spend": ("POST", f"{root}/spend", '{"operation": "image_creation", "quantity": {}}'),
        "purchase": ("POST", f"{root}/purchases", '{"pool": "generative_credits", "quantity": {}}'),
        "key limit": ("POST", f"{root}/api-keys", '{"name": "k", "monthly_credit_limit": {}}'),
        "key rate": (
            "POST",
            f"{root}/api-keys",
            '{"name": "k", "rate_limit": {"requests": {}, "period_seconds": 60}}',
        ),
    }


async def sub_workspace_of(account: Account) -> str:
    listed = await account.gateway.get(
        f"/v1/workspaces/{account.root_id}/sub-workspaces", headers=account.owner.headers
    )
    return str(ok(listed, 200)["items"][0]["id"])


async def test_a_key_named_twice_in_a_body_is_refused_and_nothing_is_spent(
    account: Account,
) -> None:
    before = await snapshot(account)
    sub = await sub_workspace_of(account)
    twice = {
        **{name: target for name, target in writes(account).items() if name != "key rate"},
        "allocation": ("PUT", f"/v1/workspaces/{sub}/allocations", '{"generative_credits": {}}'),
    }

    problems = {}
    for name, (method, path, body) in twice.items():
        field = body.rsplit('"', 2)[-2]
        duplicated = body.replace("{}", f'1, "{field}": 999999')
        problems[name] = assert_problem(await send(account, method, path, duplicated.encode()), 422)

    for name, problem in problems.items():
        assert problem["type"] == "validation-failed", name
        assert field_error(problem)[1] == "duplicate_key", name
    assert await snapshot(account) == before


async def test_unknown_fields_are_refused_and_change_nothing(account: Account) -> None:
    before = await snapshot(account)

    for name, (method, path, body) in writes(account).items():
        with_extra = body.replace("{}", '5, "free_credits": 1000000')
        problem = assert_problem(await send(account, method, path, with_extra.encode()), 422)
        field, kind = field_error(problem)
        assert field.endswith("free_credits"), name
        assert kind == "extra_forbidden", name

    assert await snapshot(account) == before


HOSTILE_AMOUNTS = [
    str(INT64_MAX),
    str(2**63),
    str(-(2**63)),
    "0",
    "-1",
    "1.5",
    "1.0",
    '"1"',
    "1e309",
    "true",
    "null",
    "9" * 5000,
]
"""int64's edges and past them, a fraction, an integer written as a float, a string, a
number no float holds, a boolean, nothing, and more digits than Python reads."""


async def test_amounts_at_and_past_the_int64_edges_are_refused_and_change_nothing(
    account: Account,
) -> None:
    sub = await sub_workspace_of(account)
    before = await snapshot(account)
    targets = {
        **writes(account),
        "allocation": ("PUT", f"/v1/workspaces/{sub}/allocations", '{"avatar_slots": {}}'),
    }
    # 0 is a valid monthly limit and a valid allocation, and null leaves a limit unset.
    valid = {("0", "key limit"), ("0", "allocation"), ("null", "key limit")}

    for value in HOSTILE_AMOUNTS:
        for name, (method, path, body) in targets.items():
            if (value, name) in valid:
                continue
            response = await send(account, method, path, body.replace("{}", value).encode())
            problem = assert_problem(response, 422)
            assert problem["type"] == "validation-failed", (name, value)

    assert await snapshot(account) == before


async def test_a_body_past_the_gateways_limit_is_a_413_problem_and_spends_nothing(
    account: Account,
) -> None:
    before = await snapshot(account)
    spend = f"/v1/workspaces/{account.root_id}/spend"
    padding = "x" * (1024 * 1024)
    oversized = json.dumps({**SPEND, "reference": padding}).encode()

    async def in_chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(oversized), 64 * 1024):
            yield oversized[start : start + 64 * 1024]

    declared = await send(account, "POST", spend, oversized)
    streamed = await account.gateway.post(
        spend,
        content=in_chunks(),
        headers={**account.owner.headers, **JSON, "idempotency-key": uuid.uuid4().hex},
    )

    for response in (declared, streamed):
        assert assert_problem(response, 413)["type"] == "payload-too-large"
    assert await snapshot(account) == before


async def test_json_nested_ten_thousand_levels_is_refused_quickly_not_a_server_error(
    account: Account,
) -> None:
    before = await snapshot(account)
    root = f"/v1/workspaces/{account.root_id}"
    deep = b"[" * 10_000 + b"]" * 10_000
    deep_properties = (
        b'{"kind": "voice", "name": "Deep", "properties": '
        + b'{"a": ' * 500
        + b"{}"
        + b"}" * 500
        + b"}"
    )

    started = time.monotonic()
    answers = [
        await send(account, "POST", f"{root}/spend", deep),
        await send(account, "POST", f"{root}/assets", deep_properties),
        await send(account, "POST", f"{root}/api-keys/{uuid.uuid4()}/rotate", deep),
    ]
    elapsed = time.monotonic() - started

    for response in answers:
        assert_problem(response)
    assert field_error(answers[1].json())[1] == "too_deep"
    assert elapsed < 10
    assert await snapshot(account) == before


async def test_bodies_and_paths_that_are_not_utf8_are_problems(
    account: Account, system: RunningSystem
) -> None:
    before = await snapshot(account)
    root = f"/v1/workspaces/{account.root_id}"
    utf16 = json.dumps(SPEND).encode("utf-16")
    latin1 = b'{"operation": "image_creation", "quantity": 1, "reference": "caf\xe9"}'
    token = account.owner.headers["authorization"]

    bodies = [await send(account, "POST", f"{root}/spend", body) for body in (utf16, latin1)]
    escaped_path = await account.gateway.get(f"{root}/assets/%FF%FE", headers=account.owner.headers)
    raw_path = await raw_exchange(
        system.gateway.port,
        f"GET {root}/assets/\xff\xfe HTTP/1.1\r\nhost: atrium\r\nauthorization: {token}\r\n"
        "connection: close\r\n\r\n".encode("latin-1"),
    )

    for response in bodies:
        assert assert_problem(response, 400)["type"] == "malformed-request"
    assert_problem(escaped_path)
    status, head, body = raw_path
    assert status == 400
    assert b"content-type: application/problem+json" in head
    assert json.loads(body)["type"] == "malformed-request"
    assert await snapshot(account) == before


LISTS = ("assets", "ledger", "api-keys", "members")
"""A list of each service: assets, billing, apikeys, identity."""


async def test_a_page_size_outside_1_to_200_is_a_422_problem(account: Account) -> None:
    root = f"/v1/workspaces/{account.root_id}"
    limits = ["0", "-1", "201", str(2**63), str(-(2**63)), "abc", "1e3", "1.5", "", "%00"]

    for limit in limits:
        for path in LISTS:
            response = await account.gateway.get(
                f"{root}/{path}?limit={limit}", headers=account.owner.headers
            )
            problem = assert_problem(response, 422)
            assert "limit" in field_error(problem)[0], (path, limit)


def cursor_of(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def test_a_cursor_the_api_did_not_give_out_is_a_422_problem(account: Account) -> None:
    root = f"/v1/workspaces/{account.root_id}"
    forged = [
        "not base64 at all!",
        "////",
        base64.urlsafe_b64encode(b"\xff\xfe junk").decode(),
        cursor_of({"offset": 0}),
        cursor_of([True, str(uuid.uuid4())]),
        cursor_of([2**63, str(uuid.uuid4())]),
        cursor_of(["0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
        "A" * 600,
    ]

    for path in LISTS:
        for cursor in forged:
            response = await account.gateway.get(
                f"{root}/{path}", params={"cursor": cursor}, headers=account.owner.headers
            )
            assert_problem(response, 422)


async def test_another_tenants_cursor_shows_nothing_of_theirs(
    account: Account, gateway: httpx.AsyncClient
) -> None:
    other = await Account.open(gateway, "Other tenant")
    for name in ("Secret one", "Secret two", "Secret three"):
        ok(await other.create(other.root_id, "template", name=name), 201)
    theirs = ok(
        await gateway.get(
            f"/v1/workspaces/{other.root_id}/assets?limit=1", headers=other.owner.headers
        ),
        200,
    )
    assert theirs["next_cursor"] is not None

    mine = await gateway.get(
        f"/v1/workspaces/{account.root_id}/assets",
        params={"cursor": theirs["next_cursor"]},
        headers=account.owner.headers,
    )

    if mine.status_code == 200:
        names = {asset["name"] for asset in mine.json()["items"]}
        assert not names & {"Secret one", "Secret two", "Secret three"}
        assert {asset["workspace_id"] for asset in mine.json()["items"]} <= {account.root_id}
    else:
        assert_problem(mine, 422)


async def spend_raw(account: Account, system: RunningSystem, headers: bytes) -> tuple[int, Any]:
    """A spend of 1 credit with `headers` as they are, line breaks and all."""
    body = json.dumps(SPEND).encode()
    status, head, answer = await raw_exchange(
        system.gateway.port,
        f"POST /v1/workspaces/{account.root_id}/spend HTTP/1.1\r\nhost: atrium\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n".encode()
        + headers
        + b"\r\n"
        + body,
    )
    assert b"content-type: application/problem+json" in head, head
    return status, json.loads(answer)


async def test_line_breaks_in_headers_and_credentials_sent_twice_are_400_problems(
    account: Account, system: RunningSystem
) -> None:
    before = await snapshot(account)
    token = account.owner.headers["authorization"].encode()
    signed_in = b"authorization: " + token + b"\r\n"
    key = b"idempotency-key: " + uuid.uuid4().hex.encode() + b"\r\n"
    hostile = [
        signed_in + b"idempotency-key: a\rx-injected: 1\r\n",
        signed_in + b"idempotency-key: a\nx-injected: 1\r\n",
        signed_in + b"idempotency-key: a\x00b\r\n",
        signed_in + key + b"x-request-id: a\rb\r\n",
        signed_in + key + b"authorization: Bearer someone-elses-token\r\n",
        b"authorization: Bearer junk\r\n" + signed_in + key,
        signed_in + b"idempotency-key: first\r\nidempotency-key: second\r\n",
        signed_in + key + b"x-api-key: atr_one\r\nx-api-key: atr_two\r\n",
    ]

    answers = [await spend_raw(account, system, headers) for headers in hostile]

    for status, problem in answers:
        assert status == 400, problem
        assert problem["type"] == "malformed-request"
        assert problem["status"] == 400
    assert await snapshot(account) == before


async def test_very_long_headers_are_refused_or_replaced_never_echoed(
    account: Account,
) -> None:
    before = await snapshot(account)
    root = f"/v1/workspaces/{account.root_id}"

    long_key = await send(
        account,
        "POST",
        f"{root}/spend",
        json.dumps(SPEND).encode(),
        {"idempotency-key": "k" * 8000},
    )
    long_request_id = await account.gateway.get(
        root, headers={**account.owner.headers, "x-request-id": "r" * 8000}
    )

    field, _ = field_error(assert_problem(long_key, 422))
    assert "idempotency" in field.lower()
    assert long_request_id.status_code == 200
    assert len(long_request_id.headers["x-request-id"]) <= 128
    assert await snapshot(account) == before


async def test_a_role_without_the_right_meets_hostile_bodies_with_the_same_refusals(
    account: Account,
) -> None:
    """The body is read before the role decides: a viewer's duplicate key is a 403 or a
    422, never a spend."""
    viewer = await account.join(account.root_id, Role.VIEWER)
    before = await eventually(
        lambda: seats_used(account, 2), what="the viewer's seat counted by billing"
    )

    response = await account.gateway.post(
        f"/v1/workspaces/{account.root_id}/spend",
        content=b'{"operation": "image_creation", "quantity": 1, "quantity": 999999}',
        headers={**viewer.headers, **JSON, "idempotency-key": uuid.uuid4().hex},
    )

    assert response.status_code in {403, 422}
    assert_problem(response)
    assert await snapshot(account) == before
