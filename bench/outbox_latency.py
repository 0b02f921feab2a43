"""Latency and throughput of Atrium's event path, with raw Kafka as the baseline.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka):

* raw aiokafka: an idempotent `acks=all` producer sends to `atrium.gateway.usage` and a
  consumer assigned to all its partitions receives. A message's latency runs from just
  before `send` (a `perf_counter_ns` carried in the message) to its receipt.
* atrium: identity's `Outbox` stages a `WorkspaceCreated`, its `OutboxRelay` publishes
  it, and a FastStream `KafkaBroker` hands it to an `EventConsumer` whose handler (a
  trivial effect: it notes the event) runs in the transaction that records the event in
  billing's inbox, with the others of its batch. An event counts as consumed when that
  transaction has committed. Its latency runs from its commit returning (and, for one
  event at a time, also from its command starting: a `perf_counter_ns` carried in the
  payload's `name`) to then.

Each path is measured one message at a time, each waiting for the previous one to be
consumed (p50/p99 latency); then on a burst of 5,000 messages made available at once
(atrium: staged by one command, under as many keys, and committed together; raw: sent
one after the other without waiting), each message's latency until consumed
(p50/p99/max); then flat out on a flow of 20,000 the same way (events/s, from the
first send or the commit to the last message consumed). Producer, relay and consumers
share this process and its event loop, as a service's relay and consumers do: uvloop,
which uvicorn picks for a service's process when it is installed (as `uvicorn[standard]`
installs it).

The consumers are also measured alone, on a backlog: messages already on the topic,
read from the beginning (events/s from the first message consumed to the last). For
atrium they are `LimitsChanged` envelopes sent straight to Kafka (on their own topic,
which the atrium path does not read), each under its own key, consumed by an
`EventConsumer` into billing's inbox; for raw aiokafka, the messages its own burst
left on its topic.

Run: `.venv/bin/python -m bench.outbox_latency`; `--quick` sends a tenth as many. The
figures are saved in `bench/results/outbox_latency.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import event as orm_events
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bench import results
from contracts.envelope import RawEnvelope, new_envelope
from contracts.events.billing import LimitsChanged
from contracts.events.identity import BillingMode, WorkspaceCreated
from contracts.topics import Topic
from infra.sandbox import sandbox
from services.billing import models as billing_models
from services.identity import models as identity_models
from shared.db import Database
from shared.inbox import EventConsumer, Inbox
from shared.outbox import Outbox, OutboxRelay
from shared.service import kafka_broker
from shared.settings import KafkaConnection, ServiceName, Settings

RAW_TOPIC = Topic.GATEWAY_USAGE.value
NAME_PREFIX = "bench "
WARM_UP = 20
"""Messages sent through each path before measuring: connections, metadata, the
consumer group's assignment."""
WAIT_SECONDS = 120.0
"""The longest wait for messages to arrive before the run is declared stuck."""

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Sizes:
    raw_sequential: int
    atrium_sequential: int
    burst: int
    flow: int
    backlog: int


FULL = Sizes(raw_sequential=500, atrium_sequential=300, burst=5_000, flow=20_000, backlog=10_000)
QUICK = Sizes(raw_sequential=50, atrium_sequential=30, burst=500, flow=2_000, backlog=1_000)


@dataclass(frozen=True)
class Arrival:
    started_ns: int
    """When its sender started: carried in the message itself."""
    arrived_ns: int


class Arrivals(Generic[K]):
    """Each message's first arrival, and a way to wait until enough have arrived."""

    def __init__(self) -> None:
        self.by_key: dict[K, Arrival] = {}
        self._wanted = 0
        self._enough = asyncio.Event()

    def record(self, key: K, started_ns: int) -> None:
        if key in self.by_key:  # a redelivery
            return
        self.by_key[key] = Arrival(started_ns=started_ns, arrived_ns=time.perf_counter_ns())
        if len(self.by_key) >= self._wanted:
            self._enough.set()

    async def wait_until(self, total: int) -> None:
        """Until `total` distinct messages have arrived since the start."""
        self._wanted = total
        self._enough.clear()
        if len(self.by_key) < total:
            async with asyncio.timeout(WAIT_SECONDS):
                await self._enough.wait()


