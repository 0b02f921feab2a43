"""A service's API document tells each error it answers as a problem, under its status,
and what its names accept as JSON Schema can say it."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any

import jsonschema_rs
import pytest
from fastapi import FastAPI, Header
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts import problems
from shared.errors import DomainError, NotFoundError
from shared.fields import NAME_PATTERN, DisplayName
from shared.http import install_http_plumbing
from shared.openapi import problems_for

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class SeatLimitReachedError(DomainError):
    problem = problems.SEAT_LIMIT_REACHED


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: DisplayName


def service_document() -> dict[str, Any]:
    app = FastAPI()
    install_http_plumbing(app, {})

    @app.post(
        "/things/{thing_id}/invitations",
        status_code=201,
        responses=problems_for(SeatLimitReachedError, NotFoundError),
    )
    async def invite(
        thing_id: int,
        body: Named,
        key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> None:
        """Stands for an endpoint of a service."""

    @app.get("/things")
    async def things() -> list[str]:
        return []

    return app.openapi()


def problem_types(response: dict[str, Any]) -> set[str]:
    return set(response["content"]["application/problem+json"]["examples"])


def test_each_declared_problem_is_a_problem_json_answer_under_its_status() -> None:
    responses = service_document()["paths"]["/things/{thing_id}/invitations"]["post"]["responses"]

    assert problem_types(responses["409"]) == {"seat-limit-reached"}
    assert problem_types(responses["404"]) == {"not-found"}
    assert problem_types(responses["422"]) == {"validation-failed", "idempotency-key-reused"}
    assert problem_types(responses["400"]) == {"malformed-request"}
    assert problem_types(responses["500"]) == {"internal-error"}
    for status, response in responses.items():
        if int(status) >= 400:
            assert set(response["content"]) == {"application/problem+json"}, status
            assert response["content"]["application/problem+json"]["schema"] == PROBLEM
    assert "`seat-limit-reached`: The seat limit is reached" in responses["409"]["description"]


def test_an_operation_with_nothing_to_validate_answers_only_500_besides_its_own() -> None:
    responses = service_document()["paths"]["/things"]["get"]["responses"]

    assert set(responses) == {"200", "500"}


def test_every_answer_carries_the_request_id_and_fastapis_own_422_body_is_gone() -> None:
    document = service_document()

    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                assert response["headers"]["X-Request-Id"] == {
                    "$ref": "#/components/headers/X-Request-Id"
                }
    schemas = document["components"]["schemas"]
    assert {"Problem", "FieldError"} <= set(schemas)
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    assert document["components"]["headers"]["X-Request-Id"]["required"] is True


def test_readiness_documents_its_503_with_retry_after() -> None:
    responses = service_document()["paths"]["/readyz"]["get"]["responses"]

    assert problem_types(responses["503"]) == {"service-unavailable"}
    assert responses["503"]["headers"]["Retry-After"]["required"] is False


def test_the_name_schema_says_what_the_name_rule_accepts() -> None:
    schema = Named.model_json_schema()["properties"]["name"]

    assert schema["pattern"] == NAME_PATTERN
    assert schema["minLength"] == 1


_SPACES = " \t\n\x0b\x1c\x85\u00a0\u2000\u2028\u3000"
_INVISIBLE = "\x00\x1f\x7f\u00ad\u200b\u202e\u2060\ufeff"
_INVISIBLE_BEYOND_THE_CHARACTERS = "\U000110bd\U000e0001\U000e0041\U000f956d\U0010fffd"
_CHARACTERS = st.characters(exclude_categories=["Cs"])
_names = st.text(
    st.one_of(
        _CHARACTERS, st.sampled_from(_SPACES + _INVISIBLE + _INVISIBLE_BEYOND_THE_CHARACTERS + "a")
    ),
    max_size=110,
)
_long_names = st.tuples(
    st.text(st.sampled_from(_SPACES), max_size=4),
    st.text(_CHARACTERS, min_size=98, max_size=102),
    st.text(st.sampled_from(_SPACES), max_size=4),
).map("".join)


_PATTERN = re.compile(NAME_PATTERN)
_VALIDATOR = jsonschema_rs.validator_for({"type": "string", "pattern": NAME_PATTERN})


def is_drawn(char: str) -> bool:
    """A letter, digit, punctuation mark or symbol that shows, as the name rule counts."""
    blank = "\u115f\u1160\u3164\uffa0\u2800"
    return unicodedata.category(char)[0] in "LNPS" and char not in blank


def accepted(name: str) -> bool:
    try:
        Named(name=name)
    except ValidationError:
        return False
    return True


@settings(max_examples=1000)
@given(_names | _long_names)
def test_a_name_matches_the_pattern_exactly_when_the_service_accepts_it(name: str) -> None:
    """In Python's regular expressions and in the Rust ones of JSON Schema validators
    (those of schemathesis among them), for every character but the surrogates. A name
    with no character that is drawn (only combining marks, blank letters or unassigned
    code points) is the one thing the pattern cannot say without a
    look-ahead, which those validators lack: the service refuses it all the same."""
    if not any(map(is_drawn, name)):
        assert not accepted(name)
        return
    assert bool(_PATTERN.fullmatch(name)) == accepted(name)
    assert _VALIDATOR.is_valid(name) == accepted(name)


def test_a_name_with_a_lone_surrogate_is_refused_not_stored() -> None:
    """FastAPI reads a body with `json.loads`, which makes `"a\\ud800"` a string."""
    with pytest.raises(ValidationError):
        Named.model_validate(json.loads('{"name": "a\\ud800"}'))


@pytest.mark.parametrize(
    ("name", "valid"),
    [(" Acme ", True), ("a" * 100, True), ("  " + "a" * 100 + "\n", True), ("a" * 101, False)],
)
def test_the_pattern_allows_whitespace_around_at_most_100_characters(
    name: str, *, valid: bool
) -> None:
    assert bool(re.fullmatch(NAME_PATTERN, name)) is valid
