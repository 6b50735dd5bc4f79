"""Matching inside a consumer batch, on the real database: a later event of the batch sees what
earlier ones did to the candidate index, and an abandoned batch leaves the index as the database
has it (rebuilt), with every event applied once after the one-by-one replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from lotse_contracts import DeadLetterInfo, Envelope, VolunteerProfileUpdated, to_bytes
from lotse_devstack import Stack
from lotse_matching.handlers import registry_handlers
from lotse_matching.sealing import NoPersonKeys
from lotse_matching.service import Matching
from lotse_matching.store import ProposalStatus, Store, Transaction
from lotse_runtime.consumer import Delivery, EventPipeline, RetryPolicy
from lotse_runtime.unit_of_work import Batch, LockBusy
from tests.integration.matching.support import (
    opened,
    registered,
    registry_event,
    service_settings,
    tenant_event,
    volunteer_data,
)

FAST_RETRY = RetryPolicy(attempts=2, first_backoff_seconds=0.01, max_backoff_seconds=0.05)


class Commits(CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: CommandStartedEvent) -> None:
        self.count += event.command_name == "commitTransaction"

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@dataclass
class World:
    matching: Matching
    store: Store
    commits: Commits
    pipeline: EventPipeline
    dead: list[tuple[bytes, DeadLetterInfo]]
    tenant: str

    async def batch(self, *sent: Envelope[Any]) -> None:
        """The events as one batch of one partition, as the consumer hands them over."""
        records = [
            (to_bytes(event), Delivery("lotse.registry.test.v1", 0, n, event.key)) for n, event in enumerate(sent)
        ]
        await self.pipeline.handle_batch(records)

    async def proposed(self, need: Envelope[Any]) -> list[str]:
        proposals = await self.store.proposal_records_for_need(self.tenant, need.subject)
        return [p.volunteer_id for p in proposals if p.status is ProposalStatus.OPEN]

    def asks(self, volunteer: Envelope[Any]) -> int:
        index = self.matching.index(self.tenant)
        return index.context(self.matching.clock()).recent_asks.get(volunteer.subject, 0)


@pytest.fixture
async def world(stack: Stack) -> AsyncIterator[World]:
    name = uuid.uuid4().hex[:8]
    tenant = f"batch-{name}"
    settings = service_settings(stack, f"batch-{name}", tenant_policies={tenant: {"proposals_per_round": 1}})
    commits = Commits()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_url, tz_aware=True, event_listeners=[commits]
    )
    store = Store(client[settings.database])
    await store.ensure_indexes()
    matching = Matching(settings, client, store, person_keys=NoPersonKeys())
    dead: list[tuple[bytes, DeadLetterInfo]] = []

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        dead.append((value, info))

    pipeline = EventPipeline("test-matching-batches", registry_handlers(matching), dead_letter, FAST_RETRY)
    yield World(matching, store, commits, pipeline, dead, tenant)
    await client.drop_database(settings.database)
    await client.close()


async def test_the_second_need_of_a_batch_sees_whom_the_first_asked(world: World) -> None:
    # The nearer volunteer is the better fit for both needs, until asked once (fairness).
    near, far = registered(world.tenant, km_north=1.0), registered(world.tenant, km_north=1.2)
    first, second = opened(world.tenant), opened(world.tenant)

    await world.batch(tenant_event(world.tenant), near, far, first, second)

    assert world.commits.count == 1, "the batch is one transaction"
    assert world.pipeline.stats.batches == 1 and world.pipeline.stats.replayed == 0
    assert await world.proposed(first) == [near.subject]
    # Had the first need's ask waited for the batch's commit, the second need would ask the same person.
    assert await world.proposed(second) == [far.subject]
    assert (world.asks(near), world.asks(far)) == (1, 1)
    assert not world.matching.locks[world.tenant].locked(), "the tenant is free once the batch is done"


async def test_an_abandoned_batch_leaves_the_index_as_the_database_has_it(world: World) -> None:
    volunteer = registered(world.tenant)
    await world.batch(tenant_event(world.tenant), volunteer)
    need = opened(world.tenant)
    unknown_id = str(uuid.uuid4())
    unknown = registry_event(VolunteerProfileUpdated, world.tenant, unknown_id, 2, volunteer_data(unknown_id))

    # The need is proposed in the batch, then the unknown volunteer aborts it: one by one again.
    await world.batch(need, unknown)

    assert world.pipeline.stats.replayed == 1
    ((value, info),) = world.dead
    assert value == to_bytes(unknown) and "not known" in info.error
    assert await world.proposed(need) == [volunteer.subject]
    # The aborted attempt's ask is gone from the index: one ask, as in the database.
    assert world.asks(volunteer) == 1
    assert not world.matching.locks[world.tenant].locked()


async def test_two_batches_with_the_same_tenants_in_crossed_order_both_finish(world: World) -> None:
    """The registry's and the partners' subscriptions apply batches side by side; each holds its
    tenants until it ends, so they must never wait for each other crosswise."""
    other = f"{world.tenant}-other"
    await world.batch(tenant_event(world.tenant), tenant_event(other))
    crossed = EventPipeline("test-matching-crossed", registry_handlers(world.matching), world.pipeline.dead_letter)
    one = [registered(world.tenant), registered(other)]
    two = [registered(other), registered(world.tenant)]

    def records(sent: list[Envelope[Any]]) -> list[tuple[bytes, Delivery]]:
        return [(to_bytes(event), Delivery("lotse.registry.test.v1", 0, n, event.key)) for n, event in enumerate(sent)]

    both = asyncio.gather(world.pipeline.handle_batch(records(one)), crossed.handle_batch(records(two)))
    await asyncio.wait_for(both, timeout=30)

    for volunteer in [*one, *two]:
        assert await world.store.volunteer(volunteer.tenant, volunteer.subject) is not None
    assert not world.matching.locks[world.tenant].locked() and not world.matching.locks[other].locked()


async def test_a_tenant_needed_late_in_a_batch_is_never_waited_for_out_of_order(world: World) -> None:
    """The batch's tenants are locked at once, in order; a unit of work for a tenant none of its
    events names does not wait for that tenant's lock (another batch may hold it and wait for ours)."""
    other = f"{world.tenant}-other"

    async def nothing(transaction: Transaction) -> None:
        return None

    batch = Batch([tenant_event(world.tenant)])
    async with world.matching.locks[other]:  # held by someone else
        with pytest.raises(LockBusy):
            async with batch.applying():
                await world.matching._run(world.tenant, nothing)
                await asyncio.wait_for(world.matching._run(other, nothing), timeout=30)
    assert not world.matching.locks[world.tenant].locked()


