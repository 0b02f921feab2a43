"""The system as users meet it: every service a real process, reached over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.processes import free_port
from infra.sandbox import Sandbox
from shared.metrics import MULTIPROCESS_DIRECTORY
from shared.settings import ServiceName
from shared.testing import ServiceProcess, start_together, stop_together


@dataclass
class RunningSystem:
    """Each service as many processes on its one URL as the settings say
    (`Settings.processes_for`: the gateway as two by default)."""

    identity: ServiceProcess
    billing: ServiceProcess
    assets: ServiceProcess
    apikeys: ServiceProcess
    gateway: ServiceProcess


def metrics_environment(directory: Path, service: ServiceName) -> dict[str, str]:
    """The processes of one service write their metrics to one directory, as under
    `atrium-infra run`: a scrape of any of them counts them all."""
    of_service = directory / service.value
    of_service.mkdir(exist_ok=True)
    return {MULTIPROCESS_DIRECTORY: str(of_service)}


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    """Settings of the module's services besides the sandbox's (a module overrides it)."""
    return {}


@pytest.fixture(scope="module")
def system(
    atrium: Sandbox,
    log_dir: Path,
    service_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:
    ports = {service: free_port() for service in ServiceName}
    metrics_dir = tmp_path_factory.mktemp("metrics")
    environment = {
        **atrium.environment,
        **service_environment,
        **{
            f"ATRIUM_{service.value.upper()}_URL": f"http://127.0.0.1:{port}"
            for service, port in ports.items()
        },
    }

    def process(service: ServiceName) -> ServiceProcess:
        return ServiceProcess(
            service,
            port=ports[service],
            environment={**environment, **metrics_environment(metrics_dir, service)},
            log_dir=log_dir,
            processes=atrium.settings.processes_for(service),
        )

    running = RunningSystem(
        identity=process(ServiceName.IDENTITY),
        billing=process(ServiceName.BILLING),
        assets=process(ServiceName.ASSETS),
        apikeys=process(ServiceName.APIKEYS),
        gateway=process(ServiceName.GATEWAY),
    )
    started = start_together(
        [running.identity, running.billing, running.assets, running.apikeys, running.gateway]
    )
    try:
        yield running
    finally:
        stop_together(started)
