"""Each service's migrations build its schema exactly as its `models` module defines it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import ServiceName

pytestmark = pytest.mark.integration


def differences(connection: Connection, service: ServiceName) -> list[Any]:
    models = importlib.import_module(f"services.{service.value}.models")
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _: type_ != "schema" or name == service.value,
            "include_object": lambda _item, name, type_, _reflected, _other: (
                type_ != "table" or name != "alembic_version"
            ),
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, models.metadata))


@pytest.mark.parametrize("service", list(ServiceName), ids=str)
async def test_the_migrated_schema_matches_the_models(
    admin_engine: AsyncEngine, service: ServiceName
) -> None:
    async with admin_engine.connect() as connection:
        found = await connection.run_sync(differences, service)

    assert found == [], "\n".join(map(str, found))