@dataclass(frozen=True)
class Latencies:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def latencies(durations_ns: list[int]) -> Latencies:
    cuts = statistics.quantiles(durations_ns, n=100, method="inclusive")
    return Latencies(
        count=len(durations_ns),
        p50_ms=cuts[49] / 1e6,
        p99_ms=cuts[98] / 1e6,
        max_ms=max(durations_ns) / 1e6,
    )


def per_second(count: int, started_ns: int, ended_ns: int) -> float:
    return count / ((ended_ns - started_ns) / 1e9)


@dataclass(frozen=True)
class PathResult:
    one_at_a_time: Latencies
    burst: Latencies
    """Each message's latency in a burst made available at once."""
    burst_events_per_second: float
    events_per_second: float
    """On the flow: the first send or the commit to the last message consumed."""


@dataclass(frozen=True)
class AtriumResult(PathResult):
    from_command_start: Latencies


def workspace_created(root_id: UUID, started_ns: int) -> WorkspaceCreated:
    return WorkspaceCreated(
        id=root_id,
        parent_id=None,
        root_id=root_id,
        billing_root_id=root_id,
        depth=0,
        name=f"{NAME_PREFIX}{started_ns}",
        billing_mode=BillingMode.OWN,
        api_access=True,
        strict_quota=True,
    )


def envelope_size() -> int:
    """The bytes of one Atrium event on the wire, so that both paths carry as much."""
    root_id = uuid4()
    envelope = new_envelope(
        workspace_created(root_id, time.perf_counter_ns()),
        producer="identity",
        root_id=root_id,
        workspace_id=root_id,
        actor="system",
        correlation_id=None,
    )
    return len(envelope.model_dump_json())


class RawKafka:
    """The baseline: one producer, one consumer, nothing in between."""

    def __init__(self, kafka: KafkaConnection) -> None:
        self.producer = AIOKafkaProducer(
            **kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            client_id="atrium-bench-raw",
        )
        self.consumer = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            client_id="atrium-bench-raw",
        )
        self.arrivals: Arrivals[int] = Arrivals()
        self.message_size = envelope_size()
        self._next_sequence = 0

    async def assign_every_partition(self) -> None:
        """From the end of each: only what this run sends arrives."""
        partitions = [
            TopicPartition(RAW_TOPIC, partition)
            for partition in await self.producer.partitions_for(RAW_TOPIC)
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)

    async def receive(self) -> None:
        async for record in self.consumer:
            sequence, started_ns = record.value.split(b" ", 2)[:2]
            self.arrivals.record(int(sequence), int(started_ns))

    async def send(self) -> asyncio.Future[object]:
        """Enqueue the next message; the future resolves when Kafka acknowledges it."""
        sequence = self._next_sequence
        self._next_sequence += 1
        value = f"{sequence} {time.perf_counter_ns()} ".encode().ljust(self.message_size, b".")
        delivery: asyncio.Future[object] = await self.producer.send(
            RAW_TOPIC,
            value=value,
            key=str(uuid4()).encode(),
            headers=[("content-type", b"application/json")],
        )
        return delivery

    async def one_at_a_time(self, count: int) -> list[int]:
        sequences = []
        for _ in range(count):
            sequences.append(self._next_sequence)
            arrived = len(self.arrivals.by_key)
            await (await self.send())
            await self.arrivals.wait_until(arrived + 1)
        return sequences

    async def burst(self, count: int) -> list[int]:
        """`count` messages sent one after the other without waiting for Kafka."""
        first = self._next_sequence
        arrived = len(self.arrivals.by_key)
        deliveries = [await self.send() for _ in range(count)]
        await asyncio.gather(*deliveries)
        await self.arrivals.wait_until(arrived + count)
        return list(range(first, first + count))

    def rate(self, sequences: list[int]) -> float:
        """Events per second from the first send to the last message received."""
        arrivals = self.arrivals.by_key
        return per_second(
            len(sequences),
            min(arrivals[s].started_ns for s in sequences),
            max(arrivals[s].arrived_ns for s in sequences),
        )


