"""Who may do what on Kafka: each service's principal may write only the topics it
owns (`atrium.<service>.…`) and read only those it consumes, in its own consumer
group (`atrium.<service>`). DESIGN.md's table of events is the source of `CONSUMES`.

aiokafka's admin client has no call for ACLs, so they are created with the protocol's
own CreateAcls request, all in one; creating an ACL that exists already changes
nothing, so provisioning applies them every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request

from contracts.topics import ALL_TOPICS, Topic
from shared.settings import KafkaConnection, ServiceName, service_role

CONSUMES: dict[ServiceName, frozenset[Topic]] = {
    ServiceName.IDENTITY: frozenset({Topic.BILLING_LIMITS}),
    ServiceName.BILLING: frozenset(
        {
            Topic.IDENTITY_WORKSPACE,
            Topic.IDENTITY_MEMBERSHIP,
            Topic.APIKEYS_KEY,
            Topic.GATEWAY_USAGE,
        }
    ),
    ServiceName.ASSETS: frozenset({Topic.IDENTITY_WORKSPACE, Topic.BILLING_LIMITS}),
    ServiceName.APIKEYS: frozenset(
        {Topic.IDENTITY_WORKSPACE, Topic.BILLING_LEDGER, Topic.GATEWAY_USAGE}
    ),
    ServiceName.GATEWAY: frozenset(
        {
            Topic.IDENTITY_WORKSPACE,
            Topic.IDENTITY_MEMBERSHIP,
            Topic.BILLING_LIMITS,
            Topic.APIKEYS_KEY,
        }
    ),
}

CLUSTER = "kafka-cluster"
SECURITY_DISABLED = 54
"""The error of a cluster that has no authorizer: there is nothing to grant."""


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    IDEMPOTENT_WRITE = 12


_ANY = 1
_LITERAL = 3
_ALLOW = 3
VISIBLE_WITHIN_SECONDS = 30.0
"""How long the broker may take to apply ACLs it has accepted (KRaft applies them from
its metadata log, a moment after the answer)."""


@dataclass(frozen=True, slots=True)
class Grant:
    principal: str
    operation: Operation
    resource_type: ResourceType
    resource: str


def produces(service: ServiceName) -> list[Topic]:
    """The topics a service owns, by their name: `atrium.<service>.<aggregate>`."""
    return [topic for topic in ALL_TOPICS if topic.value.split(".")[1] == service.value]


def grants() -> list[Grant]:
    """Every ACL of the system; anything else is refused (allow.everyone.if.no.acl.found
    is false on the embedded broker, and should be on any other)."""
    result = []
    for service in ServiceName:
        principal = f"User:{service_role(service)}"
        owned = produces(service)
        if owned:
            idempotence = Grant(
                principal, Operation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER
            )
            result.append(idempotence)
        result += [Grant(principal, Operation.WRITE, ResourceType.TOPIC, t) for t in owned]
        consumed = sorted(CONSUMES[service])
        result += [Grant(principal, Operation.READ, ResourceType.TOPIC, t) for t in consumed]
        if consumed:
            result.append(
                Grant(principal, Operation.READ, ResourceType.GROUP, f"atrium.{service.value}")
            )
    return result


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    """CreateAcls with many ACLs in one request (aiokafka's builds one)."""

    API_KEY = 30

    def __init__(self, creations: list[Grant]) -> None:
        self.creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(
            [
                (g.resource_type, g.resource, _LITERAL, g.principal, "*", g.operation, _ALLOW)
                for g in self.creations
            ]
        )


async def ensure_acls(admin: KafkaConnection) -> int:
    """Create every ACL of `grants()`; returns how many were asked for, or 0 when the
    cluster has no authorizer (a development cluster without authentication)."""
    wanted = grants()
    client = AIOKafkaClient(**admin.client_options(), request_timeout_ms=10_000)
    try:
        await client.bootstrap()
        node = client.get_random_node()
        response = await client.send(node, _CreateAcls(wanted))
        errors = {code for code, _ in response.creation_responses if code}
        if errors == {SECURITY_DISABLED}:
            return 0
        failures = [
            f"{grant}: {message or for_code(code).__name__}"
            for grant, (code, message) in zip(wanted, response.creation_responses, strict=True)
            if code
        ]
        if failures:
            msg = "Kafka refused ACLs:\n" + "\n".join(failures)
            raise RuntimeError(msg)
        await _until_applied(client, node, wanted)
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return len(wanted)


async def _until_applied(client: AIOKafkaClient, node: int, wanted: list[Grant]) -> None:
    """Return once the broker authorizes with every grant of `wanted`: a service that
    starts right after `ensure_acls` must not be refused by a broker that has not applied
    them yet."""
    deadline = time.monotonic() + VISIBLE_WITHIN_SECONDS
    missing = set(wanted)
    while True:
        response = await client.send(
            node, DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ANY)
        )
        applied = {
            Grant(principal, Operation(operation), ResourceType(resource_type), resource)
            for resource_type, resource, _pattern, acls in response.resources
            for principal, _host, operation, _permission in acls
            if operation in Operation._value2member_map_
            and resource_type in ResourceType._value2member_map_
        }
        missing -= applied
        if not missing:
            return
        if time.monotonic() > deadline:
            msg = f"Kafka has not applied {len(missing)} ACLs, such as {next(iter(missing))}"
            raise RuntimeError(msg)
        await asyncio.sleep(0.1)
