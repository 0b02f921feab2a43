"""What the metrics cost: the time a service spends on one request with and without
`shared.metrics`' middleware (counted and timed by route template), in a process of its
own (prometheus-client's single-process mode) and as one of a service's processes
sharing a directory (`PROMETHEUS_MULTIPROC_DIR`, as under `make run`); and how long a
scrape takes, for one process and for the files of several.

Each variant runs in a fresh interpreter (prometheus-client picks its mode at import),
calling the ASGI application directly: no sockets, so that the difference is the
middleware's. A request's time is the CPU time of the thread that answers it (the
answer never waits), so that other work on the machine does not blur the comparison;
the variants take turns, `--rounds` times, and each figure is the median over the
rounds. Run: `.venv/bin/python -m bench.metrics_overhead`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from fastapi import FastAPI

from shared.metrics import exposition, install_metrics
from shared.testing import REPO


def _application(with_metrics: bool) -> Any:
    app = FastAPI()

    @app.get("/v1/workspaces/{workspace_id}")
    async def workspace(workspace_id: str) -> dict[str, str]:
        return {"id": workspace_id}

    if with_metrics:
        install_metrics(app, service="bench")
    return app


async def _per_request_microseconds(app: Any, requests: int) -> list[float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: dict[str, Any]) -> None:
        return None

    durations = []
    for _ in range(requests):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/v1/workspaces/{uuid.uuid4()}",
            "raw_path": b"",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        started = time.thread_time_ns()
        await app(scope, receive, send)
        durations.append((time.thread_time_ns() - started) / 1000)
    return durations


def _variant(with_metrics: bool, requests: int) -> None:
    """Run in the child: print the per-request durations' summary, and how long a scrape
    takes then, as JSON."""
    durations = asyncio.run(_measure(with_metrics, requests))
    scrapes = []
    for _ in range(50):
        started = time.perf_counter()
        exposition()
        scrapes.append((time.perf_counter() - started) * 1000)
    print(json.dumps({**_summary(durations), "scrape_ms": statistics.median(scrapes)}))


async def _measure(with_metrics: bool, requests: int) -> list[float]:
    app = _application(with_metrics)
    warm = await _per_request_microseconds(app, min(2_000, requests))
    assert warm
    return await _per_request_microseconds(app, requests)


def _summary(durations: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98], "mean": statistics.fmean(durations)}


def _run_variant(with_metrics: bool, requests: int, directory: str | None) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if directory is not None:
        environment["PROMETHEUS_MULTIPROC_DIR"] = directory
    code = f"from bench.metrics_overhead import _variant; _variant({with_metrics}, {requests})"
    finished = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    summary: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 requests, 1 round")
    args = parser.parse_args()
    requests, rounds = (2_000, 1) if args.quick else (args.requests, args.rounds)

    names = [
        "baseline: no metrics",
        "metrics, single-process mode",
        "metrics, multiprocess mode (process 1 of 2)",
        "metrics, multiprocess mode (process 2 of 2)",
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as shared:
            results[names[0]].append(_run_variant(False, requests, directory=None))
            results[names[1]].append(_run_variant(True, requests, directory=None))
            results[names[2]].append(_run_variant(True, requests, directory=shared))
            results[names[3]].append(_run_variant(True, requests, directory=shared))

    def median(name: str, figure: str) -> float:
        return statistics.median(result[figure] for result in results[name])

    print(
        f"one request through a FastAPI route: CPU µs, {requests} requests per variant, "
        f"median of {rounds} round(s)"
    )
    print(f"{'variant':<44} {'p50':>8} {'p99':>8} {'mean':>8} {'scrape ms':>10}")
    for name in names:
        print(
            f"{name:<44} {median(name, 'p50'):8.1f} {median(name, 'p99'):8.1f} "
            f"{median(name, 'mean'):8.1f} {median(name, 'scrape_ms'):10.2f}"
        )
    for name in names[1:]:
        added = median(name, "mean") - median(names[0], "mean")
        print(f"added per request (mean), {name.removeprefix('metrics, ')}: {added:.1f} µs")
    print("scrape ms: median of 50 scrapes after the requests (process 2 of 2 reads both)")


if __name__ == "__main__":
    main()
