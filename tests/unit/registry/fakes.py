"""An in-memory ``CommandScope`` of one tenant, to run the registry's use cases without a database.

It keeps what the real scope keeps (documents with their tenant, versions, anonymous counters,
idempotency records) and answers as it does: a change against a version that is no longer
current raises ``StaleVersion``, and events are appended only inside a unit of work. ``run``
is ``in_tenant`` on the runtime's unit of work, in memory (tests/support/memory.py): all or
nothing, and ``outbox`` holds what committed units appended.
Filters are equality on top-level fields (a list field matches when it holds the value); updates
know the operators the use cases use (``$set``, ``$unset``, ``$pull``) and refuse any other.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo.errors import DuplicateKeyError

from lotse_contracts import Envelope, topic_for
from lotse_contracts.base import EventData
from lotse_registry.store import (
    COUNTERS,
    IDEMPOTENCY,
    ORGANISATIONS,
    POSTCODES,
    TENANT_COLLECTIONS,
    TENANTS,
    Document,
    StaleVersion,
    registry_event,
)
from lotse_runtime.unit_of_work import Transaction
from tests.support.memory import Appended, MemoryUnitOfWork

T = TypeVar("T")


@dataclass
class FakeScope:
    tenant: str
    collections: dict[str, dict[str, Document]] = field(default_factory=dict)
    unit_of_work: MemoryUnitOfWork = field(init=False)
    transaction: Transaction | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.unit_of_work = MemoryUnitOfWork(self)

    # --- what the use cases call (store.CommandScope) -------------------------------------------

    async def get(self, collection: str, document_id: str) -> Document | None:
        found = self._documents(collection).get(document_id)
        return copy.deepcopy(found) if found is not None else None

    async def tenant_settings(self) -> Document | None:
        return await self.get(TENANTS, self.tenant)

    async def organisation_exists(self, organisation_id: str) -> bool:
        return await self.get(ORGANISATIONS, organisation_id) is not None

    async def districts(self) -> frozenset[str]:
        return frozenset(row["district"] for row in self._documents(POSTCODES).values())

    async def insert(self, collection: str, document: Mapping[str, Any]) -> Document:
        documents = self._documents(collection)
        if document["_id"] in documents:
            raise DuplicateKeyError(f"{collection}/{document['_id']} exists")
        stored = {**copy.deepcopy(dict(document)), "tenant": self.tenant}
        documents[stored["_id"]] = stored
        return copy.deepcopy(stored)

    async def update_many(
        self,
        collection: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        subject_id: str | None = None,
    ) -> None:
        for document in self._matching(collection, query):
            _apply(document, update)

    async def replace(self, collection: str, document: Mapping[str, Any]) -> None:
        documents = self._documents(collection)
        if document["_id"] in documents:  # replace_one without upsert
            documents[document["_id"]] = {**copy.deepcopy(dict(document)), "tenant": self.tenant}

    async def delete_many(self, collection: str, query: Mapping[str, Any]) -> int:
        doomed = [document["_id"] for document in self._matching(collection, query)]
        for document_id in doomed:
            del self._documents(collection)[document_id]
        return len(doomed)

    async def increment(self, counter: str, field: str, by: int = 1) -> None:
        counters = self.collections.setdefault(COUNTERS, {})
        document = counters.setdefault(f"{self.tenant}:{counter}", {"_id": f"{self.tenant}:{counter}"})
        document["tenant"] = self.tenant
        document[field] = document.get(field, 0) + by

    async def forget_responses(self, resource_id: str) -> None:
        await self.delete_many(IDEMPOTENCY, {"resource_id": resource_id})

    async def create(
        self, collection: str, document: Document, event: EventData, *, cause: Envelope[Any] | None = None
    ) -> Document:
        stored = await self.insert(collection, {**document, "version": 1, "created_at": datetime.now(UTC)})
        await self.emit(event, subject=document["_id"], version=1, cause=cause)
        return stored

    async def change(
        self,
        collection: str,
        current: Mapping[str, Any],
        changes: Mapping[str, Any],
        event: EventData | None,
        *,
        cause: Envelope[Any] | None = None,
        unset: tuple[str, ...] = (),
    ) -> Document:
        stored = self._documents(collection).get(current["_id"])
        if stored is None or stored["version"] != current["version"]:
            raise StaleVersion(f"{collection}/{current['_id']} changed concurrently")
        version = current["version"] + 1
        _apply(stored, {"$set": {**changes, "version": version, "updated_at": datetime.now(UTC)}})
        _apply(stored, {"$unset": dict.fromkeys(unset, "")})
        if event is not None:
            await self.emit(event, subject=current["_id"], version=version, cause=cause)
        merged = {key: value for key, value in current.items() if key not in unset}
        return {**merged, **changes, "version": version}

    async def emit(
        self, data: EventData, *, subject: str, version: int, cause: Envelope[Any] | None = None
    ) -> Envelope[Any]:
        event = registry_event(self.tenant, data, subject=subject, version=version, cause=cause)
        if self.transaction is None:
            raise TypeError("events are emitted inside a unit of work only")
        await self.transaction.append_event(topic_for(event.type, self.tenant), event)
        return event

    # --- for the tests --------------------------------------------------------------------------

    async def run(self, work: Callable[[FakeScope], Awaitable[T]]) -> T:
        """``work`` on this scope in one unit of work, as ``in_tenant`` runs a command."""

        async def scoped(transaction: Transaction) -> T:
            self.transaction = transaction
            try:
                return await work(self)
            finally:
                self.transaction = None

        return await self.unit_of_work.run(scoped)

    @property
    def outbox(self) -> list[Appended]:
        return self.unit_of_work.outbox

    def snapshot(self) -> dict[str, dict[str, Document]]:
        return copy.deepcopy(self.collections)

    def restore(self, snapshot: dict[str, dict[str, Document]]) -> None:
        self.collections = snapshot

    def documents(self, collection: str) -> list[Document]:
        return [copy.deepcopy(document) for document in self._documents(collection).values()]

    def events(self, model: type[EventData] | None = None) -> list[Envelope[Any]]:
        """The events appended so far (of one class), in order."""
        return [item.event for item in self.outbox if model is None or isinstance(item.event.data, model)]

    def _documents(self, collection: str) -> dict[str, Document]:
        if collection not in TENANT_COLLECTIONS | {IDEMPOTENCY}:
            raise ValueError(f"{collection} is not a tenant collection")
        return self.collections.setdefault(collection, {})

    def _matching(self, collection: str, query: Mapping[str, Any]) -> list[Document]:
        if "tenant" in query and query["tenant"] != self.tenant:
            raise ValueError("a tenant scope cannot query another tenant")
        return [document for document in self._documents(collection).values() if _matches(document, query)]


def _matches(document: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for name, wanted in query.items():
        if isinstance(wanted, Mapping) or name.startswith("$"):
            raise NotImplementedError(f"the fake scope filters by equality only, not {name}: {wanted!r}")
        value = document.get(name)
        if not (value == wanted or (isinstance(value, list) and wanted in value)):
            return False
    return True


def _apply(document: Document, update: Mapping[str, Any]) -> None:
    for operator, fields in update.items():
        for name, value in fields.items():
            if operator == "$set":
                document[name] = copy.deepcopy(value)
            elif operator == "$unset":
                document.pop(name, None)
            elif operator == "$pull":
                document[name] = [item for item in document.get(name, []) if item != value]
            else:
                raise NotImplementedError(f"the fake scope does not know {operator}")
