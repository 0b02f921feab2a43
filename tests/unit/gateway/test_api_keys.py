"""API keys at the edge: the checksum before any lookup, one refusal for every key that
may not be used, apikeys asked once about a key the projection does not know yet, a
key's own rate limit, no key in a query string, and each request made with a key
recorded for its usage."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest

from contracts.permissions import Role
from services.gateway import keys as keys_module
from services.gateway.keys import (
    NEGATIVE_SECONDS,
    NOT_VALID,
    PROVISIONAL_SECONDS,
    ApikeysUnavailableError,
    KeyProjection,
    KeyRateLimit,
    KeyRecord,
    KeyVerifier,
)
from services.gateway.projections import (
    AccessProjection,
    Membership,
    WorkspaceNode,
    WorkspaceStatus,
)
from services.gateway.usage import UNMATCHED
from shared import api_keys
from shared.api_keys import key_hash, new_key
from shared.errors import UnauthenticatedError
from shared.principal import Principal

from .conftest import InProcessGateway
from .support import APIKEY_PEPPER, StubUpstream, bearer

PEPPER = "a-pepper"
ROOT, WORKSPACE = uuid.uuid4(), uuid.uuid4()
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingProjection(KeyProjection):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def find(self, hashed: str) -> KeyRecord | None:
        self.lookups += 1
        return super().find(hashed)


class Apikeys:
    """apikeys' answers by hash, counted."""

    def __init__(self) -> None:
        self.answers: dict[str, KeyRecord] = {}
        self.asked = 0
        self.failing = False

    async def __call__(self, hashed: str) -> KeyRecord | None:
        self.asked += 1
        if self.failing:
            raise ConnectionError
        return self.answers.get(hashed)


class Setup:
    def __init__(self) -> None:
        self.keys = CountingProjection()
        self.workspaces = AccessProjection()
        self.workspaces.put_workspace(WorkspaceNode(WORKSPACE, ROOT, ROOT, api_access=True))
        self.apikeys = Apikeys()
        self.wall = Clock(NOW)
        self.monotonic = Clock(1000.0)
        self.verifier = KeyVerifier(
            self.keys,
            self.workspaces,
            pepper=PEPPER,
            ask_apikeys=self.apikeys,
            clock=self.wall,
            monotonic=self.monotonic,
        )

    def record(self, key: str, **fields: Any) -> KeyRecord:
        return KeyRecord(
            key_id=fields.pop("key_id", uuid.uuid4()),
            hash=key_hash(key, PEPPER),
            workspace_id=WORKSPACE,
            root_id=ROOT,
            **fields,
        )

    def known(self, key: str, **fields: Any) -> KeyRecord:
        record = self.record(key, **fields)
        self.keys.put(record)
        return record


async def refused(verifier: KeyVerifier, key: str) -> str:
    with pytest.raises(UnauthenticatedError) as refusal:
        await verifier.verify(key)
    return refusal.value.detail


