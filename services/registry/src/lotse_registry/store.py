"""Persistence: every read and write of tenant data goes through a ``TenantScope``.

A scope is bound to one tenant (and one transaction) and adds that tenant to every filter,
insert and update, so no handler can forget it and none can reach another tenant's data.
Events are appended to the outbox through the same scope, inside the same transaction.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar
from uuid import UUID

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from lotse_contracts import (
    Envelope,
    PersonKeyIssued,
    VolunteerAvailabilityChanged,
    VolunteerAvailabilityChangedSealed,
    VolunteerErased,
    VolunteerProfile,
    VolunteerProfileUpdated,
    VolunteerProfileUpdatedFullySealed,
    VolunteerRegistered,
    VolunteerRegisteredFullySealed,
    VolunteerRegistration,
    new_event,
    topic_for,
)
from lotse_contracts.base import EventData
from lotse_contracts.topics import PERSON_KEYS as PERSON_KEYS_TOPIC
from lotse_registry.domain import CheckStatus, NeedStatus, VolunteerStatus
from lotse_registry.places import PostcodePlace
from lotse_registry.portal import PortalSettings
from lotse_runtime.audit import Operation, changed_fields, ensure_audit_indexes
from lotse_runtime.inbox import ensure_inbox_index
from lotse_runtime.memo import FOREVER, MEMO_SECONDS, Memo
from lotse_runtime.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes, tombstone_entry
from lotse_runtime.sealed import KeyEncryptionKey, SealingError, new_data_key, seal
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

SOURCE = "/lotse/registry"

TENANTS = "tenants"
ORGANISATIONS = "organisations"
VOLUNTEERS = "volunteers"
NEEDS = "needs"
CONSENTS = "consents"
PARTNER_REFS = "partner_refs"
IDEMPOTENCY = "idempotency"
COUNTERS = "counters"
POSTCODES = "postcodes"
CERTIFICATE_CHECKS = "certificate_checks"
STAFF = "staff"
# The collections of the volunteers' keys and of the audit trail, read for the subject-access export.
KEY_RING = "person_keys"
# One-off upgrades of the stored data, each marked done by a document of its name.
MIGRATIONS = "migrations"
ALL_HAVE_PERSON_KEYS = "every active volunteer has a person key"
AUDIT_TRAIL = "audit"

TENANT_COLLECTIONS = frozenset(
    {TENANTS, ORGANISATIONS, VOLUNTEERS, NEEDS, CONSENTS, PARTNER_REFS, COUNTERS, POSTCODES, CERTIFICATE_CHECKS, STAFF}
)
# How many volunteers a search reads at a time while it looks for a page of matches.
SEARCH_BATCH = 200

T = TypeVar("T")
Document = dict[str, Any]


class StaleVersion(Exception):
    """The aggregate changed between read and write."""


class Known:
    """What the registry's checks may take from memory instead of a round trip (issue 17): the
    tenants' documents for a few seconds (``set_portal_settings`` forgets one at once, the expiry
    bounds what another replica changed), and organisations that exist (never deleted, so kept
    for good). Only committed reads are kept (see ``lotse_runtime.memo``)."""

    def __init__(self, seconds: float = MEMO_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenants: Memo[str, Document] = Memo(seconds, clock, copy=copy.deepcopy)
        self.organisations: Memo[tuple[str, str], bool] = Memo(FOREVER, clock)
        # The districts of each tenant's postcode table (``replace_postcodes`` forgets them).
        self.districts: Memo[str, frozenset[str]] = Memo(seconds, clock)


def postcode_id(tenant: str, postcode: str) -> str:
    """A postcode is unique within its tenant only: the document id carries both."""
    return f"{tenant}:{postcode}"


def staff_document_id(tenant: str, staff_id: str) -> str:
    """A staff member belongs to one tenant's office: the document id carries both."""
    return f"{tenant}:{staff_id}"


async def ensure_indexes(database: AsyncDatabase[Document]) -> None:
    await ensure_outbox_indexes(database)
    await ensure_inbox_index(database)
    await ensure_audit_indexes(database)
    for name in (ORGANISATIONS, VOLUNTEERS, NEEDS):
        await database[name].create_index([("tenant", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])
    await database[NEEDS].create_index([("tenant", ASCENDING), ("status", ASCENDING)])
    await database[CONSENTS].create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING)])
    # Whether another partner system reported a reference (partner.py refuses it a change).
    await database[PARTNER_REFS].create_index([("tenant", ASCENDING), ("kind", ASCENDING), ("external_ref", ASCENDING)])
    await database[IDEMPOTENCY].create_index(
        [("tenant", ASCENDING), ("caller", ASCENDING), ("key", ASCENDING)], unique=True
    )
    await database[IDEMPOTENCY].create_index([("tenant", ASCENDING), ("resource_id", ASCENDING)])
    await database[IDEMPOTENCY].create_index("created_at", expireAfterSeconds=24 * 3600, name="idempotency_ttl")
    await database[OUTBOX_COLLECTION].create_index([("key", ASCENDING)])
    await database[POSTCODES].create_index([("tenant", ASCENDING), ("postcode", ASCENDING)], unique=True)
    await database[CERTIFICATE_CHECKS].create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING)])
    # The expiry notices' timer looks for checks in force whose next notice is due.
    await database[CERTIFICATE_CHECKS].create_index([("status", ASCENDING), ("next_notice_at", ASCENDING)])
    await database[STAFF].create_index([("tenant", ASCENDING), ("name", ASCENDING)])
    await database[VOLUNTEERS].create_index([("tenant", ASCENDING), ("contact_person_id", ASCENDING)])


