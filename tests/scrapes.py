"""Reading what a scrape of `/metrics` says, for tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

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
