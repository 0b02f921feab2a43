"""The system a benchmark measures: every deployed service as its own process, as in
production (`python -m services.<name>.app`), inside a sandbox the benchmark started.

One helper for every benchmark that needs the gateway and what stands behind it, so
that adding a service to the system adds it to all of them.
"""

from __future__ import annotations

import contextlib
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.processes import free_port
from shared.development_tokens import development_token, development_user_id
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, start_together, stop_together

SYSTEM = (
    ServiceName.IDENTITY,
    ServiceName.BILLING,
    ServiceName.ASSETS,
    ServiceName.APIKEYS,
    ServiceName.GATEWAY,
)
"""What runs behind and at the edge. They start together; the gateway is ready only
when the services it forwards to are."""
UNLIMITED = "1000000"
NO_RATE_LIMITS = {
    "ATRIUM_RATE_LIMIT_PER_SECOND": UNLIMITED,
    "ATRIUM_RATE_LIMIT_BURST": UNLIMITED,
    "ATRIUM_ADDRESS_REFUSALS_PER_SECOND": UNLIMITED,
    "ATRIUM_ADDRESS_REFUSALS_BURST": UNLIMITED,
    "ATRIUM_SHARED_RATE_LIMITS": "false",
}
"""The gateway's settings for a run that measures something other than the callers'
budgets (without a round trip to the shared buckets per request)."""


@contextlib.contextmanager
def running_system(
    environment: dict[str, str],
    logs: Path,
    *,
    overrides: dict[str, str] | None = None,
    services: tuple[ServiceName, ...] = SYSTEM,
    processes: dict[ServiceName, int] | None = None,
) -> Iterator[dict[ServiceName, ServiceProcess]]:
    """`services` started together on free ports with the sandbox's `environment`
    (plus `overrides`), each logging at WARNING into `logs`, each as many processes on
    its port as `processes` says or else the settings (`Settings.processes_for`: the
    gateway as two); all stopped on the way out whatever happened."""
    ports = {service: free_port() for service in ServiceName}
    environment = {
        **environment,
        **{
            f"ATRIUM_{service.value.upper()}_URL": f"http://127.0.0.1:{port}"
            for service, port in ports.items()
        },
        "ATRIUM_LOG_LEVEL": "WARNING",
        **(overrides or {}),
    }
    settings = Settings()
    counts = {service: settings.processes_for(service) for service in services}
    processes_of = counts | (processes or {})
    started = start_together(
        [
            ServiceProcess(
                service,
                port=ports[service],
                environment=environment,
                log_dir=logs,
                processes=processes_of[service],
            )
            for service in services
        ]
    )
    try:
        yield {process.service: process for process in started}
    finally:
        stop_together(started)


def as_person(email: str, settings: Settings) -> dict[str, str]:
    """Headers of a signed-in person (a development token, as `atrium token` prints)."""
    return {"authorization": f"Bearer {development_token(email, settings)}"}


@dataclass(frozen=True)
class Person:
    """Someone who signs in, with a new address of their own."""

    email: str
    headers: dict[str, str]

    @classmethod
    def new(cls, name: str, settings: Settings) -> Person:
        email = f"{name}.{uuid.uuid4().hex[:8]}@example.com"
        return cls(email, as_person(email, settings))

    @property
    def user_id(self) -> str:
        """identity's id of a person signed in with a development token."""
        return development_user_id(self.email)


def percentile(values: list[float], percent: int) -> float:
    """The `percent`th percentile of `values` (inclusive method: within their range)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
