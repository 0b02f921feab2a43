"""What identity's hot read costs: CPU and wall time per read of one workspace and the
caller's roles on its path, with the principal's nonce spent first, as
`GET /v1/workspaces/{id}` does, on plain asyncpg connections (`Database.plain`: one
prepared statement each) — next to the same two steps through SQLAlchemy in the same
run: the nonce on a pooled connection, the read in a unit of work's session (two
statements in a transaction, the pool's ping before each checkout).

Measured in this process (no HTTP), sequentially, against identity's schema in a
throwaway sandbox with the system running; the two ways alternate over `--rounds`.

Run: `.venv/bin/python -m bench.identity_reads`; `--quick` for fewer reads.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import results
from bench.system import NO_RATE_LIMITS, as_person, running_system
from infra.sandbox import Sandbox, sandbox
from services.identity.repository.members import MemberRepository
from services.identity.repository.standing import standing
from services.identity.repository.workspaces import WorkspaceRepository
from shared.db import Database
from shared.development_tokens import development_user_id
from shared.principal import SIGNATURE_LIFETIME_SECONDS, SpentNonces
from shared.settings import ServiceName

WARM_UP = 100


async def measure(env: Sandbox, gateway_url: str, args: argparse.Namespace) -> dict[str, object]:
    email = f"owner.{uuid.uuid4().hex[:6]}@example.com"
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(
            f"{gateway_url}/v1/workspaces",
            json={"name": "Reads"},
            headers=as_person(email, env.settings),
        )
        created.raise_for_status()
    workspace_id = uuid.UUID(created.json()["id"])
    user_id = development_user_id(email)
    database = Database(env.settings.database_url_for(ServiceName.IDENTITY), schema="identity")
    autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
    nonces = SpentNonces(database)

    def expiry() -> float:
        return time.time() + SIGNATURE_LIFETIME_SECONDS

    async def through_sqlalchemy() -> None:
        async with autocommit.connect() as connection:
            await connection.exec_driver_sql(
                SpentNonces._SPEND,  # the same statement, the other way
                (uuid.uuid4(), datetime.fromtimestamp(expiry(), UTC)),
            )
        async with database.transaction() as session:
            workspace = await WorkspaceRepository(session).get(workspace_id)
            assert workspace is not None
            assert await MemberRepository(session).roles_on_path(user_id, workspace)

    async def plain() -> None:
        assert await nonces.spend(uuid.uuid4(), expiry())
        async with database.plain() as connection:
            found = await standing(connection, workspace_id, user_id)
        assert found is not None
        assert found[1]

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "SQLAlchemy (session, pool ping)": through_sqlalchemy,
        "plain asyncpg (prepared)": plain,
    }
    cpu: defaultdict[str, float] = defaultdict(float)
    wall: defaultdict[str, float] = defaultdict(float)
    try:
        for _ in range(args.rounds):
            for name, read in ways.items():
                for _ in range(WARM_UP):
                    await read()
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                for _ in range(args.reads):
                    await read()
                cpu[name] += time.process_time() - cpu_before
                wall[name] += time.perf_counter() - wall_before
    finally:
        await database.dispose()
    reads = args.reads * args.rounds
    baseline = "SQLAlchemy (session, pool ping)"
    print(f"\n{'nonce + read of one workspace':<34}{'CPU ms':>9}{'wall ms':>9}{'CPU ÷ base':>12}")
    figures: dict[str, object] = {}
    for name in ways:
        share = cpu[name] / cpu[baseline]
        print(
            f"{name:<34}{1000 * cpu[name] / reads:>9.3f}{1000 * wall[name] / reads:>9.3f}"
            f"{share:>12.2f}"
        )
        figures[name] = {
            "cpu_ms_per_read": round(1000 * cpu[name] / reads, 4),
            "wall_ms_per_read": round(1000 * wall[name] / reads, 4),
            "cpu_ratio_to_sqlalchemy": round(share, 3),
        }
    print(
        f"\n{reads} reads each, in {args.rounds} alternating rounds, one at a time, CPU of this "
        "process (PostgreSQL's not counted)"
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of 300 reads")
    parser.add_argument("--reads", type=int, default=1000, help="per way and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.reads, args.rounds = 300, 1
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
    ):
        figures = asyncio.run(measure(env, running[ServiceName.GATEWAY].url, args))
    results.save("identity_reads", figures, quick=args.quick)


if __name__ == "__main__":
    main()