def registry_event(
    tenant: str, data: EventData, *, subject: str, version: int, cause: Envelope[Any] | None = None
) -> Envelope[Any]:
    """The envelope the registry publishes ``data`` in, in the trace of the event that caused it."""
    return new_event(
        data=data,
        tenant=tenant,
        subject=subject,
        version=version,
        source=SOURCE,
        correlationid=cause.correlationid if cause else None,
        causationid=cause.id if cause else None,
    )


class CommandScope(Protocol):
    """What the use cases (``service.py``) need of one tenant's data inside one unit of work.

    ``TransactionScope`` is the real one; the unit tests run the use cases on an in-memory one.
    Filters and updates use the MongoDB operators ``$set``, ``$unset`` and ``$pull`` only."""

    tenant: str

    async def get(self, collection: str, document_id: str) -> Document | None: ...

    async def tenant_settings(self) -> Document | None:
        """The tenant's document (None: not onboarded), read at most once per scope."""
        ...

    async def organisation_exists(self, organisation_id: str) -> bool: ...

    async def districts(self) -> frozenset[str]: ...

    async def insert(self, collection: str, document: Mapping[str, Any]) -> Document: ...

    async def update_many(
        self,
        collection: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        subject_id: str | None = None,
    ) -> None: ...

    async def replace(self, collection: str, document: Mapping[str, Any]) -> None: ...

    async def delete_many(self, collection: str, query: Mapping[str, Any]) -> int: ...

    async def increment(self, counter: str, field: str, by: int = 1) -> None: ...

    async def forget_responses(self, resource_id: str) -> None: ...

    async def create(
        self, collection: str, document: Document, event: EventData, *, cause: Envelope[Any] | None = None
    ) -> Document: ...

    async def change(
        self,
        collection: str,
        current: Mapping[str, Any],
        changes: Mapping[str, Any],
        event: EventData | None,
        *,
        cause: Envelope[Any] | None = None,
        unset: tuple[str, ...] = (),
    ) -> Document: ...

    async def emit(
        self, data: EventData, *, subject: str, version: int, cause: Envelope[Any] | None = None
    ) -> Envelope[Any]: ...


