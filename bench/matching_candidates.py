"""Top-10 candidates for a need among 5,000 / 50,000 / 500,000 volunteers of one tenant.

Prints, per size: the time per need of the in-memory index, the ratio to a brute-force scan of
the same volunteers in the same run (both apply every hard rule and the score), and the ratio
to one MongoDB `$geoNear` query over the same volunteers on the local database (which applies
only distance, skills and languages, so it does less work than the index). Loading the
database is slow on the embedded SecantusDB; sizes whose load would take more than a minute
skip the `$geoNear` column, and the output says so.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from lotse_contracts.events.values import BASE_SKILLS
from lotse_devstack import running_stack
from lotse_matching.candidates import Need, Volunteer
from lotse_matching.index import TenantIndex
from lotse_matching.profiles import need_from_document, volunteer_from_document

SIZES = (5_000, 50_000, 500_000)
TENANT = "benchstadt"
CENTRE = (51.34, 12.37)  # a city of about 30 x 30 km
LANGUAGES = ("ar", "uk", "fa", "ru", "tr", "en")
LEVELS = ("a2", "b1", "b2", "c1", "c2", "native")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NEEDS = 20
SCANNED_NEEDS = 5  # the brute-force scan is slow at 500,000; fewer needs give its mean
GEO_NEEDS = 5
LOAD_BUDGET_SECONDS = 60.0
K = 10


def volunteer_document(rng: random.Random) -> dict[str, Any]:
    languages = [{"language": "de", "level": rng.choice(LEVELS)}]
    languages += [{"language": code, "level": rng.choice(LEVELS)} for code in rng.sample(LANGUAGES, rng.randint(0, 2))]
    slots = []
    for _ in range(rng.randint(1, 5)):
        start = rng.randint(8, 18)
        slots.append({"weekday": rng.choice(WEEKDAYS), "start": f"{start:02}:00:00", "end": f"{start + 3:02}:00:00"})
    return {
        "tenant": TENANT,
        "volunteer_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "active": rng.random() > 0.05,
        "profile": {
            "skills": rng.sample(BASE_SKILLS, rng.randint(1, 4)),
            "languages": languages,
            "home_area": {
                "point": {"lat": CENTRE[0] + rng.uniform(-0.14, 0.14), "lon": CENTRE[1] + rng.uniform(-0.2, 0.2)}
            },
            "travel_radius_km": rng.choice((2, 5, 5, 10, 10, 15, 25, 50)),
            "certificates": [],
        },
        "availability": {
            "weekly_slots": slots,
            "periods": [],
            "unavailable": [],
            "max_concurrent_engagements": rng.randint(1, 3),
        },
    }


def need_document(rng: random.Random) -> dict[str, Any]:
    start = rng.randint(9, 17)
    return {
        "tenant": TENANT,
        "need_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "details": {
            "organisation_id": str(uuid.UUID(int=1)),
            "category": "accompaniment_to_authorities",
            "description": "Begleitung",
            "required_skills": [rng.choice(BASE_SKILLS)],
            "languages": [{"language": rng.choice(LANGUAGES), "min_level": rng.choice(("a2", "b1", "b2"))}],
            "place": {
                "point": {"lat": CENTRE[0] + rng.uniform(-0.1, 0.1), "lon": CENTRE[1] + rng.uniform(-0.15, 0.15)}
            },
            "schedule": {
                "kind": "weekly",
                "slots": [
                    {"weekday": rng.choice(WEEKDAYS), "start": f"{start:02}:00:00", "end": f"{start + 2:02}:00:00"}
                ],
                "starts_on": "2026-12-01",
            },
            "volunteers_needed": 1,
        },
    }


def per_need_ms(run: Any, needs: list[Need]) -> tuple[float, list[Any]]:
    results, times = [], []
    for need in needs:
        started = time.perf_counter()
        results.append(run(need))
        times.append(time.perf_counter() - started)
    return statistics.mean(times) * 1000, results


async def geo_near_ms(mongo_url: str, documents: list[dict[str, Any]], needs: list[Need]) -> tuple[float, float] | None:
    """(ms per $geoNear query, seconds to load), or None when loading would exceed the budget."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"bench_matching_{uuid.uuid4().hex[:8]}"
    collection = client[name]["volunteers"]
    try:
        await collection.create_index([("location", "2dsphere")])
        started = time.perf_counter()
        for offset in range(0, len(documents), 1000):
            await collection.insert_many([_geo_document(d) for d in documents[offset : offset + 1000]])
            elapsed = time.perf_counter() - started
            projected = elapsed / (offset + 1000) * len(documents)
            if offset >= 4000 and projected > LOAD_BUDGET_SECONDS:
                print(f"    $geoNear: loading {len(documents):,} would take about {projected:.0f} s; skipped")
                return None
        loaded = time.perf_counter() - started
        times = []
        for need in needs[:GEO_NEEDS]:
            pipeline: list[dict[str, Any]] = [
                {
                    "$geoNear": {
                        "near": {"type": "Point", "coordinates": [need.point[1], need.point[0]]},
                        "distanceField": "distance_m",
                        "maxDistance": 50_000,
                        "spherical": True,
                        "query": {
                            "active": True,
                            "skills": {"$all": sorted(need.required_skills)},
                            "languages": {"$in": [code for code, _ in need.languages]},
                        },
                    }
                },
                {"$match": {"$expr": {"$lte": ["$distance_m", {"$multiply": ["$radius_km", 1000]}]}}},
                {"$limit": K},
            ]
            started = time.perf_counter()
            await (await collection.aggregate(pipeline)).to_list()
            times.append(time.perf_counter() - started)
        return statistics.mean(times) * 1000, loaded
    finally:
        await client.drop_database(name)
        await client.close()


