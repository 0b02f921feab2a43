"""The rule a spend made with an API key must pass, without a database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import KeyBudget, KeyCreditLimitReachedError, check_key_spend
from shared.errors import ForbiddenError

WORKSPACE = uuid.uuid4()


def a_key(**changes: object) -> KeyBudget:
    key_id = uuid.uuid4()
    key = KeyBudget(
        key_id=key_id,
        workspace_id=WORKSPACE,
        budget_id=key_id,
        monthly_credit_limit=10,
        month=date(2026, 12, 1),
        spent=4,
        revoked=False,
        expired=False,
        suspended=False,
    )
    return dataclasses.replace(key, **changes)  # type: ignore[arg-type]


def test_a_spend_that_fits_what_is_left_of_the_limit_passes_to_the_last_credit() -> None:
    check_key_spend(a_key(), WORKSPACE, 6)


def test_a_spend_one_credit_past_the_limit_is_refused() -> None:
    with pytest.raises(KeyCreditLimitReachedError, match="spent 4 of its monthly limit of 10"):
        check_key_spend(a_key(), WORKSPACE, 7)


@given(spent=st.integers(0, 10**9), amount=st.integers(0, 10**9))
def test_a_key_without_a_limit_refuses_no_amount(spent: int, amount: int) -> None:
    check_key_spend(a_key(monthly_credit_limit=None, spent=spent), WORKSPACE, amount)


@given(limit=st.integers(0, 1_000), spent=st.integers(0, 1_000), amount=st.integers(0, 1_000))
def test_a_spend_passes_exactly_when_it_fits_the_limit(limit: int, spent: int, amount: int) -> None:
    key = a_key(monthly_credit_limit=limit, spent=spent)
    if spent + amount <= limit:
        check_key_spend(key, WORKSPACE, amount)
    else:
        with pytest.raises(KeyCreditLimitReachedError):
            check_key_spend(key, WORKSPACE, amount)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"revoked": True}, "revoked"),
        ({"expired": True}, "expired"),
        ({"suspended": True}, "suspended"),
        ({"workspace_id": uuid.uuid4()}, "another workspace"),
    ],
)
def test_a_key_that_may_not_act_here_is_refused_even_for_free(
    changes: dict[str, object], why: str
) -> None:
    with pytest.raises(ForbiddenError, match=why):
        check_key_spend(a_key(**changes), WORKSPACE, 0)
