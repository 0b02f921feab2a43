"""How soon apikeys counts a request the gateway recorded, next to Kafka alone; and
how long making a key takes, next to the same process's health check.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka) with apikeys
as a real process:

* usage, one batch at a time: a batch of one recorded request is published on
  `atrium.gateway.usage` as the gateway's principal; the time is taken from the send
  until the key's counter for the day, in apikeys' own table, shows it (read every
  millisecond or so). The next batch goes once the previous one is counted.
* baseline: the same batches, sent the same way, read back by a bare aiokafka
  consumer (assigned the topic's partitions, no group): what Kafka alone costs.
* creating a key: `POST …/api-keys` over HTTP with a signed principal (the HMAC,
  the row, the event staged in the outbox, one transaction), one at a time; baseline:
  `GET /healthz` of the same process over the same client.

Run: `.venv/bin/python -m bench.apikeys_usage`; `--quick` takes 50 samples instead of 300.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.envelope import new_envelope
from contracts.events.gateway import ApiRequestsRecorded, RecordedRequest
from contracts.permissions import Role
from contracts.topics import Topic
from infra.processes import free_port
from infra.sandbox import Sandbox, sandbox
from shared.db import asyncpg_url
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, SignedAs, eventually, root_created

WARM_UP = 3
"""Batches counted before measuring: apikeys' consumer has joined its group by then."""


def summary(name: str, durations_ns: list[int]) -> tuple[str, int, float, float, float]:
    cuts = statistics.quantiles(durations_ns, n=100, method="inclusive")
    return (name, len(durations_ns), cuts[49] / 1e6, cuts[98] / 1e6, max(durations_ns) / 1e6)


def usage_batch(workspace_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    payload = ApiRequestsRecorded(
        workspace_id=workspace_id,
        root_id=workspace_id,
        requests=(
            RecordedRequest(
                key_id=key_id,
                route="GET /v1/workspaces/{workspace_id}/balances",
                status=200,
                latency_ms=1.0,
                at=datetime.now(UTC),
            ),
        ),
    )
    envelope = new_envelope(
        payload,
        producer="gateway",
        root_id=workspace_id,
        workspace_id=workspace_id,
        actor=f"apikey:{key_id}",
        correlation_id=None,
    )
    return envelope.model_dump_json().encode()


async def one_at_a_time(
    samples: int, send: Callable[[int], Awaitable[None]], arrived: Callable[[int], Awaitable[bool]]
) -> list[int]:
    durations = []
    for number in range(1, samples + 1):
        started = time.perf_counter_ns()
        await send(number)
        # Polled: apikeys tells no one when it has counted a request.
        while not await arrived(number):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        durations.append(time.perf_counter_ns() - started)
    return durations


async def open_workspace(settings: Settings) -> uuid.UUID:
    """identity's announcement of a new account."""
    workspace = root_created()
    producer = AIOKafkaProducer(
        **settings.kafka_for(ServiceName.IDENTITY).client_options(), acks="all"
    )
    await producer.start()
    try:
        envelope = new_envelope(
            workspace,
            producer="identity",
            root_id=workspace.id,
            workspace_id=workspace.id,
            actor="system",
            correlation_id=None,
        )
        await producer.send_and_wait(
            Topic.IDENTITY_WORKSPACE.value,
            envelope.model_dump_json().encode(),
            key=str(workspace.id).encode(),
        )
    finally:
        await producer.stop()
    return workspace.id


async def usage_latencies(
    settings: Settings, workspace_id: uuid.UUID, key_id: uuid.UUID, samples: int
) -> tuple[list[int], list[int]]:
    """Recorded → counted by apikeys, and produced → consumed by a bare consumer."""
    topic = Topic.GATEWAY_USAGE.value
    producer = AIOKafkaProducer(
        **settings.kafka_for(ServiceName.GATEWAY).client_options(),
        acks="all",
        enable_idempotence=True,
    )
    engine = create_async_engine(asyncpg_url(settings.database_url))
    consumer = AIOKafkaConsumer(**settings.kafka_admin().client_options(), enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:

        async def send(_: int) -> None:
            await producer.send_and_wait(
                topic, usage_batch(workspace_id, key_id), key=str(workspace_id).encode()
            )

        async def counted(number: int) -> bool:
            async with engine.connect() as connection:
                requests = await connection.scalar(
                    text(
                        "SELECT coalesce(sum(requests), 0) FROM apikeys.key_usage_days"
                        " WHERE key_id = :key"
                    ),
                    {"key": key_id},
                )
            return int(requests or 0) >= number

        await one_at_a_time(WARM_UP, send, counted)
        counted_durations = await one_at_a_time(
            samples, send, lambda number: counted(number + WARM_UP)
        )

        consumer.assign(
            [
                TopicPartition(topic, partition)
                for partition in range(settings.kafka_topic_partitions)
            ]
        )
        await consumer.seek_to_end()
        received = 0

        async def consumed(number: int) -> bool:
            nonlocal received
            batch = await consumer.getmany(timeout_ms=1)
            received += sum(len(records) for records in batch.values())
            return received >= number

        consumed_durations = await one_at_a_time(samples, send, consumed)
    finally:
        await consumer.stop()
        await producer.stop()
        await engine.dispose()
    return counted_durations, consumed_durations


async def measure(
    running: Sandbox, apikeys: ServiceProcess, samples: int
) -> list[tuple[str, int, float, float, float]]:
    settings: Settings = running.settings
    signer = SignedAs("bench", role=Role.DEVELOPER, secret=settings.internal_secret)
    workspace_id = await open_workspace(settings)
    path = f"/v1/workspaces/{workspace_id}/api-keys"
    async with httpx.AsyncClient(base_url=apikeys.url, timeout=10) as client:

        async def created() -> str | None:
            response = await client.post(path, json={"name": "bench"}, auth=signer)
            return str(response.json()["id"]) if response.status_code == 201 else None

        key_id = uuid.UUID(await eventually(created, timeout=60, what="the workspace"))
        counted, consumed = await usage_latencies(settings, workspace_id, key_id, samples)

        async def create_key(_: int) -> None:
            response = await client.post(path, json={"name": "bench"}, auth=signer)
            assert response.status_code == 201, response.text

        async def health(_: int) -> None:
            response = await client.get("/healthz")
            assert response.status_code == 200

        async def done(_: int) -> bool:
            return True

        creations = await one_at_a_time(samples, create_key, done)
        health_checks = await one_at_a_time(samples, health, done)
    return [
        summary("kafka alone: produce → raw consumer", consumed),
        summary("apikeys: recorded → counted", counted),
        summary("apikeys GET /healthz", health_checks),
        summary("apikeys POST …/api-keys", creations),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="50 samples instead of 300")
    arguments = parser.parse_args()
    samples = 50 if arguments.quick else 300
    logging.basicConfig(level=logging.WARNING)
    with sandbox("atrium-bench") as running, tempfile.TemporaryDirectory() as logs:
        apikeys = ServiceProcess(
            ServiceName.APIKEYS,
            port=free_port(),
            environment=running.environment,
            log_dir=Path(logs),
        )
        apikeys.start()
        try:
            results = asyncio.run(measure(running, apikeys, samples))
        finally:
            apikeys.stop()
    print()
    print(f"{'path':<42}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, count, p50, p99, longest in results:
        print(f"{name:<42}{count:>6}{p50:>10.2f}{p99:>10.2f}{longest:>10.2f}")
    print("\none at a time; the machine's CPUs are shared by PostgreSQL, Kafka and apikeys")


if __name__ == "__main__":
    main()
