"""The audit trail on the real database: a unit of work writes its entries in its own transaction
(an aborted write leaves none), entries name fields and never values, reads are recorded, and the
search pages and filters one tenant's trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime import audit
from lotse_runtime.audit import AUDIT_COLLECTION, Actor, AuditQuery, Operation, act_as, changed_fields
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

SECRET_EMAIL = "maria@example.org"


class Abort(Exception):
    pass


@pytest.fixture
async def prepared(database: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    await audit.ensure_audit_indexes(database)
    await database.create_collection("volunteers")
    return database


async def test_a_write_commits_with_its_entry_which_names_the_fields_and_never_the_values(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    act_as(Actor("coordinator-1", ("coordinator",), "PUT /tenants/{tenant}/volunteers/{volunteer_id}"))
    document = {"_id": "v-1", "tenant": "musterstadt", "contact": {"email": SECRET_EMAIL}, "skills": ["driving"]}

    async def work(transaction: Transaction) -> None:
        await prepared.volunteers.insert_one(document, session=transaction.session)
        transaction.audit("musterstadt", Operation.CREATE, "volunteers", "v-1", changed_fields(document))
        # A second change to the same resource joins the first entry.
        update = {"$set": {"travel_radius_km": 5}, "$unset": {"phone": ""}}
        await prepared.volunteers.update_one({"_id": "v-1"}, update, session=transaction.session)
        transaction.audit("musterstadt", Operation.UPDATE, "volunteers", "v-1", changed_fields(update))

    await UnitOfWork(mongo_client, prepared).run(work)

    (stored,) = await prepared[AUDIT_COLLECTION].find().to_list()
    assert SECRET_EMAIL not in repr(stored) and "driving" not in repr(stored)
    entry = audit.AuditEntry.from_document(stored)
    assert (entry.tenant, entry.actor, entry.roles, entry.operation) == (
        "musterstadt",
        "coordinator-1",
        ("coordinator",),
        Operation.CREATE,
    )
    assert (entry.resource_type, entry.resource_id) == ("volunteers", "v-1")
    assert entry.fields == ("contact", "phone", "skills", "travel_radius_km")
    assert entry.action == "PUT /tenants/{tenant}/volunteers/{volunteer_id}"
    # Retention: MongoDB removes the entry itself, two years after it was written.
    assert stored["expires_at"] - stored["at"] == audit.DEFAULT_RETENTION
    indexes = await prepared[AUDIT_COLLECTION].index_information()
    assert indexes["audit_retention"]["expireAfterSeconds"] == 0


async def test_an_aborted_write_leaves_no_entry_and_an_entry_never_commits_without_its_write(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    async def work(transaction: Transaction) -> None:
        await prepared.volunteers.insert_one({"_id": "v-2", "tenant": "musterstadt"}, session=transaction.session)
        transaction.audit("musterstadt", Operation.CREATE, "volunteers", "v-2", {"skills"})
        raise Abort

    with pytest.raises(Abort):
        await UnitOfWork(mongo_client, prepared).run(work)

    assert await prepared.volunteers.count_documents({}) == 0
    assert await prepared[AUDIT_COLLECTION].count_documents({}) == 0


async def test_reads_are_recorded_and_the_search_filters_and_pages_one_tenants_trail(
    prepared: AsyncDatabase[dict[str, Any]],
) -> None:
    act_as(Actor("admin-1", ("initiative-admin",), "GET /tenants/{tenant}/volunteers"))
    await audit.record_reads(prepared, "musterstadt", "volunteers", ["v-1", "v-2", "v-3"], {"contact.email"})
    act_as(Actor("coordinator-1", ("coordinator",)))
    await audit.record_reads(prepared, "musterstadt", "staff", ["s-1"], {"email"})
    await audit.record_reads(prepared, "othertown", "volunteers", ["v-9"], {"contact.email"})

    everything = AuditQuery(tenant="musterstadt")
    first, cursor = await audit.search(prepared, everything, None, 3)
    assert cursor is not None
    rest, last_cursor = await audit.search(prepared, everything, cursor, 3)
    assert last_cursor is None
    ids = [entry.resource_id for entry in first + rest]
    assert sorted(ids) == ["s-1", "v-1", "v-2", "v-3"]  # each once, none of the other tenant
    assert all(entry.operation is Operation.READ for entry in first + rest)

    by_actor, _ = await audit.search(prepared, AuditQuery(tenant="musterstadt", actor="coordinator-1"), None, 10)
    assert [entry.resource_id for entry in by_actor] == ["s-1"]
    by_type, _ = await audit.search(prepared, AuditQuery(tenant="musterstadt", resource="staff"), None, 10)
    assert [entry.resource_id for entry in by_type] == ["s-1"]
    by_id, _ = await audit.search(prepared, AuditQuery(tenant="musterstadt", resource="volunteers/v-2"), None, 10)
    assert [(entry.actor, entry.fields) for entry in by_id] == [("admin-1", ("contact.email",))]
    at = by_id[0].at
    since, _ = await audit.search(prepared, AuditQuery(tenant="musterstadt", since=at + timedelta(hours=1)), None, 10)
    assert since == []
    until, _ = await audit.search(prepared, AuditQuery(tenant="musterstadt", until=at + timedelta(hours=1)), None, 10)
    assert len(until) == 4
