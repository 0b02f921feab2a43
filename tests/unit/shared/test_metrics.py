"""What a scrape of `/metrics` shows: every metric family an operator's dashboard
reads, requests counted under their route template, and the processes of one service
that share a directory counted together."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.gateway import metrics as gateway_metrics
from shared import metrics
from shared.metrics import exposition, forget_process, install_metrics
from shared.testing import REPO
from tests.scrapes import EVERY_SERVICE, GATEWAY_ONLY, families, samples, value

FAMILIES = [*EVERY_SERVICE, "atrium_events_published", *GATEWAY_ONLY]


def test_the_exposition_names_every_metric_family() -> None:
    assert gateway_metrics.SERVICE == "gateway"
    assert set(FAMILIES) <= families(exposition())


async def test_a_request_is_counted_under_its_route_template_never_its_path() -> None:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    install_metrics(app, service="route-test")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        for thing_id in ("a", "b", "c"):
            assert (await client.get(f"/v1/things/{thing_id}")).status_code == 200
        assert (await client.get("/v1/nothing/here")).status_code == 404
        assert (await client.request("BREW", "/v1/things/a")).status_code == 405
        scraped = await client.get("/metrics")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    route = {"service": "route-test", "route": "/v1/things/{thing_id}"}
    assert value(text, "atrium_http_requests_total", **route, method="GET", status="200") == 3
    assert value(text, "atrium_http_request_duration_seconds_count", **route, method="GET") == 3
    unmatched = {"service": "route-test", "route": "unmatched", "method": "GET", "status": "404"}
    assert value(text, "atrium_http_requests_total", **unmatched) == 1
    assert value(text, "atrium_http_requests_total", **route, method="other", status="405") == 1
    assert not [key for key in samples(text) if ("route", "/v1/things/a") in key[1]]
    assert "/metrics" not in app.openapi()["paths"]


def run_as_a_process_of_the_service(directory: Path, script: str) -> int:
    """Run `script` as another process writing to the service's metrics directory;
    returns its pid."""
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, metrics.MULTIPROCESS_DIRECTORY: str(directory)},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(finished.stdout)


def test_a_scrape_counts_every_process_of_the_service_and_forgets_the_gauges_of_the_dead(
    tmp_path: Path,
) -> None:
    def process_of_the_service(requests: int, backlog: int) -> int:
        return run_as_a_process_of_the_service(
            tmp_path,
            f"""
            import os
            from shared import metrics
            for _ in range({requests}):
                metrics.HTTP_REQUESTS.labels("billing", "/v1/x", "GET", "200").inc()
                metrics.HTTP_REQUEST_SECONDS.labels("billing", "/v1/x", "GET").observe(0.01)
            metrics.OUTBOX_BACKLOG.labels("billing").set({backlog})
            print(os.getpid())
            """,
        )

    first = process_of_the_service(requests=3, backlog=40)
    second = process_of_the_service(requests=4, backlog=7)
    request = {"service": "billing", "route": "/v1/x", "method": "GET"}

    both = exposition(str(tmp_path))
    assert value(both, "atrium_http_requests_total", **request, status="200") == 7
    assert value(both, "atrium_http_request_duration_seconds_count", **request) == 7
    assert value(both, "atrium_outbox_backlog", service="billing") == 40

    forget_process(tmp_path, first)
    after_one_died = exposition(str(tmp_path))
    assert value(after_one_died, "atrium_http_requests_total", **request, status="200") == 7
    assert value(after_one_died, "atrium_outbox_backlog", service="billing") == 7
    assert second != first
