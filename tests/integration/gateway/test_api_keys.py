"""API keys through real gateway processes, on the test session's PostgreSQL and Kafka.

Two gateway processes run on the same database, in one consumer group: each of
apikeys' events (published here as apikeys would) is applied by one of them only, and
the other learns of it from the table's notification. Both must refuse a revoked,
suspended or rotated-out key within a second of the event's publication; within
milliseconds of a change committed to the table. A small server stands for the
services behind them, apikeys' key lookup included.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.envelope import RawEnvelope
from contracts.events.apikeys import (
    ApiKeyCreated,
    ApiKeyRestored,
    ApiKeyRevoked,
    ApiKeySuspended,
    KeyRateLimit,
    RevocationReason,
)
from contracts.events.gateway import ApiRequestsRecorded
from contracts.topics import Topic
from infra.processes import free_port
from infra.sandbox import Sandbox
from services.gateway.repository import KeyRepository
from shared.api_keys import display_prefix, key_hash, last4, new_key
from shared.principal import PRINCIPAL_HEADER, verify_principal
from shared.settings import ServiceName, Settings, get_settings
from shared.testing import ServiceProcess, eventually, producer_as

from .conftest import Publisher

pytestmark = pytest.mark.integration

TRIALS = 50
BALANCES = "GET /v1/workspaces/{workspace_id}/balances"


@dataclass
class Backstage:
    """Every service behind the gateways: ready, with an empty API document; apikeys'
    key lookup answers from `keys` (by hash); anything else is 200."""

    settings: Settings
    port: int = field(default_factory=free_port)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/readyz":
            return web.json_response({"status": "ready"})
        if request.path == "/openapi.json":
            return web.json_response({"openapi": "3.1.0", "info": {}, "paths": {}})
        principal = verify_principal(
            request.headers.get(PRINCIPAL_HEADER, ""),
            method=request.method,
            target=request.raw_path,
            body=await request.read(),
            secret=self.settings.internal_secret,
        ).principal
        if request.path.startswith("/internal/v1/api-keys/"):
            hashed = request.path.rsplit("/", 1)[-1]
            self.lookups.append(hashed)
            answer = self.keys.get(hashed)
            return web.json_response(answer or {}, status=200 if answer else 404)
        if request.path.startswith("/internal/"):
            return web.json_response({}, status=404)
        return web.json_response({"principal": principal.to_json()})


class Apikeys(Publisher):
    service = ServiceName.APIKEYS


@dataclass
class Key:
    secret: str
    key_id: uuid.UUID
    workspace_id: uuid.UUID
    root_id: uuid.UUID

    @property
    def hash(self) -> str:
        """As apikeys stores it: under the sandbox's pepper, which the session has."""
        return key_hash(self.secret, get_settings().apikey_pepper)

    @property
    def path(self) -> str:
        return f"/v1/workspaces/{self.workspace_id}/balances"

    def created(self, **changes: Any) -> ApiKeyCreated:
        fields: dict[str, Any] = {
            "key_id": self.key_id,
            "workspace_id": self.workspace_id,
            "root_id": self.root_id,
            "hash": self.hash,
            "prefix": display_prefix(self.secret),
            "last4": last4(self.secret),
            "name": "ci",
            "expires_at": None,
            "rate_limit": None,
            "monthly_credit_limit": None,
            "suspended": False,
            "rotated_from": None,
            **changes,
        }
        return ApiKeyCreated(**fields)

    def revoked(self, *, at: datetime, reason: RevocationReason) -> ApiKeyRevoked:
        return ApiKeyRevoked(
            key_id=self.key_id,
            workspace_id=self.workspace_id,
            root_id=self.root_id,
            effective_at=at,
            reason=reason,
        )

    def suspended(self) -> ApiKeySuspended:
        return ApiKeySuspended(
            key_id=self.key_id, workspace_id=self.workspace_id, root_id=self.root_id
        )

    def restored(self) -> ApiKeyRestored:
        return ApiKeyRestored(
            key_id=self.key_id, workspace_id=self.workspace_id, root_id=self.root_id
        )


