"""Migration 0001 builds assets' schema exactly as `services.assets.models` defines it."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.assets import models

pytestmark = pytest.mark.integration


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _: type_ != "schema" or name == "assets",
            "include_object": lambda _item, name, type_, _reflected, _other: (
                type_ != "table" or name != "alembic_version"
            ),
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, models.metadata))


async def test_the_migrated_schema_matches_the_models(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as connection:
        found = await connection.run_sync(differences)

    assert found == [], "\n".join(map(str, found))
