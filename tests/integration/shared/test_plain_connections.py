"""A service's plain connections (`Database.plain`), which carry the statements on every
request's path without a ping before each use."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import Database
from shared.settings import Settings


async def test_a_plain_connection_that_postgres_closed_is_opened_anew(
    settings: Settings, admin_engine: AsyncEngine
) -> None:
    database = Database(settings.database_url, schema="public")
    try:
        async with database.plain() as connection:
            first = await connection.fetchval("SELECT pg_backend_pid()")
        async with admin_engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            for _ in range(100):  # until the backend is gone
                gone = await admin.scalar(
                    text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": first},
                )
                if gone:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the event loop hears the connection close

        async with database.plain() as connection:
            second = await connection.fetchval("SELECT pg_backend_pid()")

        assert second != first
    finally:
        await database.dispose()


async def test_plain_connections_work_in_the_services_schema(
    settings: Settings, admin_engine: AsyncEngine
) -> None:
    database = Database(settings.database_url, schema="identity")
    try:
        async with database.plain() as connection:
            assert await connection.fetchval("SHOW search_path") == "identity"
    finally:
        await database.dispose()


async def test_a_transaction_left_open_on_a_plain_connection_is_rolled_back(
    settings: Settings, admin_engine: AsyncEngine
) -> None:
    database = Database(settings.database_url, schema="public")
    table = f"plain_{uuid.uuid4().hex[:10]}"
    try:
        async with database.plain() as connection:
            await connection.execute(f'CREATE TABLE "{table}" (id int)')
        async with database.plain() as connection:
            await connection.execute("BEGIN")
            await connection.execute(f'INSERT INTO "{table}" VALUES (1)')

        async with database.plain() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval(f'SELECT count(*) FROM "{table}"') == 0
    finally:
        async with database.plain() as connection:
            await connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        await database.dispose()
