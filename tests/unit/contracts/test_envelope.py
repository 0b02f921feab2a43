"""Events travel as envelopes that carry their payload's own fields."""

import uuid

import pytest
from pydantic import ValidationError

from contracts.envelope import RawEnvelope, new_envelope
from contracts.events import EVENT_PAYLOADS, parse_payload, payload_class
from contracts.events.identity import BillingMode, WorkspaceCreated
from contracts.topics import Topic


def workspace_created() -> WorkspaceCreated:
    root_id = uuid.uuid4()
    return WorkspaceCreated(
        id=root_id,
        parent_id=None,
        root_id=root_id,
        billing_root_id=root_id,
        depth=0,
        name="Acme",
        billing_mode=BillingMode.OWN,
        api_access=True,
        strict_quota=False,
    )


def test_an_envelope_round_trips_with_its_payload_fields() -> None:
    payload = workspace_created()
    envelope = new_envelope(
        payload,
        producer="identity",
        root_id=payload.root_id,
        workspace_id=payload.id,
        actor="user:founder",
        correlation_id="req-1",
    )

    received = RawEnvelope.model_validate_json(envelope.model_dump_json())

    assert received.type == "workspace.created"
    assert received.version == 1
    assert received.root_id == payload.root_id
    assert received.correlation_id == "req-1"
    assert parse_payload(received) == payload


def test_an_envelope_with_an_unknown_field_is_refused() -> None:
    payload = workspace_created()
    raw = new_envelope(
        payload,
        producer="identity",
        root_id=payload.root_id,
        workspace_id=None,
        actor=None,
        correlation_id=None,
    ).model_dump(mode="json")
    raw["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        RawEnvelope.model_validate(raw)


def test_a_payload_is_frozen_and_strict() -> None:
    payload = workspace_created()
    with pytest.raises(ValidationError):
        payload.name = "Renamed"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="colour"):
        WorkspaceCreated.model_validate({**payload.model_dump(), "colour": "blue"})


def test_an_unknown_event_type_has_no_payload_class() -> None:
    assert payload_class("workspace.created", 1) is WorkspaceCreated
    assert payload_class("workspace.created", 99) is None
    assert payload_class("workspace.teleported", 1) is None


NAMED_BY_THE_DESIGN = {"credits.low"}
"""Event types the design document fixes by name: a state reached, not a past-tense verb."""


def test_every_event_names_a_known_topic_and_a_past_tense_type() -> None:
    for payload in EVENT_PAYLOADS:
        assert payload.topic in set(Topic)
        aggregate, verb = payload.event_type.split(".")
        assert aggregate
        assert verb.endswith("ed") or payload.event_type in NAMED_BY_THE_DESIGN


def test_topics_follow_the_naming_rule() -> None:
    for topic in Topic:
        prefix, service, aggregate = topic.value.split(".")
        assert prefix == "atrium"
        assert service in {"identity", "billing", "apikeys", "assets", "gateway"}
        assert aggregate
