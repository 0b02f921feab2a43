"""Credits and limits: `atrium allocate`, `atrium balances`, `atrium purchase` and
`atrium usage` (a bar chart of what was spent)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from clients.cli import output, session
from clients.cli.charts import Bar, bar_chart
from clients.cli.options import AsJson, Since, Until, Workspace
from clients.gateway import new_idempotency_key

Amount = Annotated[int | None, typer.Option(min=0)]
POOLS = ("generative_credits", "api_credits", "avatar_slots", "seats")


class Grouping(StrEnum):
    DAY = "day"
    OPERATION = "operation"
    API_KEY = "api_key"


def allocate(
    workspace: Workspace,
    generative_credits: Amount = None,
    api_credits: Amount = None,
    avatar_slots: Amount = None,
    seats: Amount = None,
    as_json: AsJson = False,
) -> None:
    """Set a sub-workspace's allocations (the difference moves from or to its parent)."""
    asked = {
        "generative_credits": generative_credits,
        "api_credits": api_credits,
        "avatar_slots": avatar_slots,
        "seats": seats,
    }
    body = {pool: amount for pool, amount in asked.items() if amount is not None}
    if not body:
        raise typer.BadParameter(
            "give at least one of --generative-credits, --api-credits, --avatar-slots, --seats"
        )
    allocations = session.call(
        lambda gateway: gateway.put(f"/v1/workspaces/{workspace}/allocations", body)
    )
    if as_json:
        output.print_json(allocations)
        return
    output.console().print(
        output.table(
            f"Allocations of {workspace}",
            ("pool", "allocated"),
            ((pool, allocations.get(pool)) for pool in POOLS),
        )
    )


def balances(workspace: Workspace, as_json: AsJson = False) -> None:
    """What a workspace holds: credits (balance, allocated) and capacities (used, limit)."""
    held = session.call(lambda gateway: gateway.get(f"/v1/workspaces/{workspace}/balances"))
    if as_json:
        output.print_json(held)
        return
    output.console().print(
        output.table(
            f"Balances of {workspace}",
            ("pool", "balance", "allocated", "used", "limit"),
            (balance_row(pool, held[pool]) for pool in POOLS),
        )
    )


def balance_row(pool: str, held: dict[str, Any]) -> tuple[Any, ...]:
    return (pool, held.get("balance"), held.get("allocated"), held.get("used"), held.get("limit"))


def purchase(
    workspace: Workspace,
    pool: Annotated[str, typer.Argument(help=f"One of {', '.join(POOLS)}.")],
    quantity: int,
    as_json: AsJson = False,
) -> None:
    """Buy QUANTITY of POOL for a billing root (made once, however often it is retried)."""
    receipt = session.call(
        lambda gateway: gateway.post(
            f"/v1/workspaces/{workspace}/purchases",
            {"pool": pool, "quantity": quantity},
            idempotency_key=new_idempotency_key(),
        )
    )
    if as_json:
        output.print_json(receipt)
        return
    output.console().print(
        f"Bought {receipt['quantity']} {receipt['pool']}: balance now {receipt['balance_after']} "
        f"(transaction {receipt['transaction_id']})."
    )


def usage(
    workspace: Workspace,
    by: Annotated[Grouping, typer.Option(help="One bar per day, operation or API key.")] = (
        Grouping.DAY
    ),
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Credits spent, as a bar chart with its numbers."""
    report = session.call(
        lambda gateway: gateway.get(
            f"/v1/workspaces/{workspace}/usage", group_by=by.value, **{"from": since, "to": until}
        )
    )
    if as_json:
        output.print_json(report)
        return
    bars = [
        Bar(item["key"] or "(none)", item["credits"], (item["count"],)) for item in report["items"]
    ]
    output.console().print(
        bar_chart(
            bars,
            title=f"Credits spent in {workspace}, by {by.value}",
            headers=(by.value, "credits", "spends"),
        )
    )
