"""A federal state on three matching replicas (issue 19).

400 municipalities with 1,000,000 volunteers in all, sized like real towns: a few large, many
small (volunteers per town fall with its rank, 1/rank; the largest has about 150,000, the
smallest a few hundred). Each replica holds the towns of its 4 of the work topic's 12
partitions, as the consumer group gives them (``ownership.partition_of``).

Per replica, each in a fresh process of its own: its towns and volunteers; the time to build their
indexes from the volunteers' documents (what a replica does for the partitions it takes over,
less reading the database); the memory the indexes take (growth of the process's resident size);
and the candidate search per need (p50 / p99 over needs of its towns, more for larger towns).

The database's part of a takeover is measured in the same run on the embedded database, one town
of ``READ_SAMPLE`` volunteers written and read back the way matching reads them
(``Store.volunteers_of``), and the index build of those volunteers beside it: the ratio says
which of the two a takeover waits for. The brute-force scan of the largest town (every hard rule
on every volunteer) is the baseline of the search.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

from pymongo import AsyncMongoClient

from bench.matching_candidates import need_document, volunteer_document
from lotse_devstack import running_stack
from lotse_matching.index import TenantIndex
from lotse_matching.ownership import partition_of
from lotse_matching.profiles import need_from_document, volunteer_from_document
from lotse_matching.store import Store

TOWNS = 400
VOLUNTEERS = 1_000_000
REPLICAS = 3
PARTITIONS = 12
NEEDS_PER_REPLICA = 400
SCANNED_NEEDS = 5
READ_SAMPLE = 20_000
K = 10
SEED = 20261202
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Town:
    slug: str
    volunteers: int
    centre: tuple[float, float]
    seed: int


def federal_state(towns: int = TOWNS, volunteers: int = VOLUNTEERS, seed: int = SEED) -> list[Town]:
    """``towns`` towns whose sizes fall with their rank (1/rank) and add up to ``volunteers``."""
    rng = random.Random(seed)
    weights = [1 / rank for rank in range(1, towns + 1)]
    sizes = [max(1, int(volunteers * weight / sum(weights))) for weight in weights]
    sizes[0] += volunteers - sum(sizes)  # what rounding left goes to the largest
    return [
        Town(f"gemeinde-{rank:03}", size, (rng.uniform(50.2, 53.5), rng.uniform(9.5, 14.5)), rng.getrandbits(32))
        for rank, size in enumerate(sizes, start=1)
    ]


def replica_of(town: Town, replicas: int = REPLICAS, partitions: int = PARTITIONS) -> int:
    """The replica holding the town's partition when the group gives each replica a range of them."""
    return partition_of(town.slug, partitions) * replicas // partitions


def town_documents(town: Town, rng: random.Random) -> list[dict[str, Any]]:
    """The town's volunteers as matching stores them; a larger town covers a larger area."""
    spread = 0.05 + 0.25 * math.sqrt(town.volunteers / 150_000)
    documents = []
    for _ in range(town.volunteers):
        document = volunteer_document(rng)
        document["tenant"] = town.slug
        point = document["profile"]["home_area"]["point"]
        point["lat"] = town.centre[0] + rng.uniform(-spread, spread)
        point["lon"] = town.centre[1] + rng.uniform(-spread * 1.5, spread * 1.5)
        documents.append(document)
    return documents


def town_need(town: Town, rng: random.Random) -> dict[str, Any]:
    document = need_document(rng)
    document["tenant"] = town.slug
    point = document["details"]["place"]["point"]
    point["lat"], point["lon"] = town.centre[0] + rng.uniform(-0.05, 0.05), town.centre[1] + rng.uniform(-0.07, 0.07)
    return document


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def replica_figures(towns: list[Town]) -> dict[str, Any]:
    """Run in a fresh process: build the indexes of ``towns`` and search them."""
    gc.collect()
    before = resident_bytes()
    indexes: dict[str, TenantIndex] = {}
    building = 0.0
    for town in towns:
        documents = town_documents(town, random.Random(town.seed))
        started = time.perf_counter()
        index = TenantIndex(town.slug, "Europe/Berlin")
        index.upsert_many([volunteer_from_document(document) for document in documents])
        building += time.perf_counter() - started
        indexes[town.slug] = index
        del documents
    gc.collect()
    grown = resident_bytes() - before
    rng = random.Random(SEED + len(towns))
    volunteers = sum(town.volunteers for town in towns)
    # Needs come from towns in proportion to their volunteers.
    chosen = rng.choices(towns, weights=[town.volunteers for town in towns], k=NEEDS_PER_REPLICA)
    times = []
    for town in chosen:
        index = indexes[town.slug]
        need = need_from_document(town_need(town, rng), index.timezone)
        context = index.context(NOW)
        started = time.perf_counter()
        index.top_k(need, context, K)
        times.append(time.perf_counter() - started)
    largest = max(towns, key=lambda town: town.volunteers)
    index = indexes[largest.slug]
    scans = []
    for _ in range(SCANNED_NEEDS):
        need = need_from_document(town_need(largest, rng), index.timezone)
        started = time.perf_counter()
        index.scan(need, index.context(NOW), K)
        scans.append(time.perf_counter() - started)
        searched = time.perf_counter()
        index.top_k(need, index.context(NOW), K)
        scans[-1] /= max(time.perf_counter() - searched, 1e-9)
    quantiles = statistics.quantiles(times, n=100)
    return {
        "towns": len(towns),
        "volunteers": volunteers,
        "largest": largest.volunteers,
        "build_s": building,
        "rss_bytes": grown,
        "search_p50_ms": quantiles[49] * 1000,
        "search_p99_ms": quantiles[98] * 1000,
        "scan_ratio": statistics.median(scans),
    }


