"""Async SQLAlchemy engine and sessions bound to one service's schema.

One command is one transaction: `Database.transaction()` yields a session that
commits when the block ends and rolls back when it raises. Handlers only
`flush()`.

The few statements on every request's path (a principal's nonce, a hot read) go
through `Database.plain()` instead: asyncpg itself, whose statements are prepared once
per connection, without the session's unit-of-work machinery or the pool's ping
before each checkout (together about half of a plain read's CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The MetaData of a service: every table lives in the service's own schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def asyncpg_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the asyncpg driver for them."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    msg = f"not a PostgreSQL URL: {url.rsplit('@', maxsplit=1)[-1]}"
    raise ValueError(msg)


def tls_arguments(url: str) -> dict[str, object]:
    """Plain TCP unless the URL asks for TLS with `?ssl=require` (or another asyncpg
    `ssl` mode): the embedded server has no TLS, and asyncpg's default of trying TLS
    first fails under uvloop against such a server."""
    query = parse_qs(urlsplit(url).query)
    return {} if "ssl" in query else {"ssl": False}


def plain_url(url: str) -> str:
    """The libpq/asyncpg form of a URL (without a SQLAlchemy driver name)."""
    return "postgresql://" + asyncpg_url(url).removeprefix("postgresql+asyncpg://")


async def _session_kept(_: asyncpg.Connection) -> None:
    """A plain connection's session is given back as it is: its users set nothing, hold
    no lock and listen to nothing, and asyncpg rolls back a transaction left open. The
    default reset (`RESET ALL`, `UNLISTEN *`, unlocking…) is a round trip per use."""


class Database:
    def __init__(self, url: str, *, schema: str, pool_size: int = 10) -> None:
        self.schema = schema
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            asyncpg_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={"server_settings": {"search_path": schema}, **tls_arguments(url)},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.pool_size = pool_size
        self._plain: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of a pool of plain asyncpg connections in the service's schema,
        opened on first use, each statement its own transaction unless the caller opens
        one. A connection that PostgreSQL closed while it was idle is noticed by the
        event loop and opened anew on its next use (no ping)."""
        async with (await self._plain_pool()).acquire() as connection:
            yield connection

    async def _plain_pool(self) -> asyncpg.Pool:
        if self._plain is None:
            async with self._opening:
                if self._plain is None:
                    self._plain = await asyncpg.create_pool(
                        plain_url(self.url),
                        min_size=0,
                        max_size=self.pool_size,
                        server_settings={"search_path": self.schema},
                        reset=_session_kept,
                        **tls_arguments(self.url),
                    )
        return self._plain

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("select 1"))

    async def dispose(self) -> None:
        if self._plain is not None:
            await self._plain.close()
            self._plain = None
        await self.engine.dispose()
