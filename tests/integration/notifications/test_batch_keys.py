"""Sealed events in a consumer batch open with keys read once for the batch (``batch_keys``), and
say what the keyring said one by one: an erased volunteer's proposal changes nothing, a key not
kept yet is waited for."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, topic_for
from lotse_notifications import catalogue
from lotse_notifications.handlers import event_handlers
from lotse_notifications.store import Store
from lotse_runtime.consumer import Delivery, Dispatch
from lotse_runtime.sealed import KeyEncryptionKey, KeyNotYetKnown, Keyring, destroy_person_key
from lotse_runtime.unit_of_work import Batch, UnitOfWork
from tests.integration.notifications.support import (
    onboarded,
    organisation_registered,
    registered,
    sealed_proposal,
)
from tests.support import events

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
