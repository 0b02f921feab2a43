"""Usage of API keys, counted from events: requests and errors from the gateway's
batches (`api.request_recorded`), credits from billing's `transaction.posted` made
with a key. Each per key per UTC day and per workspace per UTC day; a parent's
figures are its own only.

Each event is applied once (the inbox records it in the same transaction), so a
redelivered batch counts nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime

from services.apikeys.commands import CountCreditsSpent, CountRequests
from services.apikeys.domain import counts_as_error, utc_day
from services.apikeys.repository.keys import KeyRepository
from services.apikeys.repository.usage import DayUsage, UsageRepository
from shared.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

API_CREDITS = "api_credits"


async def count_requests(uow: UnitOfWork, command: CountRequests) -> None:
    """Each request adds one to its key's and its workspace's day (the UTC day it
    arrived), and one error when its answer was 4xx or 5xx; each key's `last_used_at`
    moves to its latest request."""
    keys = KeyRepository(uow.session)
    known = await keys.of_workspace(
        command.workspace_id, {request.key_id for request in command.requests}
    )
    per_key: dict[tuple[uuid.UUID, date], DayUsage] = {}
    per_day: dict[date, DayUsage] = {}
    last_used: dict[uuid.UUID, datetime] = {}
    ignored = 0
    for request in command.requests:
        if request.key_id not in known:
            ignored += 1
            continue
        day = utc_day(request.at)
        one = DayUsage(day=day, requests=1, errors=int(counts_as_error(request.status)))
        per_key[request.key_id, day] = per_key.get((request.key_id, day), DayUsage(day)) + one
        per_day[day] = per_day.get(day, DayUsage(day)) + one
        if request.key_id not in last_used or last_used[request.key_id] < request.at:
            last_used[request.key_id] = request.at
    if ignored:
        logger.warning(
            "ignored %d recorded requests of keys that are not workspace %s's",
            ignored,
            command.workspace_id,
        )
    usage = UsageRepository(uow.session)
    await usage.add_to_keys(per_key)
    await usage.add_to_workspace(command.workspace_id, list(per_day.values()))
    await keys.record_use(last_used)


async def count_credits_spent(uow: UnitOfWork, command: CountCreditsSpent) -> None:
    """What a spend made with a key took: its API credits that went to the world."""
    spent_credits = sum(
        line.amount
        for line in command.lines
        if line.workspace_id is None and line.pool == API_CREDITS and line.amount > 0
    )
    if spent_credits == 0:
        return
    known = await KeyRepository(uow.session).of_workspace(
        command.workspace_id, {command.api_key_id}
    )
    if not known:
        logger.warning(
            "ignored credits spent with key %s, which is not workspace %s's",
            command.api_key_id,
            command.workspace_id,
        )
        return
    spent = DayUsage(day=command.day, credits_spent=spent_credits)
    usage = UsageRepository(uow.session)
    await usage.add_to_keys({(command.api_key_id, command.day): spent})
    await usage.add_to_workspace(command.workspace_id, [spent])