async def measure_raw(settings: Settings, sizes: Sizes) -> PathResult:
    raw = RawKafka(settings.kafka_admin())
    async with contextlib.AsyncExitStack() as running:
        await raw.producer.start()
        running.push_async_callback(raw.producer.stop)
        await raw.consumer.start()
        running.push_async_callback(raw.consumer.stop)
        await raw.assign_every_partition()
        running.push_async_callback(cancel, asyncio.create_task(raw.receive()))

        await raw.one_at_a_time(WARM_UP)
        sequential = await raw.one_at_a_time(sizes.raw_sequential)
        burst = await raw.burst(sizes.burst)
        flow = await raw.burst(sizes.flow)

    arrivals = raw.arrivals.by_key
    return PathResult(
        one_at_a_time=latencies([arrival_latency(arrivals[s]) for s in sequential]),
        burst=latencies([arrival_latency(arrivals[s]) for s in burst]),
        burst_events_per_second=raw.rate(burst),
        events_per_second=raw.rate(flow),
    )


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def arrival_latency(arrival: Arrival) -> int:
    return arrival.arrived_ns - arrival.started_ns


def first_to_last(arrived_ns: Iterable[int]) -> float:
    """Events per second between the first arrival and the last."""
    times = sorted(arrived_ns)
    return per_second(len(times) - 1, times[0], times[-1])


