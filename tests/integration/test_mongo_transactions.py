"""The database of the test stack keeps the promises the outbox and the inbox rely on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_devstack import Stack
from lotse_runtime.inbox import INBOX_COLLECTION, ensure_inbox_index, record_once
from lotse_runtime.mongo import connect, in_transaction


class Abort(Exception):
    pass


async def test_a_transaction_commits_two_collections_together(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    await database.create_collection("needs")
    await database.create_collection("outbox")

    async def open_need(session: AsyncClientSession) -> None:
        await database.needs.insert_one({"_id": "need-1", "status": "open"}, session=session)
        await database.outbox.insert_one({"_id": "event-1", "subject": "need-1"}, session=session)

    await in_transaction(mongo_client, open_need)

    assert await database.needs.count_documents({}) == 1
    assert await database.outbox.count_documents({}) == 1


async def test_an_aborted_transaction_leaves_nothing(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    await database.create_collection("needs")
    await database.create_collection("outbox")

    async def open_need_then_fail(session: AsyncClientSession) -> None:
        await database.needs.insert_one({"_id": "need-1", "status": "open"}, session=session)
        await database.outbox.insert_one({"_id": "event-1", "subject": "need-1"}, session=session)
        raise Abort

    with pytest.raises(Abort):
        await in_transaction(mongo_client, open_need_then_fail)

    assert await database.needs.count_documents({}) == 0
    assert await database.outbox.count_documents({}) == 0


async def test_the_inbox_records_an_event_once_per_consumer(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    await ensure_inbox_index(database)

    async def apply(session: AsyncClientSession, consumer: str) -> bool:
        first = await record_once(database, session, consumer=consumer, event_id="e-1", tenant="muenster")
        if first:
            await database.effects.insert_one({"consumer": consumer}, session=session)
        return first

    assert await in_transaction(mongo_client, lambda s: apply(s, "matching")) is True
    assert await in_transaction(mongo_client, lambda s: apply(s, "matching")) is False
    assert await in_transaction(mongo_client, lambda s: apply(s, "notifications")) is True
    assert await database.effects.count_documents({"consumer": "matching"}) == 1
    assert await database.effects.count_documents({}) == 2


async def test_the_inbox_applies_the_same_event_id_once_per_tenant(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    """Partner systems choose their event ids: two tenants' partners may well send the same one."""
    await ensure_inbox_index(database)

    async def apply(session: AsyncClientSession, tenant: str) -> bool:
        first = await record_once(database, session, consumer="registry", event_id="need-42", tenant=tenant)
        if first:
            await database.effects.insert_one({"tenant": tenant}, session=session)
        return first

    assert await in_transaction(mongo_client, lambda s: apply(s, "muenster")) is True
    assert await in_transaction(mongo_client, lambda s: apply(s, "lindenau")) is True
    assert await in_transaction(mongo_client, lambda s: apply(s, "lindenau")) is False
    assert await database.effects.count_documents({"tenant": "muenster"}) == 1
    assert await database.effects.count_documents({"tenant": "lindenau"}) == 1


async def test_a_database_with_the_inbox_index_without_tenant_takes_the_new_key(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    inbox = database[INBOX_COLLECTION]
    await inbox.create_index([("consumer", 1), ("event_id", 1)], unique=True)
    await inbox.insert_one({"consumer": "registry", "event_id": "need-42", "tenant": "muenster"})

    await ensure_inbox_index(database)
    await ensure_inbox_index(database)  # a second start (or replica) finds nothing left to drop

    assert "consumer_1_event_id_1" not in await inbox.index_information()
    assert await in_transaction(
        mongo_client,
        lambda s: record_once(database, s, consumer="registry", event_id="need-42", tenant="lindenau"),
    )
    assert not await in_transaction(
        mongo_client,
        lambda s: record_once(database, s, consumer="registry", event_id="need-42", tenant="muenster"),
    )


def _commands_counted(command: str) -> float:
    return REGISTRY.get_sample_value("lotse_mongo_commands_total", {"command": command}) or 0.0


async def test_a_service_client_counts_its_commands_and_transactions_in_the_metrics(stack: Stack) -> None:
    client = connect(stack.mongo_url, "test")
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        await client[name].create_collection("needs")
        inserts, finds, commits = (_commands_counted(c) for c in ("insert", "find", "commitTransaction"))

        async def open_need(session: AsyncClientSession) -> None:
            await client[name].needs.insert_one({"_id": "need-1"}, session=session)
            await client[name].needs.insert_one({"_id": "need-2"}, session=session)

        await in_transaction(client, open_need)
        assert await client[name].needs.find_one({"_id": "need-1"}) is not None

        assert _commands_counted("insert") == inserts + 2
        assert _commands_counted("find") == finds + 1
        assert _commands_counted("commitTransaction") == commits + 1
    finally:
        await client.drop_database(name)
        await client.close()
