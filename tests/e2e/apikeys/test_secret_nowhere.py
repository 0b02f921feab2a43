"""A key's secret is shown in the answer that creates it (and the one that rotates it
in) and nowhere else: not in any service's log, not in any event on any topic, not in
any row of any table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import api_keys
from shared.settings import Settings
from shared.testing import eventually
from tests.e2e.conftest import RunningSystem

from .support import Api, Person, bearer, totals

pytestmark = pytest.mark.e2e


async def every_message(settings: Settings) -> list[bytes]:
    """Every record (key, headers and value) on every `atrium.*` topic, from the
    beginning to the end each partition had when the reading began."""
    admin = AIOKafkaAdminClient(**settings.kafka_admin().client_options())
    await admin.start()
    try:
        topics = sorted(topic for topic in await admin.list_topics() if topic.startswith("atrium."))
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    assert topics, "no atrium.* topic"
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    assert {partition.topic for partition in partitions} == set(topics), described
    consumer = AIOKafkaConsumer(**settings.kafka_admin().client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[bytes] = []
        async with asyncio.timeout(60):
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                batch = await consumer.getmany(timeout_ms=500)
                for fetched in batch.values():
                    for record in fetched:
                        headers = b"".join(name.encode() + value for name, value in record.headers)
                        records.append((record.key or b"") + headers + (record.value or b""))
    finally:
        await consumer.stop()
    assert {"atrium.apikeys.key", "atrium.gateway.usage"} <= set(topics), topics
    return records


async def every_row(admin_engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table of every schema but PostgreSQL's own, as text."""
    async with admin_engine.connect() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables"
                    " WHERE table_type = 'BASE TABLE'"
                    " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            )
        ).all()
        rows: dict[str, list[str]] = {}
        for schema, table in tables:
            quoted = f'"{schema}"."{table}"'
            result = await connection.execute(text(f"SELECT t::text FROM {quoted} t"))
            rows[quoted] = [row for (row,) in result.all()]
    return rows


def read_logs(log_dir: Path) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in sorted(log_dir.glob("*.log"))}


async def test_the_secret_appears_only_in_the_create_and_rotate_answers(
    system: RunningSystem, api: Api, settings: Settings, admin_engine: AsyncEngine, log_dir: Path
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    await api.buy(root["id"], owner, "api_credits", 10)
    keys = f"/v1/workspaces/{root['id']}/api-keys"

    first = await api.new_key(root["id"], owner, name="Leaky?")
    assert (await api.read_with(root["id"], first["key"])).status_code == 200
    assert (await api.spend(root["id"], bearer(first["key"]))).status_code == 201
    misuse = await api.client.get(f"/v1/workspaces/{root['id']}", params={"api_key": first["key"]})
    assert misuse.status_code == 400
    rotated = await api.client.post(f"{keys}/{first['id']}/rotate", headers=owner.headers)
    assert rotated.status_code == 201, rotated.text
    second = rotated.json()
    assert (await api.read_with(root["id"], second["key"])).status_code == 200
    await api.refused_soon(root["id"], first["key"])
    revoked = await api.client.delete(f"{keys}/{second['id']}", headers=owner.headers)
    assert revoked.status_code == 204
    await api.refused_soon(root["id"], second["key"])

    async def settled() -> Any:
        """The run's effects have reached every service: usage counted (the gateway
        published its batch, apikeys consumed it and billing's spend) and both keys
        listed revoked."""
        response = await api.usage(root["id"], owner)
        listed = await api.keys(root["id"], owner)
        done = totals(response.json())["requests"] >= 3 and {
            entry["status"] for entry in listed.values()
        } == {"revoked"}
        return True if done else None

    await eventually(settled, timeout=10, what="the run to settle")
    await asyncio.sleep(1.5)  # one more flush of every outbox relay and usage batch

    secrets = {
        key["key"]: [key["key"], key["key"][len(api_keys.PREFIX) : -api_keys.CHECKSUM_LENGTH]]
        for key in (first, second)
    }
    logs = read_logs(log_dir)
    messages = await every_message(settings)
    rows = await every_row(admin_engine)

    # The search covers what it should: every service's log, the key events, and the
    # rows that hold the keys (by their hash).
    assert {name.split("-")[0] for name in logs} >= {"identity", "billing", "apikeys", "gateway"}
    assert any(b"apikey.created" in message for message in messages)
    every_text = [row for texts in rows.values() for row in texts]
    for key in (first, second):
        stored = api_keys.key_hash(key["key"], settings.apikey_pepper)
        assert any(stored in row for row in every_text), "the key's hash in no table"

    found = []
    for forms in secrets.values():
        for form in forms:
            found += [f"log {name}" for name, log in logs.items() if form in log]
            found += ["event" for message in messages if form.encode() in message]
            found += [
                f"row of {table}" for table, texts in rows.items() if any(form in t for t in texts)
            ]
    assert found == [], found
