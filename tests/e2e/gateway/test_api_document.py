"""The API answers as its document says: schemathesis against the gateway's merged
`/openapi.json`, briefly (`bench/schemathesis_run.py` is the longer run)."""

from __future__ import annotations

import pytest

from bench.schemathesis_run import DOCUMENTATION_CHECKS, fuzz, report, sign_in
from bench.system import NO_RATE_LIMITS
from infra.sandbox import Sandbox
from tests.e2e.conftest import RunningSystem

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return NO_RATE_LIMITS


def test_every_answer_is_one_the_document_lists_and_none_is_a_server_error(
    system: RunningSystem, atrium: Sandbox
) -> None:
    caller = sign_in(system.gateway.url, atrium.settings)

    tally = fuzz(system.gateway.url, caller, max_examples=3, max_time=30, seed=20)

    found = report(tally, examples=True)
    assert tally.errors == [], found
    assert tally.statuses[200] + tally.statuses[201] > 0, found
    assert tally.server_errors == 0, found
    for check in ("not_a_server_error", *DOCUMENTATION_CHECKS):
        assert tally.checks[check]["success"] > 0, found
        assert tally.failed(check) == 0, found
