"""What the services keep in memory (``lotse_runtime.memo``) on the real database, with a
consumer batch's one transaction: never an uncommitted value, never one a change made here has
replaced, never a snapshot older than a change committed meanwhile (issue 17's caches)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, topic_for
from lotse_devstack import Stack
from lotse_notifications.handlers import event_handlers
from lotse_notifications.records import TenantFacts
from lotse_notifications.store import Store as NotificationStore
from lotse_registry.portal import PortalSettings
from lotse_registry.store import Store as RegistryStore
from lotse_registry.store import TransactionScope, in_tenant
from lotse_runtime.consumer import Delivery, Dispatch
from lotse_runtime.unit_of_work import Batch, Transaction, UnitOfWork
from tests.integration.notifications import support as notification_support
from tests.support import events
from tests.support.round_trips import counting_client

Document = dict[str, Any]


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongo_url)
    name = f"memo_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def deliver(dispatch: Dispatch, event: Envelope[Any]) -> None:
    await dispatch(event, Delivery(topic=topic_for(event.type, event.tenant), partition=0, offset=0, key=event.key))


async def test_a_tenant_changed_earlier_in_a_batch_is_read_as_changed_later_in_it(
    database: AsyncDatabase[Document],
) -> None:
    store = NotificationStore(database)
    await store.ensure_indexes()
    unit_of_work = UnitOfWork(database.client, store.db)
    dispatch = event_handlers(unit_of_work, store, "notifications", queued=lambda: None)
    tenant = f"memo-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, notification_support.onboarded(tenant, default_language="de"))

    async def read_in_batch(transaction: Transaction) -> TenantFacts | None:
        return await store.tenant(tenant, transaction)

    changed = events.tenant_onboarded(tenant, version=2, default_language="en")
    batch = Batch([changed])
    async with batch.applying():
        await deliver(dispatch, changed)
        # The delivery worker or the reminder planner reads the committed facts meanwhile.
        outside = await store.tenant(tenant)
        assert outside is not None and outside.default_language == "de"
        inside = await unit_of_work.run(read_in_batch)  # a later event of the batch
        assert inside is not None and inside.default_language == "en"
        await batch.commit()

    after = await store.tenant(tenant)
    assert after is not None and after.default_language == "en"


async def test_a_tenant_read_in_an_abandoned_batch_is_not_served_afterwards(
    database: AsyncDatabase[Document],
) -> None:
    store = NotificationStore(database)
    await store.ensure_indexes()
    unit_of_work = UnitOfWork(database.client, store.db)
    dispatch = event_handlers(unit_of_work, store, "notifications", queued=lambda: None)
    tenant = f"memo-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, notification_support.onboarded(tenant, default_language="de"))

    async def read_in_batch(transaction: Transaction) -> TenantFacts | None:
        return await store.tenant(tenant, transaction)

    changed = events.tenant_onboarded(tenant, version=2, default_language="en")
    batch = Batch([changed])
    async with batch.applying():
        await deliver(dispatch, changed)
        inside = await unit_of_work.run(read_in_batch)
        assert inside is not None and inside.default_language == "en"
    # Never committed (the batch is abandoned, its changing event goes on alone or is dead-lettered).

    after = await store.tenant(tenant)
    assert after is not None and after.default_language == "de"


async def test_a_registry_transaction_does_not_keep_a_tenant_older_than_a_change_committed_meanwhile(
    database: AsyncDatabase[Document],
) -> None:
    registry = RegistryStore(database.client, database)
    tenant = f"memo-{uuid.uuid4().hex[:8]}"
    await database.tenants.insert_one({"_id": tenant, "tenant": tenant, "name": "Musterstadt"})
    changed = PortalSettings(offer_map=False)

    async def work(scope: TransactionScope) -> Document | None:
        await scope.find_one("organisations", {})  # the transaction's snapshot is taken
        assert await registry.set_portal_settings(tenant, changed)  # committed meanwhile
        return await scope.tenant_settings()

    await registry.unit_of_work.run(in_tenant(tenant, work, registry.known))

    async def settings(scope: TransactionScope) -> Document | None:
        return await scope.tenant_settings()

    document = await registry.unit_of_work.run(in_tenant(tenant, settings, registry.known))
    assert document is not None and document["portal"]["offer_map"] is False


async def test_a_webhook_added_on_another_replica_gets_the_next_event(database: AsyncDatabase[Document]) -> None:
    here, there = NotificationStore(database), NotificationStore(database)
    await here.ensure_indexes()
    dispatch = event_handlers(UnitOfWork(database.client, here.db), here, "notifications", queued=lambda: None)
    tenant = f"memo-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, notification_support.onboarded(tenant))
    await deliver(dispatch, events.need_opened(tenant))  # no webhook yet: nothing for partners

    hook = await there.add_webhook(tenant, "https://partner.example/hook", "secret", [])
    await deliver(dispatch, events.need_opened(tenant))

    queued = await database.deliveries.count_documents({"tenant": tenant, "recipient_id": hook.id})
    assert queued == 1


async def test_a_batch_reads_a_tenants_webhooks_once(stack: Stack) -> None:
    client, counter = counting_client(stack.mongo_url)
    name = f"memo_{uuid.uuid4().hex[:10]}"
    store = NotificationStore(client[name])
    unit_of_work = UnitOfWork(client, store.db)
    tenant = f"memo-{uuid.uuid4().hex[:8]}"
    hook = await store.add_webhook(tenant, "https://partner.example/hook", "secret", [])

    async def hooks(transaction: Transaction) -> list[str]:
        return [each.id for each in await store.webhooks(tenant, transaction)]

    try:
        batch = Batch([])
        with counter.measure() as commands:
            async with batch.applying():
                assert await unit_of_work.run(hooks) == [hook.id]
                assert await unit_of_work.run(hooks) == [hook.id]  # the next event of the batch
                await batch.commit()
        assert commands.names.count("find") == 1, commands.names
        with counter.measure() as commands:
            assert await unit_of_work.run(hooks) == [hook.id]  # a transaction of its own reads again
        assert commands.names.count("find") == 1, commands.names
    finally:
        await client.drop_database(name)
        await client.close()
