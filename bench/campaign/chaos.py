"""The campaign's chaos: at seeded moments one process of the system is killed (SIGKILL,
no chance to finish anything) and started again, and the time until the gateway
serves a read and a write again is measured.

What can be killed: each service (the gateway's one process of its two, or all of
them), Kafka and PostgreSQL. A service is started again as its supervisor would
(`ServiceProcess.start_again`); Kafka and PostgreSQL on their data (`LocalKafka.kill`,
`LocalPostgres.kill`: PostgreSQL's postmaster and then its children gone, its lock
files of a dead postmaster removed).

Time to recover runs from the restart (the moment the killed process is started
again) until one pass of the probe succeeds: a sub-workspace created (identity), its
balances, library and keys read (billing, assets and apikeys, each of which knows it
only from identity's event through Kafka) and a credit spent (billing).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

import httpx

from bench.campaign.acks import Write
from bench.campaign.workload import Acknowledgements
from bench.system import Person
from infra.local_kafka import LocalKafka
from infra.local_postgres import LocalPostgres
from shared.settings import ServiceName
from shared.testing import ServiceProcess, eventually

PROBE_TIMEOUT_SECONDS = 5.0
GIVE_UP_SECONDS = 180.0
"""A system that has not served the probe this long after a restart has not recovered."""


class Target(StrEnum):
    IDENTITY = "identity"
    BILLING = "billing"
    ASSETS = "assets"
    APIKEYS = "apikeys"
    GATEWAY = "gateway"
    KAFKA = "kafka"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class Injection:
    target: Target
    at: float
    """Seconds since the chaos began."""
    detail: str
    restart_seconds: float | None
    """From the restart until the process was ready again; None when it never was."""
    recovery_seconds: float | None
    """From the restart until the probe succeeded; None when it never did."""
    overlapped: bool
    """Another injection was under way when this one began."""


class Probe:
    """A read and a write through the gateway, on an account of its own."""

    def __init__(self, gateway: httpx.AsyncClient, owner: Person, acks: Acknowledgements) -> None:
        self.gateway = gateway
        self.owner = owner
        self.acks = acks
        self.root_id = ""

    async def open(self) -> None:
        """The probe's account, asked for with one `Idempotency-Key` until it is made."""
        key = str(uuid.uuid4())
        created = await eventually(
            lambda: self._post("/v1/workspaces", {"name": "Probe"}, key),
            timeout=GIVE_UP_SECONDS,
            what="the probe's account",
        )
        self.root_id = str(created["id"])
        self.acks.record(Write.ROOT_CREATED, self.root_id, self.root_id, self.root_id)

    async def until_served(self, *, within: float = GIVE_UP_SECONDS) -> None:
        """Returns once one pass of the probe succeeded; each write keeps its
        `Idempotency-Key` from one pass to the next, as a client retrying it would."""
        creation_key, spend_key = str(uuid.uuid4()), str(uuid.uuid4())
        recorded: set[Write] = set()

        async def one_pass() -> bool | None:
            sub = await self._post(
                f"/v1/workspaces/{self.root_id}/sub-workspaces",
                {"name": "Probe", "billing_mode": "parent", "api_access": True},
                creation_key,
            )
            if sub is None:
                return None
            self._record_once(
                recorded,
                Write.SUB_WORKSPACE_CREATED,
                str(sub["id"]),
                parent_id=self.root_id,
                billing_mode="parent",
            )
            for read in ("balances", "assets", "api-keys"):
                if await self._get(f"/v1/workspaces/{sub['id']}/{read}") is None:
                    return None
            spent = await self._post(
                f"/v1/workspaces/{self.root_id}/spend",
                {"operation": "image_creation", "quantity": 1},
                spend_key,
            )
            if spent is None:
                return None
            self._record_once(
                recorded,
                Write.SPEND,
                str(spent["transaction_id"]),
                pool=spent["pool"],
                amount=spent["amount"],
                idempotency_key=spend_key,
            )
            return True

        await eventually(one_pass, timeout=within, what="the gateway to serve a read and a write")

    def _record_once(self, recorded: set[Write], write: Write, id: str, **detail: object) -> None:  # noqa: A002
        if write not in recorded:
            recorded.add(write)
            workspace_id = id if write is Write.SUB_WORKSPACE_CREATED else self.root_id
            self.acks.record(write, self.root_id, workspace_id, id, **detail)

    async def _post(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any] | None:
        return await self._answer(
            "POST", path, body, {**self.owner.headers, "idempotency-key": key}
        )

    async def _get(self, path: str) -> dict[str, Any] | None:
        return await self._answer("GET", path, None, self.owner.headers)

    async def _answer(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> dict[str, Any] | None:
        try:
            response = await self.gateway.request(
                method, path, json=body, headers=headers, timeout=PROBE_TIMEOUT_SECONDS
            )
        except httpx.TransportError:
            return None
        if not response.is_success:
            return None
        answer: dict[str, Any] = response.json()
        return answer


@dataclass
class Chaos:
    """Kills and restarts, one at a time, each followed by the probe."""

    services: Mapping[ServiceName, ServiceProcess]
    postgres: LocalPostgres
    kafka: LocalKafka
    probe: Probe
    rng: random.Random
    injections: list[Injection] = field(default_factory=list)
    _began: float = field(default_factory=time.monotonic)
    _under_way: int = 0

    def targets(self, count: int) -> list[Target]:
        """`count` targets in a seeded order: every target once in each round of
        len(Target), so that a short run still reaches each one."""
        chosen: list[Target] = []
        while len(chosen) < count:
            round_ = list(Target)
            self.rng.shuffle(round_)
            chosen.extend(round_)
        return chosen[:count]

    async def run(self, count: int, seconds: float, *, at_once: int = 1) -> None:
        """`count` injections at seeded moments spread over `seconds`, at most `at_once`
        of them under way together (an injection lasts until the probe succeeds), never
        two of the same target; one whose moment comes while all are busy waits."""
        self._began = time.monotonic()
        moments = sorted(self.rng.uniform(0, seconds) for _ in range(count))
        slots = asyncio.Semaphore(at_once)
        one_per_target = {target: asyncio.Lock() for target in Target}
        under_way: list[asyncio.Task[Injection]] = []
        for moment, target in zip(moments, self.targets(count), strict=True):
            await asyncio.sleep(max(0.0, moment - (time.monotonic() - self._began)))
            await slots.acquire()
            await one_per_target[target].acquire()
            injection = asyncio.create_task(self.inject(target))
            injection.add_done_callback(partial(_release, slots, one_per_target[target]))
            under_way.append(injection)
        await asyncio.gather(*under_way)

    async def inject(self, target: Target) -> Injection:
        at = time.monotonic() - self._began
        overlapping = self._under_way
        self._under_way += 1
        try:
            detail = await asyncio.to_thread(self._kill, target)
            restarted = time.monotonic()
            ready: float | None
            try:
                await asyncio.to_thread(self._start, target)
                ready = time.monotonic() - restarted
            except (RuntimeError, TimeoutError) as not_ready:
                ready = None
                detail += f"; not ready again: {str(not_ready).splitlines()[0]}"
            recovery: float | None
            try:
                await self.probe.until_served()
                recovery = time.monotonic() - restarted
            except AssertionError:
                recovery = None
        finally:
            self._under_way -= 1
        injection = Injection(target, at, detail, ready, recovery, overlapping > 0)
        self.injections.append(injection)
        print(
            f"{at:7.1f} s  {target.value} killed ({detail}), ready again {_after(ready)}, "
            f"served again {_after(recovery)}",
            flush=True,
        )
        return injection

    def _kill(self, target: Target) -> str:
        """Kill `target`; says what exactly was killed."""
        if target is Target.POSTGRES:
            self.postgres.kill()
            return "postmaster"
        if target is Target.KAFKA:
            self.kafka.kill()
            return "broker"
        service = self.services[ServiceName(target.value)]
        pids = service.pids
        if len(pids) > 1 and self.rng.random() < 0.5:
            pid = self.rng.choice(pids)
            service.kill(pid)
            return f"1 of {len(pids)} processes"
        service.kill()
        return f"all {len(pids)} processes"

    def _start(self, target: Target) -> None:
        if target is Target.POSTGRES:
            self.postgres.start()
        elif target is Target.KAFKA:
            self.kafka.start()
        else:
            self._supervise(self.services[ServiceName(target.value)])

    @staticmethod
    def _supervise(service: ServiceProcess) -> None:
        """Start the service's dead processes again, and again if they die while starting
        (PostgreSQL or Kafka may be down just then), as a supervisor would."""
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:
            try:
                service.start_again()
            except (RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
            else:
                return

    def ensure_running(self) -> None:
        """PostgreSQL, Kafka and every service process running again, whatever the
        chaos was doing when it stopped."""
        self.postgres.start()
        self.kafka.start()
        for service in self.services.values():
            if any(code is not None for code in service.returncodes()):
                self._supervise(service)


def _after(seconds: float | None) -> str:
    return "never" if seconds is None else f"after {seconds:.1f} s"


def _release(slots: asyncio.Semaphore, target: asyncio.Lock, _: asyncio.Task[Injection]) -> None:
    target.release()
    slots.release()
