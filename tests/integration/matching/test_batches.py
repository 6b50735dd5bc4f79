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
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from lotse_contracts import DeadLetterInfo, Envelope, VolunteerProfileUpdated, to_bytes
from lotse_devstack import Stack
from lotse_matching.handlers import registry_handlers
from lotse_matching.service import Matching
from lotse_matching.store import ProposalStatus, Store
from lotse_runtime.consumer import Delivery, EventPipeline, RetryPolicy
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
    matching = Matching(settings, client, store)
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