# The verifier ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mistyped",
    [
        lambda key: key[:10] + ("A" if key[10] != "A" else "B") + key[11:],
        lambda key: key[:-1],
        lambda key: key + "0",
        lambda key: key[:-6] + "000000",
        lambda key: key[:4],
    ],
    ids=["a-typo", "truncated", "one-too-many", "wrong-checksum", "prefix-only"],
)
async def test_a_key_whose_checksum_fails_is_refused_before_any_lookup(
    mistyped: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup()
    key = new_key()
    setup.known(key)
    hashed: list[str] = []

    def counted_key_hash(key: str, pepper: str) -> str:
        hashed.append(key)
        return key_hash(key, pepper)

    monkeypatch.setattr(keys_module, "key_hash", counted_key_hash)

    assert await refused(setup.verifier, mistyped(key)) == NOT_VALID

    assert (setup.keys.lookups, setup.apikeys.asked, hashed) == (0, 0, [])


async def test_a_known_key_is_compared_in_constant_time_and_needs_nobody(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = Setup()
    key = new_key()
    record = setup.known(key)
    compared: list[tuple[str, str]] = []

    def same_hash(stored: str, computed: str) -> bool:
        compared.append((stored, computed))
        return api_keys.same_hash(stored, computed)

    monkeypatch.setattr(keys_module, "same_hash", same_hash)

    assert await setup.verifier.verify(key) == record
    assert compared == [(record.hash, key_hash(key, PEPPER))]
    assert setup.apikeys.asked == 0


async def test_an_expired_key_is_refused_from_its_expiry_on() -> None:
    setup = Setup()
    key = new_key()
    setup.known(key, expires_at=NOW + 10)

    await setup.verifier.verify(key)
    setup.wall.now = NOW + 10
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_a_rotated_key_works_until_its_grace_ends() -> None:
    setup = Setup()
    key = new_key()
    setup.known(key, revoked_at=NOW + 60)

    await setup.verifier.verify(key)
    setup.wall.now = NOW + 59.9
    await setup.verifier.verify(key)
    setup.wall.now = NOW + 60
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_a_key_ended_through_this_process_is_refused_from_its_end_on() -> None:
    setup = Setup()
    key = new_key()
    record = setup.known(key)

    setup.verifier.ended_here(record.key_id, at=NOW + 60)
    await setup.verifier.verify(key)
    setup.verifier.ended_here(record.key_id, at=NOW + 120)  # a later end does not extend it
    setup.wall.now = NOW + 60
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_a_revoked_key_is_refused() -> None:
    setup = Setup()
    key = new_key()
    setup.known(key, revoked_at=NOW - 1)
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_a_suspended_key_is_refused() -> None:
    setup = Setup()
    key = new_key()
    setup.known(key, suspended=True)
    assert await refused(setup.verifier, key) == NOT_VALID


@pytest.mark.parametrize("status", [WorkspaceStatus.DELETING, WorkspaceStatus.DELETED])
async def test_a_key_of_a_workspace_being_deleted_or_deleted_is_refused(
    status: WorkspaceStatus,
) -> None:
    setup = Setup()
    key = new_key()
    setup.known(key)
    setup.workspaces.put_workspace(WorkspaceNode(WORKSPACE, ROOT, ROOT, True, status))
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_a_key_of_a_workspace_whose_api_access_is_off_is_refused_at_once() -> None:
    setup = Setup()
    key = new_key()
    setup.known(key)
    setup.workspaces.put_workspace(WorkspaceNode(WORKSPACE, ROOT, ROOT, api_access=False))
    assert await refused(setup.verifier, key) == NOT_VALID


async def test_every_refusal_says_the_same() -> None:
    setup = Setup()
    details = {
        await refused(setup.verifier, "atr_typo"),
        await refused(setup.verifier, new_key()),
    }
    for fields in ({"revoked_at": NOW}, {"expires_at": NOW}, {"suspended": True}):
        key = new_key()
        setup.known(key, **fields)
        details.add(await refused(setup.verifier, key))
    assert details == {NOT_VALID}


async def test_a_key_made_a_moment_ago_is_asked_of_apikeys_once() -> None:
    setup = Setup()
    key = new_key()
    record = setup.record(key)
    setup.apikeys.answers[record.hash] = record

    assert await setup.verifier.verify(key) == record
    assert await setup.verifier.verify(key) == record
    assert setup.apikeys.asked == 1
    assert len(setup.keys) == 0, "apikeys' answer is not written to the projection"


async def test_apikeys_word_stands_until_an_event_about_the_key_or_for_30_seconds() -> None:
    setup = Setup()
    key = new_key()
    record = setup.record(key)
    setup.apikeys.answers[record.hash] = record
    await setup.verifier.verify(key)

    setup.verifier.key_changed(uuid.uuid4())
    await setup.verifier.verify(key)
    assert setup.apikeys.asked == 1

    setup.verifier.key_changed(record.key_id)
    await setup.verifier.verify(key)
    assert setup.apikeys.asked == 2

    setup.monotonic.now += PROVISIONAL_SECONDS
    await setup.verifier.verify(key)
    assert setup.apikeys.asked == 3


async def test_apikeys_word_is_checked_like_the_projections() -> None:
    setup = Setup()
    key = new_key()
    record = setup.record(key, revoked_at=NOW - 1)
    setup.apikeys.answers[record.hash] = record

    assert await refused(setup.verifier, key) == NOT_VALID


async def test_no_such_key_is_remembered_for_a_moment_per_key() -> None:
    setup = Setup()
    unknown, other = new_key(), new_key()

    for _ in range(100):
        await refused(setup.verifier, unknown)
    assert setup.apikeys.asked == 1
    await refused(setup.verifier, other)
    assert setup.apikeys.asked == 2

    setup.monotonic.now += NEGATIVE_SECONDS
    await refused(setup.verifier, unknown)
    assert setup.apikeys.asked == 3


async def test_a_key_created_meanwhile_is_found_once_its_event_arrives() -> None:
    setup = Setup()
    key = new_key()
    await refused(setup.verifier, key)

    record = setup.known(key)

    assert await setup.verifier.verify(key) == record


async def test_when_apikeys_cannot_answer_the_key_is_neither_accepted_nor_refused() -> None:
    setup = Setup()
    setup.apikeys.failing = True

    with pytest.raises(ApikeysUnavailableError):
        await setup.verifier.verify(new_key())


# Through the gateway --------------------------------------------------------------------


def seed_key(in_process: InProcessGateway, **fields: Any) -> tuple[str, KeyRecord]:
    in_process.gateway.projection.load(
        [WorkspaceNode(WORKSPACE, None, WORKSPACE, api_access=True)],
        [Membership(WORKSPACE, "ann", Role.SUPER_ADMIN)],
    )
    key = new_key()
    record = KeyRecord(
        key_id=uuid.uuid4(),
        hash=key_hash(key, APIKEY_PEPPER),
        workspace_id=WORKSPACE,
        root_id=WORKSPACE,
        **fields,
    )
    in_process.gateway.keys.put(record)
    return key, record


async def test_a_key_works_in_either_header(in_process: InProcessGateway) -> None:
    key, _ = seed_key(in_process)
    path = f"/v1/workspaces/{WORKSPACE}/balances"

    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 200
    bearer_key = {"authorization": f"Bearer {key}"}
    assert (await in_process.client.get(path, headers=bearer_key)).status_code == 200


async def test_a_key_revoked_through_the_gateway_is_refused_by_it_in_the_very_next_request(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    key, record = seed_key(in_process)
    revoke = f"/v1/workspaces/{WORKSPACE}/api-keys/{record.key_id}"
    stub.statuses[("DELETE", revoke)] = 204
    path = f"/v1/workspaces/{WORKSPACE}/balances"
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 200

    revoked = await in_process.client.delete(revoke, headers=bearer("ann"))

    assert revoked.status_code == 204
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 401


async def test_a_refused_revocation_leaves_the_key_working(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    key, record = seed_key(in_process)
    revoke = f"/v1/workspaces/{WORKSPACE}/api-keys/{record.key_id}"
    stub.statuses[("DELETE", revoke)] = 409

    assert (await in_process.client.delete(revoke, headers=bearer("ann"))).status_code == 409
    path = f"/v1/workspaces/{WORKSPACE}/balances"
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 200


async def test_a_key_rotated_through_the_gateway_keeps_working_during_its_grace(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    key, record = seed_key(in_process)
    rotate = f"/v1/workspaces/{WORKSPACE}/api-keys/{record.key_id}/rotate"
    stub.statuses[("POST", rotate)] = 201
    path = f"/v1/workspaces/{WORKSPACE}/balances"

    graced = await in_process.client.post(f"{rotate}?grace_seconds=600", headers=bearer("ann"))
    assert graced.status_code == 201
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 200

    rotated = await in_process.client.post(rotate, headers=bearer("ann"))
    assert rotated.status_code == 201
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 401


async def test_a_key_the_projection_does_not_know_yet_is_asked_of_apikeys_once(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed_key(in_process)
    key = new_key()
    hashed = key_hash(key, APIKEY_PEPPER)
    key_id = uuid.uuid4()
    stub.access_answers[(None, hashed)] = {
        "key_id": str(key_id),
        "workspace_id": str(WORKSPACE),
        "root_id": str(WORKSPACE),
        "suspended": False,
        "revoked_at": None,
        "expires_at": "2999-01-01T00:00:00Z",
        "rate_limit": {"requests": 5, "period_seconds": 60},
    }
    path = f"/v1/workspaces/{WORKSPACE}/balances"

    first = await in_process.client.get(path, headers={"x-api-key": key})
    second = await in_process.client.get(path, headers={"x-api-key": key})

    assert (first.status_code, second.status_code) == (200, 200)
    assert [hashed for hashed, _ in stub.access_checks] == [hashed]
    assert stub.access_checks[0][1] == Principal()
    assert stub.forwarded[-1].principal.api_key_id == key_id
    assert second.headers["ratelimit-limit"] == "5"


async def test_a_key_nobody_knows_is_401(in_process: InProcessGateway, stub: StubUpstream) -> None:
    seed_key(in_process)
    response = await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances", headers={"x-api-key": new_key()}
    )
    assert response.status_code == 401
    problem = response.json()
    assert (problem["type"], problem["detail"]) == ("unauthenticated", NOT_VALID)
    assert stub.forwarded == []


@pytest.mark.parametrize("settings_overrides", [{"apikeys_url": "http://127.0.0.1:9"}])
async def test_a_key_is_503_while_apikeys_cannot_say_whether_it_exists(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed_key(in_process)
    response = await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances", headers={"x-api-key": new_key()}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert stub.forwarded == []


@pytest.mark.parametrize(
    "query",
    [
        "api_key=anything",
        "apikey=anything",
        "KEY=anything",
        "token={key}",
        "q=Bearer%20{key}",
        "{key}",
        "limit=5&x=%61tr_{tail}",
    ],
)
async def test_a_key_in_the_query_string_is_refused_and_not_logged(
    in_process: InProcessGateway,
    stub: StubUpstream,
    caplog: pytest.LogCaptureFixture,
    query: str,
) -> None:
    key, _ = seed_key(in_process)
    caplog.set_level(logging.DEBUG)
    target = f"/v1/workspaces/{WORKSPACE}/balances?" + query.format(key=key, tail=key[4:])

    response = await in_process.client.get(target, headers={"x-api-key": key})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "malformed-request"
    assert stub.forwarded == []
    # The test's own HTTP client logs what it sends; the gateway logs none of it.
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name != "httpx")
    assert key[4:] not in logged


async def test_an_ordinary_query_goes_through(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    key, _ = seed_key(in_process)
    response = await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances?limit=5&name=theatr_e", headers={"x-api-key": key}
    )
    assert response.status_code == 200
    assert stub.forwarded[-1].query == "limit=5&name=theatr_e"


async def test_a_key_with_a_rate_limit_is_told_where_it_stands_and_stopped_past_it(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    key, _ = seed_key(in_process, rate_limit=KeyRateLimit(requests=3, period_seconds=60))
    path = f"/v1/workspaces/{WORKSPACE}/balances"

    answers = [await in_process.client.get(path, headers={"x-api-key": key}) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer.headers["ratelimit-limit"] for answer in answers] == ["3"] * 4
    assert [answer.headers["ratelimit-remaining"] for answer in answers] == ["2", "1", "0", "0"]
    assert 0 < int(answers[0].headers["ratelimit-reset"]) <= 20
    assert 50 <= int(answers[3].headers["ratelimit-reset"]) <= 60
    refused_answer = answers[3]
    assert refused_answer.json()["type"] == "rate-limited"
    assert 1 <= int(refused_answer.headers["retry-after"]) <= 20
    assert len(stub.forwarded) == 3
    # Its refusals too carry the headers: a 404 elsewhere is still one of its answers.
    elsewhere = await in_process.client.get(
        f"/v1/workspaces/{uuid.uuid4()}/balances", headers={"x-api-key": key}
    )
    assert elsewhere.headers["ratelimit-limit"] == "3"


async def test_a_person_and_a_key_without_a_limit_get_no_rate_limit_headers(
    in_process: InProcessGateway,
) -> None:
    key, _ = seed_key(in_process)
    path = f"/v1/workspaces/{WORKSPACE}/balances"
    for headers in ({"x-api-key": key}, bearer("ann")):
        response = await in_process.client.get(path, headers=headers)
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_burst": 2, "rate_limit_per_second": 0.001}]
)
async def test_the_per_caller_limit_holds_for_a_key_too(in_process: InProcessGateway) -> None:
    key, _ = seed_key(in_process, rate_limit=KeyRateLimit(requests=100, period_seconds=1))
    path = f"/v1/workspaces/{WORKSPACE}/balances"

    answers = [await in_process.client.get(path, headers={"x-api-key": key}) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]


async def test_each_request_made_with_a_key_is_recorded_as_its_caller_saw_it(
    in_process: InProcessGateway,
) -> None:
    key, record = seed_key(in_process)
    before = time.time()
    await in_process.client.get(f"/v1/workspaces/{WORKSPACE}/balances", headers={"x-api-key": key})
    await in_process.client.post(
        f"/v1/workspaces/{WORKSPACE}/api-keys", headers={"x-api-key": key}, json={}
    )
    await in_process.client.get(f"/v1/workspaces/{uuid.uuid4()}", headers={"x-api-key": key})
    await in_process.client.get("/v1/nowhere", headers={"x-api-key": key})
    await in_process.client.get(f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"))
    mistyped = key[:-1] + ("1" if key.endswith("0") else "0")
    await in_process.client.get(f"/v1/workspaces/{WORKSPACE}", headers={"x-api-key": mistyped})

    recorded = in_process.gateway.usage.pending
    assert [(workspace, r.key_id, r.route, r.status) for workspace, r in recorded] == [
        (WORKSPACE, record.key_id, "GET /v1/workspaces/{workspace_id}/balances", 200),
        (WORKSPACE, record.key_id, "POST /v1/workspaces/{workspace_id}/api-keys", 403),
        (WORKSPACE, record.key_id, "GET /v1/workspaces/{workspace_id}", 404),
        (WORKSPACE, record.key_id, UNMATCHED, 404),
    ]
    assert all(r.latency_ms >= 0 and r.at.timestamp() >= before - 1 for _, r in recorded)
