"""billing's rules, without a database."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import (
    BelowUsageError,
    Charge,
    HeldPool,
    InsufficientBalanceError,
    InsufficientCreditsError,
    Line,
    Operation,
    Plan,
    Pool,
    allocation_change,
    check_balanced,
    fell_below,
    pool_paying_for,
    split_charge,
)
from services.billing.settings import BillingSettings


def test_the_default_prices_are_the_documented_ones() -> None:
    prices = BillingSettings().prices

    assert prices.price(Operation.AVATAR_FEE, 1) == 100
    assert prices.price(Operation.VIDEO_GENERATION, 3) == 30
    assert prices.price(Operation.IMAGE_CREATION, 1) == 2
    assert prices.price(Operation.TRANSLATION, 2) == 10
    assert prices.price(Operation.API_CALL, 1_000) == 0


def test_an_api_key_pays_with_api_credits_and_a_person_with_generative_credits() -> None:
    assert pool_paying_for(by_api_key=True) is Pool.API_CREDITS
    assert pool_paying_for(by_api_key=False) is Pool.GENERATIVE_CREDITS


def test_a_plan_grants_only_the_pools_it_gives_something_of() -> None:
    plan = Plan(code="default", seats=5, avatar_slots=3, generative_credits=0, api_credits=10)

    assert plan.grants() == {Pool.SEATS: 5, Pool.AVATAR_SLOTS: 3, Pool.API_CREDITS: 10}


def test_a_spend_comes_out_of_the_own_balance_first_then_the_parents() -> None:
    assert split_charge(20, own_balance=50, parent_balance=None) == Charge(20, 0)
    assert split_charge(20, own_balance=5, parent_balance=100) == Charge(5, 15)
    with pytest.raises(InsufficientCreditsError):
        split_charge(20, own_balance=5, parent_balance=14)
    with pytest.raises(InsufficientCreditsError):
        split_charge(20, own_balance=19, parent_balance=None)


def test_an_allocation_moves_the_difference_and_never_below_what_was_used() -> None:
    held = HeldPool(allocated=300, balance=280)  # 20 spent

    assert allocation_change(Pool.GENERATIVE_CREDITS, 400, held, parent_balance=100) == 100
    assert allocation_change(Pool.GENERATIVE_CREDITS, 100, held, parent_balance=0) == -200
    with pytest.raises(BelowUsageError):
        allocation_change(Pool.GENERATIVE_CREDITS, 10, held, parent_balance=1_000)
    with pytest.raises(InsufficientBalanceError):
        allocation_change(Pool.GENERATIVE_CREDITS, 401, held, parent_balance=100)


@given(
    allocated=st.integers(0, 1_000),
    spent_share=st.floats(0, 1),
    target=st.integers(0, 2_000),
    parent_balance=st.integers(0, 2_000),
)
def test_an_allocation_change_never_leaves_either_side_negative(
    allocated: int, spent_share: float, target: int, parent_balance: int
) -> None:
    balance = allocated - int(allocated * spent_share)
    try:
        delta = allocation_change(
            Pool.API_CREDITS,
            target,
            HeldPool(allocated=allocated, balance=balance),
            parent_balance=parent_balance,
        )
    except (BelowUsageError, InsufficientBalanceError):
        return
    assert balance + delta >= 0
    assert parent_balance - delta >= 0
    assert allocated + delta == target


def test_a_transaction_whose_lines_do_not_sum_to_zero_per_pool_is_refused() -> None:
    workspace = uuid.uuid4()
    check_balanced([Line(workspace, Pool.SEATS, 5), Line(None, Pool.SEATS, -5)])
    with pytest.raises(ValueError, match="unbalanced"):
        check_balanced(
            [Line(workspace, Pool.SEATS, 5), Line(None, Pool.AVATAR_SLOTS, -5)],
        )


def test_a_balance_falls_below_the_warning_threshold_only_when_it_crosses_it() -> None:
    assert fell_below(100, before=110, after=90)
    assert fell_below(100, before=100, after=99)
    assert not fell_below(100, before=90, after=70)
    assert not fell_below(100, before=150, after=100)
    assert not fell_below(0, before=10, after=0)
