"""Which tenants this replica matches for (issue 19).

A tenant's matching (its registry events, its partners' answers, its timers and the HTTP actions
that change its needs' staffing) runs on one replica at a time: the one to which the consumer
group of ``lotse.matching.work.v1`` assigns the tenant's partition. The topic is keyed by the
tenant alone, so the partition is the producer's default partitioner (murmur2 of the key) over
the topic's partitions, and every replica computes the same one. A replica builds the indexes of
its tenants when their partitions are assigned and drops them when they are revoked; Kafka's
group protocol revokes on the old owner before it assigns to the new one, so two replicas never
hold a tenant at once (a replica that dies holds nothing: its partitions move once its session
has timed out).

The directory (``replica_partitions`` in matching's database) says where each partition's owner
answers HTTP, so that another replica can forward a tenant's request there, and fences the owners.
Kafka cannot stop a replica that was expelled from the group while alive (paused past its session,
cut off from the broker but not from the database) from committing what it has in hand after the
new owner has read the database: the new owner's index would miss that change. So each take counts
the partition's generation up in the directory, and each unit of work of a tenant writes its
partition's entry as its last step, on the condition that the generation is still the one it took
(``fence``). A stale owner's write finds no entry and its unit fails with ``NotOwner``; a unit that
wrote first holds the entry until its commit, and the new owner's take waits for that commit before
it builds the index (MongoDB makes a write outside a transaction wait for one that holds the document).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka.partitioner import murmur2
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from lotse_contracts.topics import MATCHING_WORK
from lotse_matching.store import Transaction
from lotse_runtime.consumer import PartitionMoved

DIRECTORY = "replica_partitions"
# How long a take waits for the directory before it lets the rebalance go on (the group waits for it).
TAKE_WAIT_SECONDS = 2.0
log = structlog.get_logger("lotse.matching.ownership")


def partition_of(tenant: str, partitions: int = MATCHING_WORK.partitions) -> int:
    """The work topic's partition of a tenant, as the producer's default partitioner picks it."""
    hashed: int = murmur2(tenant.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class NotOwner(PartitionMoved):
    """The tenant's matching runs on another replica (or on none while its partition moves). An
    event of the tenant is left to its new owner; a request is answered 503 (``app``)."""

    def __init__(self, tenant: str, why: str = "it is matched by another replica") -> None:
        super().__init__(f"tenant {tenant!r}: {why}")
        self.tenant = tenant


class Ownership:
    """The work topic's partitions assigned to this replica, and the directory of every owner.

    ``everything``: a replica that owns every tenant without a consumer group (the unit tests'
    and tools' use of ``Matching`` alone)."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]] | None = None,
        replica_url: str = "",
        *,
        everything: bool = False,
        partitions: int = MATCHING_WORK.partitions,
    ) -> None:
        self.database = database
        self.replica_url = replica_url
        self.everything = everything
        self.partitions = partitions
        self.assigned: frozenset[int] = frozenset()
        self.joined = everything  # False until the group's first assignment (even an empty one)
        self.generations: dict[int, int] = {}  # of the partitions taken, as the directory counted them
        self._counted: dict[int, asyncio.Event] = {}  # set once a taken partition's generation is counted
        self._counting: dict[int, asyncio.Task[None]] = {}
        self._taken_here = itertools.count(1)

    def owns(self, tenant: str) -> bool:
        return self.everything or partition_of(tenant, self.partitions) in self.assigned

    def generation_of(self, tenant: str) -> int | None:
        """The generation in which this replica holds the tenant's partition (None: not counted,
        or a replica without a directory)."""
        return self.generations.get(partition_of(tenant, self.partitions))

    def owned_of(self, tenants: Iterable[str], partitions: Iterable[int]) -> list[str]:
        wanted = set(partitions)
        return sorted(tenant for tenant in tenants if partition_of(tenant, self.partitions) in wanted)

    async def owner_url(self, tenant: str) -> str | None:
        """Where the tenant's owner answers HTTP, as it entered itself in the directory."""
        if self.database is None:
            return None
        entry = await self.database[DIRECTORY].find_one({"_id": partition_of(tenant, self.partitions)})
        return str(entry["url"]) if entry and entry.get("url") else None

    async def take(self, partitions: Iterable[int]) -> None:
        """Own ``partitions`` from now on. Each one's generation is counted up in the directory,
        which fences out a previous owner (and waits for the commit of a unit of work it has just
        fenced). That is awaited here for a moment only: the group waits for this listener, and if
        the database is away the counting goes on in the background, while the tenants' work waits
        for it (``counted``)."""
        taken = set(partitions)
        self.assigned = self.assigned | taken
        self.joined = True
        if self.database is None:  # no directory (one process, the unit tests): counted here
            self.generations.update({partition: next(self._taken_here) for partition in taken})
            return
        for partition in taken:
            if (counting := self._counting.get(partition)) is not None:
                counting.cancel()
            self._counted[partition] = asyncio.Event()
            self._counting[partition] = asyncio.create_task(
                self._count_up(partition), name=f"matching-generation-{partition}"
            )
        await asyncio.wait([self._counting[partition] for partition in taken], timeout=TAKE_WAIT_SECONDS)

    async def _count_up(self, partition: int) -> None:
        tries = 0
        while True:
            try:
                generation = await self._count_once(partition)
            except PyMongoError as error:
                tries += 1
                log.warning("counting a taken partition's generation failed", partition=partition, error=repr(error))
                await asyncio.sleep(min(0.2 * 2**tries, 5.0))
                continue
            if generation is not None:
                break
        self.generations[partition] = generation
        self._counted[partition].set()

    async def _count_once(self, partition: int) -> int | None:
        """Count the partition's generation one up from the one read, on the condition that nobody
        counted meanwhile (None then: read again). A count that arrives late (its take given up,
        or cancelled while the database was slow) so never counts past a newer owner's."""
        assert self.database is not None
        directory = self.database[DIRECTORY]
        entry = await directory.find_one({"_id": partition})
        mine = {"url": self.replica_url, "since": datetime.now(UTC)}
        if entry is None:
            try:
                await directory.insert_one({"_id": partition, "generation": 1, **mine})
            except DuplicateKeyError:
                return None
            return 1
        seen = int(entry.get("generation", 0))
        unchanged = {"generation": seen} if "generation" in entry else {"generation": {"$exists": False}}
        counted = await directory.update_one(
            {"_id": partition, **unchanged}, {"$set": {"generation": seen + 1, **mine}}
        )
        return seen + 1 if counted.matched_count == 1 else None

    async def counted(self, tenant: str) -> None:
        """Wait until the generation of the tenant's partition is counted: only then may its index
        be built from the database and its work commit. NotOwner if the partition went meanwhile."""
        if self.everything or self.database is None:
            return
        partition = partition_of(tenant, self.partitions)
        if (counted := self._counted.get(partition)) is not None:
            await counted.wait()
        if partition not in self.assigned or partition not in self.generations:
            raise NotOwner(tenant)

    async def give_up(self, partitions: Iterable[int]) -> None:
        given = set(partitions)
        self.assigned = self.assigned - given
        generations = {partition: self.generations.pop(partition, None) for partition in given}
        for partition in given:
            if (counting := self._counting.pop(partition, None)) is not None:
                counting.cancel()
            if (counted := self._counted.pop(partition, None)) is not None:
                counted.set()  # whoever waits for it learns that it is gone
        if self.database is None:
            return
        for partition, generation in sorted(generations.items()):
            if generation is None:
                continue
            try:
                # The generation stays (the next take counts on from it); only this owner's address goes.
                await self.database[DIRECTORY].update_one(
                    {"_id": partition, "generation": generation}, {"$unset": {"url": ""}}
                )
            except PyMongoError as error:  # the next owner's take overwrites it anyway
                log.warning(
                    "removing the address of a partition given up failed", partition=partition, error=repr(error)
                )

    def fence(self, tenant: str, transaction: Transaction, generation: int | None) -> None:
        """Let ``transaction`` commit only while this replica still holds the tenant's partition in
        ``generation`` (its last write; see the module's docstring): the one ``generation_of`` said
        when the unit of work began, before the first attempt of its transaction, so that a unit
        begun before a move cannot commit after a take back on what it read before."""
        if self.everything or self.database is None:
            return
        partition = partition_of(tenant, self.partitions)
        if generation is None:
            raise NotOwner(tenant)

        async def still_ours(session: AsyncClientSession) -> None:
            assert self.database is not None
            held = await self.database[DIRECTORY].update_one(
                {"_id": partition, "generation": generation}, {"$inc": {"commits": 1}}, session=session
            )
            if held.matched_count == 0:
                if self.generations.get(partition) == generation:  # not a take of its own meanwhile
                    self.assigned = self.assigned - {partition}
                    self.generations.pop(partition, None)
                raise NotOwner(tenant, "another replica took its partition meanwhile")

        transaction.before_commit(("matching-fence", partition), still_ours)