class TenantScope:
    """The registry's data of one tenant, read and written inside one transaction."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        tenant: str,
        session: AsyncClientSession | None,
        known: Known | None = None,
    ) -> None:
        self.database = database
        self.tenant = tenant
        self.session = session
        self.known = known
        self._tenant_document: Document | None = None

    def _collection(self, name: str) -> AsyncCollection[Document]:
        if name not in TENANT_COLLECTIONS:
            raise ValueError(f"{name} is not a tenant collection")
        return self.database[name]

    def scoped(self, query: Mapping[str, Any]) -> Document:
        if "tenant" in query and query["tenant"] != self.tenant:
            raise ValueError("a tenant scope cannot query another tenant")
        return {**query, "tenant": self.tenant}

    async def get(self, collection: str, document_id: str) -> Document | None:
        return await self._collection(collection).find_one(self.scoped({"_id": document_id}), session=self.session)

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> Document | None:
        return await self._collection(collection).find_one(self.scoped(query), session=self.session)

    async def tenant_settings(self) -> Document | None:
        if self._tenant_document is None and self.known is not None:
            self._tenant_document = self.known.tenants.get(self.tenant, self._transaction())
        if self._tenant_document is None:
            ticket = self.known.tenants.ticket() if self.known is not None else 0
            self._tenant_document = await self.get(TENANTS, self.tenant)
            if self._tenant_document is not None and self.known is not None:
                self.known.tenants.remember(self.tenant, self._tenant_document, ticket, self._transaction())
        return copy.deepcopy(self._tenant_document)

    async def organisation_exists(self, organisation_id: str) -> bool:
        key = (self.tenant, organisation_id)
        if self.known is not None and self.known.organisations.get(key, self._transaction()):
            return True
        ticket = self.known.organisations.ticket() if self.known is not None else 0
        found = await self.find_one(ORGANISATIONS, {"_id": organisation_id}) is not None
        if found and self.known is not None:
            self.known.organisations.remember(key, True, ticket, self._transaction())
        return found

    async def districts(self) -> frozenset[str]:
        """The districts of the tenant's postcode table (empty: the tenant has none)."""
        transaction = self._transaction()
        kept = self.known.districts.get(self.tenant, transaction) if self.known is not None else None
        if kept is not None:
            return kept
        ticket = self.known.districts.ticket() if self.known is not None else 0
        rows = await self.find(POSTCODES, {}, projection={"_id": 0, "district": 1})
        found = frozenset(str(row["district"]) for row in rows)
        if self.known is not None:
            self.known.districts.remember(self.tenant, found, ticket, transaction)
        return found

    def _transaction(self) -> Transaction | None:
        """The unit of work this scope reads in (None: what it reads is committed already)."""
        return None

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        limit: int = 0,
        sort: list[tuple[str, int]] | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        cursor = self._collection(collection).find(self.scoped(query), projection, session=self.session)
        if sort:
            cursor = cursor.sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        return await cursor.to_list()

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return await self._collection(collection).count_documents(self.scoped(query), session=self.session)

    async def insert(self, collection: str, document: Mapping[str, Any]) -> Document:
        stored = self.scoped(document)
        self._audit(Operation.CREATE, collection, _audited_id(collection, stored), changed_fields(stored), stored)
        await self._collection(collection).insert_one(stored, session=self.session)
        return stored

    async def update(
        self,
        collection: str,
        document_id: str,
        update: Mapping[str, Any],
        *,
        where: Mapping[str, Any] | None = None,
        aggregate_id: str | None = None,
    ) -> bool:
        """Update one document (only if it also matches ``where``: a check without a read first);
        whether it matched. A partner reference names the ``aggregate_id`` it points to: the
        trail records that, never the reference's id (it holds the partner's case reference)."""
        query = self.scoped({**(where or {}), "_id": document_id})
        result = await self._collection(collection).update_one(query, update, session=self.session)
        if result.matched_count == 1:
            known = {"_id": document_id, "aggregate_id": aggregate_id}
            self._audit(Operation.UPDATE, collection, _audited_id(collection, known), changed_fields(update), known)
        return result.matched_count == 1

    async def update_many(
        self,
        collection: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        subject_id: str | None = None,
    ) -> None:
        """Update every matching document; ``subject_id``: the volunteer or need they belong to,
        for the trail, where the filter does not name it."""
        result = await self._collection(collection).update_many(self.scoped(query), update, session=self.session)
        if result.matched_count:
            about = {"volunteer_id": subject_id} if subject_id else query
            self._audit(Operation.UPDATE, collection, _resource_of(collection, query), changed_fields(update), about)

    async def replace(self, collection: str, document: Mapping[str, Any]) -> None:
        await self._collection(collection).replace_one(
            self.scoped({"_id": document["_id"]}), self.scoped(document), session=self.session
        )
        self._audit(Operation.UPDATE, collection, _audited_id(collection, document), changed_fields(document), document)

    async def delete_many(self, collection: str, query: Mapping[str, Any]) -> int:
        result = await self._collection(collection).delete_many(self.scoped(query), session=self.session)
        if result.deleted_count:
            self._audit(Operation.DELETE, collection, _resource_of(collection, query), set(), query)
        return result.deleted_count

    async def increment(self, counter: str, field: str, by: int = 1) -> None:
        """Anonymous counts (e.g. erased volunteers) that outlive the data they count."""
        await self.database[COUNTERS].update_one(
            {"_id": f"{self.tenant}:{counter}", "tenant": self.tenant},
            {"$inc": {field: by}},
            upsert=True,
            session=self.session,
        )
        self._audit(Operation.UPDATE, COUNTERS, f"{self.tenant}:{counter}", {field})

    def _audit(
        self,
        operation: Operation,
        collection: str,
        resource_id: str,
        fields: set[str],
        about: Mapping[str, Any] | None = None,
    ) -> None:
        """Note a write for the audit trail; its entry is written in the write's transaction.
        ``about``: the document or filter written, for the volunteer or need it concerns."""
        if not isinstance(self, TransactionScope):
            raise TypeError("the registry writes inside a unit of work only, where its audit entry is written")
        subject_id = _subject_of(collection, about or {})
        self.transaction.audit(self.tenant, operation, collection, resource_id, fields, subject_id=subject_id)

    async def forget_responses(self, resource_id: str) -> None:
        """Delete the idempotency records of a resource: the responses they keep hold its data."""
        await self.database[IDEMPOTENCY].delete_many(
            {"tenant": self.tenant, "resource_id": resource_id}, session=self.session
        )

    # --- aggregates with versions and events ------------------------------------------------

    async def create(
        self, collection: str, document: Document, event: EventData, *, cause: Envelope[Any] | None = None
    ) -> Document:
        """Insert a new aggregate at version 1 and append its first event."""
        document = {**document, "version": 1, "created_at": datetime.now(UTC)}
        stored = await self.insert(collection, document)
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
        """Apply ``changes`` to an aggregate read in this transaction, bump its version and append
        ``event`` with the new version; a concurrent change makes the write fail."""
        version = current["version"] + 1
        update: Document = {"$set": {**changes, "version": version, "updated_at": datetime.now(UTC)}}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        result = await self._collection(collection).update_one(
            self.scoped({"_id": current["_id"], "version": current["version"]}), update, session=self.session
        )
        if result.matched_count != 1:
            raise StaleVersion(f"{collection}/{current['_id']} changed concurrently")
        self._audit(Operation.UPDATE, collection, str(current["_id"]), changed_fields(update), current)
        if event is not None:
            await self.emit(event, subject=current["_id"], version=version, cause=cause)
        merged = {key: value for key, value in current.items() if key not in unset}
        return {**merged, **changes, "version": version}

    async def emit(
        self, data: EventData, *, subject: str, version: int, cause: Envelope[Any] | None = None
    ) -> Envelope[Any]:
        """Append the event of ``data``; a volunteer's personal fields go sealed with their key, and
        the erasure destroys that key (crypto-shredding, see ``lotse_runtime.sealed``)."""
        if not isinstance(self, TransactionScope):
            raise TypeError("events are emitted inside a unit of work only")
        if isinstance(data, VolunteerRegistered | VolunteerProfileUpdated | VolunteerAvailabilityChanged):
            data = await self._sealed(data, subject, version, cause)
        elif isinstance(data, VolunteerErased):
            await self._destroy_person_key(subject, version)
        event = registry_event(self.tenant, data, subject=subject, version=version, cause=cause)
        await self.transaction.append_event(topic_for(event.type, self.tenant), event)
        return event