def a_key(root_id: uuid.UUID | None = None) -> Key:
    """A key of an account's root workspace."""
    root = root_id or uuid.uuid4()
    return Key(new_key(), uuid.uuid4(), root, root)


@dataclass
class Gateways:
    processes: list[ServiceProcess]
    client: httpx.AsyncClient
    backstage: Backstage
    apikeys: Apikeys
    environment: dict[str, str]
    log_dir: Path

    async def statuses(self, key: Key, path: str | None = None) -> list[int]:
        answers = await asyncio.gather(
            *(
                self.client.get(process.url + (path or key.path), headers={"x-api-key": key.secret})
                for process in self.processes
            )
        )
        return [answer.status_code for answer in answers]

    async def until_on(
        self, process: ServiceProcess, key: Key, status: int, path: str | None = None
    ) -> None:
        async def probe() -> bool | None:
            answer = await self.client.get(
                process.url + (path or key.path), headers={"x-api-key": key.secret}
            )
            return True if answer.status_code == status else None

        await eventually(probe, timeout=30, what=f"{status} from {process.url}")

    async def applied_up_to_here(self, root_id: uuid.UUID) -> None:
        """Every gateway has applied the account's events published so far: a key created
        after them (on the same partition, so applied after them) works everywhere."""
        witness = a_key(root_id)
        await self.apikeys.publish(witness.created(), root_id=root_id)
        await self.until_everywhere(witness, 200)

    async def until_everywhere(self, key: Key, status: int, timeout: float = 30) -> None:
        async def probe() -> bool | None:
            return True if set(await self.statuses(key)) == {status} else None

        await eventually(probe, timeout=timeout, what=f"{status} from every gateway")

    async def seconds_until_refused_everywhere(self, key: Key) -> float:
        """From now until every gateway has answered 401 (each is asked until it does)."""
        started = time.perf_counter()
        waiting = list(self.processes)
        while waiting:
            answers = await asyncio.gather(
                *(
                    self.client.get(process.url + key.path, headers={"x-api-key": key.secret})
                    for process in waiting
                )
            )
            waiting = [
                process
                for process, answer in zip(waiting, answers, strict=True)
                if answer.status_code != 401
            ]
            if time.perf_counter() - started > 10:
                msg = "a revoked key still works after 10 s"
                raise AssertionError(msg)
        return time.perf_counter() - started


@contextlib.asynccontextmanager
async def serving(backstage: Backstage) -> AsyncIterator[None]:
    runner = web.ServerRunner(web.Server(backstage.handle))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", backstage.port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def gateway_process(environment: dict[str, str], log_dir: Path) -> ServiceProcess:
    return ServiceProcess(
        ServiceName.GATEWAY, port=free_port(), environment=environment, log_dir=log_dir
    )


@pytest.fixture(scope="module")
async def gateways(atrium: Sandbox, settings: Settings, log_dir: Path) -> AsyncIterator[Gateways]:
    backstage = Backstage(settings)
    environment = {
        **atrium.environment,
        **{
            f"ATRIUM_{service.value.upper()}_URL": backstage.url
            for service in (
                ServiceName.IDENTITY,
                ServiceName.BILLING,
                ServiceName.APIKEYS,
                ServiceName.ASSETS,
            )
        },
        # The tests poll as fast as they can, from one address.
        "ATRIUM_RATE_LIMIT_PER_SECOND": "100000",
        "ATRIUM_RATE_LIMIT_BURST": "100000",
        "ATRIUM_ADDRESS_REFUSALS_PER_SECOND": "100000",
        "ATRIUM_ADDRESS_REFUSALS_BURST": "100000",
    }
    processes: list[ServiceProcess] = []
    async with (
        serving(backstage),
        producer_as(ServiceName.APIKEYS, settings) as producer,
        httpx.AsyncClient(timeout=10) as client,
    ):
        try:
            for _ in range(2):
                process = gateway_process(environment, log_dir)
                # Started off the event loop: the backstage answers its readiness checks.
                processes.append(await asyncio.to_thread(process.start))
            yield Gateways(processes, client, backstage, Apikeys(producer), environment, log_dir)
        finally:
            for process in processes:
                await asyncio.to_thread(process.stop)


