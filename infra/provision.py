"""Creates the database, and for each service its own schema and its own login
role that can use only that schema (least privilege: a service cannot read
another's tables, even by mistake). Idempotent; works on any PostgreSQL the
administrative URL reaches."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from shared.db import plain_url, tls_arguments
from shared.settings import ServiceName, Settings, service_role


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision(settings: Settings) -> None:
    admin_url = plain_url(settings.database_url)
    database = urlsplit(admin_url).path.lstrip("/") or "postgres"
    await _ensure_database(admin_url, database)

    connection = await asyncpg.connect(admin_url, **tls_arguments(admin_url))
    try:
        await connection.execute(
            f"REVOKE ALL ON DATABASE {_quote_ident(database)} FROM PUBLIC;"
            "REVOKE ALL ON SCHEMA public FROM PUBLIC;"
        )
        for service in ServiceName:
            await _ensure_service_login(connection, settings, service, database)
    finally:
        await connection.close()


async def _ensure_database(admin_url: str, database: str) -> None:
    maintenance_url = admin_url.rsplit("/", 1)[0] + "/postgres"
    connection = await asyncpg.connect(maintenance_url, **tls_arguments(admin_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f"CREATE DATABASE {_quote_ident(database)}")
    finally:
        await connection.close()


async def _ensure_service_login(
    connection: asyncpg.Connection, settings: Settings, service: ServiceName, database: str
) -> None:
    login = urlsplit(plain_url(settings.database_url_for(service)))
    role = login.username or service_role(service)
    password = login.password or ""
    schema = service.value
    exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    await connection.execute(
        f"{verb} ROLE {_quote_ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        f"PASSWORD {_quote_literal(password)}"
    )
    await connection.execute(
        f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)} AUTHORIZATION {_quote_ident(role)};"
        f"ALTER SCHEMA {_quote_ident(schema)} OWNER TO {_quote_ident(role)};"
        f"GRANT CONNECT, TEMPORARY ON DATABASE {_quote_ident(database)} TO {_quote_ident(role)};"
        f"ALTER ROLE {_quote_ident(role)} SET search_path = {_quote_ident(schema)};"
    )