async def person_key(
    transaction: Transaction,
    kek: KeyEncryptionKey,
    tenant: str,
    subject: str,
    version: int,
    cause: Envelope[Any] | None = None,
) -> Document:
    """The person's key (its document, wrapped), made and published in ``transaction`` if they
    have none yet."""
    keys, session = transaction.database[KEY_RING], transaction.session
    document = await keys.find_one({"_id": subject, "tenant": tenant}, session=session)
    if document is None:
        key_id, data_key = new_data_key()
        wrapped = kek.wrap(key_id, data_key)
        document = {"_id": subject, "tenant": tenant, "key_id": str(key_id), "wrapped_key": wrapped}
        await keys.insert_one({**document, "created_at": datetime.now(UTC)}, session=session)
        issued = PersonKeyIssued(person_id=subject, key_id=key_id, algorithm="A256GCM", wrapped_key=wrapped)
        event = registry_event(tenant, issued, subject=subject, version=version, cause=cause)
        await transaction.append_event(PERSON_KEYS_TOPIC.name, event)
    return document


class TransactionScope(TenantScope):
    """A tenant scope inside a unit of work (see ``in_tenant``): its session is always there."""

    session: AsyncClientSession

    def __init__(self, transaction: Transaction, tenant: str, known: Known | None = None) -> None:
        super().__init__(transaction.database, tenant, transaction.session, known)
        self.transaction = transaction

    def _transaction(self) -> Transaction | None:
        # Its reads may see its own uncommitted writes, or a snapshot older than what is committed.
        return self.transaction

    async def _sealed(
        self,
        data: VolunteerRegistered | VolunteerProfileUpdated | VolunteerAvailabilityChanged,
        subject: str,
        version: int,
        cause: Envelope[Any] | None,
    ) -> VolunteerRegisteredFullySealed | VolunteerProfileUpdatedFullySealed | VolunteerAvailabilityChangedSealed:
        """The event with everything but the volunteer's id sealed with their key, made (and
        published, wrapped) at the first event that needs it."""
        # The store's own key, carried by its unit of work: never another database's.
        kek = self.transaction.key_encryption_key
        if kek is None:
            raise RuntimeError("this registry store has no key-encryption key: personal fields cannot be sealed")
        document = await person_key(self.transaction, kek, self.tenant, subject, version, cause)
        key_id = UUID(document["key_id"])
        data_key = kek.unwrap(key_id, document["wrapped_key"])
        if isinstance(data, VolunteerAvailabilityChanged):
            availability = seal(
                data.availability, key_id=key_id, data_key=data_key, tenant=self.tenant, subject=subject
            )
            return VolunteerAvailabilityChangedSealed(volunteer_id=data.volunteer_id, availability=availability)
        if isinstance(data, VolunteerRegistered):
            registration = VolunteerRegistration.model_validate(data.model_dump(exclude={"volunteer_id"}))
            sealed = seal(registration, key_id=key_id, data_key=data_key, tenant=self.tenant, subject=subject)
            return VolunteerRegisteredFullySealed(volunteer_id=data.volunteer_id, profile=sealed)
        profile = VolunteerProfile.model_validate(data.model_dump(exclude={"volunteer_id"}))
        sealed_profile = seal(profile, key_id=key_id, data_key=data_key, tenant=self.tenant, subject=subject)
        return VolunteerProfileUpdatedFullySealed(volunteer_id=data.volunteer_id, profile=sealed_profile)

    async def _destroy_person_key(self, subject: str, version: int) -> None:
        """Delete the volunteer's key and write its tombstone on the key topic: every sealed copy of
        their personal fields, wherever it is, can no longer be opened."""
        await self.database[KEY_RING].delete_one({"_id": subject, "tenant": self.tenant}, session=self.session)
        entry = tombstone_entry(PERSON_KEYS_TOPIC.name, f"{self.tenant}:{subject}", self.tenant, version)
        await self.database[OUTBOX_COLLECTION].insert_one(entry, session=self.session)


# Filter fields whose values are ids of Lotse's own aggregates (random, assigned by Lotse): the
# only filter values the trail records. Any other value (a partner's case reference, a postcode,
# a name) may be personal and would outlive its erasure in the trail by two years.
AGGREGATE_ID_FIELDS = ("volunteer_id", "committed", "aggregate_id", "need_id", "check_id", "organisation_id")
# Where a write's data subject is named: the volunteer's or need's id.
SUBJECT_FIELDS = ("volunteer_id", "committed", "aggregate_id", "need_id")


def _audited_id(collection: str, document: Mapping[str, Any]) -> str:
    """The id the trail records for a document written: its own, except a partner reference's,
    which is made of the partner's case reference; the trail names the volunteer or need the
    reference points to instead."""
    if collection == PARTNER_REFS:
        if not isinstance(document.get("aggregate_id"), str):
            raise TypeError("a partner reference is audited by the aggregate it points to: name it")
        return str(document["aggregate_id"])
    return str(document.get("_id"))


