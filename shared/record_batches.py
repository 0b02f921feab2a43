"""Records handed to Kafka a batch at a time.

`AIOKafkaProducer.send` costs, for every record, a check of the topic's metadata, the
partitioner's work, a place in the producer's own batch and a future of its own: for
the outbox relay, which hands over hundreds of rows at once, that was about a third of
its time under a burst. `RecordBatches` builds the producer's record batches itself,
one open batch per partition, and hands each one over whole
(`AIOKafkaProducer.send_batch`), with one future for all its records.

A record goes to the partition the producer's default partitioner gives its key, so
a key's records land where `send` would put them (and where other producers of the
topic put them). The records of a partition keep their order: its batches are handed
over in the order they filled, and the producer sends a partition's batches one after
the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

Headers = list[tuple[str, bytes]]
Delivery = asyncio.Future[Any]


@dataclass
class _OpenBatch:
    builder: BatchBuilder
    on_handed_over: list[Callable[[Delivery], None]] = field(default_factory=list)


@dataclass
class RecordBatches:
    """The records of one hand-over, batched per partition: `add` them in order,
    `close`, then await `deliveries`."""

    producer: AIOKafkaProducer
    deliveries: list[Delivery] = field(default_factory=list)
    """One per batch handed over; each resolves when Kafka acknowledged its records."""
    _open: dict[TopicPartition, _OpenBatch] = field(default_factory=dict)
    _partitions: dict[str, list[int]] = field(default_factory=dict)
    _partitioner: DefaultPartitioner = field(default_factory=DefaultPartitioner)

    async def add(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        headers: Headers,
        on_handed_over: Callable[[Delivery], None] | None = None,
    ) -> None:
        """Put the record in its partition's open batch, handing that batch over first
        if it is full. `on_handed_over` gets the delivery of the record's batch."""
        partition = TopicPartition(topic, await self._partition(topic, key))
        open_batch = self._open.get(partition)
        if open_batch is None or not self._append(open_batch, key, value, headers):
            if open_batch is not None:
                await self._hand_over(partition)
            open_batch = self._open[partition] = _OpenBatch(self.producer.create_batch())
            # An empty batch takes any one record (one larger than the broker accepts
            # is refused when its batch is sent).
            self._append(open_batch, key, value, headers)
        if on_handed_over is not None:
            open_batch.on_handed_over.append(on_handed_over)

    async def close(self) -> None:
        """Hand over every batch still open."""
        for partition in list(self._open):
            await self._hand_over(partition)

    @staticmethod
    def _append(open_batch: _OpenBatch, key: bytes, value: bytes, headers: Headers) -> bool:
        appended = open_batch.builder.append(timestamp=None, key=key, value=value, headers=headers)
        return appended is not None

    async def _hand_over(self, partition: TopicPartition) -> None:
        open_batch = self._open.pop(partition)
        open_batch.builder.close()
        delivery: Delivery = await self.producer.send_batch(
            open_batch.builder, partition.topic, partition=partition.partition
        )
        self.deliveries.append(delivery)
        for handed_over in open_batch.on_handed_over:
            handed_over(delivery)

    async def _partition(self, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        partition: int = self._partitioner(key, partitions, partitions)
        return partition