@contextlib.contextmanager
def unchanged_lookups(backstage: Backstage) -> Iterator[list[str]]:
    before = len(backstage.lookups)
    made: list[str] = []
    yield made
    made.extend(backstage.lookups[before:])


async def test_a_key_works_on_every_gateway_once_its_creation_is_applied(
    gateways: Gateways,
) -> None:
    key = a_key()
    assert set(await gateways.statuses(key)) == {401}

    await gateways.apikeys.publish(key.created(), root_id=key.root_id)

    await gateways.until_everywhere(key, 200)
    with unchanged_lookups(gateways.backstage) as lookups:
        assert set(await gateways.statuses(key)) == {200}
    assert lookups == [], "a key of the projection is verified without asking apikeys"
    assert set(await gateways.statuses(key, f"/v1/workspaces/{uuid.uuid4()}/balances")) == {404}


async def test_a_key_apikeys_vouches_for_works_before_its_event_arrives(
    gateways: Gateways,
) -> None:
    key = a_key()
    hashed = key.hash
    gateways.backstage.keys[hashed] = {
        "key_id": str(key.key_id),
        "workspace_id": str(key.workspace_id),
        "root_id": str(key.root_id),
        "suspended": False,
        "revoked_at": None,
        "expires_at": None,
        "rate_limit": None,
    }

    assert set(await gateways.statuses(key)) == {200}
    assert set(await gateways.statuses(key)) == {200}
    assert gateways.backstage.lookups.count(hashed) == len(gateways.processes)


async def test_revoked_suspended_and_rotated_out_keys_are_refused_everywhere_within_a_second(
    gateways: Gateways,
) -> None:
    durations: dict[str, list[float]] = {"revoked": [], "suspended": [], "rotated": []}
    for trial in range(TRIALS):
        key = a_key()
        await gateways.apikeys.publish(key.created(), root_id=key.root_id)
        await gateways.until_everywhere(key, 200)

        kind = list(durations)[trial % 3]
        started = time.perf_counter()
        if kind == "suspended":
            await gateways.apikeys.publish(key.suspended(), root_id=key.root_id)
        elif kind == "revoked":
            revoked = key.revoked(at=datetime.now(UTC), reason=RevocationReason.REVOKED)
            await gateways.apikeys.publish(revoked, root_id=key.root_id)
        else:
            successor = Key(new_key(), uuid.uuid4(), key.workspace_id, key.root_id)
            await gateways.apikeys.publish(
                successor.created(rotated_from=key.key_id), root_id=key.root_id
            )
            rotated = key.revoked(at=datetime.now(UTC), reason=RevocationReason.ROTATED)
            await gateways.apikeys.publish(rotated, root_id=key.root_id)
        await gateways.seconds_until_refused_everywhere(key)
        durations[kind].append(time.perf_counter() - started)
        if kind == "rotated":
            assert set(await gateways.statuses(successor)) == {200}

    every = [duration for kind in durations.values() for duration in kind]
    cuts = statistics.quantiles(every, n=100, method="inclusive")
    p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    print(  # noqa: T201 - the measurement is what this test reports
        f"\npublication to refusal on both gateways over {len(every)} trials: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(every) * 1000:.1f} ms"
    )
    assert p99 < 1000


