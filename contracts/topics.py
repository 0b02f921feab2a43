"""Kafka topic names: `atrium.<service>.<aggregate>`."""

from enum import StrEnum


class Topic(StrEnum):
    IDENTITY_WORKSPACE = "atrium.identity.workspace"
    IDENTITY_MEMBERSHIP = "atrium.identity.membership"
    BILLING_LIMITS = "atrium.billing.limits"
    BILLING_LEDGER = "atrium.billing.ledger"
    APIKEYS_KEY = "atrium.apikeys.key"
    ASSETS_ASSET = "atrium.assets.asset"
    GATEWAY_USAGE = "atrium.gateway.usage"


ALL_TOPICS: tuple[Topic, ...] = tuple(Topic)
