"""Every error leaves a service as application/problem+json with a stable type."""

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from contracts import problems
from shared.errors import DomainError, NotFoundError
from shared.http import install_http_plumbing


class SeatLimitReachedError(DomainError):
    problem = problems.SEAT_LIMIT_REACHED


class PastError(DomainError):
    problem = problems.VALIDATION_FAILED


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


def build_app() -> FastAPI:
    app = FastAPI()

    async def never_ready() -> None:
        raise ConnectionRefusedError

    install_http_plumbing(app, {"database": never_ready})

    @app.get("/missing")
    async def missing() -> None:
        raise NotFoundError("No such thing.")

    @app.post("/seats")
    async def seats() -> None:
        raise SeatLimitReachedError("All 5 seats are taken.")

    @app.post("/past")
    async def past() -> None:
        message = "when must be in the future."
        raise PastError(message, errors=[{"field": "when", "message": message, "type": "past"}])

    @app.post("/validate")
    async def validate(body: Body, limit: Annotated[int, Query(le=200)] = 50) -> dict[str, int]:
        return {"count": body.count, "limit": limit}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


client = TestClient(build_app(), raise_server_exceptions=False)


def test_a_domain_error_carries_its_type_and_status() -> None:
    response = client.post("/seats")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "seat-limit-reached",
        "title": "The seat limit is reached",
        "status": 409,
        "detail": "All 5 seats are taken.",
        "request_id": response.headers["x-request-id"],
    }


def test_validation_errors_list_each_field() -> None:
    response = client.post("/validate?limit=500", json={"count": "many", "extra": True})
    assert response.status_code == 422
    fields = {error["field"]: error["type"] for error in response.json()["errors"]}
    assert fields == {
        "count": "int_parsing",
        "extra": "extra_forbidden",
        "query.limit": "less_than_equal",
    }


def test_an_unknown_route_is_a_not_found_problem() -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["type"] == "not-found"


def test_an_unexpected_failure_hides_its_internals() -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "internal-error"
    assert "secret" not in response.text


def test_an_unexpected_failure_tells_the_client_that_the_connection_closes() -> None:
    """The server closes it after such an answer: a pooling client must not reuse it."""
    assert client.get("/boom").headers["connection"] == "close"


def test_readiness_names_the_dependency_that_is_down() -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


def test_a_rule_that_finds_a_field_wrong_names_it_as_a_schema_would() -> None:
    response = client.post("/past")

    assert response.status_code == 422
    assert response.json()["type"] == "validation-failed"
    assert response.json()["errors"] == [
        {"field": "when", "message": "when must be in the future.", "type": "past"}
    ]
