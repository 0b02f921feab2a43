"""The ACLs follow DESIGN.md's table of events: a service writes only its own topics and
reads only those it consumes, in its own group, and what each running service
subscribes to is within what it is granted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from contracts.topics import Topic
from infra.kafka_acls import CONSUMES, Grant, Operation, ResourceType, grants
from services.apikeys.app import create_app as create_apikeys
from services.apikeys.settings import ApikeysSettings
from services.billing.app import create_app as create_billing
from services.billing.settings import BillingSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.identity.app import create_app as create_identity
from services.identity.settings import IdentitySettings
from shared.settings import ServiceName


def granted(service: ServiceName, operation: Operation, kind: ResourceType) -> set[str]:
    principal = f"User:atrium_{service.value}"
    return {
        g.resource
        for g in grants()
        if (g.principal, g.operation, g.resource_type) == (principal, operation, kind)
    }


@pytest.mark.parametrize(
    ("service", "owned"),
    [
        (ServiceName.IDENTITY, {Topic.IDENTITY_WORKSPACE, Topic.IDENTITY_MEMBERSHIP}),
        (ServiceName.BILLING, {Topic.BILLING_LIMITS, Topic.BILLING_LEDGER}),
        (ServiceName.GATEWAY, {Topic.GATEWAY_USAGE}),
        (ServiceName.APIKEYS, {Topic.APIKEYS_KEY}),
        (ServiceName.ASSETS, {Topic.ASSETS_ASSET}),
    ],
)
def test_a_service_may_write_only_the_topics_it_owns(
    service: ServiceName, owned: set[Topic]
) -> None:
    assert granted(service, Operation.WRITE, ResourceType.TOPIC) == {t.value for t in owned}
    assert granted(service, Operation.IDEMPOTENT_WRITE, ResourceType.CLUSTER) == {"kafka-cluster"}


@pytest.mark.parametrize("service", list(ServiceName))
def test_a_service_reads_what_it_consumes_in_its_own_group_only(service: ServiceName) -> None:
    assert granted(service, Operation.READ, ResourceType.TOPIC) == {
        t.value for t in CONSUMES[service]
    }
    assert granted(service, Operation.READ, ResourceType.GROUP) == {f"atrium.{service.value}"}


def test_nothing_is_granted_to_anyone_but_the_services() -> None:
    principals = {grant.principal for grant in grants()}
    assert principals == {f"User:atrium_{service.value}" for service in ServiceName}
    assert all(isinstance(grant, Grant) and "*" not in grant.resource for grant in grants())


SECRETS: dict[str, Any] = {
    "internal_secret": "unit-test-internal-secret",
    "jwt_secret": "unit-test-jwt-secret",
    "apikey_pepper": "unit-test-apikey-pepper",
    **{f"{service.value}_kafka_password": "unit-test" for service in ServiceName},
}
APPS: dict[ServiceName, Callable[[], FastAPI]] = {
    ServiceName.IDENTITY: lambda: create_identity(IdentitySettings(**SECRETS)),
    ServiceName.BILLING: lambda: create_billing(BillingSettings(**SECRETS)),
    ServiceName.APIKEYS: lambda: create_apikeys(ApikeysSettings(**SECRETS)),
    ServiceName.GATEWAY: lambda: create_gateway(GatewaySettings(**SECRETS)),
}


@pytest.mark.parametrize("service", list(APPS))
def test_what_a_service_subscribes_to_is_granted_to_it(service: ServiceName) -> None:
    app = APPS[service]()
    runtime = app.state.runtime if hasattr(app.state, "runtime") else app.state.gateway.runtime

    assert set(runtime.consumer.topics) <= CONSUMES[service]
    assert runtime.consumer.group_id == f"atrium.{service.value}"
