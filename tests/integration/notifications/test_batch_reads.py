"""What a consumer batch reads once for all its events (issue 17) says what the reads one by one
said. Sealed events open with keys read once for the batch (``batch_keys``): an erased
volunteer's proposal changes nothing, a key not kept yet is waited for. The contacts its events
name are read once (``Store.contact``): one the batch changes is read again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, VolunteerWithdrawn, topic_for
from lotse_notifications import catalogue
from lotse_notifications.handlers import event_handlers
from lotse_notifications.store import SKIPPED, Store
from lotse_runtime.consumer import Delivery, Dispatch
from lotse_runtime.sealed import KeyEncryptionKey, KeyNotYetKnown, Keyring, destroy_person_key
from lotse_runtime.unit_of_work import Batch, UnitOfWork
from tests.integration.notifications.support import (
    onboarded,
    organisation_registered,
    proposed,
    registered,
    sealed_proposal,
)
from tests.support import events

VOLUNTEER_WITHDRAWN = events.Builder(VolunteerWithdrawn, events.REGISTRY, "volunteer_id")
KEK = KeyEncryptionKey("a-key-encryption-key-of-thirty-two-chars")


async def in_one_batch(dispatch: Dispatch, received: list[Envelope[Any]]) -> None:
    batch = Batch(received)
    async with batch.applying():
        for event in received:
            delivery = Delivery(topic=topic_for(event.type, event.tenant), partition=0, offset=0, key=event.key)
            await dispatch(event, delivery)
        await batch.commit()


class Tenant:
    """A tenant with an open need and three volunteers, and a dispatch table with a keyring."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]) -> None:
        self.store = Store(database)
        self.keyring = Keyring(database, KEK)
        self.dispatch = event_handlers(
            UnitOfWork(client, database), self.store, "notifications", queued=lambda: None, keyring=self.keyring
        )
        self.tenant = f"bk-{uuid.uuid4().hex[:8]}"
        self.volunteers = [registered(self.tenant) for _ in range(3)]
        self.need = events.need_opened(self.tenant)

    async def set_up(self) -> None:
        await self.store.ensure_indexes()
        organisation = organisation_registered(self.tenant, self.need.data.organisation_id)
        for event in [onboarded(self.tenant), organisation, *self.volunteers, self.need]:
            await in_one_batch(self.dispatch, [event])

    async def proposal(self, index: int) -> Envelope[Any]:
        volunteer_id = self.volunteers[index].data.volunteer_id
        return await sealed_proposal(self.keyring, self.tenant, self.need.data.need_id, volunteer_id, index + 2)

    async def proposals_queued(self) -> set[str]:
        query = {"tenant": self.tenant, "kind": catalogue.MATCH_PROPOSED}
        return {found["recipient_id"] for found in await self.store.db.deliveries.find(query).to_list()}


@pytest.fixture
async def tenant(mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]) -> Tenant:
    running = Tenant(mongo_client, database)
    await running.set_up()
    return running


async def test_an_erased_volunteers_proposal_in_a_batch_changes_nothing_and_the_others_are_mailed(
    tenant: Tenant,
) -> None:
    kept, erased = await tenant.proposal(0), await tenant.proposal(1)
    await destroy_person_key(tenant.store.db, tenant.tenant, str(erased.data.volunteer_id))

    await in_one_batch(tenant.dispatch, [kept, erased])

    assert await tenant.proposals_queued() == {str(kept.data.volunteer_id)}
    assert await tenant.store.db.proposals.count_documents({"tenant": tenant.tenant}) == 1


async def test_a_key_not_kept_yet_is_waited_for_as_without_a_batch(tenant: Tenant) -> None:
    kept, missing = await tenant.proposal(0), await tenant.proposal(1)
    await tenant.keyring.collection.delete_one({"_id": f"{tenant.tenant}:{missing.data.volunteer_id}"})

    with pytest.raises(KeyNotYetKnown):  # the consumer waits for it (``NotYetArrived``)
        await in_one_batch(tenant.dispatch, [kept, missing])

    assert await tenant.proposals_queued() == set()  # the batch committed nothing
    # Once the key is there, the batch applies.
    await tenant.keyring.collection.delete_many({"tenant": tenant.tenant})
    again = [await tenant.proposal(0), await tenant.proposal(1)]
    await in_one_batch(tenant.dispatch, again)
    assert await tenant.proposals_queued() == {str(event.data.volunteer_id) for event in again}


async def test_a_contact_the_batch_changed_is_read_again_by_its_later_events(tenant: Tenant) -> None:
    first = await tenant.proposal(0)
    volunteer_id = first.data.volunteer_id
    withdrawn = VOLUNTEER_WITHDRAWN(tenant.tenant, volunteer_id, version=2, erasure_requested=False)
    other_need = events.need_opened(tenant.tenant)
    await in_one_batch(tenant.dispatch, [other_need])
    second = proposed(tenant.tenant, other_need.data.need_id, volunteer_id, version=2)

    await in_one_batch(tenant.dispatch, [first, withdrawn, second])

    query = {"tenant": tenant.tenant, "trigger_event_id": str(second.id)}
    mailed = await tenant.store.db.deliveries.find(query).to_list()
    # Read after the withdrawal of the same batch: not queued (the one-by-one read said so too).
    assert mailed and all(found["status"] == SKIPPED.value for found in mailed), mailed
