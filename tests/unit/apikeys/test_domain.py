"""apikeys' rules, without a database: a key's status over time, rotation, usage periods."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.permissions import Role
from services.apikeys.authorization import (
    require_api_access,
    require_api_access_on,
    require_gateway,
    require_key_manager,
    require_key_reader,
)
from services.apikeys.domain import (
    ApiAccessDisabledError,
    ExpiryInThePastError,
    KeyState,
    KeyStatus,
    UsagePeriod,
    WorkspaceStatus,
    check_expiry,
    counts_as_error,
    utc_day,
)
from services.apikeys.repository.workspaces import WorkspaceCopy
from services.apikeys.schemas import CreateApiKeyRequest
from shared.errors import ForbiddenError, NotFoundError
from shared.principal import Principal

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def state(
    *,
    expires_in: timedelta | None = None,
    revoked_in: timedelta | None = None,
    suspended: bool = False,
) -> KeyState:
    return KeyState(
        expires_at=None if expires_in is None else NOW + expires_in,
        revoked_at=None if revoked_in is None else NOW + revoked_in,
        suspended=suspended,
    )


def test_a_new_key_is_active() -> None:
    assert state().status(NOW) is KeyStatus.ACTIVE


def test_a_key_is_revoked_from_the_moment_its_revocation_takes_effect() -> None:
    rotated = state(revoked_in=10 * SECOND)

    assert rotated.status(NOW) is KeyStatus.ACTIVE
    assert rotated.status(NOW + 10 * SECOND) is KeyStatus.REVOKED


def test_revoked_wins_over_expired_and_expired_over_suspended() -> None:
    everything = state(expires_in=-SECOND, revoked_in=-SECOND, suspended=True)
    expired_and_suspended = state(expires_in=-SECOND, suspended=True)

    assert everything.status(NOW) is KeyStatus.REVOKED
    assert expired_and_suspended.status(NOW) is KeyStatus.EXPIRED
    assert state(suspended=True).status(NOW) is KeyStatus.SUSPENDED


def test_a_key_expires_at_its_expiry_exactly() -> None:
    expiring = state(expires_in=SECOND)

    assert expiring.status(NOW) is KeyStatus.ACTIVE
    assert expiring.status(NOW + SECOND) is KeyStatus.EXPIRED


def test_only_a_key_nobody_revoked_or_rotated_and_not_expired_may_be_rotated() -> None:
    assert state().may_rotate(NOW)
    assert state(suspended=True).may_rotate(NOW)
    assert not state(revoked_in=60 * SECOND).may_rotate(NOW), "in a rotation's grace"
    assert not state(revoked_in=-SECOND).may_rotate(NOW)
    assert not state(expires_in=-SECOND).may_rotate(NOW)


def test_an_expiry_must_lie_in_the_future() -> None:
    check_expiry(None, NOW)
    check_expiry(NOW + SECOND, NOW)
    with pytest.raises(ExpiryInThePastError):
        check_expiry(NOW, NOW)
    with pytest.raises(ExpiryInThePastError):
        check_expiry(NOW - SECOND, NOW)


def test_usage_covers_the_last_thirty_days_by_default() -> None:
    today = date(2026, 12, 2)

    assert UsagePeriod.of(None, None, today=today) == UsagePeriod(date(2026, 11, 3), today)
    assert UsagePeriod.of(None, date(2026, 1, 30), today=today).first == date(2026, 1, 1)
    assert UsagePeriod.of(date(2026, 12, 1), None, today=today).last == today


def test_a_usage_period_may_be_of_any_length_and_an_inverted_one_holds_no_day() -> None:
    today = date(2026, 12, 2)

    assert UsagePeriod.of(date(1, 1, 1), date(9999, 12, 31), today=today) == UsagePeriod(
        date(1, 1, 1), date(9999, 12, 31)
    )
    assert UsagePeriod.of(None, date(1, 1, 5), today=today) == UsagePeriod(
        date(1, 1, 1), date(1, 1, 5)
    )
    inverted = UsagePeriod.of(date(2026, 12, 2), date(2026, 12, 1), today=today)
    assert inverted.first > inverted.last


def test_four_and_five_hundreds_count_as_errors() -> None:
    assert [counts_as_error(status) for status in (200, 201, 399, 400, 402, 429, 500)] == [
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]


def test_a_moment_counts_on_its_utc_day() -> None:
    late_in_new_york = datetime(2026, 12, 1, 23, 30, tzinfo=UTC) - timedelta(hours=5)
    east_of_utc = datetime.fromisoformat("2026-12-02T01:00:00+02:00")

    assert utc_day(late_in_new_york) == date(2026, 12, 1)
    assert utc_day(east_of_utc) == date(2026, 12, 1)


WORKSPACE = uuid.uuid4()


def person(role: Role | None, *, ancestor: bool = False) -> Principal:
    return Principal(
        user_id="ada", workspace_id=WORKSPACE, role=role, ancestor_super_admin=ancestor
    )


def key_caller() -> Principal:
    return Principal(api_key_id=uuid.uuid4(), workspace_id=WORKSPACE, role=Role.DEVELOPER)


def test_developers_and_super_admins_read_keys_creators_and_viewers_do_not() -> None:
    require_key_reader(person(Role.DEVELOPER), WORKSPACE)
    require_key_reader(person(Role.SUPER_ADMIN), WORKSPACE)
    require_key_reader(key_caller(), WORKSPACE)
    for role in (Role.CREATOR, Role.VIEWER, None):
        with pytest.raises(ForbiddenError):
            require_key_reader(person(role), WORKSPACE)


def test_a_key_cannot_manage_keys() -> None:
    require_key_manager(person(Role.DEVELOPER), WORKSPACE)
    with pytest.raises(ForbiddenError):
        require_key_manager(key_caller(), WORKSPACE)


def test_a_principal_for_another_workspace_finds_nothing() -> None:
    with pytest.raises(NotFoundError):
        require_key_reader(person(Role.SUPER_ADMIN), uuid.uuid4())


def test_without_api_access_only_a_super_admin_from_above_sees_the_keys() -> None:
    closed = WorkspaceCopy(WORKSPACE, None, WORKSPACE, False, WorkspaceStatus.ACTIVE)

    require_api_access(person(Role.SUPER_ADMIN, ancestor=True), closed)
    with pytest.raises(ApiAccessDisabledError):
        require_api_access(person(Role.SUPER_ADMIN), closed)
    with pytest.raises(ApiAccessDisabledError):
        require_api_access_on(closed)


def test_only_the_gateway_looks_keys_up() -> None:
    require_gateway(Principal())
    for caller in (person(Role.SUPER_ADMIN), key_caller(), Principal(user_id="ada")):
        with pytest.raises(NotFoundError):
            require_gateway(caller)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": " "},
        {"name": "ci", "extra": 1},
        {"name": "ci", "monthly_credit_limit": -1},
        {"name": "ci", "monthly_credit_limit": "5"},
        {"name": "ci", "monthly_credit_limit": 10**12 + 1},
        {"name": "ci", "monthly_credit_limit": 1.0},
        {"name": "ci", "rate_limit": {"requests": "10", "period_seconds": 60}},
        {"name": "ci", "rate_limit": {"requests": 10}},
        {"name": "ci", "rate_limit": {"requests": 0, "period_seconds": 60}},
        {"name": "ci", "rate_limit": {"requests": 10, "period_seconds": 60, "burst": 1}},
        {"name": "ci", "expires_at": "2030-01-01T00:00:00"},
        {"name": "ci", "expires_at": "not a time"},
    ],
)
def test_a_creation_request_is_strict(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreateApiKeyRequest.model_validate_json(json.dumps(body))


def test_a_full_creation_request_is_read() -> None:
    request = CreateApiKeyRequest.model_validate(
        {
            "name": "  CI  ",
            "expires_at": "2030-01-01T00:00:00+02:00",
            "rate_limit": {"requests": 10, "period_seconds": 60},
            "monthly_credit_limit": 0,
        }
    )

    assert request.name == "CI"
    assert request.expires_at == datetime(2029, 12, 31, 22, 0, tzinfo=UTC)
    assert request.rate_limit is not None
    assert request.rate_limit.requests == 10
    assert request.monthly_credit_limit == 0
