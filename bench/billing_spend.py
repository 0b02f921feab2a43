"""Spends per second through billing, next to pgbench on the same PostgreSQL.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), twice: with
the sandbox's PostgreSQL as it is (fsync, synchronous_commit and full_page_writes
off), then with the three on, as a durable `LocalPostgres` runs (`ALTER SYSTEM` and a
reload of the same cluster). Each time:

* pgbench: the built-in `simple-update` script (one UPDATE of an account, a SELECT
  and an INSERT into history, in one transaction) on a scale-10 database of its own,
  with as many clients as billing has writers.
* billing, through its handlers: what the spend endpoint runs once the request is
  parsed (`SpendBatches.spend`: the Idempotency-Key reserved, the credits taken, the
  balanced transaction and its lines recorded, `transaction.posted` staged, the
  answer remembered, for a batch of concurrent spends in one call and one
  transaction), from concurrent writers, first spread over 1,000 workspaces, then
  all on one hot workspace.
* billing, one spend per transaction: the same handlers with batches of one (still
  one round trip per spend, no group commit), for comparison.

With fsync off, also:

* billing, through HTTP: the same spends sent in-process to the FastAPI app
  (`httpx.ASGITransport`, signed principal, validation, problem handling), so the
  cost of the HTTP layer shows next to the handlers'.
* billing, as two replicas: two processes (each a billing app with its own event
  loop and connection pool, as two service replicas would be) spending together over
  the 1,000 workspaces through their handlers.

Every spend stages `transaction.posted` in the outbox. The outbox relay (which
publishes those rows to Kafka, itself on this machine) is off for the measurements
above, and on for the last one, so that its cost shows on its own.

Run: `.venv/bin/python -m bench.billing_spend`; `--quick` measures for 3 s instead of 10.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import random
import re
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import httpx
from fastapi import FastAPI

from bench import results
from contracts.envelope import RawEnvelope, new_envelope
from contracts.events.identity import BillingMode, WorkspaceCreated
from contracts.permissions import Role
from infra.local_postgres import LocalPostgres
from infra.sandbox import sandbox
from services.billing.app import create_app
from services.billing.domain import Operation, Terms
from services.billing.settings import BillingSettings
from services.billing.spend_batches import SpendBatches
from services.billing.spending import SpendCredits
from shared.db import plain_url
from shared.idempotency import IdempotentRequest, request_fingerprint
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.service import ServiceRuntime
from shared.settings import Settings

WORKSPACES = 1_000
WRITERS = 16
REPLICAS = 2
REPLICA_START_SECONDS = 8.0
"""Time for the replica processes to start and warm up before they all measure."""
OPENING_CREDITS = 1_000_000_000
PGBENCH_SCALE = 10


@dataclass(frozen=True)
class Rate:
    operations: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds


def prepare_pgbench(postgres: LocalPostgres) -> None:
    """pgbench's scale-10 database, beside billing's."""
    environment = {**os.environ, "PGPASSWORD": postgres.password}
    connection = ["-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.superuser]
    subprocess.run(
        [postgres.bin("createdb"), *connection, "pgbench"],
        env=environment,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [postgres.bin("pgbench"), *connection, "-i", "-q", "-s", str(PGBENCH_SCALE), "pgbench"],
        env=environment,
        check=True,
        capture_output=True,
    )


async def make_durable(settings: Settings, *, durable: bool) -> None:
    """Turn fsync, synchronous_commit and full_page_writes on (or off) in the running
    cluster, as `LocalPostgres(durable=...)` starts it; all three take a reload."""
    value = "on" if durable else "off"
    connection = await asyncpg.connect(plain_url(settings.database_url), ssl=False)
    try:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            await connection.execute(f"ALTER SYSTEM SET {name} = {value}")
        await connection.execute("SELECT pg_reload_conf()")
        await connection.execute("CHECKPOINT")
        await asyncio.sleep(0.5)
        shown = await connection.fetchval("SHOW fsync")
    finally:
        await connection.close()
    if shown != value:
        msg = f"fsync is {shown}, not {value}"
        raise RuntimeError(msg)


def run_pgbench(postgres: LocalPostgres, seconds: int) -> float:
    """pgbench simple-update tps (excluding connection time) on its own database."""
    environment = {**os.environ, "PGPASSWORD": postgres.password}
    connection = ["-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.superuser]
    result = subprocess.run(
        [
            postgres.bin("pgbench"),
            *connection,
            "-b",
            "simple-update",
            "-c",
            str(WRITERS),
            "-j",
            "2",
            "-T",
            str(seconds),
            "pgbench",
        ],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    if match is None:
        msg = f"pgbench printed no tps:\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)
    return float(match.group(1))


async def open_workspaces(runtime: ServiceRuntime, count: int) -> list[uuid.UUID]:
    """Roots opened as identity's `workspace.created` would open them, on a plan with
    plenty of credits."""
    workspace_ids = [uuid.uuid4() for _ in range(count)]

    async def announce(workspace_id: uuid.UUID) -> None:
        envelope = new_envelope(
            WorkspaceCreated(
                id=workspace_id,
                parent_id=None,
                root_id=workspace_id,
                billing_root_id=workspace_id,
                depth=0,
                name="Bench",
                billing_mode=BillingMode.OWN,
                api_access=True,
                strict_quota=True,
            ),
            producer="identity",
            root_id=workspace_id,
            workspace_id=workspace_id,
            actor="system",
            correlation_id=None,
        )
        await runtime.consumer.consume(RawEnvelope.model_validate_json(envelope.model_dump_json()))

    for start in range(0, count, WRITERS):
        await asyncio.gather(*(announce(w) for w in workspace_ids[start : start + WRITERS]))
    return workspace_ids


async def flat_out(spend_once: Callable[[], Awaitable[None]], seconds: float) -> Rate:
    """`WRITERS` concurrent writers spending for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await spend_once()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    return Rate(done, time.perf_counter() - started)