async def takeover_read(mongo_url: str, size: int = READ_SAMPLE) -> tuple[float, float]:
    """(volunteers read per second from the database as matching reads them, indexed per second)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"bench_takeover_{uuid.uuid4().hex[:8]}"
    town = Town("gemeinde-lesen", size, (51.3, 12.4), SEED)
    try:
        store = Store(client[name])
        await store.ensure_indexes()
        documents = town_documents(town, random.Random(town.seed))
        for offset in range(0, size, 1000):
            batch = [
                {**document, "_id": f"{town.slug}:{document['volunteer_id']}"}
                for document in documents[offset : offset + 1000]
            ]
            await store.volunteers.insert_many(batch)
        started = time.perf_counter()
        read = [document async for document in store.volunteers_of(town.slug)]
        reading = time.perf_counter() - started
        assert len(read) == size
        started = time.perf_counter()
        TenantIndex(town.slug, "Europe/Berlin").upsert_many([volunteer_from_document(document) for document in read])
        building = time.perf_counter() - started
        return size / reading, size / building
    finally:
        await client.drop_database(name)
        await client.close()


async def main(towns: int = TOWNS, volunteers: int = VOLUNTEERS) -> None:
    state = federal_state(towns, volunteers)
    held: dict[int, list[Town]] = defaultdict(list)
    for town in state:
        held[replica_of(town)].append(town)
    print(
        f"{len(state)} towns, {sum(t.volunteers for t in state):,} volunteers (largest {state[0].volunteers:,}, "
        f"smallest {state[-1].volunteers:,}); {REPLICAS} replicas, {PARTITIONS} partitions; seed {SEED}"
    )
    # A fresh process per replica, one after another: its memory is its indexes' alone, and the
    # replicas do not share the cores while they are timed.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        for replica in range(REPLICAS):
            figures = await asyncio.get_running_loop().run_in_executor(pool, replica_figures, held[replica])
            print(
                f"replica {replica + 1}: {figures['towns']} towns, {figures['volunteers']:,} volunteers "
                f"(largest town {figures['largest']:,})\n"
                f"    index build (takeover, without the database): {figures['build_s']:.1f} s "
                f"({figures['volunteers'] / figures['build_s']:,.0f} volunteers/s)\n"
                f"    memory of the indexes: {figures['rss_bytes'] / 2**20:,.0f} MiB "
                f"({figures['rss_bytes'] / max(figures['volunteers'], 1):,.0f} bytes per volunteer)\n"
                f"    candidate search per need: p50 {figures['search_p50_ms']:.2f} ms, "
                f"p99 {figures['search_p99_ms']:.2f} ms "
                f"(the largest town's brute-force scan takes {figures['scan_ratio']:,.0f}x as long)"
            )
    with running_stack() as stack:
        read_rate, build_rate = await takeover_read(stack.mongo_url)
    print(
        f"takeover's database part (embedded SecantusDB, {READ_SAMPLE:,} volunteers of one town): "
        f"read {read_rate:,.0f} volunteers/s, indexed {build_rate:,.0f}/s; reading is "
        f"{build_rate / read_rate:.1f}x the index build's time, so a replica taking over a third of "
        f"{sum(t.volunteers for t in state):,} volunteers waits about "
        f"{sum(t.volunteers for t in state) / REPLICAS / read_rate:,.0f} s for the database here"
    )