async def test_every_tenant_of_an_abandoned_batch_is_rebuilt_or_stale(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database drops while the batch is abandoned: the first tenant's index cannot be rebuilt
    (it stays stale), the second tenant's still is, and the event at fault is dead-lettered alone."""
    other = f"{world.tenant}-other"
    here, there = registered(world.tenant), registered(other)
    await world.batch(tenant_event(world.tenant), tenant_event(other), here, there)
    need_here, need_there = opened(world.tenant), opened(other)
    unknown_id = str(uuid.uuid4())
    unknown = registry_event(VolunteerProfileUpdated, other, unknown_id, 2, volunteer_data(unknown_id))
    load_tenant = world.matching.load_tenant
    failed: list[str] = []

    async def database_away_for_the_first(tenant: str) -> None:
        if tenant == world.tenant and not failed:
            failed.append(tenant)
            raise AutoReconnect("the database is away")
        await load_tenant(tenant)

    monkeypatch.setattr(world.matching, "load_tenant", database_away_for_the_first)
    await asyncio.wait_for(world.batch(need_here, need_there, unknown), timeout=60)

    assert failed == [world.tenant] and world.pipeline.stats.replayed == 1
    ((value, _),) = world.dead
    assert value == to_bytes(unknown)
    # The other tenant's index was rebuilt: its aborted ask is gone, one ask as in the database.
    index = world.matching.index(other)
    assert index.context(world.matching.clock()).recent_asks.get(there.subject, 0) == 1
    assert await world.proposed(need_here) == [here.subject]