async def test_a_change_written_by_neither_gateway_reaches_both_within_milliseconds(
    gateways: Gateways, admin_engine: AsyncEngine
) -> None:
    """The NOTIFY path alone: the change is committed to the table as a consumer commits
    it, but by this test, so that no gateway process applies it itself."""
    durations: list[float] = []
    for trial in range(TRIALS):
        key = a_key()
        await gateways.apikeys.publish(key.created(), root_id=key.root_id)
        await gateways.until_everywhere(key, 200)

        async with AsyncSession(admin_engine) as session, session.begin():
            repository = KeyRepository(session)
            ids = (key.key_id, key.workspace_id, key.root_id)
            if trial % 2:
                await repository.key_suspended(*ids, suspended=True)
            else:
                await repository.key_revoked(*ids, at=datetime.now(UTC))
        durations.append(await gateways.seconds_until_refused_everywhere(key))

    # What one round of asking both gateways takes on this machine, for scale.
    rounds = []
    for _ in range(TRIALS):
        started = time.perf_counter()
        await gateways.statuses(key)
        rounds.append(time.perf_counter() - started)

    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    print(  # noqa: T201 - the measurement is what this test reports
        f"\ncommit to refusal on both gateways over {TRIALS} trials: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(durations) * 1000:.1f} ms; one round of requests to "
        f"both: p50 {statistics.median(rounds) * 1000:.1f} ms"
    )
    assert p99 < 1000


async def test_a_suspended_key_works_again_once_restored(gateways: Gateways) -> None:
    key = a_key()
    await gateways.apikeys.publish(key.created(suspended=True), root_id=key.root_id)
    await gateways.applied_up_to_here(key.root_id)
    assert set(await gateways.statuses(key)) == {401}

    await gateways.apikeys.publish(key.restored(), root_id=key.root_id)

    await gateways.until_everywhere(key, 200)


async def test_a_key_is_refused_from_its_expiry_on(gateways: Gateways) -> None:
    key = a_key()
    expires_at = datetime.now(UTC) + timedelta(seconds=3)
    await gateways.apikeys.publish(key.created(expires_at=expires_at), root_id=key.root_id)
    await gateways.until_everywhere(key, 200, timeout=2.5)

    await gateways.until_everywhere(key, 401, timeout=5)

    assert datetime.now(UTC) - expires_at < timedelta(seconds=1)


async def test_a_rotated_key_works_until_its_grace_ends(gateways: Gateways) -> None:
    key = a_key()
    await gateways.apikeys.publish(key.created(), root_id=key.root_id)
    await gateways.until_everywhere(key, 200)
    grace_ends = datetime.now(UTC) + timedelta(seconds=2)

    await gateways.apikeys.publish(
        key.revoked(at=grace_ends, reason=RevocationReason.ROTATED), root_id=key.root_id
    )
    await asyncio.sleep(1)
    assert set(await gateways.statuses(key)) == {200}

    await gateways.until_everywhere(key, 401, timeout=5)
    assert datetime.now(UTC) - grace_ends < timedelta(seconds=1)


async def test_a_revocation_that_overtakes_the_creation_still_holds(gateways: Gateways) -> None:
    key = a_key()
    revoked = key.revoked(at=datetime.now(UTC), reason=RevocationReason.REVOKED)
    await gateways.apikeys.publish(revoked, root_id=key.root_id)
    await gateways.apikeys.publish(key.created(), root_id=key.root_id)

    await gateways.applied_up_to_here(key.root_id)
    assert set(await gateways.statuses(key)) == {401}


async def test_a_gateway_that_starts_later_loads_every_key_from_the_table(
    gateways: Gateways,
) -> None:
    working, revoked = a_key(), a_key()
    await gateways.apikeys.publish(working.created(), root_id=working.root_id)
    await gateways.apikeys.publish(revoked.created(), root_id=revoked.root_id)
    await gateways.apikeys.publish(
        revoked.revoked(at=datetime.now(UTC), reason=RevocationReason.REVOKED),
        root_id=revoked.root_id,
    )
    await gateways.until_everywhere(working, 200)
    await gateways.until_everywhere(revoked, 401)

    late = await asyncio.to_thread(gateway_process(gateways.environment, gateways.log_dir).start)
    try:
        with unchanged_lookups(gateways.backstage) as lookups:
            answers = [
                (await gateways.client.get(late.url + key.path, headers={"x-api-key": key.secret}))
                for key in (working, revoked)
            ]
        assert [answer.status_code for answer in answers] == [200, 401]
        assert working.hash not in lookups
    finally:
        await asyncio.to_thread(late.stop)


