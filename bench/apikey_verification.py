"""What verifying an API key costs the gateway: the checksum, the HMAC under the pepper,
the lookup in a warm projection of `--keys` keys and the checks of the key's state and
workspace (`KeyVerifier.verify`), next to what the gateway spends on a user token it
has verified already (`Authenticator.remembered`, a dictionary lookup), in the same
run; and the cost of recording one request for the usage events
(`UsageRecorder.record`; the flush is one transaction per half second, not per request).

In-process, no services. Run: `.venv/bin/python -m bench.apikey_verification`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from services.gateway import models
from services.gateway.auth import Authenticator
from services.gateway.keys import KeyProjection, KeyRateLimit, KeyRecord, KeyVerifier
from services.gateway.projections import AccessProjection, WorkspaceNode
from services.gateway.usage import UsageRecorder
from shared.api_keys import key_hash, new_key
from shared.db import Database
from shared.outbox import Outbox
from shared.settings import Settings
from shared.unit_of_work import UnitsOfWork
from tests.unit.gateway.support import token_for

GOAL_P99_MS = 0.5
PEPPER = "bench-pepper"
JWT_SECRET = "bench-jwt-secret-" + "x" * 48


async def _no_apikeys(_: str) -> KeyRecord | None:
    msg = "a warm projection asks nobody"
    raise AssertionError(msg)


def percentiles(durations_ns: list[int]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(durations_ns, n=1000, method="inclusive")
    return cuts[499] / 1e6, cuts[989] / 1e6, cuts[998] / 1e6


async def timed(step: Callable[[int], Awaitable[object]], iterations: int) -> list[int]:
    durations = []
    for i in range(iterations):
        started = time.perf_counter_ns()
        await step(i)
        durations.append(time.perf_counter_ns() - started)
    return durations


async def main(keys: int, iterations: int) -> None:
    workspaces = AccessProjection()
    projection = KeyProjection()
    secrets = []
    for i in range(keys):
        workspace = uuid.uuid4()
        if i % 10 == 0:
            workspaces.put_workspace(WorkspaceNode(workspace, None, workspace, api_access=True))
        secret = new_key()
        secrets.append(secret)
        projection.put(
            KeyRecord(
                key_id=uuid.uuid4(),
                hash=key_hash(secret, PEPPER),
                workspace_id=workspace,
                root_id=workspace,
                expires_at=time.time() + 86_400 if i % 2 else None,
                rate_limit=KeyRateLimit(100, 60) if i % 3 else None,
            )
        )
    verifier = KeyVerifier(projection, workspaces, pepper=PEPPER, ask_apikeys=_no_apikeys)

    authenticator = Authenticator(Settings(jwt_secret=JWT_SECRET))
    tokens = [token_for(f"user-{i}", secret=JWT_SECRET) for i in range(keys)]
    for token in tokens:
        await authenticator.authenticate(token)

    database = Database("postgresql://bench@127.0.0.1:1/bench", schema="gateway")
    # Never connects: recording is in memory, the flush is not measured here.
    recorder = UsageRecorder(UnitsOfWork(database, Outbox(models.outbox, producer="gateway"), None))
    records = [await verifier.verify(secret) for secret in secrets[:1000]]
    now = datetime.now(UTC)

    order = [random.randrange(keys) for _ in range(iterations)]

    async def verify(i: int) -> object:
        return await verifier.verify(secrets[order[i]])

    async def remembered(i: int) -> object:
        return authenticator.remembered(tokens[order[i]])

    async def record(i: int) -> None:
        recorder.record(records[i % 1000], route="GET /v1/x", status=200, latency_ms=1.0, at=now)

    # Taken in turn, twice, so that neither gets the warmer machine.
    results: dict[str, list[int]] = {"key": [], "token": [], "record": []}
    for _ in range(2):
        results["token"] += await timed(remembered, iterations // 2)
        results["key"] += await timed(verify, iterations // 2)
        results["record"] += await timed(record, iterations // 2)
    await database.dispose()

    print(f"warm projection: {keys} keys; {iterations} verifications each")
    for name, label in (
        ("token", "remembered user token (baseline)"),
        ("key", "API key verification"),
        ("record", "usage record of one request"),
    ):
        p50, p99, p999 = percentiles(results[name])
        print(
            f"  {label:36} p50 {p50 * 1000:7.2f} us  p99 {p99 * 1000:7.2f} us  "
            f"p99.9 {p999 * 1000:7.2f} us"
        )
    key_p99 = percentiles(results["key"])[1]
    verdict = "meets" if key_p99 <= GOAL_P99_MS else "MISSES"
    print(f"  key verification p99 {key_p99:.4f} ms {verdict} the goal of {GOAL_P99_MS} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=100_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.keys, arguments.iterations))
