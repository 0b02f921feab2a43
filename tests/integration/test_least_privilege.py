"""Each service logs in as its own role, which can use only its own schema."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from shared.db import Database
from shared.settings import ServiceName, Settings

pytestmark = pytest.mark.integration


async def test_billing_cannot_read_identity_tables(settings: Settings) -> None:
    billing = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    try:
        with pytest.raises(ProgrammingError, match="permission denied for schema identity"):
            async with billing.transaction() as session:
                await session.execute(text("SELECT count(*) FROM identity.workspaces"))
    finally:
        await billing.dispose()


async def test_identity_cannot_read_billing_tables(settings: Settings) -> None:
    identity = Database(settings.database_url_for(ServiceName.IDENTITY), schema="identity")
    try:
        with pytest.raises(ProgrammingError, match="permission denied for schema billing"):
            async with identity.transaction() as session:
                await session.execute(text("SELECT count(*) FROM billing.accounts"))
    finally:
        await identity.dispose()


async def test_a_service_cannot_create_tables_outside_its_schema(settings: Settings) -> None:
    billing = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    try:
        with pytest.raises(ProgrammingError, match="permission denied for schema public"):
            async with billing.transaction() as session:
                await session.execute(text("CREATE TABLE public.smuggled (id int)"))
    finally:
        await billing.dispose()


async def test_a_service_reads_its_own_tables(settings: Settings) -> None:
    billing = Database(settings.database_url_for(ServiceName.BILLING), schema="billing")
    try:
        async with billing.transaction() as session:
            accounts = await session.scalar(text("SELECT count(*) FROM accounts"))
        assert accounts is not None
    finally:
        await billing.dispose()