def audit_about(tenant: str, volunteer_id: str, checks: Sequence[Mapping[str, Any]]) -> Document:
    """The audit entries about the volunteer or by them: those filed under their id or naming
    them as the subject, the many-document writes selected by their id (``volunteer_id=...``, as
    entries before ``subject_id`` were filed), their certificate checks' writes (filed under the
    check's id), and what they did themself (the actor)."""
    filed_under = [volunteer_id, f"volunteer_id={volunteer_id}", *(str(check["_id"]) for check in checks)]
    return {
        "tenant": tenant,
        "$or": [{"resource_id": {"$in": filed_under}}, {"subject_id": volunteer_id}, {"actor": volunteer_id}],
    }


def _resource_of(collection: str, query: Mapping[str, Any]) -> str:
    """The resource a many-document write touches, for the audit trail: its id, or the field it
    is selected by (``volunteer_id=...``), with the value only if it is a Lotse aggregate id."""
    if isinstance(query.get("_id"), str) and collection != PARTNER_REFS:
        return str(query["_id"])
    for name in AGGREGATE_ID_FIELDS:
        if isinstance(query.get(name), str):
            return f"{name}={query[name]}"
    return "*"


def _subject_of(collection: str, about: Mapping[str, Any]) -> str | None:
    """The volunteer or need a write is about: the document itself, or the one its filter or
    record names (a consent's, a certificate check's, a partner reference's)."""
    if collection in (VOLUNTEERS, NEEDS) and isinstance(about.get("_id"), str):
        return str(about["_id"])
    for name in SUBJECT_FIELDS:
        if isinstance(about.get(name), str):
            return str(about[name])
    return None


async def scrub_erased_outbox(database: AsyncDatabase[Document]) -> int:
    """Delete the outbox entries that carry personal data of erased volunteers; return how many.

    Runs after the erasure's commit and at every start (should a crash come in between), outside
    any transaction: the relay marks outbox entries concurrently, and a transaction deleting them
    would contend with it. Entries at or above the erasure's first version (withdrawn, erased)
    carry no personal data and stay to be published.
    """
    deleted = 0
    async for tombstone in database[VOLUNTEERS].find({"outbox_scrub_below": {"$exists": True}}):
        tenant, volunteer_id = tombstone["tenant"], tombstone["_id"]
        result = await database[OUTBOX_COLLECTION].delete_many(
            {"tenant": tenant, "key": f"{tenant}:{volunteer_id}", "version": {"$lt": tombstone["outbox_scrub_below"]}}
        )
        deleted += result.deleted_count
        await database[VOLUNTEERS].update_one(
            {"_id": volunteer_id, "tenant": tenant}, {"$unset": {"outbox_scrub_below": ""}}
        )
    return deleted


@dataclass
class NeedTally:
    """How many needs are open (of them unstaffed: nobody left to ask) and staffed."""

    open: int = 0
    staffed: int = 0
    unstaffed: int = 0

    def add(self, status: str, unstaffed: bool) -> None:
        if status == NeedStatus.OPEN:
            self.open += 1
            self.unstaffed += int(unstaffed)
        elif status == NeedStatus.STAFFED:
            self.staffed += 1


@dataclass(frozen=True)
class RawStatistics:
    """A tenant's (or one organisation's) figures as counted: never published as they are (see
    ``api/statistics``, which withholds the small ones)."""

    tenant: str
    organisation_id: str | None
    needs_by_category: dict[str, NeedTally]
    needs_by_district: dict[str | None, NeedTally]  # None: needs without a district
    active: int
    withdrawn: int
    engaged: int
    erased: int | None  # None for an organisation


@dataclass(frozen=True)
class HeldAboutVolunteer:
    """What the registry holds about one volunteer, by collection (see ``api.subject_access``)."""

    volunteer: list[Document]
    consents: list[Document]
    certificate_checks: list[Document]
    contact_person: list[Document]
    partner_refs: list[Document]
    idempotency: list[Document]
    outbox: list[Document]
    person_key: list[Document]
    audit: list[Document]


