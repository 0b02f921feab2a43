"""`atrium-infra events`: what an operator does with the events a service parked.

    atrium-infra events parked [--service S]        list them, each key's in order
    atrium-infra events retry ID [--service S]      apply it again, then those behind it
    atrium-infra events discard ID [--service S]    drop it; those behind it wait for the
                                                    next retry

It connects as each service (its own login, see `Settings.database_url_for`). A retry
is applied by the running service with its own handlers, as every event is: this
command marks the event and waits for the outcome (`--wait` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from shared.db import Database, service_metadata
from shared.inbox import (
    Inbox,
    NotFirstOfItsKeyError,
    NotParkedError,
    ParkedEvent,
    ParkedState,
    QueueKey,
    inbox_table,
)
from shared.migrations import has_migrations
from shared.settings import ServiceName, Settings

POLL_SECONDS = 0.2


def services_with_an_inbox() -> list[ServiceName]:
    return [service for service in ServiceName if has_migrations(service)]


@contextlib.asynccontextmanager
async def inboxes_of(
    settings: Settings, services: Sequence[ServiceName]
) -> AsyncIterator[dict[str, Inbox]]:
    """Each service's inbox, reached with the service's own login."""
    async with contextlib.AsyncExitStack() as stack:
        inboxes = {}
        for service in services:
            database = Database(
                settings.database_url_for(service), schema=service.value, pool_size=1
            )
            stack.push_async_callback(database.dispose)
            inboxes[service.value] = Inbox(database, inbox_table(service_metadata(service.value)))
        yield inboxes


@dataclass(frozen=True, slots=True)
class Parked:
    service: str
    event: ParkedEvent


async def parked_events(inboxes: Mapping[str, Inbox]) -> list[Parked]:
    """Every parked event of these services, each key's in the order it applies in."""
    found = []
    for service, inbox in inboxes.items():
        async with inbox.database.transaction() as session:
            found += [Parked(service, event) for event in await inbox.parked.listing(session)]
    return found


async def find(inboxes: Mapping[str, Inbox], event_id: uuid.UUID) -> tuple[str, Inbox]:
    """The service that parked this event."""
    for service, inbox in inboxes.items():
        async with inbox.database.transaction() as session:
            if await inbox.parked.find(session, event_id) is not None:
                return service, inbox
    raise NotParkedError(event_id)


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    service: str
    applied: list[ParkedEvent]
    """Of the events that were queued when the retry was asked for."""
    remaining: list[ParkedEvent]
    """Still parked: the one that failed again first, then those behind it."""
    finished: bool
    """False: the service did not finish within the wait (is it running?)."""


async def retry(inboxes: Mapping[str, Inbox], event_id: uuid.UUID, *, wait: float) -> RetryOutcome:
    """Ask the service that parked the event to apply it and those behind it, and wait
    until it has applied them all or parked the first that failed again."""
    service, inbox = await find(inboxes, event_id)
    async with inbox.database.transaction() as session:
        head = await inbox.parked.request_retry(session, event_id)
        before = await inbox.parked.queue(session, head.queue)
    deadline = time.monotonic() + wait
    while True:
        async with inbox.database.transaction() as session:
            now = await inbox.parked.queue(session, head.queue)
        finished = all(event.state is not ParkedState.RETRY_REQUESTED for event in now)
        if finished or time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    still = {event.event_id for event in now}
    return RetryOutcome(
        service=service,
        applied=[event for event in before if event.event_id not in still],
        remaining=now,
        finished=finished,
    )


async def discard(inboxes: Mapping[str, Inbox], event_id: uuid.UUID) -> Parked:
    service, inbox = await find(inboxes, event_id)
    return Parked(service, await inbox.discard(event_id))


def describe(parked: Parked, head: ParkedEvent) -> list[str]:
    """A parked event as the listing shows it; `head` is the first of its key."""
    event = parked.event
    state = {
        ParkedState.PARKED: f"parked after {_attempts(event.attempts)}",
        ParkedState.RETRYING: f"retrying, {_attempts(event.attempts)} so far, "
        f"next at {_when(event.next_attempt_at)}",
        ParkedState.RETRY_REQUESTED: "retry requested",
        ParkedState.QUEUED: f"queued behind {head.event_id}",
    }[event.state]
    lines = [
        f"{parked.service}  {event.event_id}  {event.event_type} v{event.event_version}  "
        f"key {event.queue.message_key} on {event.queue.topic}",
        f"    {state}; parked at {_when(event.parked_at)}",
    ]
    if event.first_error is not None:
        lines.append(f"    first error: {event.first_error}")
    if event.last_error is not None and event.last_error != event.first_error:
        lines.append(f"    last error:  {event.last_error}")
    return lines


def listing(found: Sequence[Parked]) -> list[str]:
    heads: dict[tuple[str, QueueKey], ParkedEvent] = {}
    lines = []
    for parked in found:
        head = heads.setdefault((parked.service, parked.event.queue), parked.event)
        lines += describe(parked, head)
    return lines or ["no parked events"]


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("" if count == 1 else "s")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser("events", help="list, retry or discard parked events")
    actions = events.add_subparsers(dest="action", required=True)
    parked = actions.add_parser("parked", help="list the parked events")
    retried = actions.add_parser("retry", help="apply a parked event again, then those behind it")
    dropped = actions.add_parser("discard", help="drop a parked event")
    for action in (retried, dropped):
        action.add_argument("event_id", type=uuid.UUID, metavar="ID")
    for action in (parked, retried, dropped):
        action.add_argument(
            "--service", choices=[s.value for s in services_with_an_inbox()], default=None
        )
    retried.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the outcome (default 30)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    services = [ServiceName(args.service)] if args.service else services_with_an_inbox()
    try:
        report, status = asyncio.run(_act(args, settings, services))
    except NotParkedError:
        report, status = [f"no parked event {args.event_id} in {', '.join(services)}"], 1
    except NotFirstOfItsKeyError as behind:
        report, status = [str(behind)], 1
    except (OSError, DBAPIError) as unreachable:
        report, status = [f"cannot reach the services' database: {unreachable}"], 2
    print("\n".join(report))
    return status


async def _act(
    args: argparse.Namespace, settings: Settings, services: Sequence[ServiceName]
) -> tuple[list[str], int]:
    """What to print, and the exit status."""
    async with inboxes_of(settings, services) as inboxes:
        if args.action == "parked":
            return listing(await parked_events(inboxes)), 0
        if args.action == "retry":
            outcome = await retry(inboxes, args.event_id, wait=args.wait)
            done = outcome.finished and not outcome.remaining
            return retry_report(outcome, wait=args.wait), 0 if done else 1
        dropped = await discard(inboxes, args.event_id)
        return [
            f"{dropped.service} discarded {dropped.event.event_id} "
            f"({dropped.event.event_type}); a redelivery of it will be ignored"
        ], 0


def retry_report(outcome: RetryOutcome, *, wait: float) -> list[str]:
    service = outcome.service
    lines = [
        f"{service} applied {event.event_id} ({event.event_type})" for event in outcome.applied
    ]
    if not outcome.finished:
        return [
            *lines,
            f"{service} has not finished the retry within {wait:g} s; is it running? "
            f"It applies the events when it runs.",
        ]
    if outcome.remaining:
        stopped = outcome.remaining[0]
        lines.append(
            f"{stopped.event_id} ({stopped.event_type}) failed again and is parked: "
            f"{stopped.last_error}"
        )
        if len(outcome.remaining) > 1:
            lines.append(f"{len(outcome.remaining) - 1} more wait behind it")
    return lines or [f"{service} had nothing left to apply"]
