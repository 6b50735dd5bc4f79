"""An event whose partition moved to another replica while it was in hand (``PartitionMoved``, a
rebalance beside the batch) is left to its new owner: not retried, not dead-lettered, not counted
as processed; the rest of its batch is applied."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lotse_contracts import DeadLetterInfo, Envelope, to_bytes
from lotse_runtime.consumer import Delivery, EventPipeline, PartitionMoved, RetryPolicy
from tests.support import events

TOPIC = "lotse.registry.tenants.v1"


class Sink:
    def __init__(self) -> None:
        self.letters: list[DeadLetterInfo] = []

    async def __call__(self, value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        self.letters.append(info)


class Handler:
    """Applies every tenant's events but ``moved``'s, which went to another replica."""

    def __init__(self, moved: str) -> None:
        self.moved = moved
        self.calls: Counter[str] = Counter()
        self.applied: list[str] = []

    async def __call__(self, event: Envelope[Any], delivery: Delivery) -> None:
        self.calls[event.tenant] += 1
        if event.tenant == self.moved:
            raise PartitionMoved(f"tenant {event.tenant} is another replica's now")
        self.applied.append(event.tenant)


async def test_an_event_whose_partition_moved_is_neither_retried_nor_dead_lettered() -> None:
    handler, sink = Handler(moved="lindenau"), Sink()
    pipeline = EventPipeline("test", handler, sink, RetryPolicy(attempts=5, first_backoff_seconds=0.01))

    await pipeline.handle(to_bytes(events.tenant_onboarded("lindenau")), Delivery(TOPIC, 0, 3, b"lindenau"))

    assert handler.calls == {"lindenau": 1} and sink.letters == []
    assert pipeline.stats.processed == 0 and pipeline.stats.dead_lettered == 0


async def test_the_rest_of_its_batch_is_applied() -> None:
    handler, sink = Handler(moved="lindenau"), Sink()
    pipeline = EventPipeline("test", handler, sink, RetryPolicy(attempts=5, first_backoff_seconds=0.01))
    batch = [
        (to_bytes(events.tenant_onboarded(tenant)), Delivery(TOPIC, partition, offset, tenant.encode()))
        for offset, (tenant, partition) in enumerate([("musterstadt", 0), ("lindenau", 1), ("beispielheim", 0)])
    ]

    await pipeline.handle_batch(batch)

    assert sink.letters == [] and pipeline.stats.dead_lettered == 0
    # The batch stopped at the moved event; one by one, the others were applied and it was left.
    assert handler.applied[-2:] == ["musterstadt", "beispielheim"]
    assert handler.calls["lindenau"] == 1, "found out in the batch, then left: never retried"


async def test_a_dead_letter_after_an_event_left_to_the_new_owner_does_not_commit_past_it() -> None:
    """A dead letter commits its partition's offset at once, which is safe only if every earlier
    record of the partition was applied: one left to a new owner must be read again, not skipped."""
    handler, sink = Handler(moved="lindenau"), Sink()
    pipeline = EventPipeline("test", handler, sink, RetryPolicy(attempts=5, first_backoff_seconds=0.01))
    committed: list[Delivery] = []

    async def commit_through(delivery: Delivery) -> None:
        committed.append(delivery)

    pipeline.commit_through = commit_through
    batch = [
        (to_bytes(events.tenant_onboarded("lindenau")), Delivery(TOPIC, 0, 7, b"lindenau")),
        (b"{not json", Delivery(TOPIC, 0, 8, b"poison")),
        (b"{not json either", Delivery(TOPIC, 1, 4, b"poison")),
    ]

    await pipeline.handle_batch(batch)

    assert len(sink.letters) == 2, "both dead-lettered"
    assert [(each.partition, each.offset) for each in committed] == [(1, 4)], "partition 0 waits for its left record"
    assert pipeline.moved == {(TOPIC, 0): 7}
