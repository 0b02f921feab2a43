"""When a failed event is tried again, and when it is parked instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.inbox import ParkedState, RetryPolicy
from shared.inbox.policy import Failure, FailureKind, judge

POLICY = RetryPolicy(
    max_attempts=4,
    backoff_base=timedelta(seconds=1),
    not_yet_applicable_for=timedelta(seconds=60),
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def failure(
    attempts: int,
    kind: FailureKind = FailureKind.FAILED,
    *,
    deadline: datetime | None = None,
    by_operator: bool = False,
) -> Failure:
    return Failure(
        attempts=attempts,
        at=NOW,
        kind=kind,
        dependency_deadline_at=deadline,
        requested_by_operator=by_operator,
    )


def test_a_failing_event_waits_twice_as_long_after_each_attempt() -> None:
    waits = [judge(failure(attempts), POLICY).next_attempt_at for attempts in (1, 2, 3)]

    assert waits == [NOW + timedelta(seconds=s) for s in (1, 2, 4)]
    assert {judge(failure(a), POLICY).state for a in (1, 2, 3)} == {ParkedState.RETRYING}


def test_a_failing_event_is_parked_after_its_last_attempt() -> None:
    verdict = judge(failure(4), POLICY)

    assert (verdict.state, verdict.next_attempt_at) == (ParkedState.PARKED, None)


def test_an_event_not_applicable_yet_is_retried_until_its_deadline_however_many_attempts() -> None:
    first = judge(failure(1, FailureKind.NOT_YET_APPLICABLE), POLICY)
    assert first.state is ParkedState.RETRYING
    assert first.dependency_deadline_at == NOW + timedelta(seconds=60)

    deadline = NOW + timedelta(seconds=3)
    late = judge(failure(9, FailureKind.NOT_YET_APPLICABLE, deadline=deadline), POLICY)
    assert (late.state, late.next_attempt_at) == (ParkedState.RETRYING, deadline)

    past = judge(failure(10, FailureKind.NOT_YET_APPLICABLE, deadline=NOW), POLICY)
    assert past.state is ParkedState.PARKED


def test_an_unknown_event_is_parked_at_once() -> None:
    assert judge(failure(1, FailureKind.UNKNOWN_EVENT), POLICY).state is ParkedState.PARKED


def test_an_operators_retry_that_fails_parks_the_event_again_at_once() -> None:
    assert judge(failure(1, by_operator=True), POLICY).state is ParkedState.PARKED
    assert (
        judge(failure(1, FailureKind.NOT_YET_APPLICABLE, by_operator=True), POLICY).state
        is ParkedState.PARKED
    )
