"""`atrium tree`'s line for a workspace, with the figures the caller may read."""

from __future__ import annotations

from clients.cli.workspaces import label
from clients.tree import Node

WORKSPACE = {"id": "w1", "name": "Client A", "billing_mode": "parent", "api_access": False}


def test_a_workspace_shows_its_settings_seats_and_balances() -> None:
    seats = {"used": 2, "pending": 1, "limit": 5, "cap": 3}
    balances = {"generative_credits": {"balance": 300}, "api_credits": {"balance": 0}}

    shown = label(Node(WORKSPACE, "viewer", seats, balances)).plain

    assert shown == (
        "Client A  w1\nbilling parent · API access off · seats 2 used, 1 pending, limit 5 "
        "(cap 3) · generative credits 300 · API credits 0"
    )


def test_a_figure_the_caller_may_not_read_shows_as_missing() -> None:
    shown = label(Node(WORKSPACE, "viewer")).plain

    assert shown.endswith("API access off · seats — · generative credits — · API credits —")
