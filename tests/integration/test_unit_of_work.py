"""The runtime's unit of work on the real database: effect, inbox record and outbox events in one
transaction, callbacks only after the commit, and a redelivered event changes nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, NeedOpened, new_event
from lotse_runtime.inbox import INBOX_COLLECTION, ensure_inbox_index
from lotse_runtime.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes
from lotse_runtime.unit_of_work import Batch, Transaction, UnitOfWork

TOPIC = "lotse.registry.needs.v1"


class Abort(Exception):
    pass


def opened(tenant: str = "musterstadt") -> Envelope[Any]:
    data = NeedOpened.example()
    return new_event(data=data, tenant=tenant, subject=str(data.need_id), version=1, source="/lotse/registry")


@pytest.fixture
async def prepared(database: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    await ensure_inbox_index(database)
    await ensure_outbox_indexes(database)
    await database.create_collection("needs")
    return database


async def test_effect_inbox_and_outbox_commit_together_then_the_callbacks_and_the_wake_up_run(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    happened: list[str] = []
    uow = UnitOfWork(mongo_client, prepared, wake=lambda: happened.append("wake"))
    event = opened()

    async def work(transaction: Transaction) -> str:
        await prepared.needs.insert_one({"_id": "need-1"}, session=transaction.session)
        await transaction.append_event(TOPIC, event)
        transaction.after_commit(lambda: happened.append("first"))
        transaction.after_commit(lambda: happened.append("second"))
        happened.append("body")
        return "done"

    assert await uow.run_once("effects", event, work) is True

    assert happened == ["body", "first", "second", "wake"]
    assert await prepared.needs.count_documents({}) == 1
    assert await prepared[INBOX_COLLECTION].count_documents({"consumer": "effects", "event_id": str(event.id)}) == 1
    (entry,) = await prepared[OUTBOX_COLLECTION].find().to_list()
    assert entry["_id"] == str(event.id) and entry["topic"] == TOPIC and entry["published_at"] is None


async def test_an_aborted_unit_leaves_nothing_and_calls_nothing_back(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    happened: list[str] = []
    uow = UnitOfWork(mongo_client, prepared, wake=lambda: happened.append("wake"))
    event = opened()

    async def work(transaction: Transaction) -> None:
        await prepared.needs.insert_one({"_id": "need-1"}, session=transaction.session)
        await transaction.append_event(TOPIC, event)
        transaction.after_commit(lambda: happened.append("callback"))
        raise Abort

    with pytest.raises(Abort):
        await uow.run_once("effects", event, work)

    assert happened == []
    for collection in ("needs", INBOX_COLLECTION, OUTBOX_COLLECTION):
        assert await prepared[collection].count_documents({}) == 0
    # Nothing of the aborted attempt counts: the event is applied when it comes again.
    assert await uow.run_once("effects", event, _insert_need) is True
    assert await prepared.needs.count_documents({}) == 1


async def test_a_duplicate_is_skipped_without_effect_or_wake_up(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    wakes: list[str] = []
    uow = UnitOfWork(mongo_client, prepared, wake=lambda: wakes.append("wake"))
    event = opened()

    assert await uow.run_once("effects", event, _insert_need) is True
    assert await uow.run_once("effects", event, _insert_need) is False
    # Another consumer, and the same event id of another tenant, are not duplicates.
    assert await uow.run_once("others", event, _insert_need) is True
    assert await uow.run_once("effects", event.model_copy(update={"tenant": "lindenau"}), _insert_need) is True

    assert await prepared.needs.count_documents({}) == 3
    assert await prepared[INBOX_COLLECTION].count_documents({}) == 3
    assert wakes == []  # no events appended: the relay has nothing new


async def test_a_check_before_the_commit_runs_last_once_per_key_and_its_refusal_aborts_the_batch(
    mongo_client: AsyncMongoClient[dict[str, Any]], prepared: AsyncDatabase[dict[str, Any]]
) -> None:
    """``before_commit`` (matching's fencing): after the batch's own rows, once however many units
    asked for it, and a check that raises leaves nothing of the batch."""
    uow = UnitOfWork(mongo_client, prepared)
    checked: list[int] = []

    def checking(allow: bool) -> Callable[[AsyncClientSession], Awaitable[None]]:
        async def check(session: AsyncClientSession) -> None:
            checked.append(await prepared[INBOX_COLLECTION].count_documents({}, session=session))
            if not allow:
                raise Abort

        return check

    for allow in (False, True):
        checked.clear()
        events = [opened(), opened()]
        batch = Batch(events)
        with contextlib.suppress(Abort):
            async with batch.applying():
                for event in events:

                    async def work(transaction: Transaction, allow: bool = allow) -> None:
                        transaction.before_commit("the check", checking(allow))
                        await _insert_need(transaction)

                    await uow.run_once("effects", event, work)
                await batch.commit()

        assert checked == [2], "once, after the inbox rows of both events"
        assert await prepared.needs.count_documents({}) == (2 if allow else 0)


async def _insert_need(transaction: Transaction) -> None:
    count = await transaction.database.needs.count_documents({}, session=transaction.session)
    await transaction.database.needs.insert_one({"_id": f"need-{count}"}, session=transaction.session)
