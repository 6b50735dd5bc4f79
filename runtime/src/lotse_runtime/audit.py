"""The audit trail: who changed what, and who read personal contact data, append-only.

An entry names the actor (token subject and roles), the tenant, the time, the operation, the
resource (type and id), the data subject it is about where known (``subject_id``: the volunteer
or need, also for writes of their child records such as consents and certificate checks), the
route or job that acted and the *names* of the fields written or read, never their values: the
trail must not become another copy of the personal data it watches over. Ids in the trail are
ids of Lotse's own aggregates (random), never a value a person or a partner system typed in.

Writes are recorded by the unit of work itself (``Transaction.audit`` notes a change; the unit
writes its notes in the same transaction before it commits, see ``unit_of_work``): a change
without its entry cannot commit, and an entry without its change cannot either. Reads of contact
data are recorded with ``record_reads``, outside any transaction (a read changes nothing that an
abort could take back).

Who acts is set once per request (``act_as``, e.g. by the HTTP caller dependency); what runs
without a caller (a consumer, a timer) is recorded as ``SYSTEM``. The services have no path that
updates or deletes an entry: MongoDB itself removes entries at their ``expires_at`` (a TTL index,
``ensure_audit_indexes``), ``DEFAULT_RETENTION`` after they were written.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

AUDIT_COLLECTION = "audit"
# Two years: long enough to answer a data subject's or a supervisory authority's question about
# the last processing, short enough not to keep a history of everyone's work forever.
DEFAULT_RETENTION = timedelta(days=730)
# Bookkeeping every document has; naming it as "changed" tells nobody anything.
BOOKKEEPING_FIELDS = frozenset({"_id", "tenant", "version", "created_at", "updated_at"})

Document = dict[str, Any]


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"


@dataclass(frozen=True)
class Actor:
    """Who acts: a token's subject and roles, and what they called (``"PUT /tenants/{tenant}/..."``)."""

    subject: str
    roles: tuple[str, ...] = ()
    action: str | None = None


# What acts without a caller: a consumer applying an event, a timer.
SYSTEM = Actor(subject="system")


def partner_on_kafka(topic: str, system: str, event_type: str) -> Actor:
    """A partner system's event on a tenant's inbound topic. What the broker authenticates is the
    right to write to that topic (its ACL), not the envelope's ``source``, which any writer of the
    topic may set: the actor is the topic, and the system as the event names it is said as such."""
    return Actor(f"kafka:{topic}", ("partner",), f"event {event_type} from {system} (as the event names it)")


_ACTOR: ContextVar[Actor | None] = ContextVar("lotse_audit_actor", default=None)


def act_as(actor: Actor) -> None:
    """Record what this task (and what it starts) writes or reads as done by ``actor``. Set per
    request by the service's caller dependency; tasks started before keep their own actor."""
    _ACTOR.set(actor)


def current_actor() -> Actor:
    return _ACTOR.get() or SYSTEM


class AuditEntry(BaseModel):
    """One recorded write or read of one resource (field names only, never values)."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    at: datetime
    actor: str
    roles: tuple[str, ...]
    action: str | None
    operation: Operation
    resource_type: str
    resource_id: str
    fields: tuple[str, ...]
    # The volunteer or need the change or read is about (None: no person's, e.g. a tenant setting).
    subject_id: str | None = None

    def to_document(self, retention: timedelta = DEFAULT_RETENTION) -> Document:
        document = self.model_dump(mode="python", exclude={"id"})
        document.update(_id=self.id, roles=list(self.roles), fields=list(self.fields), expires_at=self.at + retention)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AuditEntry:
        at: datetime = document["at"]
        return cls(
            id=document["_id"],
            tenant=document["tenant"],
            at=at if at.tzinfo else at.replace(tzinfo=UTC),  # BSON dates come back naive
            actor=document["actor"],
            roles=tuple(document["roles"]),
            action=document.get("action"),
            operation=Operation(document["operation"]),
            resource_type=document["resource_type"],
            resource_id=document["resource_id"],
            fields=tuple(document["fields"]),
            subject_id=document.get("subject_id"),
        )


@dataclass
class AuditNote:
    """A change noted inside a unit of work, written as an entry when the unit's work is done."""

    tenant: str
    operation: Operation
    resource_type: str
    resource_id: str
    fields: set[str] = field(default_factory=set)
    subject_id: str | None = None


