"""Bodies are read as JSON strictly and alike in every service: a key named twice, a
body nested past reason, one not in UTF-8 or with `NaN` is refused before any endpoint
sees it."""

from __future__ import annotations

import importlib
import json

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from shared.errors import install_problem_handlers
from shared.json_body import (
    MAX_DEPTH,
    JsonBodyRoute,
    RefusedJsonError,
    UnreadableJsonError,
    declares_json,
    read_json,
)


def nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def test_json_that_a_careful_parser_takes_reads_as_pythons_does() -> None:
    body = b'{"operation": "image_creation", "quantity": 3, "tags": ["a", {"b": null}]}'

    assert read_json(body) == json.loads(body)
    assert read_json(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"quantity": 1, "quantity": 999999}', ("quantity",)),
        (b'{"outer": {"x": 1, "x": 1}}', ("x",)),
        (b'[{"a": 1}, {"b": 2, "b": 3}]', ("b",)),
    ],
)
def test_a_key_named_twice_in_one_object_is_refused(body: bytes, path: tuple[str]) -> None:
    with pytest.raises(RefusedJsonError) as refused:
        read_json(body)

    assert refused.value.kind == "duplicate_key"
    assert refused.value.path == path


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 10_000])
def test_a_body_nested_past_the_limit_is_refused(levels: int) -> None:
    with pytest.raises(RefusedJsonError) as refused:
        read_json(nested(levels))

    assert refused.value.kind == "too_deep"


def test_a_number_python_will_not_read_is_refused() -> None:
    with pytest.raises(RefusedJsonError) as refused:
        read_json(b'{"quantity": ' + b"9" * 5000 + b"}")

    assert refused.value.kind == "number_too_long"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\xff\xfe"}',
        '{"quantity": 1}'.encode("utf-16"),
        b'{"quantity": NaN}',
        b'{"quantity": -Infinity}',
        b'{"quantity": 1',
        b"\xef\xbb\xbf{}",
    ],
)
def test_a_body_that_is_not_utf8_json_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableJsonError):
        read_json(body)


@pytest.mark.parametrize(
    ("content_type", "json_declared"),
    [
        (None, True),
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
    ],
)
def test_bodies_are_read_as_json_where_fastapi_reads_them_so(
    content_type: str | None, json_declared: bool
) -> None:
    assert declares_json(content_type) is json_declared


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int


def an_app() -> TestClient:
    router = APIRouter(route_class=JsonBodyRoute)

    @router.post("/orders")
    async def order(body: Order) -> dict[str, int]:
        return {"quantity": body.quantity}

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    return TestClient(app)


def test_an_endpoint_answers_a_refused_body_with_a_problem_naming_the_field() -> None:
    client = an_app()

    twice = client.post(
        "/orders",
        content=b'{"quantity": 1, "quantity": 999999}',
        headers={"content-type": "application/json"},
    )
    unreadable = client.post(
        "/orders", content=b'{"quantity": NaN}', headers={"content-type": "application/json"}
    )
    fine = client.post("/orders", json={"quantity": 2})

    assert twice.status_code == 422
    assert twice.headers["content-type"] == "application/problem+json"
    assert twice.json()["errors"][0]["field"] == "quantity"
    assert twice.json()["errors"][0]["type"] == "duplicate_key"
    assert unreadable.status_code == 400
    assert unreadable.json()["type"] == "malformed-request"
    assert fine.json() == {"quantity": 2}


@pytest.mark.parametrize("service", ["identity", "billing", "assets", "apikeys"])
def test_every_endpoint_of_every_service_that_takes_a_body_reads_it_strictly(
    service: str,
) -> None:
    api = importlib.import_module(f"services.{service}.api")
    routers = [value for value in vars(api).values() if isinstance(value, APIRouter)]
    with_bodies = [
        route
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.body_field is not None
    ]

    assert with_bodies
    assert all(isinstance(route, JsonBodyRoute) for route in with_bodies)
