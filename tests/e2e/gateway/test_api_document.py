"""The API answers as its document says, whoever asks: schemathesis against the
gateway's merged `/openapi.json`, briefly, as a workspace's Super Admin, as a developer,
a creator and a viewer of it, as an API key of it and as a stranger to it
(`bench/schemathesis_run.py` is the longer run, and the stateful one)."""

from __future__ import annotations

import pytest

from bench.schemathesis_run import (
    DOCUMENTATION_CHECKS,
    IN_THE_WORKSPACE,
    ROLES,
    Caller,
    Tally,
    callers_each_in_a_workspace,
    fuzz,
    report,
)
from bench.system import NO_RATE_LIMITS
from infra.sandbox import Sandbox
from tests.e2e.conftest import RunningSystem

pytestmark = pytest.mark.e2e

SUPER_ADMIN_SECONDS = 12
OTHER_CALLER_SECONDS = 4
"""The Super Admin's run is the long one (every operation, two generated cases each);
each other caller gets one per operation on the workspace, where callers' answers
differ, for as long as this allows: the whole module stays about a minute. The coverage
and stateful phases are the bench's (`--stateful`)."""


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return NO_RATE_LIMITS


@pytest.fixture(scope="module")
def callers(system: RunningSystem, atrium: Sandbox) -> dict[str, Caller]:
    return {
        caller.role: caller
        for caller in callers_each_in_a_workspace(system.gateway.url, atrium.settings)
    }


def run_as(system: RunningSystem, caller: Caller) -> Tally:
    if caller.role == "super_admin":
        return fuzz(
            system.gateway.url,
            caller,
            max_examples=2,
            max_time=SUPER_ADMIN_SECONDS,
            seed=20,
            phases=("examples", "fuzzing"),
        )
    return fuzz(
        system.gateway.url,
        caller,
        max_examples=1,
        max_time=OTHER_CALLER_SECONDS,
        seed=20,
        phases=("fuzzing",),
        paths=IN_THE_WORKSPACE,
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_one_the_document_lists_and_none_is_a_server_error(
    system: RunningSystem, callers: dict[str, Caller], role: str
) -> None:
    tally = run_as(system, callers[role])

    found = report(tally, examples=True)
    print(f"{role}: {found}")
    assert tally.errors == [], found
    assert tally.operations, found
    assert tally.server_errors == 0, found
    for check in ("not_a_server_error", *DOCUMENTATION_CHECKS):
        assert tally.checks[check]["success"] > 0, found
        assert tally.failed(check) == 0, found
    if role == "stranger":
        # Nothing of a workspace answers someone with no place in it.
        assert not tally.succeeded, found
    else:
        # Its members and its key are answered, whatever another caller's run changed.
        assert tally.succeeded, found
