"""Reading what a scrape of `/metrics` says, for tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

EVERY_SERVICE = [
    "atrium_http_requests",
    "atrium_http_request_duration_seconds",
    "atrium_consumer_lag",
    "atrium_events_applied",
    "atrium_events_retried",
    "atrium_events_parked",
    "atrium_parked_events",
    "atrium_outbox_backlog",
    "atrium_outbox_oldest_unpublished_age_seconds",
    "atrium_relay_publish_duration_seconds",
]
GATEWAY_ONLY = [
    "atrium_gateway_authentication_refusals",
    "atrium_gateway_authorization_refusals",
    "atrium_gateway_rate_limit_refusals",
    "atrium_gateway_key_verification_duration_seconds",
]
"""The metric families a scrape of every service shows, and those of the gateway alone
(without the `_total` of counters, as the parser names families)."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: bytes | str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    decoded = text.decode() if isinstance(text, bytes) else text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(decoded)
        for sample in family.samples
    }


def families(text: bytes | str) -> set[str]:
    decoded = text.decode() if isinstance(text, bytes) else text
    return {family.name for family in text_string_to_metric_families(decoded)}


def value(text: bytes | str, name: str, **labels: str) -> float:
    """The sample with exactly these labels; 0 when there is none (yet)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def moved(before: bytes | str, after: bytes | str, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)