async def measure_raw_backlog(settings: Settings, count: int) -> float:
    """A new raw consumer reads `count` of the messages the raw burst left on its topic."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_admin().client_options(),
        group_id=None,
        enable_auto_commit=False,
        client_id="atrium-bench-raw-backlog",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(RAW_TOPIC, partition)
            for partition in range(settings.kafka_topic_partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        arrived_ns: list[int] = []
        async with asyncio.timeout(WAIT_SECONDS):
            while len(arrived_ns) < count:
                batches = await consumer.getmany(timeout_ms=1_000, max_records=500)
                now_ns = time.perf_counter_ns()
                arrived_ns.extend(now_ns for records in batches.values() for _ in records)
    finally:
        await consumer.stop()
    return first_to_last(arrived_ns[:count])


def limits_changed(root_id: UUID) -> LimitsChanged:
    return LimitsChanged(
        workspace_id=root_id,
        root_id=root_id,
        billing_root_id=root_id,
        seats_limit=5,
        seats_cap=None,
        avatar_slots_limit=3,
    )


async def measure_atrium_backlog(settings: Settings, count: int) -> float:
    """`count` events sent straight to Kafka, then consumed into billing's inbox by a new
    consumer group."""
    producer = AIOKafkaProducer(
        **settings.kafka_admin().client_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    try:
        deliveries = []
        for _ in range(count):
            root_id = uuid4()
            envelope = new_envelope(
                limits_changed(root_id),
                producer="billing",
                root_id=root_id,
                workspace_id=root_id,
                actor="system",
                correlation_id=None,
            )
            deliveries.append(
                await producer.send(
                    LimitsChanged.topic.value,
                    envelope.model_dump_json().encode(),
                    key=str(root_id).encode(),
                    headers=[("content-type", b"application/json")],
                )
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()

    billing = Database(
        settings.database_url_for(ServiceName.BILLING), schema=ServiceName.BILLING.value
    )
    consumer = EventConsumer(
        service=f"bench-backlog-{uuid4().hex[:8]}", inbox=Inbox(billing, billing_models.inbox)
    )
    arrivals: Arrivals[UUID] = Arrivals()

    @consumer.on(LimitsChanged)
    async def record(_: AsyncSession, __: LimitsChanged, envelope: RawEnvelope) -> None:
        arrivals.record(envelope.event_id, 0)

    broker = kafka_broker(settings.kafka_admin(), client_id="atrium-bench")
    consumer.subscribe(broker)
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(billing.dispose)
        await broker.start()
        running.push_async_callback(broker.stop)
        await arrivals.wait_until(count)
    return first_to_last(arrival.arrived_ns for arrival in arrivals.by_key.values())


class AtriumPath:
    """identity's outbox and relay publishing, billing's inbox consuming."""

    def __init__(self, settings: Settings) -> None:
        self.identity = Database(
            settings.database_url_for(ServiceName.IDENTITY), schema=ServiceName.IDENTITY.value
        )
        self.billing = Database(
            settings.database_url_for(ServiceName.BILLING), schema=ServiceName.BILLING.value
        )
        self.outbox = Outbox(identity_models.outbox, producer=ServiceName.IDENTITY.value)
        self.relay = OutboxRelay(
            self.identity,
            identity_models.outbox,
            kafka=settings.kafka_for(ServiceName.IDENTITY),
            lanes=settings.outbox_lanes,
            poll_seconds=settings.outbox_poll_seconds,
            batch_size=settings.outbox_batch_size,
        )
        # As a service's runtime builds its broker.
        self.broker = kafka_broker(settings.kafka_admin(), client_id="atrium-bench")
        self.arrivals: Arrivals[UUID] = Arrivals()
        self.committed_ns: dict[UUID, int] = {}
        self.consumer = EventConsumer(
            service=f"bench-{uuid4().hex[:8]}", inbox=Inbox(self.billing, billing_models.inbox)
        )

        @self.consumer.on(WorkspaceCreated)
        async def record(
            session: AsyncSession, event: WorkspaceCreated, envelope: RawEnvelope
        ) -> None:
            """Arrived once the inbox's transaction commits."""
            started_ns = int(event.name.removeprefix(NAME_PREFIX))
            applied = session.info.setdefault("bench_applied", [])
            if not applied:

                @orm_events.listens_for(session.sync_session, "after_commit", once=True)
                def arrived(_: Session) -> None:
                    for event_id, started in applied:
                        self.arrivals.record(event_id, started)

            applied.append((envelope.event_id, started_ns))

    async def commit(self, events: int = 1) -> list[UUID]:
        """One command: `events` events, each under a key of its own, staged and
        committed in one transaction."""
        started_ns = time.perf_counter_ns()
        event_ids = []
        async with self.identity.transaction() as session:
            for _ in range(events):
                root_id = uuid4()
                envelope = await self.outbox.stage(
                    session,
                    workspace_created(root_id, started_ns),
                    root_id=root_id,
                    workspace_id=root_id,
                    actor="system",
                )
                event_ids.append(envelope.event_id)
        committed_ns = time.perf_counter_ns()
        for event_id in event_ids:
            self.committed_ns[event_id] = committed_ns
        return event_ids

    async def one_at_a_time(self, count: int) -> list[UUID]:
        event_ids = []
        for _ in range(count):
            arrived = len(self.arrivals.by_key)
            event_ids.extend(await self.commit())
            await self.arrivals.wait_until(arrived + 1)
        return event_ids

    async def burst(self, count: int) -> list[UUID]:
        """`count` events committed at once."""
        arrived = len(self.arrivals.by_key)
        event_ids = await self.commit(count)
        await self.arrivals.wait_until(arrived + count)
        return event_ids

    def since_commit(self, event_ids: Iterable[UUID]) -> list[int]:
        return [self.arrivals.by_key[e].arrived_ns - self.committed_ns[e] for e in event_ids]

    def rate(self, event_ids: list[UUID]) -> float:
        """Events per second from the commit to the last event consumed."""
        return per_second(
            len(event_ids),
            min(self.committed_ns[e] for e in event_ids),
            max(self.arrivals.by_key[e].arrived_ns for e in event_ids),
        )


async def measure_atrium(settings: Settings, sizes: Sizes) -> AtriumResult:
    path = AtriumPath(settings)
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(path.billing.dispose)
        running.push_async_callback(path.identity.dispose)
        path.consumer.subscribe(path.broker)
        await path.broker.start()
        running.push_async_callback(path.broker.stop)
        await path.relay.start()
        running.push_async_callback(path.relay.stop)

        await path.one_at_a_time(WARM_UP)
        sequential = await path.one_at_a_time(sizes.atrium_sequential)
        burst = await path.burst(sizes.burst)
        flow = await path.burst(sizes.flow)

    arrivals = path.arrivals.by_key
    return AtriumResult(
        one_at_a_time=latencies(path.since_commit(sequential)),
        burst=latencies(path.since_commit(burst)),
        burst_events_per_second=path.rate(burst),
        events_per_second=path.rate(flow),
        from_command_start=latencies([arrival_latency(arrivals[e]) for e in sequential]),
    )