SPEND_BODY = b'{"operation": "image_creation", "quantity": 1}'


def a_creator(workspace_id: uuid.UUID) -> Principal:
    return Principal(user_id="bench", workspace_id=workspace_id, role=Role.CREATOR)


def through_handlers(
    app: FastAPI,
    pick: Callable[[], uuid.UUID],
    caller_in: Callable[[uuid.UUID], Principal] = a_creator,
    spends: SpendBatches | None = None,
) -> Callable[[], Awaitable[None]]:
    """The spend endpoint without HTTP: the same Idempotency-Key scope and fingerprint as
    the endpoint's, handed to `SpendBatches.spend` as the endpoint hands them (to the
    app's batches, or to `spends`)."""
    spends = spends or app.state.spend_batches
    assert spends is not None
    terms: Terms = app.state.terms

    async def spend_once() -> None:
        workspace_id = pick()
        caller = caller_in(workspace_id)
        command = SpendCredits(
            caller=caller,
            workspace_id=workspace_id,
            operation=Operation.IMAGE_CREATION,
            quantity=1,
            reference=None,
            terms=terms,
        )
        response = await spends.spend(
            command,
            IdempotentRequest(
                scope=f"{caller.actor} POST /v1/workspaces/{workspace_id}/spend",
                key=uuid.uuid4().hex,
                fingerprint=request_fingerprint("", SPEND_BODY),
            ),
        )
        if response.status_code != 201:
            msg = f"spend failed: {response.status_code} {bytes(response.body)!r}"
            raise RuntimeError(msg)

    return spend_once


