"""Alembic, once per service: its own schema, its own version table, its own login.

Each service keeps its revisions in `services/<name>/migrations/`; that folder's
`env.py` hands the service's MetaData to `run_migrations_from_env`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import asyncpg_url
from shared.settings import ServiceName, Settings

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def migrations_dir(service: ServiceName) -> Path:
    return SERVICES_DIR / service.value / "migrations"


def has_migrations(service: ServiceName) -> bool:
    return (migrations_dir(service) / "env.py").exists()


def alembic_config(service: ServiceName, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("version_table_schema", service.value)
    return config


def upgrade(service: ServiceName, settings: Settings, revision: str = "head") -> None:
    """Migrate one service's schema, connected as the service itself."""
    command.upgrade(alembic_config(service, settings.database_url_for(service)), revision)


def upgrade_all(settings: Settings) -> list[ServiceName]:
    migrated = [service for service in ServiceName if has_migrations(service)]
    for service in migrated:
        upgrade(service, settings)
    return migrated


def _not_the_version_table(name: str | None, type_: str, _: object) -> bool:
    return not (type_ == "table" and name == "alembic_version")


def run_migrations_from_env(metadata: MetaData) -> None:
    """The body of a service's `migrations/env.py`."""
    config = context.config
    schema = config.get_main_option("version_table_schema") or metadata.schema
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None

    common = {
        "target_metadata": metadata,
        "version_table_schema": schema,
        "include_name": _not_the_version_table,
        "compare_type": True,
    }

    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **common)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()
        return

    def run_on(connection: Connection) -> None:
        context.configure(connection=connection, **common)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()

    async def run_online() -> None:
        engine = create_async_engine(asyncpg_url(url))
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run_on)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_online())