async def test_a_keys_own_rate_limit_holds_with_its_headers(gateways: Gateways) -> None:
    key = a_key()
    limit = KeyRateLimit(requests=2, period_seconds=3600)
    await gateways.apikeys.publish(key.created(rate_limit=limit), root_id=key.root_id)
    process = gateways.processes[0]
    await gateways.until_on(process, key, 200)  # the first of its two requests

    answers = [
        await gateways.client.get(process.url + key.path, headers={"x-api-key": key.secret})
        for _ in range(2)
    ]

    assert [answer.status_code for answer in answers] == [200, 429]
    assert [answer.headers["ratelimit-remaining"] for answer in answers] == ["0", "0"]
    assert answers[1].headers["ratelimit-limit"] == "2"
    assert int(answers[1].headers["retry-after"]) > 0


async def test_requests_made_with_a_key_are_published_as_usage(
    gateways: Gateways, settings: Settings
) -> None:
    key = a_key()
    await gateways.apikeys.publish(key.created(), root_id=key.root_id)
    # Until the key works, on a route the counts below leave out.
    for process in gateways.processes:
        await gateways.until_on(process, key, 200, f"/v1/workspaces/{key.workspace_id}")
    first, second = gateways.processes
    headers = {"x-api-key": key.secret}
    for _ in range(3):
        assert (await gateways.client.get(first.url + key.path, headers=headers)).is_success
    elsewhere = f"/v1/workspaces/{uuid.uuid4()}/balances"
    assert (await gateways.client.get(second.url + elsewhere, headers=headers)).status_code == 404
    assert (await gateways.client.get(second.url + "/v1/nowhere", headers=headers)).status_code == (
        404
    )

    for _ in range(2):
        assert (await gateways.client.get(second.url + key.path, headers=headers)).is_success

    expected = Counter({(BALANCES, 200): 5, (BALANCES, 404): 1, ("unmatched", 404): 1})
    events = await usage_events(settings, key, expected)

    recorded = [request for event in events for request in event.requests]
    counted = Counter((request.route, request.status) for request in recorded)
    assert counted - Counter({("GET /v1/workspaces/{workspace_id}", 200): 2}) == expected
    assert {(event.workspace_id, event.root_id) for event in events} == {
        (key.workspace_id, key.root_id)
    }
    assert len(events) >= 2, "each gateway publishes its own batches"


async def usage_events(
    settings: Settings, key: Key, expected: Counter[tuple[str, int]], *, timeout: float = 15
) -> list[ApiRequestsRecorded]:
    """The usage events with `key`'s requests on `atrium.gateway.usage`, read as apikeys
    would (without a consumer group), once they hold the `expected` requests."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_for(ServiceName.APIKEYS).client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topic = Topic.GATEWAY_USAGE.value
        consumer.assign([TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)])
        await consumer.seek_to_beginning()
        events: dict[uuid.UUID, ApiRequestsRecorded] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    envelope = RawEnvelope.model_validate_json(record.value or b"")
                    event = ApiRequestsRecorded.model_validate(envelope.data)
                    if any(request.key_id == key.key_id for request in event.requests):
                        events[envelope.event_id] = event
            seen = Counter(
                (request.route, request.status)
                for event in events.values()
                for request in event.requests
                if request.key_id == key.key_id
            )
            if all(seen[route] >= count for route, count in expected.items()):
                return list(events.values())
        msg = f"the usage of {expected} was not published in {timeout}s"
        raise AssertionError(msg)
    finally:
        await consumer.stop()
