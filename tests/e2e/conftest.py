"""The system as users meet it: every service a real process, reached over HTTP.

Starting the system takes seconds of CPU per process, so consecutive modules that ask
for it with the same settings share one (each test makes its own accounts and
workspaces, as users do). A module that stops, kills or reconfigures processes, or
counts from a fresh start, is marked `own_system`: it gets a system of its own, stopped
after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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

    def by_service(self) -> dict[ServiceName, ServiceProcess]:
        return {process.service: process for process in _processes_of(self)}


def metrics_environment(directory: Path, service: ServiceName) -> dict[str, str]:
    """The processes of one service write their metrics to one directory, as under
    `atrium-infra run`: a scrape of any of them counts them all."""
    of_service = directory / service.value
    of_service.mkdir(exist_ok=True)
    return {MULTIPROCESS_DIRECTORY: str(of_service)}


@dataclass
class _SharedSystem:
    """The system the last sharing module used, kept running for the next one."""

    environment: dict[str, str] = field(default_factory=dict)
    running: RunningSystem | None = None

    def serves(self, environment: dict[str, str]) -> bool:
        return (
            self.running is not None
            and self.environment == environment
            and all(
                code is None
                for process in _processes_of(self.running)
                for code in process.returncodes()
            )
        )

    def stop(self) -> None:
        if self.running is not None:
            stop_together(_processes_of(self.running))
        self.running = None


def _processes_of(running: RunningSystem) -> list[ServiceProcess]:
    return [running.identity, running.billing, running.assets, running.apikeys, running.gateway]


_shared = _SharedSystem()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The shared system stops once the next test does not use it (the integration
    tests consume from the same topics and write the same schemas)."""
    if nextitem is None or "system" not in getattr(nextitem, "fixturenames", ()):
        _shared.stop()


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    """Settings of the module's services besides the sandbox's (a module overrides it)."""
    return {}


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest,
    atrium: Sandbox,
    log_dir: Path,
    service_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:
    if request.node.get_closest_marker("own_system") is None:
        if not _shared.serves(service_environment):
            _shared.stop()
            _shared.running = _start_system(atrium, log_dir, service_environment, tmp_path_factory)
            _shared.environment = service_environment
        assert _shared.running is not None
        yield _shared.running
        return
    _shared.stop()
    running = _start_system(atrium, log_dir, service_environment, tmp_path_factory)
    try:
        yield running
    finally:
        stop_together(_processes_of(running))


def _start_system(
    atrium: Sandbox,
    log_dir: Path,
    service_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningSystem:
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
    start_together(_processes_of(running))
    return running
