"""The processes of a service share its address, and a stopping one says so."""

from __future__ import annotations

import os
import socket

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.cli import process_names
from infra.processes import free_port, port_is_free
from shared.http import NotReadyError, install_http_plumbing
from shared.lifecycle import shared_socket
from shared.settings import ServiceName, Settings
from shared.testing import listens_on


def test_the_gateway_runs_as_two_processes_and_every_other_service_as_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for service in ServiceName:
        monkeypatch.delenv(f"ATRIUM_{service.value.upper()}_PROCESSES", raising=False)
    settings = Settings()
    assert settings.processes_for(ServiceName.GATEWAY) == 2
    assert {settings.processes_for(service) for service in ServiceName} - {2} == {1}


def test_each_service_takes_its_own_number_of_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATRIUM_BILLING_PROCESSES", "3")
    monkeypatch.setenv("ATRIUM_GATEWAY_PROCESSES", "1")
    settings = Settings()
    assert settings.processes_for(ServiceName.BILLING) == 3
    assert settings.processes_for(ServiceName.GATEWAY) == 1
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings(assets_processes=0)


def test_processes_are_named_after_their_service_and_numbered_when_several() -> None:
    assert process_names(ServiceName.GATEWAY, 2) == ["gateway-1", "gateway-2"]
    assert process_names(ServiceName.BILLING, 1) == ["billing"]


def test_processes_bind_one_address_together_and_listen_only_when_started() -> None:
    port = free_port()
    first, second = shared_socket("127.0.0.1", port), shared_socket("127.0.0.1", port)
    try:
        assert not listens_on(os.getpid(), port)
        assert port_is_free(port), "a bound socket that does not listen takes no connection"
        first.listen()
        second.listen()
        assert listens_on(os.getpid(), port)
        assert not port_is_free(port), "`make run` sees that the address is taken"
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        first.close()
        second.close()
    assert not listens_on(os.getpid(), port)


def test_readiness_says_what_a_check_names_as_missing() -> None:
    app = FastAPI()

    async def stopping() -> None:
        raise NotReadyError("stopping")

    async def reachable() -> None:
        return None

    install_http_plumbing(app, {"process": stopping, "postgres": reachable})
    response = TestClient(app).get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "Not ready: process stopping"