def _geo_document(document: dict[str, Any]) -> dict[str, Any]:
    profile = document["profile"]
    point = profile["home_area"]["point"]
    return {
        "_id": document["volunteer_id"],
        "active": document["active"],
        "location": {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
        "radius_km": profile["travel_radius_km"],
        "skills": profile["skills"],
        "languages": [item["language"] for item in profile["languages"]],
    }


async def main() -> None:
    rng = random.Random(20261125)
    index = TenantIndex(TENANT, "Europe/Berlin")
    documents: list[dict[str, Any]] = []
    timezone = index.timezone
    needs = [need_from_document(need_document(rng), timezone) for _ in range(NEEDS)]
    context = index.context(datetime(2026, 11, 25, 12, tzinfo=UTC))
    print(f"top-{K} candidates per need; {NEEDS} needs (scan: {SCANNED_NEEDS}, $geoNear: {GEO_NEEDS}); seed 20261125")
    with running_stack() as stack:
        for size in SIZES:
            added = [volunteer_document(rng) for _ in range(size - len(documents))]
            documents.extend(added)
            started = time.perf_counter()
            volunteers: list[Volunteer] = [volunteer_from_document(document) for document in added]
            index.upsert_many(volunteers)
            built = time.perf_counter() - started
            indexed_ms, indexed = per_need_ms(lambda need: index.top_k(need, context, K), needs)
            scanned_ms, scanned = per_need_ms(lambda need: index.scan(need, context, K), needs[:SCANNED_NEEDS])
            assert indexed[:SCANNED_NEEDS] == scanned, "the index must return exactly what the scan returns"
            found = statistics.mean(len(result) for result in indexed)
            print(f"{size:>9,} volunteers (added in {built:.1f} s, mean {found:.1f} candidates returned)")
            print(f"    index:       {indexed_ms:10.3f} ms per need")
            print(f"    brute force: {scanned_ms:10.3f} ms per need   index is {scanned_ms / indexed_ms:,.0f}x faster")
            geo = await geo_near_ms(stack.mongo_url, documents, needs)
            if geo is not None:
                geo_ms, loaded = geo
                print(
                    f"    $geoNear:    {geo_ms:10.3f} ms per query  index is {geo_ms / indexed_ms:,.0f}x faster"
                    f"   (database loaded in {loaded:.0f} s)"
                )