class Store:
    """The registry database: its units of work (the runtime's) and reads outside them."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: AsyncDatabase[Document],
        wake: Callable[[], None] = lambda: None,
        key_encryption_key: KeyEncryptionKey | None = None,
    ) -> None:
        self.client = client
        self.database = database
        self.unit_of_work = UnitOfWork(client, database, wake=wake, key_encryption_key=key_encryption_key)
        self.known = Known()

    async def issue_missing_person_keys(self) -> int:
        """Volunteers registered before their events were sealed have no key until their next
        change, so their proposals would go out unsealed: each active one gets a key now (made and
        published as at their first sealed event). Once all have one, a marker spares the scan at
        the next start: run it once every replica runs this release (one still on the release
        before could register a volunteer without a key meanwhile; the marker's document may be
        deleted to scan again). The number of keys issued."""
        if await self.database[MIGRATIONS].find_one({"_id": ALL_HAVE_PERSON_KEYS}) is not None:
            return 0
        kek = self.unit_of_work.key_encryption_key
        if kek is None:
            return 0
        issued = 0
        active = {"status": VolunteerStatus.ACTIVE.value}  # a withdrawn one is never proposed again
        async for volunteer in self.database[VOLUNTEERS].find(active, {"tenant": 1, "version": 1}):
            if await self.database[KEY_RING].find_one({"_id": volunteer["_id"]}, {"_id": 1}) is not None:
                continue

            async def issue(transaction: Transaction, volunteer: Document = volunteer) -> bool:
                # Still active, and a write to the volunteer: an erasure meanwhile (which replaces
                # the document) conflicts with this transaction, so no key is made after it.
                still = await self.database[VOLUNTEERS].update_one(
                    {"_id": volunteer["_id"], **active},
                    {"$set": {"person_key_issued_at": datetime.now(UTC)}},
                    session=transaction.session,
                )
                if still.matched_count == 0:
                    return False
                await person_key(transaction, kek, volunteer["tenant"], volunteer["_id"], volunteer["version"])
                return True

            issued += await self.unit_of_work.run(issue)
        await self.database[MIGRATIONS].update_one(
            {"_id": ALL_HAVE_PERSON_KEYS}, {"$set": {"done_at": datetime.now(UTC)}}, upsert=True
        )
        return issued

    async def rewrap_person_keys(self) -> int:
        """A rotation of the key-encryption key: every person key wrapped with a previous one is
        wrapped again with the current one and published anew (compaction then drops the old
        wrapping from the topic; the consumers keep the new one). Safe beside other replicas and
        an erasure: each key changes only if it is still as read. The number of keys not wrapped
        with the current key afterwards (those that open with none of the keys given)."""
        kek = self.unit_of_work.key_encryption_key
        if kek is None:
            return 0
        left = 0
        async for document in self.database[KEY_RING].find({"wrapped_key": {"$exists": True}}):
            try:
                rewrapped = kek.rewrapped(UUID(document["key_id"]), document["wrapped_key"])
            except SealingError:
                left += 1
                continue
            if rewrapped is not None:
                await self.unit_of_work.run(partial(self._rewrap_person_key, document, rewrapped))
        return left

    async def _rewrap_person_key(self, document: Document, rewrapped: str, transaction: Transaction) -> None:
        keys, session = self.database[KEY_RING], transaction.session
        as_read = {"_id": document["_id"], "wrapped_key": document["wrapped_key"]}
        if (await keys.update_one(as_read, {"$set": {"wrapped_key": rewrapped}}, session=session)).matched_count == 0:
            return  # another replica wrapped it, or the person was erased meanwhile
        volunteer = await self.database[VOLUNTEERS].find_one({"_id": document["_id"]}, {"version": 1}, session=session)
        issued = PersonKeyIssued(
            person_id=document["_id"], key_id=UUID(document["key_id"]), algorithm="A256GCM", wrapped_key=rewrapped
        )
        version = volunteer["version"] if volunteer is not None else 1
        event = registry_event(document["tenant"], issued, subject=document["_id"], version=version)
        await transaction.append_event(PERSON_KEYS_TOPIC.name, event)

    def read(self, tenant: str) -> TenantScope:
        """A scope for reads outside a transaction."""
        return TenantScope(self.database, tenant, None, self.known)

    async def page(
        self, tenant: str, collection: str, query: Mapping[str, Any], cursor: str | None, limit: int
    ) -> list[Document]:
        """Up to ``limit`` documents of the tenant matching ``query``, after the cursor, in page order."""
        return await self.read(tenant).find(collection, {**query, **after_cursor(cursor)}, sort=PAGE_ORDER, limit=limit)

    async def search(
        self,
        tenant: str,
        collection: str,
        query: Mapping[str, Any],
        accepts: Callable[[Document], bool],
        cursor: str | None,
        limit: int,
    ) -> list[Document]:
        """Up to ``limit`` documents of the tenant matching ``query`` that ``accepts`` takes, after
        the cursor, in page order: read in batches until the page is full or nothing is left, so
        that a rule the database cannot say (a distance, a language level) still pages right."""
        scope, after = self.read(tenant), after_cursor(cursor)
        found: list[Document] = []
        while len(found) < limit:
            batch = await scope.find(collection, {**query, **after}, sort=PAGE_ORDER, limit=SEARCH_BATCH)
            found.extend(document for document in batch if accepts(document))
            if len(batch) < SEARCH_BATCH:
                break
            after = after_position(batch[-1])
        return found[:limit]

    async def tenants_page(self, cursor: str | None, limit: int) -> list[Document]:
        """Up to ``limit`` tenants after the cursor (tenants are not tenant data: no scope)."""
        return await self.database[TENANTS].find(after_cursor(cursor)).sort(PAGE_ORDER).limit(limit).to_list()

    async def public_tenants(self) -> list[Document]:
        """Every tenant by name, with the fields anyone may see (tenants are not tenant data: no scope)."""
        fields = {"name": 1, "default_language": 1, "supported_languages": 1}
        return await self.database[TENANTS].find({}, fields).sort([("name", ASCENDING), ("_id", ASCENDING)]).to_list()

    async def statistics(self, tenant: str, organisation_id: str | None = None) -> RawStatistics:
        """Needs by category and by district (open, staffed, unstaffed) and volunteer counts of one
        tenant, or of one organisation's needs and volunteers; as counted, before any is withheld."""
        scope = self.read(tenant)
        owned = {"organisation_id": organisation_id} if organisation_id else {}
        needs = await scope.find(NEEDS, owned, projection={"category": 1, "status": 1, "unstaffed": 1, "place": 1})
        by_category: dict[str, NeedTally] = {}
        by_district: dict[str | None, NeedTally] = {}
        for need in needs:
            district = (need.get("place") or {}).get("district") or None
            for tally in (
                by_category.setdefault(need["category"], NeedTally()),
                by_district.setdefault(district, NeedTally()),
            ):
                tally.add(need["status"], bool(need.get("unstaffed")))
        volunteers = {
            status.value: await scope.count(VOLUNTEERS, {**owned, "status": status.value})
            for status in (VolunteerStatus.ACTIVE, VolunteerStatus.WITHDRAWN)
        }
        # Active and engaged right now: at least one need they committed to and did not step back from.
        engaged = await scope.count(
            VOLUNTEERS, {**owned, "status": VolunteerStatus.ACTIVE.value, "engagements": {"$ne": []}}
        )
        erased: int | None = None
        if organisation_id is None:  # a tombstone keeps no organisation: erasures are counted per tenant only
            counters = await scope.get(COUNTERS, f"{tenant}:volunteers") or {}
            erased = int(counters.get("erased", 0))
        return RawStatistics(
            tenant=tenant,
            organisation_id=organisation_id,
            needs_by_category=by_category,
            needs_by_district=by_district,
            active=volunteers[VolunteerStatus.ACTIVE.value],
            withdrawn=volunteers[VolunteerStatus.WITHDRAWN.value],
            engaged=engaged,
            erased=erased,
        )

    # --- places and the portal's tenant settings ---------------------------------------------

    async def replace_postcodes(self, tenant: str, places: Sequence[PostcodePlace]) -> int:
        """Replace the tenant's postcode table in one transaction: the old table or the new one."""
        documents = [
            {"_id": postcode_id(tenant, place.postcode), "tenant": tenant, **place.model_dump()} for place in places
        ]

        async def work(transaction: Transaction) -> int:
            collection = self.database[POSTCODES]
            await collection.delete_many({"tenant": tenant}, session=transaction.session)
            if documents:
                await collection.insert_many(documents, session=transaction.session)
            transaction.audit(tenant, Operation.UPDATE, POSTCODES, tenant, {"postcodes"})
            self.known.districts.changing(tenant, transaction)
            return len(documents)

        return await self.unit_of_work.run(work)

    async def postcode(self, tenant: str, postcode: str) -> PostcodePlace | None:
        document = await self.read(tenant).get(POSTCODES, postcode_id(tenant, postcode))
        return PostcodePlace.from_document(document) if document is not None else None

    async def postcodes(self, tenant: str) -> list[PostcodePlace]:
        """The tenant's whole postcode table, by postcode (a few hundred rows at most, see ``api.places``)."""
        documents = await self.read(tenant).find(POSTCODES, {}, sort=[("postcode", ASCENDING)])
        return [PostcodePlace.from_document(document) for document in documents]

    async def has_postcodes(self, tenant: str) -> bool:
        return await self.read(tenant).find_one(POSTCODES, {}) is not None

    async def set_portal_settings(self, tenant: str, settings: PortalSettings) -> bool:
        """The registry's own settings of a tenant for the portal (no event: no other service reads
        them); False if there is no such tenant."""
        update = {"$set": {"portal": settings.model_dump(mode="json")}}

        async def work(scope: TransactionScope) -> bool:
            return await scope.update(TENANTS, tenant, update)

        # In a unit of work for its audit entry, which names only the settings given.
        matched = await self.unit_of_work.run(in_tenant(tenant, work))
        self.known.tenants.forget(tenant)
        return matched

    # --- the office's staff and the certificate checks' notices ------------------------------

    async def put_staff(self, tenant: str, staff_id: str, fields: Mapping[str, Any]) -> Document:
        """Create or replace a staff member's record (the registry's own: no event)."""
        document = {
            "_id": staff_document_id(tenant, staff_id),
            "tenant": tenant,
            "staff_id": staff_id,
            **fields,
            "updated_at": datetime.now(UTC),
        }

        async def work(transaction: Transaction) -> None:
            await self.database[STAFF].replace_one(
                {"_id": document["_id"], "tenant": tenant}, document, upsert=True, session=transaction.session
            )
            transaction.audit(tenant, Operation.UPDATE, STAFF, document["_id"], changed_fields(document))

        # In a unit of work for its audit entry.
        await self.unit_of_work.run(work)
        return document

    async def staff_member(self, tenant: str, staff_id: str) -> Document | None:
        return await self.read(tenant).get(STAFF, staff_document_id(tenant, staff_id))

    async def staff(self, tenant: str) -> list[Document]:
        return await self.read(tenant).find(STAFF, {}, sort=[("name", ASCENDING), ("_id", ASCENDING)])

    async def remove_staff(self, tenant: str, staff_id: str) -> int | None:
        """Delete a staff member's record unless they are someone's contact person: None if there
        is no such record, else how many volunteers still name them (0: deleted)."""

        async def work(scope: TransactionScope) -> int | None:
            document_id = staff_document_id(tenant, staff_id)
            if await scope.get(STAFF, document_id) is None:
                return None
            named = await scope.count(VOLUNTEERS, {"contact_person_id": staff_id})
            if named == 0:
                await scope.delete_many(STAFF, {"_id": document_id})
            return named

        return await self.unit_of_work.run(in_tenant(tenant, work))

    async def certificate_checks(self, tenant: str, volunteer_id: str) -> list[Document]:
        """Every check of a volunteer, the latest first: the history."""
        return await self.read(tenant).find(
            CERTIFICATE_CHECKS, {"volunteer_id": volunteer_id}, sort=[("recorded_at", -1), ("_id", ASCENDING)]
        )

    async def held_about_volunteer(self, tenant: str, volunteer_id: str) -> HeldAboutVolunteer:
        """Every document of the tenant that is about the volunteer (the subject-access export)."""
        scope = self.read(tenant)
        volunteer = await scope.get(VOLUNTEERS, volunteer_id)
        staff_id = (volunteer or {}).get("contact_person_id")
        contact_person = await self.staff_member(tenant, staff_id) if staff_id else None
        checks = await self.certificate_checks(tenant, volunteer_id)
        return HeldAboutVolunteer(
            volunteer=[volunteer] if volunteer is not None else [],
            consents=await scope.find(CONSENTS, {"volunteer_id": volunteer_id}, sort=[("recorded_at", ASCENDING)]),
            certificate_checks=checks,
            contact_person=[contact_person] if contact_person is not None else [],
            partner_refs=await scope.find(PARTNER_REFS, {"kind": "volunteer", "aggregate_id": volunteer_id}),
            idempotency=await self.database[IDEMPOTENCY]
            .find({"tenant": tenant, "resource_id": volunteer_id})
            .to_list(),
            outbox=await self.database[OUTBOX_COLLECTION]
            .find({"tenant": tenant, "key": f"{tenant}:{volunteer_id}"})
            .sort([("version", ASCENDING)])
            .to_list(),
            # The person's key for their sealed fields on Kafka: that it exists, never its value.
            person_key=await self.database[KEY_RING]
            .find({"_id": volunteer_id, "tenant": tenant}, {"wrapped_key": 0})
            .to_list(),
            audit=await self.database[AUDIT_TRAIL].find(audit_about(tenant, volunteer_id, checks)).to_list(),
        )

    async def due_notices(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]:
        """(tenant, check id) of the checks in force whose next expiry notice is due, of every tenant."""
        cursor = self.database[CERTIFICATE_CHECKS].find(
            {"status": CheckStatus.IN_FORCE.value, "next_notice_at": {"$lte": now}},
            {"tenant": 1},
            sort=[("next_notice_at", ASCENDING), ("_id", ASCENDING)],
            limit=limit,
        )
        return [(document["tenant"], document["_id"]) async for document in cursor]

    # --- idempotency records (claimed outside any transaction, answered inside the command's) ---

    async def claim_key(self, claim: Document, fingerprint: str) -> Any | None:
        """The claim's token (its record's id) if this request now holds the claim; None if
        another request holds it."""
        record = {**claim, "fingerprint": fingerprint, "status": None, "created_at": datetime.now(UTC)}
        try:
            result = await self.database[IDEMPOTENCY].insert_one(record)
        except DuplicateKeyError:
            return None
        return result.inserted_id

    async def find_claim(self, claim: Document) -> Document | None:
        return await self.database[IDEMPOTENCY].find_one(claim)

    async def release_claim(self, token: Any) -> None:
        """Give up this request's claim if it has no response (its command failed or was
        abandoned); a claim a repeat took over meanwhile is the repeat's and stays."""
        await self.database[IDEMPOTENCY].delete_one({"_id": token, "status": None})

    async def drop_abandoned_claim(self, record: Document) -> None:
        """Remove a claim whose request never answered (its process died), unless it answered meanwhile."""
        await self.database[IDEMPOTENCY].delete_one({"_id": record["_id"], "status": None})