def through_http(
    client: httpx.AsyncClient, secret: str, pick: Callable[[], uuid.UUID]
) -> Callable[[], Awaitable[None]]:
    async def spend_once() -> None:
        workspace_id = pick()
        path = f"/v1/workspaces/{workspace_id}/spend"
        principal = Principal(user_id="bench", workspace_id=workspace_id, role=Role.CREATOR)
        body = b'{"operation":"image_creation","quantity":1}'
        response = await client.post(
            path,
            content=body,
            headers={
                "content-type": "application/json",
                "Idempotency-Key": uuid.uuid4().hex,
                PRINCIPAL_HEADER: sign_principal(
                    principal, method="POST", target=path, body=body, secret=secret
                ),
            },
        )
        if response.status_code != 201:
            msg = f"spend failed: {response.status_code} {response.text}"
            raise RuntimeError(msg)

    return spend_once


def bench_settings(settings: Settings) -> BillingSettings:
    return BillingSettings(
        **settings.model_copy(
            update={
                "default_plan_generative_credits": OPENING_CREDITS,
                "outbox_relay_enabled": False,
                "log_level": "WARNING",
            }
        ).model_dump()
    )


def one_spend_per_transaction(app: FastAPI) -> SpendBatches:
    """The same spends without group commit: batches of one, each its own transaction
    (still one round trip each)."""
    runtime: ServiceRuntime = app.state.runtime
    spends = SpendBatches(
        runtime.database,
        runtime.units_of_work,
        producer="billing",
        wait_seconds=0,
        max_spends=1,
    )
    runtime.on_stop(spends.stop)
    return spends


async def measure_billing(settings: Settings, seconds: float, *, durable: bool) -> dict[str, Rate]:
    app = create_app(bench_settings(settings))
    runtime: ServiceRuntime = app.state.runtime
    rates: dict[str, Rate] = {}
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(runtime.stop)
        workspaces = await open_workspaces(runtime, WORKSPACES)
        hot = workspaces[0]

        def any_workspace() -> uuid.UUID:
            return random.choice(workspaces)

        await flat_out(through_handlers(app, any_workspace), 1)  # warm up
        rates["handlers, 1,000 workspaces"] = await flat_out(
            through_handlers(app, any_workspace), seconds
        )
        rates["handlers, one hot workspace"] = await flat_out(
            through_handlers(app, lambda: hot), seconds
        )
        one_by_one = one_spend_per_transaction(app)
        rates["one per transaction, 1,000 workspaces"] = await flat_out(
            through_handlers(app, any_workspace, spends=one_by_one), seconds
        )
        rates["one per transaction, one hot workspace"] = await flat_out(
            through_handlers(app, lambda: hot, spends=one_by_one), seconds
        )
        if not durable:
            await measure_more(app, settings, workspaces, seconds, rates)
        await check_books(settings, workspaces, sum(rate.operations for rate in rates.values()))
    return rates


