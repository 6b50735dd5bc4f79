"""Erasure reaches what partners were sent (issue 18): a webhook with the `volunteer_ids` opt-in
got the volunteer's id in its bodies; after the erasure it is neither sent nor kept in the log.
On the real database (the query matches inside the stored body)."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import to_bytes
from lotse_contracts.envelope import Envelope
from lotse_contracts.events.values import Channel
from lotse_notifications.partner_events import PartnerField, for_partner
from lotse_notifications.store import Store
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.support import events

TENANT = "erasure-town"
ANSWERING = frozenset({PartnerField.VOLUNTEER_IDS})


async def test_an_erased_volunteers_id_leaves_pending_and_logged_webhook_deliveries(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    store = Store(database)
    await store.ensure_indexes()
    erased, other = uuid.uuid4(), uuid.uuid4()
    need = events.need_opened(TENANT)
    need_id = need.data.need_id
    proposed = events.match_proposed(TENANT, need_id, volunteer_id=erased)
    staffed = events.need_staffed(TENANT, need_id, version=2, volunteer_ids=[erased, other])
    theirs = events.match_proposed(TENANT, need_id, volunteer_id=other)

    async def forward(event: Envelope[Any], transaction: Transaction) -> str:
        forwarded = for_partner(event, ANSWERING)
        assert forwarded is not None
        delivery = await store.add_delivery(
            transaction,
            tenant=TENANT,
            trigger_event_id=str(event.id),
            correlation_id=str(event.id),
            kind="webhook_event",
            recipient_kind="partner",
            recipient_id="hook-1",
            channel=Channel.WEBHOOK,
            language="de",
            payload={"event_type": event.type, "body": to_bytes(forwarded).decode()},
        )
        assert delivery is not None
        return delivery.id

    unit = UnitOfWork(mongo_client, database)
    sent, pending, untouched = [await unit.run(partial(forward, event)) for event in (proposed, staffed, theirs)]
    # The first went out before the erasure: the log keeps its body for 90 days.
    await database.deliveries.update_one({"_id": sent}, {"$set": {"status": "sent"}})
    assert str(erased) in str(await database.deliveries.find({}).to_list()), "the opt-in named them"

    async def erase(transaction: Transaction) -> None:
        await store.erase_volunteer(TENANT, str(erased), 2, transaction)

    await unit.run(erase)

    found = {document["_id"]: document for document in await database.deliveries.find({}).to_list()}
    assert str(erased) not in str(found) and str(proposed.data.proposal_id) not in str(found)
    assert [found[key]["status"] for key in (sent, pending, untouched)] == ["sent", "pending", "pending"]
    # The rest of each body stays: the partner still learns that the need is staffed, by whom else.
    assert f'"volunteer_ids":["{other}"]' in found[pending]["payload"]["body"]
    assert '"volunteers_committed":2' in found[pending]["payload"]["body"]
    assert str(need_id) in found[sent]["payload"]["body"]
    assert f'"volunteer_id":"{other}"' in found[untouched]["payload"]["body"]
