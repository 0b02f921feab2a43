"""Migration 0007 builds billing's key tables exactly as the code defines them."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.models import metadata

pytestmark = pytest.mark.integration

KEY_TABLES = {"api_keys", "api_key_spending"}


def _key_tables_only(item: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
    table = name if type_ == "table" else getattr(getattr(item, "table", None), "name", None)
    return table in KEY_TABLES


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _: type_ != "schema" or name == "billing",
            "include_object": _key_tables_only,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, metadata))


async def test_the_migrated_key_tables_match_their_definitions(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as connection:
        found = await connection.run_sync(differences)

    assert found == [], "\n".join(map(str, found))
