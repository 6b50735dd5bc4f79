"""A matching replica that lost a tenant's partition cannot commit for it any more (issue 19).

Kafka moves a partition when its owner misses its session, but an owner that is only paused (or
cut off from the broker, not from the database) may still commit what it had in hand. Each take
counts the partition's generation up in the directory, and every unit of work writes that entry
last, on the condition that its generation is still current (``Ownership.fence``). Against the real
database: a stale owner's unit fails and changes nothing, and whatever it did commit is there
before the new owner's take returns, so that the index the new owner builds then has it.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_devstack import Stack
from lotse_matching.ownership import DIRECTORY, NotOwner, Ownership, partition_of
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.support.tcp_proxy import TcpProxy

TENANT = "musterstadt"
PARTITION = partition_of(TENANT)
Document = dict[str, Any]


async def test_a_replica_whose_partition_was_taken_commits_nothing_and_stops_acting_for_the_tenant(
    mongo_client: AsyncMongoClient[Document], database: AsyncDatabase[Document]
) -> None:
    old, new = Ownership(database, "http://old:8003"), Ownership(database, "http://new:8003")
    units = UnitOfWork(mongo_client, database)
    await old.take({PARTITION})
    await new.take({PARTITION})  # the group moved it while the old owner was paused

    async def change(transaction: Transaction) -> None:
        old.fence(TENANT, transaction, old.generation_of(TENANT))
        await database.changes.insert_one({"by": "old"}, session=transaction.session)

    with pytest.raises(NotOwner, match="another replica took its partition"):
        await units.run(change)

    assert await database.changes.count_documents({}) == 0
    assert not old.owns(TENANT), "it stops acting for the tenant before the group tells it"
    assert await old.owner_url(TENANT) == "http://new:8003"

    async def change_of_the_owner(transaction: Transaction) -> None:
        new.fence(TENANT, transaction, new.generation_of(TENANT))
        await database.changes.insert_one({"by": "new"}, session=transaction.session)

    await units.run(change_of_the_owner)
    assert [each["by"] async for each in database.changes.find()] == ["new"]


async def test_a_replica_giving_up_leaves_the_generation_for_the_next_take(database: AsyncDatabase[Document]) -> None:
    ownership = Ownership(database, "http://a:8003")
    await ownership.take({PARTITION})
    first = ownership.generations[PARTITION]
    await ownership.give_up({PARTITION})

    assert await ownership.owner_url(TENANT) is None, "no address while nobody owns it"
    await ownership.take({PARTITION})
    assert ownership.generations[PARTITION] == first + 1, "a replica of the old generation stays fenced out"


async def test_a_take_while_the_database_is_away_lets_the_rebalance_go_on_and_the_work_waits_for_the_count(
    stack: Stack, database: AsyncDatabase[Document]
) -> None:
    """The group waits for a take; without the database it must not wait long (nor own nothing,
    as an error in the listener would leave it). The tenant's index and work wait until the
    generation is counted, and a partition given up meanwhile ends their wait with NotOwner."""
    proxy = TcpProxy(target_port=urlsplit(stack.mongo_url).port or 27017).start()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true", serverSelectionTimeoutMS=300
    )
    ownership = Ownership(client[database.name], "http://cut-off:8003")
    try:
        proxy.cut()
        await ownership.take({PARTITION})
        assert ownership.owns(TENANT) and PARTITION not in ownership.generations
        waiting = asyncio.create_task(ownership.counted(TENANT))
        await asyncio.wait([waiting], timeout=0.5)
        assert not waiting.done(), "the tenant's work waits for the generation"

        proxy.restore()
        await asyncio.wait_for(waiting, timeout=30)
        entry = await database[DIRECTORY].find_one({"_id": PARTITION})
        assert entry is not None and entry["generation"] == ownership.generations[PARTITION] == 1

        proxy.cut()
        await ownership.give_up({PARTITION})  # its address stays: the next take overwrites it
        await ownership.take({PARTITION})
        gone = asyncio.create_task(ownership.counted(TENANT))
        await ownership.give_up({PARTITION})
        with pytest.raises(NotOwner):
            await asyncio.wait_for(gone, timeout=5)
    finally:
        proxy.restore()
        await client.close()
        proxy.stop()


@dataclass
class Replica:
    """A replica applying one unit of work after another for the tenant while it thinks it owns it."""

    name: str
    ownership: Ownership
    rng: random.Random
    committed: int = 0
    refused: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def work(self, units: UnitOfWork, database: AsyncDatabase[Document]) -> None:
        while not self.stopped.is_set():
            if not self.ownership.owns(TENANT):
                await asyncio.sleep(0.001)  # a paused consumer: nothing to read for this tenant
                continue
            try:
                await self.ownership.counted(TENANT)  # as matching's units of work do
            except NotOwner:
                continue
            generation = self.ownership.generations[PARTITION]

            async def change(transaction: Transaction, generation: int = generation) -> None:
                # At the start, as matching's units of work: the generation the unit works in.
                self.ownership.fence(TENANT, transaction, generation)
                await database.changes.insert_one(
                    {"by": self.name, "generation": generation}, session=transaction.session
                )
                # The rest of the unit's work, so that a take falls into it now and then.
                await asyncio.sleep(self.rng.uniform(0, 0.02))

            try:
                await units.run(change)
                self.committed += 1
            except NotOwner:
                self.refused += 1


async def test_what_an_old_owner_commits_is_there_when_the_new_owners_take_returns(
    mongo_client: AsyncMongoClient[Document], database: AsyncDatabase[Document]
) -> None:
    """Two replicas take the partition from each other at random moments while both keep applying
    units; the database each take's reader sees right after the take must already hold every unit
    of an older generation that ever commits. Reproduce with LOTSE_FENCING_SEED."""
    seed = int(os.environ.get("LOTSE_FENCING_SEED", random.randrange(2**32)))
    print(f"reproduce with LOTSE_FENCING_SEED={seed}")
    rng = random.Random(seed)
    units = UnitOfWork(mongo_client, database)
    replicas = [Replica(name, Ownership(database, f"http://{name}:8003"), rng) for name in ("a", "b")]
    await replicas[0].ownership.take({PARTITION})
    workers = [asyncio.create_task(replica.work(units, database)) for replica in replicas]
    seen_after_take: dict[int, set[Any]] = {}
    try:
        for round_ in range(8):
            await asyncio.sleep(rng.uniform(0.01, 0.08))
            taker = replicas[(round_ + 1) % 2]
            await taker.ownership.take({PARTITION})  # the other is not told: it learns by its fence
            generation = taker.ownership.generations[PARTITION]
            seen_after_take[generation] = {each["_id"] async for each in database.changes.find()}
    finally:
        for replica in replicas:
            replica.stopped.set()
        await asyncio.gather(*workers)

    everything = [each async for each in database.changes.find()]
    for generation, seen in seen_after_take.items():
        late = [each for each in everything if each["generation"] < generation and each["_id"] not in seen]
        assert not late, f"seed {seed}: committed by an owner older than generation {generation} after its take: {late}"
    assert all(replica.refused > 0 for replica in replicas), f"seed {seed}: each was fenced out at least once"
    assert sum(replica.committed for replica in replicas) == len(everything)
    entry = await database[DIRECTORY].find_one({"_id": PARTITION})
    assert entry is not None and entry["generation"] == max(seen_after_take)