def changed_fields(document_or_update: Mapping[str, Any]) -> set[str]:
    """The names a document or an update (``$set``, ``$unset``, ``$pull``...) writes, without the
    bookkeeping every document has. Never the values."""
    names: set[str] = set()
    for key, value in document_or_update.items():
        if key.startswith("$") and isinstance(value, Mapping):
            names.update(str(name) for name in value)
        else:
            names.add(key)
    return names - BOOKKEEPING_FIELDS


def entries_of(notes: Iterable[AuditNote], actor: Actor, at: datetime) -> list[AuditEntry]:
    return [
        AuditEntry(
            id=str(uuid.uuid4()),
            tenant=note.tenant,
            at=at,
            actor=actor.subject,
            roles=actor.roles,
            action=actor.action,
            operation=note.operation,
            resource_type=note.resource_type,
            resource_id=note.resource_id,
            fields=tuple(sorted(note.fields)),
            subject_id=note.subject_id,
        )
        for note in notes
    ]


async def write_notes(
    database: AsyncDatabase[Document], session: AsyncClientSession, notes: Sequence[AuditNote]
) -> None:
    """Write the entries of a unit of work's notes in its transaction (``session``)."""
    if not notes:
        return
    entries = entries_of(notes, current_actor(), _now())
    await database[AUDIT_COLLECTION].insert_many([entry.to_document() for entry in entries], session=session)


async def record_reads(
    database: AsyncDatabase[Document],
    tenant: str,
    resource_type: str,
    resource_ids: Iterable[str],
    fields: Iterable[str],
    *,
    subjects: bool = False,
) -> None:
    """Record that the current actor received ``fields`` of each resource (outside transactions);
    ``subjects``: each resource is itself the data subject (a volunteer), its id the entry's
    ``subject_id``."""
    names = set(fields)
    notes = [
        AuditNote(tenant, Operation.READ, resource_type, resource_id, names, resource_id if subjects else None)
        for resource_id in resource_ids
    ]
    if notes:
        entries = entries_of(notes, current_actor(), _now())
        await database[AUDIT_COLLECTION].insert_many([entry.to_document() for entry in entries])


def _now() -> datetime:
    # BSON keeps milliseconds: an entry read back must equal the one written.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def ensure_audit_indexes(database: AsyncDatabase[Document]) -> None:
    audit = database[AUDIT_COLLECTION]
    # The search: a tenant's entries newest first, narrowed by actor or resource.
    await audit.create_index([("tenant", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)])
    await audit.create_index([("tenant", ASCENDING), ("actor", ASCENDING), ("at", DESCENDING)])
    await audit.create_index([("tenant", ASCENDING), ("resource_id", ASCENDING), ("at", DESCENDING)])
    await audit.create_index([("tenant", ASCENDING), ("subject_id", ASCENDING), ("at", DESCENDING)])
    # Retention: MongoDB removes each entry at its expires_at (the only way an entry goes).
    await audit.create_index("expires_at", expireAfterSeconds=0, name="audit_retention")


async def entries_about_person(database: AsyncDatabase[Document], tenant: str, person_id: str) -> list[Document]:
    """The entries about a person or by them, oldest first (a subject-access export): filed under
    their id, naming them as the subject, or naming them as the actor."""
    about = {"tenant": tenant, "$or": [{"resource_id": person_id}, {"subject_id": person_id}, {"actor": person_id}]}
    return await database[AUDIT_COLLECTION].find(about).sort([("at", ASCENDING), ("_id", ASCENDING)]).to_list()


