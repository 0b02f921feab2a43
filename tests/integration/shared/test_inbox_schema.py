"""Migration 0004 builds the inbox's tables exactly as the code defines them."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.apikeys import models as apikeys
from services.billing import models as billing
from services.gateway import models as gateway
from services.identity import models as identity

pytestmark = pytest.mark.integration

INBOX_TABLES = {"inbox", "parked_events"}


def _inbox_only(item: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
    table = name if type_ == "table" else getattr(getattr(item, "table", None), "name", None)
    return table in INBOX_TABLES


def differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _: type_ != "schema" or name == metadata.schema,
            "include_object": _inbox_only,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize(
    "metadata", [billing.metadata, identity.metadata, gateway.metadata, apikeys.metadata]
)
async def test_the_migrated_inbox_tables_match_their_definitions(
    admin_engine: AsyncEngine, metadata: MetaData
) -> None:
    async with admin_engine.connect() as connection:
        found = await connection.run_sync(differences, metadata)

    assert found == [], "\n".join(map(str, found))
