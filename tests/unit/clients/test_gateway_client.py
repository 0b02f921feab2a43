"""The shared client of the public API, against a gateway played by a mock transport."""

from __future__ import annotations

import httpx
import pytest

from clients.gateway import Gateway, Problem

PROBLEM = "application/problem+json"


def refusal(status: int, slug: str) -> httpx.Response:
    body = {"type": slug, "title": slug, "status": status, "detail": f"{slug} detail"}
    return httpx.Response(status, json=body, headers={"content-type": PROBLEM, "retry-after": "0"})


def gateway_answering(*answers: httpx.Response) -> tuple[Gateway, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return queue.pop(0)

    return Gateway("token", transport=httpx.MockTransport(answer)), sent


@pytest.mark.parametrize(
    "refused", [refusal(429, "rate-limited"), refusal(503, "not-ready-yet")], ids=["429", "503"]
)
async def test_a_read_refused_for_now_is_asked_again(refused: httpx.Response) -> None:
    gateway, sent = gateway_answering(refused, httpx.Response(200, json={"id": "w"}))

    assert await gateway.get("/v1/workspaces/w") == {"id": "w"}
    assert len(sent) == 2


async def test_a_write_without_an_idempotency_key_is_sent_once() -> None:
    gateway, sent = gateway_answering(refusal(429, "rate-limited"))

    with pytest.raises(Problem) as refused:
        await gateway.put("/v1/workspaces/w/allocations", {"generative_credits": 1})

    assert (refused.value.status, str(refused.value)) == (429, "rate-limited detail")
    assert len(sent) == 1


async def test_a_write_with_an_idempotency_key_may_be_sent_again() -> None:
    gateway, sent = gateway_answering(
        refusal(503, "not-ready-yet"), httpx.Response(201, json={"id": "p"})
    )

    assert await gateway.post("/v1/purchases", {}, idempotency_key="k") == {"id": "p"}
    assert [request.headers["idempotency-key"] for request in sent] == ["k", "k"]


async def test_a_refusal_that_lasts_ends_as_its_problem() -> None:
    gateway, sent = gateway_answering(*(refusal(429, "rate-limited") for _ in range(4)))

    with pytest.raises(Problem, match="rate-limited detail"):
        await gateway.get("/v1/workspaces")
    assert len(sent) == 4


async def test_an_other_server_error_is_not_asked_again() -> None:
    gateway, sent = gateway_answering(refusal(503, "service-unavailable"))

    with pytest.raises(Problem):
        await gateway.get("/v1/workspaces")
    assert len(sent) == 1
