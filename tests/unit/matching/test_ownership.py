"""Which tenants a replica matches for (ownership.py, issue 19): the work topic's partition of a
tenant is the producer's, a replica acts only for the tenants of its partitions, builds their
indexes when it takes them and drops them when it gives them up, and its timer leaves the
others' needs alone. The requests of other replicas' tenants are recognised (forwarding.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from lotse_contracts.topics import MATCHING_WORK
from lotse_matching.forwarding import tenant_of
from lotse_matching.ownership import NotOwner, Ownership, partition_of
from lotse_matching.sealing import NoPersonKeys
from lotse_matching.service import Matching
from lotse_runtime import answer_links
from tests.support import events
from tests.unit.matching.fakes import FakeStore, FakeUnitOfWork
from tests.unit.matching.test_service import ANSWER, SETTINGS, START, TENANT, Clock, World

PARTITIONS = list(range(MATCHING_WORK.partitions))


@pytest.mark.parametrize("tenant", ["musterstadt", "lindenau", "a", "kreis-ost-12", "x" * 40])
def test_a_tenants_partition_is_the_one_the_producer_sends_its_events_to(tenant: str) -> None:
    assert partition_of(tenant) == DefaultPartitioner()(tenant.encode(), PARTITIONS, PARTITIONS)


def test_the_tenants_spread_over_the_partitions() -> None:
    used = {partition_of(f"gemeinde-{number}") for number in range(400)}

    assert used == set(PARTITIONS)


async def test_a_replica_owns_the_tenants_of_the_partitions_it_took_until_it_gives_them_up() -> None:
    ownership = Ownership()

    def joined_and_owning() -> tuple[bool, bool]:
        return ownership.joined, ownership.owns(TENANT)

    assert joined_and_owning() == (False, False)
    await ownership.take({partition_of(TENANT)})
    assert joined_and_owning() == (True, True)
    assert ownership.owned_of(["musterstadt", "lindenau"], {partition_of("lindenau")}) == ["lindenau"]
    await ownership.give_up({partition_of(TENANT)})
    assert joined_and_owning() == (True, False)


async def owned_world(partitions: set[int]) -> World:
    """A matching whose replica took ``partitions`` (the tenant's data applied while it owned all)."""
    store, clock = FakeStore(), Clock()
    ownership = Ownership()
    units = FakeUnitOfWork(store)
    matching = Matching(
        SETTINGS, None, store, clock, person_keys=NoPersonKeys(), transactions=units, ownership=ownership
    )
    await ownership.take(PARTITIONS)
    world = World(matching, store, units, clock)
    await matching.apply(events.tenant_onboarded(TENANT), matching.tenant_onboarded)
    await matching.give_up_partitions(set(PARTITIONS))
    await matching.take_partitions(partitions)
    return world


async def test_a_replica_builds_the_index_of_the_tenants_it_takes_and_drops_it_when_it_gives_them_up() -> None:
    world = await owned_world(set(PARTITIONS))
    volunteer = await world.volunteer(0.5)
    need_id = await world.open_need()
    assert len(world.events(need_id)) == 1

    await world.matching.give_up_partitions({partition_of(TENANT)})
    assert TENANT not in world.matching.indexes
    with pytest.raises(NotOwner):
        world.matching.index(TENANT)
    with pytest.raises(NotOwner):
        await world.matching.pick(TENANT, volunteer, need_id)

    await world.matching.take_partitions({partition_of(TENANT)})
    with pytest.raises(NotOwner, match="being built"):
        world.matching.index(TENANT)  # built in the background: a rebalance does not wait for it
    await world.matching.warm_up({partition_of(TENANT)})
    index = world.matching.index(TENANT)
    assert set(index.volunteers) == {volunteer} and set(index.open_needs) == {need_id}, "built from the database"


async def test_the_timer_leaves_the_needs_of_other_replicas_tenants_alone() -> None:
    world = await owned_world(set(PARTITIONS))
    for km in (0.5, 1.5, 3.0):
        await world.volunteer(km)
    need_id = await world.open_need()
    await world.matching.give_up_partitions({partition_of(TENANT)})

    world.clock.now = START + ANSWER
    assert await world.matching.tick() == 0, "another replica expires them"
    assert len(world.events(need_id)) == 2

    await world.matching.take_partitions({partition_of(TENANT)})
    assert await world.matching.tick() == 1


def _token(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_a_requests_tenant_comes_from_its_path_its_token_or_its_answer_link() -> None:
    link = answer_links.sign("secret", str(uuid.uuid4()), "lindenau", START)

    assert tenant_of("/tenants/musterstadt/dashboard", "") == "musterstadt"
    assert tenant_of("/volunteers/me/proposals", f"Bearer {_token({'tenant': 'lindenau'})}") == "lindenau"
    assert tenant_of(f"/answers/{link}", "") == "lindenau"
    # Served by any replica: nothing names a tenant, or what is there is not a tenant.
    for path, authorization in [
        ("/answers/assets/page.css", ""),
        ("/calendar-feeds/abc.ics", ""),
        ("/ready", ""),
        ("/volunteers/me/proposals", ""),
        ("/volunteers/me/proposals", "Bearer not-a-token"),
        ("/volunteers/me/proposals", f"Bearer {_token({'tenant': ['a', 'b']})}"),
        ("/answers/%%%", ""),
        ("/tenants/", ""),
    ]:
        assert tenant_of(path, authorization) is None, path


async def test_an_index_built_across_a_give_up_and_a_take_back_is_built_again() -> None:
    """A revocation does not wait for an index still being built (it waits for the tenants it has
    indexes of): an index whose build began before the partition went and came back misses what
    the other owner changed meanwhile, and must not be used."""
    world = await owned_world(set(PARTITIONS))
    first = await world.volunteer(0.5)
    matching, partition = world.matching, partition_of(TENANT)
    await matching.give_up_partitions({partition})
    building, go_on = asyncio.Event(), asyncio.Event()
    asks_since = world.store.asks_since

    async def slow_asks_since(tenant: str, since: datetime) -> list[tuple[str, datetime]]:
        if not building.is_set():  # this replica's first build; the other replica's goes on
            building.set()
            await go_on.wait()  # the volunteers are read: the index is as old as this moment
        return await asks_since(tenant, since)

    world.store.asks_since = slow_asks_since  # type: ignore[method-assign]
    await matching.take_partitions({partition})
    await asyncio.wait_for(building.wait(), timeout=5)
    await matching.give_up_partitions({partition})
    # Meanwhile the other owner applies a registration (the same database).
    other = World(
        Matching(SETTINGS, None, world.store, world.clock, person_keys=NoPersonKeys(), transactions=world.units),
        world.store,
        world.units,
        world.clock,
    )
    await other.matching.load()
    second = await other.volunteer(0.7)
    await matching.take_partitions({partition})  # back here before the first build ends
    go_on.set()
    world.store.asks_since = asks_since  # type: ignore[method-assign]
    await asyncio.gather(*matching._warming)  # the first build, then the take back's

    assert set(matching.index(TENANT).volunteers) == {first, second}, "built again after the take back"