class ClaimLost(Exception):
    """A repeat took this request's Idempotency-Key claim over, judging it abandoned (a command
    slower than ``CLAIM_ABANDONED_AFTER``, or another replica's clock ahead): its command must
    not commit, or the key would have created twice."""


async def keep_response(scope: TenantScope, token: Any, response: Document) -> None:
    """Store a command's response on its idempotency claim, in the command's transaction; only
    while the claim is still this request's (``ClaimLost`` aborts the transaction otherwise)."""
    kept = await scope.database[IDEMPOTENCY].update_one(
        {"_id": token, "status": None}, {"$set": response}, session=scope.session
    )
    if kept.matched_count == 0:
        raise ClaimLost(f"idempotency claim {token} was taken over")


def in_tenant(
    tenant: str, work: Callable[[TransactionScope], Awaitable[T]], known: Known | None = None
) -> Callable[[Transaction], Awaitable[T]]:
    """``work`` on the tenant's scope of a unit of work: ``registry.unit_of_work.run(in_tenant(...))``;
    with ``known`` (the store's), its checks take tenants and organisations from memory."""

    async def scoped(transaction: Transaction) -> T:
        return await work(TransactionScope(transaction, tenant, known))

    return scoped


# --- cursor pagination -------------------------------------------------------------------------


def encode_cursor(document: Mapping[str, Any]) -> str:
    raw = json.dumps([document["created_at"].isoformat(), document["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class InvalidCursor(ValueError):
    """A cursor this registry did not hand out (the client's input, so a 422, not a 500)."""


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        created, document_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(document_id)
    except (ValueError, TypeError) as error:  # bad base64, bytes, JSON, shape or timestamp
        raise InvalidCursor("not a next_cursor of this list") from error


def after_cursor(cursor: str | None) -> Document:
    if not cursor:
        return {}
    created, document_id = decode_cursor(cursor)
    return _after(created, document_id)


def after_position(document: Mapping[str, Any]) -> Document:
    """The filter for what comes after ``document`` in page order."""
    return _after(document["created_at"], document["_id"])


def _after(created: datetime, document_id: str) -> Document:
    return {"$or": [{"created_at": {"$gt": created}}, {"created_at": created, "_id": {"$gt": document_id}}]}


PAGE_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]