# --- search and export ---------------------------------------------------------------------


class InvalidAuditCursor(ValueError):
    """A cursor this trail did not hand out."""


@dataclass(frozen=True)
class AuditQuery:
    """A search of one tenant's trail, newest first. ``resource`` is a resource id, a resource
    type, or ``type/id`` (a bare id also matches the entries about that subject); ``subject`` a
    volunteer's or need's id: every entry about them (their own records and their child records:
    consents, certificate checks, partner references, the erasure's deletions)."""

    tenant: str
    actor: str | None = None
    resource: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def filter(self, cursor: str | None = None) -> Document:
        query: Document = {"tenant": self.tenant}
        if self.actor:
            query["actor"] = self.actor
        if self.resource:
            kind, slash, resource_id = self.resource.partition("/")
            if slash:
                query.update(resource_type=kind, resource_id=resource_id)
            else:
                query["$or"] = [
                    {"resource_id": self.resource},
                    {"resource_type": self.resource},
                    {"subject_id": self.resource},
                ]
        if self.subject:
            query["subject_id"] = self.subject
        at: Document = {}
        if self.since is not None:
            at["$gte"] = self.since
        if self.until is not None:
            at["$lt"] = self.until
        if at:
            query["at"] = at
        if cursor:
            before_at, before_id = decode_audit_cursor(cursor)
            after = {"$or": [{"at": {"$lt": before_at}}, {"at": before_at, "_id": {"$lt": before_id}}]}
            query = {"$and": [query, after]}
        return query


NEWEST_FIRST = [("at", DESCENDING), ("_id", DESCENDING)]


async def search(
    database: AsyncDatabase[Document], query: AuditQuery, cursor: str | None, limit: int
) -> tuple[list[AuditEntry], str | None]:
    """A page of entries and the cursor of the next page (None: the last page)."""
    documents = (
        await database[AUDIT_COLLECTION].find(query.filter(cursor)).sort(NEWEST_FIRST).limit(limit + 1).to_list()
    )
    entries = [AuditEntry.from_document(document) for document in documents[:limit]]
    next_cursor = encode_audit_cursor(entries[-1]) if len(documents) > limit else None
    return entries, next_cursor


async def every_entry(database: AsyncDatabase[Document], query: AuditQuery) -> AsyncIterator[AuditEntry]:
    """Every matching entry, newest first, read as it is sent (an export)."""
    async for document in database[AUDIT_COLLECTION].find(query.filter()).sort(NEWEST_FIRST):
        yield AuditEntry.from_document(document)


def encode_audit_cursor(entry: AuditEntry) -> str:
    raw = json.dumps([entry.at.isoformat(), entry.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_audit_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(entry_id)
    except (ValueError, TypeError) as error:
        raise InvalidAuditCursor("not a next_cursor of this trail") from error


CSV_COLUMNS = (
    "at",
    "tenant",
    "actor",
    "roles",
    "action",
    "operation",
    "resource_type",
    "resource_id",
    "subject_id",
    "fields",
)


def csv_header() -> str:
    return _csv_row(CSV_COLUMNS)


def csv_line(entry: AuditEntry) -> str:
    return _csv_row(
        (
            entry.at.isoformat(),
            entry.tenant,
            entry.actor,
            " ".join(entry.roles),
            entry.action or "",
            entry.operation.value,
            entry.resource_type,
            entry.resource_id,
            entry.subject_id or "",
            " ".join(entry.fields),
        )
    )


# What a spreadsheet may take as the start of a formula (OWASP CSV injection): the signs, and a
# tab or carriage return in front of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defused(value: str) -> str:
    """A cell a spreadsheet shows and never runs: a leading formula sign gets a quote before it."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_row(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    # Every cell quoted and a leading formula sign defused: the export is opened in spreadsheets.
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([defused(value) for value in values])
    return buffer.getvalue()
