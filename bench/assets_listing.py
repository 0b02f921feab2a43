"""Listing a large asset library: p50/p99 of `GET /v1/workspaces/{id}/assets` for a
workspace with 10,000 assets of its own and 1,000 shared with it, its first page and
a deep page (after 9,000 assets), through the gateway and straight to assets (with
the principal the gateway would sign), next to the bare SQL of the same page (the
repository's own query, both indexed branches and the merge, sent by asyncpg) in the
same run.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each server
as its own process. The library is written straight into assets' tables (the
workspaces themselves are made through the gateway, and reach assets by their
events). Requests are sent one at a time, so each latency is one request's own.

Run: `.venv/bin/python -m bench.assets_listing`; `--quick` for fewer requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from bench.system import NO_RATE_LIMITS, running_system
from contracts.permissions import Role
from infra.sandbox import sandbox
from services.assets.queries import LIBRARY_PAGES
from services.assets.repository.assets import Position, library_query
from shared.db import asyncpg_url, plain_url
from shared.development_tokens import development_token, development_user_id
from shared.pagination import encode_cursor
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.settings import ServiceName, Settings

OWN = 10_000
SHARED_IN = 1_000
DEEP = 9_000
PAGE = 50
EMAIL = "bench@example.com"

SEED = """
INSERT INTO assets.assets (id, workspace_id, root_id, kind, name, properties, status,
                           created_by, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, (ARRAY['voice','brand_kit','template'])[1 + n % 3],
       'Asset ' || n, '{"aspect_ratio": "16:9"}'::jsonb, 'active', 'user:bench',
       now() - make_interval(secs => n * $4::float8), now()
FROM generate_series(1, $3) AS n
"""
SHARE_ALL_OF = """
INSERT INTO assets.shares (asset_id, target_workspace_id, asset_created_at)
SELECT id, $2, created_at FROM assets.assets WHERE workspace_id = $1
"""


async def percentiles(
    what: str, count: int, once: Callable[[], Awaitable[int]]
) -> tuple[str, float, float, int]:
    for _ in range(10):  # warm-up
        await once()
    durations: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        items = await once()
        durations.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(durations, n=100)
    return what, cuts[49], cuts[98], items


async def arrived(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while (await client.get(url, headers=headers)).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        await asyncio.sleep(0.1)


async def measure(
    settings: Settings, gateway: str, assets: str, count: int
) -> list[tuple[str, float, float, int]]:
    token = {"authorization": f"Bearer {development_token(EMAIL, settings)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(
            f"{gateway}/v1/workspaces", json={"name": "Bench"}, headers=token
        )
        created.raise_for_status()
        root = uuid.UUID(created.json()["id"])
        sub = await client.post(
            f"{gateway}/v1/workspaces/{root}/sub-workspaces",
            json={"name": "Studio", "billing_mode": "parent", "api_access": False},
            headers=token,
        )
        sub.raise_for_status()
        studio = uuid.UUID(sub.json()["id"])
        for workspace in (root, studio):
            await arrived(client, f"{gateway}/v1/workspaces/{workspace}/assets", token)

    admin = await asyncpg.connect(plain_url(settings.database_url), ssl=False)
    try:
        await admin.execute(SEED, root, root, OWN, 1.0)
        await admin.execute(SEED, studio, root, SHARED_IN, 9.7)
        await admin.execute(SHARE_ALL_OF, studio, root)
        await admin.execute("ANALYZE assets.assets; ANALYZE assets.shares")
        deep_row = await admin.fetchrow(
            "SELECT created_at, id FROM ("
            " SELECT created_at, id FROM assets.assets WHERE workspace_id = $1"
            " UNION ALL SELECT a.created_at, a.id FROM assets.shares s"
            " JOIN assets.assets a ON a.id = s.asset_id WHERE s.target_workspace_id = $1"
            ") AS seen ORDER BY created_at, id OFFSET $2 LIMIT 1",
            root,
            DEEP - 1,
        )
        deep: Position = (deep_row["created_at"], uuid.UUID(str(deep_row["id"])))
        cursor = encode_cursor(deep, shape=LIBRARY_PAGES)

        dialect = create_async_engine(asyncpg_url(settings.database_url)).dialect

        def bare(after: Position | None) -> Callable[[], Awaitable[int]]:
            query = library_query(root, kind=None, include_shared=True, after=after, limit=PAGE + 1)
            sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

            async def once() -> int:
                return len(await admin.fetch(sql))

            return once

        async with httpx.AsyncClient(timeout=30) as client:

            def through_gateway(query: str) -> Callable[[], Awaitable[int]]:
                url = f"{gateway}/v1/workspaces/{root}/assets?limit={PAGE}{query}"

                async def once() -> int:
                    response = await client.get(url, headers=token)
                    response.raise_for_status()
                    return len(response.json()["items"])

                return once

            principal = Principal(
                user_id=development_user_id(EMAIL),
                email=EMAIL,
                email_verified=True,
                workspace_id=root,
                role=Role.SUPER_ADMIN,
            )

            def straight(query: str) -> Callable[[], Awaitable[int]]:
                target = f"/v1/workspaces/{root}/assets?limit={PAGE}{query}"

                async def once() -> int:
                    signed = sign_principal(
                        principal,
                        method="GET",
                        target=target,
                        body=b"",
                        secret=settings.internal_secret,
                    )
                    response = await client.get(assets + target, headers={PRINCIPAL_HEADER: signed})
                    response.raise_for_status()
                    return len(response.json()["items"])

                return once

            deep_query = f"&cursor={cursor}"
            return [
                await percentiles("first page, bare SQL", count, bare(None)),
                await percentiles("first page, straight to assets", count, straight("")),
                await percentiles("first page, through the gateway", count, through_gateway("")),
                await percentiles("deep page, bare SQL", count, bare(deep)),
                await percentiles("deep page, straight to assets", count, straight(deep_query)),
                await percentiles(
                    "deep page, through the gateway", count, through_gateway(deep_query)
                ),
                await percentiles(
                    "one kind, first page, through the gateway",
                    count,
                    through_gateway("&kind=voice"),
                ),
            ]
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="100 requests per measurement")
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.requests
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
    ):
        results = asyncio.run(
            measure(
                env.settings,
                running[ServiceName.GATEWAY].url,
                running[ServiceName.ASSETS].url,
                count,
            )
        )
    print(
        f"\nlibrary: {OWN} own + {SHARED_IN} shared-in assets; pages of {PAGE}; deep page "
        f"after {DEEP}; {count} requests each, one at a time"
    )
    print(f"{'GET …/assets':<44}{'p50 ms':>10}{'p99 ms':>10}{'items':>8}")
    for what, p50, p99, items in results:
        print(f"{what:<44}{p50:>10.2f}{p99:>10.2f}{items:>8}")


if __name__ == "__main__":
    main()