@dataclass(frozen=True)
class Backlogs:
    """Events per second of each consumer alone, on a backlog."""

    raw: float
    atrium: float


def report(
    raw: PathResult, atrium: AtriumResult, backlogs: Backlogs, settings: Settings, sizes: Sizes
) -> None:
    def row(path: str, *cells: int | str) -> None:
        print(f"{path:<40}" + "".join(f"{cell:>10}" for cell in cells))

    def latency_row(path: str, measured: Latencies, rate: float | None = None) -> None:
        row(
            path,
            measured.count,
            f"{measured.p50_ms:.2f}",
            f"{measured.p99_ms:.2f}",
            f"{measured.max_ms:.1f}",
            "" if rate is None else f"{rate:.0f}",
        )

    print()
    row("path", "n", "p50 ms", "p99 ms", "max ms", "events/s")
    latency_row("raw aiokafka, one at a time", raw.one_at_a_time)
    latency_row("atrium, one at a time", atrium.one_at_a_time)
    latency_row("atrium from command start", atrium.from_command_start)
    latency_row("raw aiokafka, burst sent at once", raw.burst, raw.burst_events_per_second)
    latency_row("atrium, burst committed at once", atrium.burst, atrium.burst_events_per_second)
    row(
        "raw aiokafka produce->consume, flow",
        sizes.flow,
        "",
        "",
        "",
        f"{raw.events_per_second:.0f}",
    )
    row(
        "outbox->kafka->inbox (atrium), flow",
        sizes.flow,
        "",
        "",
        "",
        f"{atrium.events_per_second:.0f}",
    )
    row("ratio atrium/raw, flow", "", "", "", "", f"{throughput_ratio(raw, atrium):.3f}")
    row("raw consumer alone, on a backlog", sizes.backlog, "", "", "", f"{backlogs.raw:.0f}")
    row("inbox consumer alone, on a backlog", sizes.backlog, "", "", "", f"{backlogs.atrium:.0f}")
    print()
    print(
        f"bursts of {sizes.burst} and flows of {sizes.flow} messages, each message under its "
        "own key; latency from the send (raw) or the commit (atrium) to consumed"
    )
    print(f"machine: {os.cpu_count()} CPUs; senders, relay and consumers share one uvloop loop")
    print(
        f"relay: lanes={settings.outbox_lanes}, poll_seconds={settings.outbox_poll_seconds}, "
        f"batch_size={settings.outbox_batch_size}, woken by LISTEN/NOTIFY; "
        f"topics: {settings.kafka_topic_partitions} partitions"
    )


def throughput_ratio(raw: PathResult, atrium: PathResult) -> float:
    return atrium.events_per_second / raw.events_per_second


def figures(
    raw: PathResult, atrium: AtriumResult, backlogs: Backlogs, sizes: Sizes
) -> dict[str, Any]:
    return {
        "sizes": asdict(sizes),
        "raw_aiokafka": asdict(raw),
        "atrium": asdict(atrium),
        "events_per_second_ratio": throughput_ratio(raw, atrium),
        "burst_p99_ratio": atrium.burst.p99_ms / raw.burst.p99_ms,
        "backlog_events_per_second": asdict(backlogs),
    }


async def measure(settings: Settings, sizes: Sizes) -> tuple[PathResult, AtriumResult, Backlogs]:
    raw = await measure_raw(settings, sizes)
    backlogs = Backlogs(
        raw=await measure_raw_backlog(settings, sizes.backlog),
        atrium=await measure_atrium_backlog(settings, sizes.backlog),
    )
    atrium = await measure_atrium(settings, sizes)
    return raw, atrium, backlogs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    quick = parser.parse_args(argv).quick
    sizes = QUICK if quick else FULL
    with sandbox("atrium-bench") as env:
        raw, atrium, backlogs = uvloop.run(measure(env.settings, sizes))
        settings = env.settings
    report(raw, atrium, backlogs, settings, sizes)
    results.save("outbox_latency", figures(raw, atrium, backlogs, sizes), quick=quick)


if __name__ == "__main__":
    main()
