"""An erasure cut short between its commit and the outbox scrub is finished at the next start."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from lotse_registry.store import scrub_erased_outbox


async def test_the_scrub_removes_only_the_erased_volunteers_earlier_events(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    await database.volunteers.insert_many(
        [
            {"_id": "v1", "tenant": "t", "status": "erased", "version": 4, "outbox_scrub_below": 3},
            {"_id": "v2", "tenant": "t", "status": "active", "version": 1},
        ]
    )
    await database.outbox.insert_many(
        [
            {"_id": "e1", "tenant": "t", "key": "t:v1", "version": 1, "value": b'{"email":"a@b.de"}'},
            {"_id": "e2", "tenant": "t", "key": "t:v1", "version": 2, "value": b'{"email":"a@b.de"}'},
            {"_id": "e3", "tenant": "t", "key": "t:v1", "version": 3, "value": b"withdrawn"},
            {"_id": "e4", "tenant": "t", "key": "t:v1", "version": 4, "value": b"erased"},
            {"_id": "e5", "tenant": "t", "key": "t:v2", "version": 1, "value": b'{"email":"c@d.de"}'},
            {"_id": "e6", "tenant": "u", "key": "u:v1", "version": 1, "value": b"another tenant"},
        ]
    )
    assert await scrub_erased_outbox(database) == 2
    assert sorted(entry["_id"] for entry in await database.outbox.find({}).to_list()) == ["e3", "e4", "e5", "e6"]
    volunteer = await database.volunteers.find_one({"_id": "v1"})
    assert volunteer is not None and "outbox_scrub_below" not in volunteer
    assert await scrub_erased_outbox(database) == 0