async def measure_more(
    app: FastAPI,
    settings: Settings,
    workspaces: list[uuid.UUID],
    seconds: float,
    rates: dict[str, Rate],
) -> None:
    """Through HTTP, as two replicas, and with the outbox relay on."""
    hot = workspaces[0]

    def any_workspace() -> uuid.UUID:
        return random.choice(workspaces)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://billing"
    ) as client:
        secret = settings.internal_secret
        rates["HTTP in-process, 1,000 workspaces"] = await flat_out(
            through_http(client, secret, any_workspace), seconds
        )
        rates["HTTP in-process, one hot workspace"] = await flat_out(
            through_http(client, secret, lambda: hot), seconds
        )
    with concurrent.futures.ProcessPoolExecutor(
        REPLICAS, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        start_at = time.time() + REPLICA_START_SECONDS
        counts = await asyncio.gather(
            *(
                asyncio.wrap_future(
                    pool.submit(
                        spend_in_replica, settings.model_dump(), workspaces, start_at, seconds
                    )
                )
                for _ in range(REPLICAS)
            )
        )
        rates[f"handlers, 1,000 workspaces, {REPLICAS} processes"] = Rate(sum(counts), seconds)
    runtime: ServiceRuntime = app.state.runtime
    await runtime.relay.start()
    rates["handlers, 1,000 workspaces, relay on"] = await flat_out(
        through_handlers(app, any_workspace), seconds
    )


def spend_in_replica(
    settings: dict[str, object], workspaces: list[uuid.UUID], start_at: float, seconds: float
) -> int:
    """One billing replica in its own process: how many spends it made in the `seconds`
    from `start_at` (wall clock, the same for every replica)."""

    async def run() -> int:
        app = create_app(bench_settings(Settings.model_validate(settings)))
        try:
            spend_once = through_handlers(app, lambda: random.choice(workspaces))
            await flat_out(spend_once, 0.5)  # warm up
            await asyncio.sleep(max(0.0, start_at - time.time()))
            return (await flat_out(spend_once, seconds)).operations
        finally:
            await app.state.runtime.stop()

    return asyncio.run(run())


async def check_books(settings: Settings, workspaces: list[uuid.UUID], measured: int) -> None:
    """After the run, every balance still equals the sum of its ledger lines."""
    connection = await asyncpg.connect(plain_url(settings.database_url), ssl=False)
    try:
        drift = await connection.fetchval(
            "SELECT count(*) FROM billing.balances AS b WHERE b.workspace_id = ANY($1::uuid[])"
            " AND b.balance <> (SELECT coalesce(sum(amount), 0) FROM billing.ledger_lines AS l"
            " WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool)",
            workspaces,
        )
        spends = await connection.fetchval(
            "SELECT count(*) FROM billing.transactions WHERE kind = 'spend'"
        )
    finally:
        await connection.close()
    if drift or spends < measured:
        msg = f"books do not add up: {drift} balances drifted, {spends} spends < {measured}"
        raise RuntimeError(msg)


def report(label: str, pgbench_tps: float, rates: dict[str, Rate]) -> None:
    print()
    print(f"PostgreSQL with {label}")
    print(f"{'path':<56}{'ops':>10}{'ops/s':>10}{'/pgbench':>10}")
    print(f"{'pgbench simple-update':<56}{'':>10}{pgbench_tps:>10.0f}{1:>10.2f}")
    for name, rate in rates.items():
        print(
            f"{'billing spend, ' + name:<56}{rate.operations:>10}{rate.per_second:>10.0f}"
            f"{rate.per_second / pgbench_tps:>10.2f}"
        )


def figures_of(pgbench_tps: float, rates: dict[str, Rate]) -> dict[str, object]:
    return {
        "pgbench simple-update tps": round(pgbench_tps),
        **{
            f"billing spend, {name}": {
                "spends/s": round(rate.per_second),
                "/pgbench": round(rate.per_second / pgbench_tps, 3),
            }
            for name, rate in rates.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    arguments = parser.parse_args()
    seconds = 3 if arguments.quick else 10
    logging.basicConfig(level=logging.WARNING)
    figures: dict[str, object] = {
        "writers": WRITERS,
        "workspaces": WORKSPACES,
        "seconds per measurement": seconds,
        "cpus": os.cpu_count(),
    }
    with sandbox("atrium-bench") as running:
        prepare_pgbench(running.postgres)
        for label, durable in (("fsync off", False), ("fsync on", True)):
            asyncio.run(make_durable(running.settings, durable=durable))
            pgbench_tps = run_pgbench(running.postgres, seconds)
            rates = asyncio.run(measure_billing(running.settings, seconds, durable=durable))
            report(label, pgbench_tps, rates)
            figures[label] = figures_of(pgbench_tps, rates)
    print()
    print(
        f"{WRITERS} concurrent writers (pgbench: {WRITERS} clients, 2 threads), "
        f"{seconds:.0f} s each, per process; machine: {os.cpu_count()} CPUs shared by "
        "PostgreSQL, Kafka and billing"
    )
    results.save("billing_spend", figures, quick=arguments.quick)


if __name__ == "__main__":
    main()
