"""Persistence of the notifications database. Every query names its tenant here, not in callers.

Collections: ``tenants``, ``organisations``, ``contacts`` (the only place with volunteers'
addresses), ``needs``, ``proposals`` (accepted ones are engagements, with their schedule),
``deliveries`` (the durable delivery queue and log: recipient ids, never addresses), ``messages``
(the in-app inbox), ``template_overrides``, ``guidance``, ``webhooks``, ``mail_preferences`` (the
office's and organisations' choice of a daily digest), ``digest_items`` (what waits for one),
plus the runtime's ``inbox`` and ``outbox``.

The read model goes in and out as the typed records of ``records`` (deliveries as ``Delivery``);
documents exist only inside this module. ``UseCaseStore`` is the part the use cases
(``service``) need, so that they can also run on an in-memory store (tests/unit/notifications).
Methods take the caller's ``Transaction`` (None: read outside a unit of work).
"""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, NotificationFailed, NotificationSent, new_event, topic_for
from lotse_contracts.events.needs import CancellationReason
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.organisations import OrganisationKind
from lotse_contracts.events.values import Channel
from lotse_notifications.domain import (
    CONTACT_REFERENCE,
    NEED_REFERENCE,
    ORGANISATION_REFERENCE,
    TENANT_REFERENCE,
    Reference,
    delivery_key,
    reference_key,
    without_addresses,
)
from lotse_notifications.partner_events import PartnerField, without_volunteer
from lotse_notifications.records import (
    ENGAGED,
    Contact,
    ContactDetails,
    DigestItem,
    Doc,
    MailPreference,
    Need,
    NeedOpening,
    NeedSnapshot,
    NeedStatus,
    NewDelivery,
    Organisation,
    Proposal,
    ProposalStatus,
    TenantFacts,
    Thread,
    ThreadMessage,
    ThreadState,
    Webhook,
    scoped_id,
)
from lotse_notifications.templates import Rendered, TemplateSource
from lotse_runtime.audit import Operation, changed_fields, ensure_audit_indexes, entries_about_person
from lotse_runtime.inbox import ensure_inbox_index
from lotse_runtime.memo import Memo
from lotse_runtime.mongo import in_transaction
from lotse_runtime.outbox import ensure_outbox_indexes
from lotse_runtime.sealed import destroy_person_key
from lotse_runtime.tracing import current_trace_context
from lotse_runtime.unit_of_work import Batch, Transaction

SOURCE = "/lotse/notifications"
# The partner systems' webhooks (audited: who registered which, with which opt-ins).
WEBHOOKS = "webhooks"
# The office's texts: its message templates and its guidance for volunteers (audited).
TEMPLATE_OVERRIDES = "template_overrides"
GUIDANCE = "guidance"
# Written by people and audited too: the volunteers' questions and the office's answers, the
# office's mail preferences, the volunteers' inbox (read marks) and the digest asked for by hand.
THREADS = "threads"
MAIL_PREFERENCES = "mail_preferences"
MESSAGES = "messages"
DELIVERIES = "deliveries"
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
Session = AsyncClientSession | None


class DeliveryStatus(StrEnum):
    """Where a delivery stands; stored as its value, so the documents read as before."""

    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    DEAD = "dead"
    CANCELLED = "cancelled"


PENDING, SENT, SKIPPED, DEAD, CANCELLED = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.DEAD,
    DeliveryStatus.CANCELLED,
)


@dataclass
class Delivery:
    """One entry of the delivery queue and log (``deliveries``), as the worker reads it.

    ``recipient_kind`` is a contract ``RecipientKind`` value or ``need_owner`` (an organisation
    not known yet, resolved at send time). ``rendered`` is never stored: the worker keeps the
    composed in-app message here until it writes it in the transaction of the mark.
    """

    id: str
    key: str
    tenant: str
    trigger_event_id: str
    correlation_id: str
    kind: str
    recipient_kind: str
    recipient_id: str
    channel: Channel
    language: str
    status: DeliveryStatus
    created_at: datetime
    payload: dict[str, Any] | None = None
    attempts: int = 0
    waits: int = 0
    claimed_by: str | None = None
    trace_context: dict[str, str] | None = None
    reason: str | None = None
    rendered: Rendered | None = dataclass_field(default=None, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Delivery:
        return cls(
            id=document["_id"],
            key=document["key"],
            tenant=document["tenant"],
            trigger_event_id=document["trigger_event_id"],
            correlation_id=document["correlation_id"],
            kind=document["kind"],
            recipient_kind=document["recipient_kind"],
            recipient_id=document["recipient_id"],
            channel=Channel(document["channel"]),
            language=document["language"],
            status=DeliveryStatus(document["status"]),
            created_at=document["created_at"],
            payload=document.get("payload"),
            attempts=document.get("attempts", 0),
            waits=document.get("waits", 0),
            claimed_by=document.get("claimed_by"),
            trace_context=document.get("trace_context"),
            reason=document.get("reason"),
        )


def outcome_event(
    delivery: Delivery,
    *,
    sent: bool,
    attempts: int,
    error_code: str = "",
    error: str = "",
    will_retry: bool = False,
    language: str | None = None,
) -> Envelope[Any]:
    """NotificationSent or NotificationFailed about one attempt (or the skip) of a delivery."""
    common = {
        "delivery_id": delivery.id,
        "recipient_kind": delivery.recipient_kind,
        "recipient_id": delivery.recipient_id,
        "channel": delivery.channel.value,
        "template": delivery.kind,
        "language": language or delivery.language,
        "trigger_event_id": delivery.trigger_event_id,
    }
    data: NotificationSent | NotificationFailed
    if sent:
        data = NotificationSent(**common)
    else:
        data = NotificationFailed(
            # The last gate before the topic: no address or phone number of a mail server's or gateway's text.
            **common,
            error_code=error_code,
            error=without_addresses(error)[:500],
            attempts=attempts,
            will_retry=will_retry,
        )
    return new_event(
        data=data,
        tenant=delivery.tenant,
        subject=delivery.id,
        # One delivery's outcomes are ordered by attempt.
        version=max(attempts, 1),
        source=SOURCE,
        correlationid=delivery.correlation_id,
        causationid=delivery.trigger_event_id,
    )


_COLLECTION = "_collection"  # which collection a document of ``read_for_batch`` came from


@dataclass
class BatchReads:
    """The read model a batch of deliveries needs (``Store.read_for_batch``), as records."""

    tenants: dict[str, TenantFacts] = dataclass_field(default_factory=dict)
    organisations: list[Organisation] = dataclass_field(default_factory=list)
    contacts: dict[tuple[str, str], Contact] = dataclass_field(default_factory=dict)
    needs: dict[tuple[str, str], Need] = dataclass_field(default_factory=dict)
    guidance: dict[str, dict[str, dict[str, str]]] = dataclass_field(default_factory=dict)  # tenant, language
    overrides: dict[str, dict[tuple[str, str], TemplateSource]] = dataclass_field(default_factory=dict)
    webhooks: dict[str, Webhook] = dataclass_field(default_factory=dict)

    def add(self, collection: str, document: Doc) -> None:
        if collection == "tenants":
            self.tenants[document["_id"]] = TenantFacts.from_document(document)
        elif collection == "organisations":
            self.organisations.append(Organisation.from_document(document))
        elif collection == "contacts":
            contact = Contact.from_document(document)
            self.contacts[(contact.tenant, contact.volunteer_id)] = contact
        elif collection == "needs":
            need = Need.from_document(document)
            self.needs[(need.tenant, need.need_id)] = need
        elif collection == "guidance":
            self.guidance.setdefault(document["tenant"], {})[document["language"]] = document["texts"]
        elif collection == "template_overrides":
            source = TemplateSource(document["subject"], document["text"], document.get("html"))
            self.overrides.setdefault(document["tenant"], {})[(document["kind"], document["language"])] = source
        elif collection == "webhooks":
            self.webhooks[document["_id"]] = Webhook.from_document(document)


class UseCaseStore(Protocol):
    """What the use cases (``service``) read and write: the read model and the delivery queue.
    ``Store`` is the MongoDB implementation; the versioned writes return False for an event
    older than what is stored (and change nothing then)."""

    async def tenant(self, tenant: str, transaction: Transaction | None = None) -> TenantFacts | None: ...

    async def save_tenant(self, facts: TenantFacts, transaction: Transaction) -> bool: ...

    async def organisation(
        self, tenant: str, organisation_id: str, transaction: Transaction | None = None
    ) -> Organisation | None: ...

    async def save_organisation(self, organisation: Organisation, transaction: Transaction) -> bool: ...

    async def contact(
        self, tenant: str, volunteer_id: str, transaction: Transaction | None = None
    ) -> Contact | None: ...

    async def register_contact(self, contact: Contact, transaction: Transaction) -> bool: ...

    async def update_contact_details(
        self, tenant: str, volunteer_id: str, version: int, details: ContactDetails, transaction: Transaction
    ) -> bool: ...

    async def withdraw_volunteer(self, tenant: str, volunteer_id: str, transaction: Transaction) -> None: ...

    async def erase_volunteer(self, tenant: str, volunteer_id: str, version: int, transaction: Transaction) -> None: ...

    async def need(self, tenant: str, need_id: str, transaction: Transaction | None = None) -> Need | None: ...

    async def save_need(
        self,
        tenant: str,
        need_id: str,
        version: int,
        transaction: Transaction,
        *,
        snapshot: NeedSnapshot | None = None,
        status: NeedStatus | None = None,
        unstaffed: bool | None = None,
        cancellation_reason: CancellationReason | None = None,
    ) -> bool: ...

    async def open_need(
        self, tenant: str, need_id: str, version: int, snapshot: NeedSnapshot, transaction: Transaction
    ) -> NeedOpening: ...

    async def advance_staffing(
        self, tenant: str, need_id: str, version: int, transaction: Transaction
    ) -> Need | None: ...

    async def set_staffing(
        self, tenant: str, need_id: str, transaction: Transaction, *, unstaffed: bool, status: NeedStatus | None = None
    ) -> None: ...

    async def save_proposal(self, proposal: Proposal, transaction: Transaction) -> None: ...

    async def set_proposal_status(
        self, tenant: str, proposal_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None: ...

    async def engaged_volunteers(self, tenant: str, need_id: str, transaction: Transaction) -> list[str]: ...

    async def close_proposals_of_need(
        self, tenant: str, need_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None: ...

    async def step_back(self, tenant: str, need_id: str, volunteer_id: str, transaction: Transaction) -> None: ...

    async def webhooks(self, tenant: str, transaction: Transaction | None = None) -> list[Webhook]: ...

    async def set_unreachable_reported(
        self, tenant: str, volunteer_id: str, reported: bool, transaction: Transaction
    ) -> bool: ...

    async def accepted_proposals(self, tenant: str, need_id: str, transaction: Transaction) -> list[Proposal]: ...

    async def schedule_engagement(
        self,
        tenant: str,
        proposal_id: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        transaction: Transaction,
    ) -> None: ...

    async def mark_start_reminded(
        self, tenant: str, proposal_id: str, starts_at: datetime, transaction: Transaction
    ) -> bool: ...

    async def mark_thanked(self, tenant: str, proposal_id: str, transaction: Transaction) -> bool: ...

    async def cancel_engagement_messages(
        self,
        tenant: str,
        need_id: str,
        kinds: tuple[str, ...],
        reason: str,
        transaction: Transaction,
        *,
        volunteer_id: str | None = None,
    ) -> None: ...

    async def mail_preference(
        self, tenant: str, recipient_kind: str, recipient_id: str, transaction: Transaction | None = None
    ) -> MailPreference | None: ...

    async def add_digest_item(self, item: DigestItem, transaction: Transaction) -> bool: ...

    async def set_contact_person(
        self, tenant: str, volunteer_id: str, staff_id: str | None, version: int, transaction: Transaction
    ) -> bool: ...

    async def has_proposal(self, tenant: str, volunteer_id: str, need_id: str, transaction: Transaction) -> bool: ...

    async def open_thread(self, thread: Thread, transaction: Transaction) -> None: ...

    async def thread(self, tenant: str, thread_id: str, transaction: Transaction | None = None) -> Thread | None: ...

    async def add_thread_message(
        self, tenant: str, thread_id: str, message: ThreadMessage, state: ThreadState, transaction: Transaction
    ) -> Thread | None: ...

    async def set_thread_state(
        self, tenant: str, thread_id: str, state: ThreadState, transaction: Transaction
    ) -> Thread | None: ...

    async def release_waiting(self, references: list[str], transaction: Transaction) -> int: ...

    async def add_delivery(
        self,
        transaction: Transaction,
        *,
        tenant: str,
        trigger_event_id: str,
        correlation_id: str,
        kind: str,
        recipient_kind: str,
        recipient_id: str,
        channel: Channel,
        language: str,
        payload: Mapping[str, Any],
        skip_reason: str | None = None,
        skip_detail: str = "",
    ) -> Delivery | None: ...

    async def add_deliveries(self, transaction: Transaction, deliveries: Sequence[NewDelivery]) -> list[Delivery]: ...


def _delivery_document(request: NewDelivery, now: datetime, trace_context: dict[str, str] | None) -> Doc:
    """A new delivery as stored: pending and due now, or skipped (then without its payload)."""
    document: Doc = {
        "_id": str(uuid.uuid4()),
        "key": delivery_key(request.trigger_event_id, request.recipient_kind, request.recipient_id, request.channel),
        "tenant": request.tenant,
        "trigger_event_id": request.trigger_event_id,
        "correlation_id": request.correlation_id,
        "kind": request.kind,
        "recipient_kind": request.recipient_kind,
        "recipient_id": request.recipient_id,
        "channel": request.channel.value,
        "language": request.language,
        "payload": dict(request.payload),
        "status": (PENDING if request.skip_reason is None else SKIPPED).value,
        "reason": request.skip_reason,
        "error": request.skip_detail or None,
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": NEVER,
        "created_at": now,
        "trace_context": trace_context,
    }
    if request.skip_reason is not None:
        document.pop("payload")
        document["finished_at"] = now
    return document


FINISHED = frozenset(status.value for status in (SENT, SKIPPED, DEAD, CANCELLED))
# Needs whose end the retention counts from (``ended_at``, set when the registry ends them).
ENDED_NEEDS = frozenset({NeedStatus.CLOSED, NeedStatus.CANCELLED})
ENDED_AT = "ended_at"


def _finished(fields: Mapping[str, Any]) -> Doc:
    """When an outcome finishes a delivery (``finished_at``, from which the delivery log ages); a
    retry leaves it pending and unfinished."""
    if fields.get("status") not in FINISHED:
        return {}
    return {"finished_at": fields.get("sent_at") or fields.get("failed_at") or datetime.now(UTC)}


def _without(document: Mapping[str, Any], field: str) -> Doc:
    return {key: value for key, value in document.items() if key != field}


def _session(transaction: Transaction | None) -> Session:
    return transaction.session if transaction is not None else None


def _fields(document: Mapping[str, Any]) -> Doc:
    """A record's document without its ``_id``, for ``$set``."""
    return {key: value for key, value in document.items() if key != "_id"}


@dataclass(frozen=True)
class HeldAboutVolunteer:
    """What notifications holds about one volunteer, by collection (see ``api.subject_access``)."""

    contact: list[Doc]
    engagements: list[Doc]
    messages: list[Doc]
    threads: list[Doc]
    post_counts: list[Doc]
    deliveries: list[Doc]
    digest_items: list[Doc]
    audit: list[Doc]


def naming_volunteer(tenant: str, volunteer_id: str, proposal_ids: Sequence[str]) -> Doc:
    """The deliveries and digest items that name the volunteer: sent to them, and those to the
    office, an organisation or a partner that are about them: a payload naming them
    (``volunteer_id``: unreachable, certificate, question; ``volunteer_ids``: a need staffed; a
    daily digest's items), one about one of their proposals, a webhook's body holding their id.
    Only the first uses an index beyond the tenant; the rest scan the tenant's log, which an
    export on request can afford."""
    return {
        "tenant": tenant,
        "$or": [
            {"recipient_kind": RecipientKind.VOLUNTEER.value, "recipient_id": volunteer_id},
            {"payload.volunteer_id": volunteer_id},
            {"payload.volunteer_ids": volunteer_id},
            {"payload.items.volunteer_ids": volunteer_id},
            {"payload.proposal_id": {"$in": list(proposal_ids)}},
            {"channel": Channel.WEBHOOK.value, "payload.body": {"$regex": re.escape(volunteer_id)}},
        ],
    }


class Store:
    def __init__(self, database: AsyncDatabase[Doc]) -> None:
        self.db = database
        # Read for nearly every event, changed rarely (see ``lotse_runtime.memo``). Webhooks are
        # not among them: deliveries to them are queued at event time, and one added on another
        # replica must get the events from then on, not only after the memory expires. They are
        # read once per transaction (a consumer batch's events share one): its snapshot is the same.
        # By session and the transaction's start: a retried attempt on the same session reads anew.
        self._webhooks_read: weakref.WeakKeyDictionary[AsyncClientSession, tuple[int, dict[str, list[Webhook]]]] = (
            weakref.WeakKeyDictionary()
        )
        self._tenants: Memo[str, TenantFacts] = Memo()
        self._organisations: Memo[tuple[str, str], Organisation] = Memo()
        # A preference's absence is kept too (most have none): hence the one-element tuple.
        self._mail_preferences: Memo[str, tuple[MailPreference | None]] = Memo()
        # The contacts of the volunteers a consumer batch's events name, read in its transaction
        # at once (a need's proposals would read one each) and kept for that batch only; a
        # contact the batch writes is read again (``_contact_written``).
        self._batch_contacts: weakref.WeakKeyDictionary[Batch, dict[str, Contact | None]] = weakref.WeakKeyDictionary()

    async def ensure_indexes(self) -> None:
        await ensure_inbox_index(self.db)
        await ensure_outbox_indexes(self.db)
        deliveries = self.db.deliveries
        await deliveries.create_index("key", unique=True)
        await deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        # The retention job's queries: finished deliveries of a tenant by when they finished.
        await deliveries.create_index([("tenant", ASCENDING), ("status", ASCENDING), ("finished_at", ASCENDING)])
        await deliveries.create_index([("tenant", ASCENDING), ("recipient_id", ASCENDING)])
        # Only deliveries waiting for a reference not read yet carry it (see ``release_waiting``).
        await deliveries.create_index("waiting_for", sparse=True)
        await self.db.proposals.create_index([("status", ASCENDING), ("reminded", ASCENDING), ("expires_at", 1)])
        await self.db.proposals.create_index([("tenant", ASCENDING), ("need_id", ASCENDING)])
        await self.db.proposals.create_index([("status", 1), ("start_reminder_due", 1), ("starts_at", 1)])
        await self.db.proposals.create_index([("status", 1), ("thanks_due", 1), ("ends_at", 1)])
        await self.db.digest_items.create_index([("digest", ASCENDING), ("created_at", ASCENDING)])
        # Items a digest took while they were still kept after it (marked with its name) go now.
        await self.db.digest_items.delete_many({"digest": {"$ne": None}})
        await self.db.messages.create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING), ("created_at", -1)])
        await self.db.webhooks.create_index("tenant")
        await ensure_audit_indexes(self.db)
        await self.db.threads.create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING)])
        await self.db.threads.create_index([("tenant", ASCENDING), ("state", ASCENDING), ("last_activity_at", -1)])
        await self.db.post_counts.create_index("expires_at", expireAfterSeconds=0)

    # --- read model ------------------------------------------------------------------------

    async def _upsert_versioned(self, collection: str, document: Mapping[str, Any], transaction: Transaction) -> bool:
        """Apply a full-state event's record if it is newer than what is stored (and the record is
        not an erased volunteer's); False if it is older."""
        session = transaction.session
        _id = document["_id"]
        stored = await self.db[collection].find_one({"_id": _id}, {"version": 1, "erased": 1}, session=session)
        if stored is not None and (stored.get("version", 0) >= document["version"] or stored.get("erased")):
            return False
        await self.db[collection].update_one({"_id": _id}, {"$set": _fields(document)}, upsert=True, session=session)
        return True

    async def tenant(self, tenant: str, transaction: Transaction | None = None) -> TenantFacts | None:
        cached = self._tenants.get(tenant, transaction)
        if cached is not None:
            return cached
        ticket = self._tenants.ticket()
        found = await self.db.tenants.find_one({"_id": tenant}, session=_session(transaction))
        if found is None:
            return None
        facts = TenantFacts.from_document(found)
        self._tenants.remember(tenant, facts, ticket, transaction)
        return facts

    async def tenants(self) -> list[TenantFacts]:
        """Every tenant this service knows (for the digest scheduler, which works per tenant)."""
        return [TenantFacts.from_document(found) for found in await self.db.tenants.find({}).to_list()]

    async def save_tenant(self, facts: TenantFacts, transaction: Transaction) -> bool:
        self._tenants.changing(facts.tenant, transaction)
        return await self._upsert_versioned("tenants", facts.to_document(), transaction)

    async def organisation(
        self, tenant: str, organisation_id: str, transaction: Transaction | None = None
    ) -> Organisation | None:
        key = (tenant, organisation_id)
        cached = self._organisations.get(key, transaction)
        if cached is not None:
            return cached
        ticket = self._organisations.ticket()
        found = await self.db.organisations.find_one(
            {"_id": scoped_id(tenant, organisation_id)}, session=_session(transaction)
        )
        if found is None:
            return None
        organisation = Organisation.from_document(found)
        self._organisations.remember(key, organisation, ticket, transaction)
        return organisation

    async def coordination_office(self, tenant: str, transaction: Transaction | None = None) -> Organisation | None:
        found = await self.db.organisations.find_one(
            {"tenant": tenant, "kind": OrganisationKind.COORDINATION_OFFICE.value},
            sort=[("version", DESCENDING)],
            session=_session(transaction),
        )
        return None if found is None else Organisation.from_document(found)

    async def save_organisation(self, organisation: Organisation, transaction: Transaction) -> bool:
        key = (organisation.tenant, organisation.organisation_id)
        self._organisations.changing(key, transaction)
        return await self._upsert_versioned("organisations", organisation.to_document(), transaction)

    async def contact(self, tenant: str, volunteer_id: str, transaction: Transaction | None = None) -> Contact | None:
        _id = scoped_id(tenant, volunteer_id)
        if transaction is not None and transaction.batch is not None:
            kept = self._batch_contacts.get(transaction.batch)
            if kept is None:
                kept = self._batch_contacts[transaction.batch] = await self._contacts_named(transaction, _id)
            if _id in kept:
                return kept[_id]
        found = await self.db.contacts.find_one({"_id": _id}, session=_session(transaction))
        return None if found is None else Contact.from_document(found)

    async def _contacts_named(self, transaction: Transaction, _id: str) -> dict[str, Contact | None]:
        """The contacts of the volunteers the events of the transaction's batch name (and
        ``_id``), in one read in its transaction; those not there (yet) as None."""
        events = transaction.batch.events if transaction.batch is not None else []
        ids = {_id} | {
            scoped_id(event.tenant, str(volunteer_id))
            for event in events
            if (volunteer_id := getattr(event.data, "volunteer_id", None)) is not None
        }
        found = await self.db.contacts.find({"_id": {"$in": sorted(ids)}}, session=transaction.session).to_list()
        contacts: dict[str, Contact | None] = dict.fromkeys(ids)
        contacts.update({document["_id"]: Contact.from_document(document) for document in found})
        return contacts

    def _contact_written(self, tenant: str, volunteer_id: str, transaction: Transaction) -> None:
        """A contact changes in this transaction: its batch reads it again (and sees the change)."""
        if transaction.batch is not None and (kept := self._batch_contacts.get(transaction.batch)) is not None:
            kept.pop(scoped_id(tenant, volunteer_id), None)

    async def register_contact(self, contact: Contact, transaction: Transaction) -> bool:
        self._contact_written(contact.tenant, contact.volunteer_id, transaction)
        return await self._upsert_versioned("contacts", contact.to_document(), transaction)

    async def update_contact_details(
        self, tenant: str, volunteer_id: str, version: int, details: ContactDetails, transaction: Transaction
    ) -> bool:
        """A profile update: the contact's details (active again); the registration's consent and
        organisation stay as they are. A channel that failed for good counts as working again once
        its address (email, phone for SMS) changed."""
        document = {
            "_id": scoped_id(tenant, volunteer_id),
            "tenant": tenant,
            "version": version,
            "volunteer_id": volunteer_id,
            **details.to_document(),
            "active": True,
        }
        known = await self.contact(tenant, volunteer_id, transaction)
        if known is not None and known.details is not None and known.failed_channels:
            changed = {
                Channel.EMAIL: details.email != known.details.email,
                Channel.SMS: details.phone != known.details.phone,
            }
            kept = [channel for channel in known.failed_channels if not changed.get(channel, False)]
            document["failed_channels"] = [channel.value for channel in kept]
        self._contact_written(tenant, volunteer_id, transaction)
        return await self._upsert_versioned("contacts", document, transaction)

    async def set_unreachable_reported(
        self, tenant: str, volunteer_id: str, reported: bool, transaction: Transaction
    ) -> bool:
        """Note that the office was told the volunteer cannot be reached (or that they can be again);
        False if that was noted already."""
        self._contact_written(tenant, volunteer_id, transaction)
        result = await self.db.contacts.update_one(
            {"_id": scoped_id(tenant, volunteer_id), "unreachable_reported": {"$ne": True} if reported else True},
            {"$set": {"unreachable_reported": reported}},
            session=transaction.session,
        )
        return result.modified_count == 1

    async def mark_channel_failed(
        self, tenant: str, volunteer_id: str, channel: Channel, transaction: Transaction
    ) -> None:
        self._contact_written(tenant, volunteer_id, transaction)
        await self.db.contacts.update_one(
            {"_id": scoped_id(tenant, volunteer_id), "erased": {"$ne": True}},
            {"$addToSet": {"failed_channels": channel.value}},
            session=transaction.session,
        )

    async def clear_channel_failure(
        self, tenant: str, volunteer_id: str, channel: Channel, transaction: Transaction
    ) -> bool:
        """A send on the channel worked: it is no longer failed. False if it was not."""
        self._contact_written(tenant, volunteer_id, transaction)
        result = await self.db.contacts.update_one(
            {"_id": scoped_id(tenant, volunteer_id), "failed_channels": channel.value},
            {"$pull": {"failed_channels": channel.value}},
            session=transaction.session,
        )
        return result.modified_count == 1

    async def erase_volunteer(self, tenant: str, volunteer_id: str, version: int, transaction: Transaction) -> None:
        """Delete every piece of the volunteer's contact data; keep a tombstone without any, so
        that an older registration replayed later is not applied again."""
        session = transaction.session
        self._contact_written(tenant, volunteer_id, transaction)
        tombstone = Contact.tombstone(tenant, volunteer_id, version).to_document()
        await self.db.contacts.replace_one({"_id": tombstone["_id"]}, _fields(tombstone), upsert=True, session=session)
        await self.db.messages.delete_many({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        await self.db.proposals.delete_many({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        # Their questions and the office's answers are theirs too.
        await self.db.threads.delete_many({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        await self.db.post_counts.delete_many({"tenant": tenant, "author_id": volunteer_id}, session=session)
        # Our copy of their key goes with the erasure, even if the key topic's tombstone is missed.
        await destroy_person_key(self.db, tenant, volunteer_id, session)
        recipient = {"tenant": tenant, "recipient_kind": RecipientKind.VOLUNTEER.value, "recipient_id": volunteer_id}
        await self.cancel_pending(recipient, "volunteer_erased", transaction)
        # The log keeps who (an id), what kind and the outcome; the payload held personal links.
        await self.db.deliveries.update_many(recipient, {"$unset": {"payload": ""}}, session=session)
        # A partner with the `volunteer_ids` opt-in got their id in webhook bodies (issue 18): it
        # comes out of those still pending, before they go, and out of those kept in the log.
        webhooks = {
            "tenant": tenant,
            "channel": Channel.WEBHOOK.value,
            "payload.body": {"$regex": re.escape(volunteer_id)},
        }
        for delivery in await self.db.deliveries.find(webhooks, session=session).to_list():
            body = without_volunteer(delivery["payload"]["body"], volunteer_id)
            await self.db.deliveries.update_one(
                {"_id": delivery["_id"]}, {"$set": {"payload.body": body}}, session=session
            )

    async def withdraw_volunteer(self, tenant: str, volunteer_id: str, transaction: Transaction) -> None:
        self._contact_written(tenant, volunteer_id, transaction)
        await self.db.contacts.update_one(
            {"_id": scoped_id(tenant, volunteer_id)}, {"$set": {"active": False}}, session=transaction.session
        )
        recipient = {"tenant": tenant, "recipient_kind": RecipientKind.VOLUNTEER.value, "recipient_id": volunteer_id}
        await self.cancel_pending(recipient, "volunteer_withdrawn", transaction)

    async def cancel_pending(self, recipient: Mapping[str, Any], reason: str, transaction: Transaction) -> None:
        """Cancel what is still queued for a recipient; each cancellation is an outcome, so it is published."""
        session = transaction.session
        found = await self.db.deliveries.find({**recipient, "status": PENDING.value}, session=session).to_list()
        for delivery in map(Delivery.from_document, found):
            await self.db.deliveries.update_one(
                {"_id": delivery.id},
                {"$set": {"status": CANCELLED.value, "reason": reason, "finished_at": datetime.now(UTC)}},
                session=session,
            )
            attempts = delivery.attempts + 1
            await self.publish_outcome(
                delivery, transaction, sent=False, attempts=attempts, error_code=reason, error=reason
            )

    async def need(self, tenant: str, need_id: str, transaction: Transaction | None = None) -> Need | None:
        found = await self.db.needs.find_one({"_id": scoped_id(tenant, need_id)}, session=_session(transaction))
        return None if found is None else Need.from_document(found)

    async def save_need(
        self,
        tenant: str,
        need_id: str,
        version: int,
        transaction: Transaction,
        *,
        snapshot: NeedSnapshot | None = None,
        status: NeedStatus | None = None,
        unstaffed: bool | None = None,
        cancellation_reason: CancellationReason | None = None,
    ) -> bool:
        """Apply a registry event about the need, setting the parts given, if it is newer than the
        last one applied."""
        change = Need(
            tenant,
            need_id,
            version=version,
            snapshot=snapshot,
            status=status,
            unstaffed=unstaffed,
            cancellation_reason=cancellation_reason,
        )
        applied = await self._upsert_versioned("needs", change.to_document(), transaction)
        if applied and status in ENDED_NEEDS:
            # From when it ended the retention counts (``retention``); the first end counts.
            await self.db.needs.update_one(
                {"_id": scoped_id(tenant, need_id), ENDED_AT: None},
                {"$set": {ENDED_AT: datetime.now(UTC)}},
                session=transaction.session,
            )
        return applied

    async def date_undated_ended_needs(self) -> int:
        """Needs that ended before their end was recorded are dated now, so that the retention
        counts from now rather than never. The number dated."""
        result = await self.db.needs.update_many(
            {"status": {"$in": sorted(ENDED_NEEDS)}, ENDED_AT: None}, {"$set": {ENDED_AT: datetime.now(UTC)}}
        )
        return result.modified_count

    async def delete_needs_with_proposals(self, tenant: str, need_ids: Sequence[str]) -> int:
        """The retention's work on needs that ended long ago: their proposals (and engagements)
        first, so that a stop in between leaves the need due and done again."""
        await self.db.proposals.delete_many({"tenant": tenant, "need_id": {"$in": list(need_ids)}})
        result = await self.db.needs.delete_many({"tenant": tenant, "need_id": {"$in": list(need_ids)}})
        return result.deleted_count

    async def open_need(
        self, tenant: str, need_id: str, version: int, snapshot: NeedSnapshot, transaction: Transaction
    ) -> NeedOpening:
        """Apply ``need.opened``: the snapshot, and the need open with nobody missing unless
        matching's events said otherwise first. One read decides both and whether they came."""
        session = transaction.session
        document = Need(tenant, need_id, version=version, snapshot=snapshot).to_document()
        stored = await self.db.needs.find_one(
            {"_id": document["_id"]}, {"version": 1, "status": 1, "staffing_version": 1}, session=session
        )
        if stored is not None and stored.get("version", 0) >= version:
            return NeedOpening.STALE
        fields = _fields(document)
        if stored is None or stored.get("status") is None:
            fields |= {"status": NeedStatus.OPEN.value, "unstaffed": False}
        await self.db.needs.update_one({"_id": document["_id"]}, {"$set": fields}, upsert=True, session=session)
        staffed_before = stored is not None and stored.get("staffing_version") is not None
        return NeedOpening.AFTER_STAFFING if staffed_before else NeedOpening.FIRST

    async def advance_staffing(self, tenant: str, need_id: str, version: int, transaction: Transaction) -> Need | None:
        """Matching's events carry their own version per need: the need as it is once this
        version is recorded, or None for an older one (which changes nothing: ``$max``). One
        round trip admits the event and reads the need."""
        _id = scoped_id(tenant, need_id)
        before = await self.db.needs.find_one_and_update(
            {"_id": _id},
            {"$max": {"staffing_version": version}, "$set": {"tenant": tenant, "need_id": need_id}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
            session=transaction.session,
        )
        if before is not None and before.get("staffing_version", 0) >= version:
            return None
        return Need.from_document({**(before or {}), "tenant": tenant, "need_id": need_id, "staffing_version": version})

    async def set_staffing(
        self, tenant: str, need_id: str, transaction: Transaction, *, unstaffed: bool, status: NeedStatus | None = None
    ) -> None:
        """What matching's latest staffing event says (after ``advance_staffing`` admitted it)."""
        fields: Doc = {"unstaffed": unstaffed} if status is None else {"status": status.value, "unstaffed": unstaffed}
        # A need the registry ended stays ended: matching's word may come after (another topic),
        # and the retention deletes only ended needs.
        not_ended = {"status": {"$nin": sorted(ENDED_NEEDS)}}
        await self.db.needs.update_one(
            {"_id": scoped_id(tenant, need_id), **not_ended}, {"$set": fields}, session=transaction.session
        )

    async def needs_of(self, tenant: str, transaction: Transaction | None = None) -> list[Need]:
        """The tenant's needs whose snapshot is known (those the digest can describe)."""
        found = self.db.needs.find({"tenant": tenant, "description": {"$exists": True}}, session=_session(transaction))
        return [Need.from_document(document) for document in await found.to_list()]

    async def save_proposal(self, proposal: Proposal, transaction: Transaction) -> None:
        document = proposal.to_document()
        await self.db.proposals.update_one(
            {"_id": document["_id"]}, {"$set": _fields(document)}, upsert=True, session=transaction.session
        )

    async def set_proposal_status(
        self, tenant: str, proposal_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None:
        await self.db.proposals.update_one(
            {"_id": scoped_id(tenant, proposal_id)}, {"$set": {"status": status.value}}, session=transaction.session
        )

    async def engaged_volunteers(self, tenant: str, need_id: str, transaction: Transaction) -> list[str]:
        """Volunteers with an open or accepted proposal for the need (they hear of a cancellation)."""
        found = await self.db.proposals.find(
            {"tenant": tenant, "need_id": need_id, "status": {"$in": [status.value for status in ENGAGED]}},
            {"volunteer_id": 1},
            session=transaction.session,
        ).to_list()
        return sorted({doc["volunteer_id"] for doc in found})

    async def close_proposals_of_need(
        self, tenant: str, need_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None:
        await self.db.proposals.update_many(
            {"tenant": tenant, "need_id": need_id, "status": {"$in": [engaged.value for engaged in ENGAGED]}},
            {"$set": {"status": status.value}},
            session=transaction.session,
        )

    async def step_back(self, tenant: str, need_id: str, volunteer_id: str, transaction: Transaction) -> None:
        await self.db.proposals.update_many(
            {"tenant": tenant, "need_id": need_id, "volunteer_id": volunteer_id},
            {"$set": {"status": ProposalStatus.STEPPED_BACK.value}},
            session=transaction.session,
        )

    async def proposals_to_remind(self, now: datetime, before: timedelta, limit: int = 200) -> list[Proposal]:
        """Open proposals expiring soon that were not reminded yet, across tenants (the scheduler's scan)."""
        found = await (
            self.db.proposals.find(
                {
                    "status": ProposalStatus.OPEN.value,
                    "reminded": False,
                    "expires_at": {"$gt": now, "$lte": now + before},
                }
            )
            .limit(limit)
            .to_list()
        )
        return [Proposal.from_document(document) for document in found]

    async def mark_reminded(self, tenant: str, proposal_id: str, transaction: Transaction) -> bool:
        result = await self.db.proposals.update_one(
            {"_id": scoped_id(tenant, proposal_id), "reminded": False},
            {"$set": {"reminded": True}},
            session=transaction.session,
        )
        return result.modified_count == 1

    # --- engagements ----------------------------------------------------------------------

    async def accepted_proposals(self, tenant: str, need_id: str, transaction: Transaction) -> list[Proposal]:
        found = await self.db.proposals.find(
            {"tenant": tenant, "need_id": need_id, "status": ProposalStatus.ACCEPTED.value},
            session=transaction.session,
        ).to_list()
        return [Proposal.from_document(document) for document in found]

    async def schedule_engagement(
        self,
        tenant: str,
        proposal_id: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        transaction: Transaction,
    ) -> None:
        """The engagement's schedule: a new start wants a reminder (again); a thank-you stays due
        until it was planned once."""
        session = transaction.session
        _id = scoped_id(tenant, proposal_id)
        stored = await self.db.proposals.find_one({"_id": _id}, session=session)
        if stored is None:
            return
        known = Proposal.from_document(stored)
        fields: Doc = {"starts_at": starts_at, "ends_at": ends_at}
        if starts_at != known.starts_at or known.start_reminder_due is None:
            fields["start_reminder_due"] = starts_at is not None
        if known.thanks_due is None:
            fields["thanks_due"] = True
        await self.db.proposals.update_one({"_id": _id}, {"$set": fields}, session=session)

    async def engagements_to_remind(self, now: datetime, before: timedelta, limit: int = 200) -> list[Proposal]:
        """Engagements starting within ``before`` whose reminder is still to be planned (all tenants)."""
        found = await (
            self.db.proposals.find(
                {
                    "status": ProposalStatus.ACCEPTED.value,
                    "start_reminder_due": True,
                    "starts_at": {"$gt": now, "$lte": now + before},
                }
            )
            .limit(limit)
            .to_list()
        )
        return [Proposal.from_document(document) for document in found]

    async def engagements_to_thank(self, now: datetime, within: timedelta, limit: int = 200) -> list[Proposal]:
        """Engagements that ended (at most ``within`` ago) and were not thanked for yet (all tenants)."""
        found = await (
            self.db.proposals.find(
                {
                    "status": ProposalStatus.ACCEPTED.value,
                    "thanks_due": True,
                    "ends_at": {"$lte": now, "$gt": now - within},
                }
            )
            .limit(limit)
            .to_list()
        )
        return [Proposal.from_document(document) for document in found]

    async def mark_start_reminded(
        self, tenant: str, proposal_id: str, starts_at: datetime, transaction: Transaction
    ) -> bool:
        """Claim the reminder of this start; False if it was planned already or the start moved."""
        result = await self.db.proposals.update_one(
            {"_id": scoped_id(tenant, proposal_id), "start_reminder_due": True, "starts_at": starts_at},
            {"$set": {"start_reminder_due": False}},
            session=transaction.session,
        )
        return result.modified_count == 1

    async def mark_thanked(self, tenant: str, proposal_id: str, transaction: Transaction) -> bool:
        """Claim the thank-you; False if it was planned already."""
        result = await self.db.proposals.update_one(
            {"_id": scoped_id(tenant, proposal_id), "thanks_due": {"$ne": False}},
            {"$set": {"thanks_due": False}},
            session=transaction.session,
        )
        return result.modified_count == 1

    async def cancel_engagement_messages(
        self,
        tenant: str,
        need_id: str,
        kinds: tuple[str, ...],
        reason: str,
        transaction: Transaction,
        *,
        volunteer_id: str | None = None,
    ) -> None:
        """Cancel the reminders or thank-yous still queued about a need (one volunteer's, or everyone's)."""
        recipient: Doc = {"tenant": tenant, "kind": {"$in": list(kinds)}, "payload.need_id": need_id}
        if volunteer_id is not None:
            recipient |= {"recipient_kind": RecipientKind.VOLUNTEER.value, "recipient_id": volunteer_id}
        await self.cancel_pending(recipient, reason, transaction)

    # --- the office's choice and its daily digest ------------------------------------------

    async def mail_preference(
        self, tenant: str, recipient_kind: str, recipient_id: str, transaction: Transaction | None = None
    ) -> MailPreference | None:
        """The office's or an organisation's choice; a handler (``transaction`` given) is served
        from memory, since every mail to the office asks (see ``lotse_runtime.memo``)."""
        _id = scoped_id(tenant, f"{recipient_kind}:{recipient_id}")
        cached = self._mail_preferences.get(_id, transaction) if transaction is not None else None
        if cached is not None:
            return cached[0]
        ticket = self._mail_preferences.ticket()
        found = await self.db.mail_preferences.find_one({"_id": _id}, session=_session(transaction))
        preference = None if found is None else MailPreference.from_document(found)
        self._mail_preferences.remember(_id, (preference,), ticket, transaction)
        return preference

    async def save_mail_preference(self, preference: MailPreference, transaction: Transaction | None = None) -> None:
        """Save the office's or an organisation's choice; in ``transaction`` (the office's route)
        with its audit entry."""
        document = preference.to_document()
        if transaction is not None:
            self._mail_preferences.changing(document["_id"], transaction)
        await self.db.mail_preferences.replace_one(
            {"_id": document["_id"]}, _fields(document), upsert=True, session=_session(transaction)
        )
        self._mail_preferences.forget(document["_id"])
        if transaction is not None:
            fields = changed_fields(_fields(document))
            transaction.audit(preference.tenant, Operation.UPDATE, MAIL_PREFERENCES, document["_id"], fields)

    async def add_digest_item(self, item: DigestItem, transaction: Transaction) -> bool:
        """Keep an event for the recipient's next daily digest; False if it is kept already."""
        # Set only on insert: a kept item stays as it is, without a read first.
        document = item.to_document()
        result = await self.db.digest_items.update_one(
            {"_id": document["_id"]}, {"$setOnInsert": _fields(document)}, upsert=True, session=transaction.session
        )
        return result.upserted_id is not None

    async def digest_recipients(self, limit: int = 1000) -> list[tuple[str, str, str]]:
        """(tenant, recipient kind, recipient id) of everyone with items waiting for a digest."""
        found = self.db.digest_items.find(
            {"digest": None}, {"tenant": 1, "recipient_kind": 1, "recipient_id": 1}
        ).limit(limit)
        return sorted({(doc["tenant"], doc["recipient_kind"], doc["recipient_id"]) for doc in await found.to_list()})

    async def waiting_digest_items(
        self, tenant: str, recipient_kind: str, recipient_id: str, before: datetime, transaction: Transaction
    ) -> list[DigestItem]:
        found = await self.db.digest_items.find(
            {
                "tenant": tenant,
                "recipient_kind": recipient_kind,
                "recipient_id": recipient_id,
                "digest": None,
                "created_at": {"$lt": before},
            },
            session=transaction.session,
        ).to_list()
        return [DigestItem.from_document(document) for document in found]

    async def take_digest_items(self, items: list[DigestItem], digest: str, transaction: Transaction) -> None:
        """The items go with the digest that took them (its delivery carries them): kept no longer
        than that, as the record of processing says (the filter on ``digest`` still takes an item once)."""
        await self.db.digest_items.delete_many(
            {"_id": {"$in": [item.key for item in items]}, "digest": None}, session=transaction.session
        )

    # --- deliveries ------------------------------------------------------------------------

    async def add_delivery(
        self,
        transaction: Transaction,
        *,
        tenant: str,
        trigger_event_id: str,
        correlation_id: str,
        kind: str,
        recipient_kind: str,
        recipient_id: str,
        channel: Channel,
        language: str,
        payload: Mapping[str, Any],
        skip_reason: str | None = None,
        skip_detail: str = "",
    ) -> Delivery | None:
        """Queue a delivery (or record why it is skipped) unless its key exists; None if it did."""
        request = NewDelivery(
            tenant=tenant,
            trigger_event_id=trigger_event_id,
            correlation_id=correlation_id,
            kind=kind,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            channel=channel,
            language=language,
            payload=payload,
            skip_reason=skip_reason,
            skip_detail=skip_detail,
        )
        added = await self.add_deliveries(transaction, [request])
        return added[0] if added else None

    async def add_deliveries(self, transaction: Transaction, deliveries: Sequence[NewDelivery]) -> list[Delivery]:
        """Queue deliveries (or record why they are skipped) in one write, each unless its key
        exists (a replayed event); the ones added. An upsert that only sets on insert, so that an
        existing key is left as it is without a read first and without a duplicate key error,
        which would abort the transaction."""
        if not deliveries:
            return []
        now = datetime.now(UTC)
        # The worker sends later, in the trace of the event that asked for the message.
        trace_context = current_trace_context()
        documents = [_delivery_document(request, now, trace_context) for request in deliveries]
        writes = [
            UpdateOne({"key": document["key"]}, {"$setOnInsert": _without(document, "key")}, upsert=True)
            for document in documents
        ]
        result = await self.db.deliveries.bulk_write(writes, session=transaction.session)
        added: list[Delivery] = []
        for index in sorted(result.upserted_ids or {}):
            delivery, request = Delivery.from_document(documents[index]), deliveries[index]
            added.append(delivery)
            if request.skip_reason is not None:
                detail = request.skip_detail or request.skip_reason
                await self.publish_outcome(
                    delivery, transaction, sent=False, attempts=1, error_code=request.skip_reason, error=detail
                )
        return added

    async def publish_outcome(
        self,
        delivery: Delivery,
        transaction: Transaction,
        *,
        sent: bool,
        attempts: int,
        error_code: str = "",
        error: str = "",
        will_retry: bool = False,
        language: str | None = None,
    ) -> None:
        event = outcome_event(
            delivery,
            sent=sent,
            attempts=attempts,
            error_code=error_code,
            error=error,
            will_retry=will_retry,
            language=language,
        )
        await transaction.append_event(topic_for(event.type, event.tenant), event)

    async def claim_due(self, claim: str, lease: timedelta, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due deliveries, the longest due first, under the claim token
        ``claim`` (one per pass of a worker) until the lease runs out: a crashed worker's claims
        come back then. The due ones are read, then each is claimed only if it is still as read
        (pending, unclaimed, due at the same time: every change of a pending delivery sets a new
        due time), so two workers never hold one delivery and what was read is what was claimed.
        Only when another worker won some, a third read says which. A pass that finds nothing due
        (a poll, a wake-up for nothing) costs that one read."""
        now = datetime.now(UTC)
        due: Doc = {"status": PENDING.value, "next_attempt_at": {"$lte": now}, "claimed_until": {"$lt": now}}
        # Read outside the claim's transaction: the claim checks each delivery is still as read.
        found = await self.db.deliveries.find(due).sort("next_attempt_at", ASCENDING).limit(limit).to_list()
        if not found:
            return []
        # In a transaction of its own, though one write would do: the embedded database retries a
        # plain write that meets a consumer batch's uncommitted change without end, holding the
        # collection meanwhile, so that the batch can never commit (seen under steady load); in a
        # transaction the conflict surfaces at once and the claim is tried again.
        return await in_transaction(
            self.db.client, lambda session: self._claim_found(found, due, claim, now + lease, session)
        )

    async def _claim_found(
        self, found: list[Doc], due: Doc, claim: str, until: datetime, session: AsyncClientSession
    ) -> list[Delivery]:
        as_read = [{"_id": doc["_id"], "next_attempt_at": doc["next_attempt_at"]} for doc in found]
        result = await self.db.deliveries.update_many(
            {**due, "$or": as_read}, {"$set": {"claimed_until": until, "claimed_by": claim}}, session=session
        )
        claimed = found
        if result.modified_count < len(found):
            won = await self.db.deliveries.find(
                {"_id": {"$in": [doc["_id"] for doc in found]}, "claimed_by": claim}, {"_id": 1}, session=session
            ).to_list()
            ids = {doc["_id"] for doc in won}
            claimed = [doc for doc in found if doc["_id"] in ids]
        return [Delivery.from_document({**doc, "claimed_by": claim}) for doc in claimed]

    async def finish(self, delivery: Delivery, fields: Mapping[str, Any], session: AsyncClientSession) -> bool:
        """Record an attempt's outcome if this worker still holds the delivery."""
        return delivery.id in await self.finish_many([(delivery, fields)], session)

    async def finish_many(
        self, outcomes: list[tuple[Delivery, Mapping[str, Any]]], session: AsyncClientSession
    ) -> set[str]:
        """Record the outcomes of attempts in one write, each only while its claim holds (the
        lease did not run out and no other worker claimed it since); the ids of those recorded.
        Claim tokens are never reused, so a delivery still under its token was written here."""
        if not outcomes:
            return set()
        writes = [
            UpdateOne(
                {"_id": delivery.id, "status": PENDING.value, "claimed_by": delivery.claimed_by},
                {"$set": {**fields, **_finished(fields), "claimed_until": NEVER}}
                | ({} if "waiting_for" in fields else {"$unset": {"waiting_for": ""}}),
            )
            for delivery, fields in outcomes
        ]
        result = await self.db.deliveries.bulk_write(writes, ordered=False, session=session)
        ids = [delivery.id for delivery, _ in outcomes]
        if result.matched_count == len(outcomes):
            return set(ids)
        held = await self.db.deliveries.find(
            # Written here: still under its token, and no longer claimed (a delivery cancelled
            # meanwhile keeps the token but also its lease).
            {
                "_id": {"$in": ids},
                "claimed_by": {"$in": [delivery.claimed_by for delivery, _ in outcomes]},
                "claimed_until": NEVER,
            },
            {"claimed_by": 1},
            session=session,
        ).to_list()
        claims = {delivery.id: delivery.claimed_by for delivery, _ in outcomes}
        return {doc["_id"] for doc in held if doc.get("claimed_by") == claims[doc["_id"]]}

    async def release_waiting(self, references: list[str], transaction: Transaction) -> int:
        """Deliveries that wait for one of these references (``reference_key``: a tenant, a
        volunteer's contact, an organisation, a need not read yet) are due now: the event that
        brought it is applied in this transaction. How many were released."""
        result = await self.db.deliveries.update_many(
            {"waiting_for": {"$in": references}, "status": PENDING.value},
            {"$set": {"next_attempt_at": datetime.now(UTC)}, "$unset": {"waiting_for": ""}},
            session=transaction.session,
        )
        return result.modified_count

    # --- what a pass of the worker reads ------------------------------------------------------

    async def read_for_batch(
        self,
        *,
        tenants: list[str],
        contacts: list[tuple[str, str]],
        needs: list[tuple[str, str]],
        webhooks: list[str],
    ) -> BatchReads:
        """What a batch of deliveries needs of the read model, in one round trip (an aggregate
        whose ``$unionWith`` stages read the other collections): these tenants with all their
        organisations, guidance and template overrides, these contacts and needs ((tenant, id)
        pairs) and these webhooks. Each document comes back marked with its collection."""

        def part(collection: str, match: Doc) -> Doc:
            stages = [{"$match": match}, {"$set": {_COLLECTION: collection}}]
            return {"$unionWith": {"coll": collection, "pipeline": stages}}

        pipeline: list[Doc] = [{"$match": {"_id": {"$in": tenants}}}, {"$set": {_COLLECTION: "tenants"}}]
        if tenants:
            pipeline += [
                part(collection, {"tenant": {"$in": tenants}})
                for collection in ("organisations", "guidance", "template_overrides")
            ]
        if contacts:
            pipeline.append(part("contacts", {"_id": {"$in": [scoped_id(*key) for key in contacts]}}))
        if needs:
            pipeline.append(part("needs", {"_id": {"$in": [scoped_id(*key) for key in needs]}}))
        if webhooks:
            pipeline.append(part("webhooks", {"_id": {"$in": webhooks}}))
        reads = BatchReads()
        async for document in await self.db.tenants.aggregate(pipeline):
            reads.add(document.pop(_COLLECTION), document)
        return reads

    async def present_references(self, references: list[Reference]) -> set[str]:
        """Which of these references (their keys) are in the read model now, in one round trip: a
        wait about to be recorded that is no longer needed (the event came while the message was
        being composed) is made due at once instead."""
        ids: dict[str, list[str]] = {}
        for reference in references:
            tenant, kind = reference.tenant, reference.kind
            ids.setdefault(kind, []).append(tenant if kind == TENANT_REFERENCE else scoped_id(tenant, reference.id))
        collections = {
            TENANT_REFERENCE: ("tenants", {}),
            CONTACT_REFERENCE: ("contacts", {}),
            ORGANISATION_REFERENCE: ("organisations", {}),
            NEED_REFERENCE: ("needs", {"description": {"$exists": True}}),  # the snapshot, not only staffing
        }
        pipeline: list[Doc] = [{"$match": {"_id": {"$in": ids.get(TENANT_REFERENCE, [])}}}]
        pipeline += [{"$project": {"_id": 1}}, {"$set": {_COLLECTION: TENANT_REFERENCE}}]
        for kind, (collection, extra) in collections.items():
            if kind != TENANT_REFERENCE and kind in ids:
                stages = [
                    {"$match": {"_id": {"$in": ids[kind]}, **extra}},
                    {"$project": {"_id": 1}},
                    {"$set": {_COLLECTION: kind}},
                ]
                pipeline.append({"$unionWith": {"coll": collection, "pipeline": stages}})
        present = set()
        async for document in await self.db.tenants.aggregate(pipeline):
            kind, scoped = document[_COLLECTION], document["_id"]
            tenant, _, reference_id = scoped.partition(":")
            present.add(reference_key(tenant, kind, "" if kind == TENANT_REFERENCE else reference_id))
        return present

    async def deliveries_of(
        self, tenant: str, limit: int, *, status: str | None = None, kind: str | None = None, channel: str | None = None
    ) -> list[Doc]:
        query: Doc = {"tenant": tenant}
        for field, value in (("status", status), ("kind", kind), ("channel", channel)):
            if value:
                query[field] = value
        found = self.db.deliveries.find(query, {"payload": 0}).sort("created_at", DESCENDING).limit(limit)
        return await found.to_list()

    # --- in-app inbox ----------------------------------------------------------------------

    async def add_message(self, document: Mapping[str, Any], session: AsyncClientSession) -> None:
        await self.db.messages.insert_one(dict(document), session=session)

    async def add_messages(self, documents: list[Doc], session: AsyncClientSession) -> None:
        await self.db.messages.insert_many(documents, session=session)

    async def messages_of(self, tenant: str, volunteer_id: str, limit: int = 100) -> list[Doc]:
        found = self.db.messages.find({"tenant": tenant, "volunteer_id": volunteer_id})
        return await found.sort("created_at", DESCENDING).limit(limit).to_list()

    async def mark_read(
        self, tenant: str, volunteer_id: str, message_id: str, transaction: Transaction | None = None
    ) -> Doc | None:
        """Mark the volunteer's message read; in ``transaction`` (their route) with its audit entry."""
        update = {"$set": {"read_at": datetime.now(UTC)}}
        found: Doc | None = await self.db.messages.find_one_and_update(
            {"_id": message_id, "tenant": tenant, "volunteer_id": volunteer_id},
            update,
            return_document=ReturnDocument.AFTER,
            session=_session(transaction),
        )
        if found is not None and transaction is not None:
            fields = changed_fields(update)
            transaction.audit(tenant, Operation.UPDATE, MESSAGES, message_id, fields, subject_id=volunteer_id)
        return found

    # --- tenant settings -------------------------------------------------------------------

    async def template_overrides(self, tenant: str, kind: str) -> dict[tuple[str, str], TemplateSource]:
        found = await self.db.template_overrides.find({"tenant": tenant, "kind": kind}).to_list()
        return {
            (doc["kind"], doc["language"]): TemplateSource(doc["subject"], doc["text"], doc.get("html"))
            for doc in found
        }

    async def template_override(self, tenant: str, kind: str, language: str) -> Doc | None:
        return await self.db.template_overrides.find_one({"_id": f"{tenant}:{kind}:{language}"})

    async def save_template_override(
        self,
        tenant: str,
        kind: str,
        language: str,
        source: TemplateSource,
        transaction: Transaction | None = None,
    ) -> None:
        """Save the tenant's template; in ``transaction`` (the office's route) with its audit entry."""
        override_id = f"{tenant}:{kind}:{language}"
        document = {
            "tenant": tenant,
            "kind": kind,
            "language": language,
            "subject": source.subject,
            "text": source.text,
            "html": source.html,
            "updated_at": datetime.now(UTC),
        }
        await self.db.template_overrides.replace_one(
            {"_id": override_id}, document, upsert=True, session=_session(transaction)
        )
        if transaction is not None:
            transaction.audit(tenant, Operation.UPDATE, TEMPLATE_OVERRIDES, override_id, changed_fields(document))

    async def delete_template_override(
        self, tenant: str, kind: str, language: str, transaction: Transaction | None = None
    ) -> bool:
        override_id = f"{tenant}:{kind}:{language}"
        result = await self.db.template_overrides.delete_one({"_id": override_id}, session=_session(transaction))
        if result.deleted_count == 1 and transaction is not None:
            transaction.audit(tenant, Operation.DELETE, TEMPLATE_OVERRIDES, override_id, set())
        return result.deleted_count == 1

    async def guidance(self, tenant: str) -> dict[str, dict[str, str]]:
        found = await self.db.guidance.find({"tenant": tenant}).to_list()
        return {doc["language"]: doc["texts"] for doc in found}

    async def save_guidance(
        self, tenant: str, language: str, texts: Mapping[str, str], transaction: Transaction | None = None
    ) -> None:
        """Save the tenant's guidance texts; in ``transaction`` (the office's route) with its audit
        entry, which names the topics written."""
        guidance_id = f"{tenant}:{language}"
        await self.db.guidance.replace_one(
            {"_id": guidance_id},
            {"tenant": tenant, "language": language, "texts": dict(texts), "updated_at": datetime.now(UTC)},
            upsert=True,
            session=_session(transaction),
        )
        if transaction is not None:
            topics = {f"texts.{topic}" for topic in texts}
            transaction.audit(tenant, Operation.UPDATE, GUIDANCE, guidance_id, topics)

    async def webhooks(self, tenant: str, transaction: Transaction | None = None) -> list[Webhook]:
        """The tenant's webhooks, from the database (once per transaction): a handler queues the
        event's deliveries to them, and one added (here or on another replica) must not miss an event."""
        read: dict[str, list[Webhook]] = {}
        if transaction is not None:
            started, read = self._webhooks_read.get(transaction.session, (transaction.started, read))
            if started != transaction.started:
                read = {}
            self._webhooks_read[transaction.session] = (transaction.started, read)
        if tenant not in read:
            found = await self.db.webhooks.find({"tenant": tenant}, session=_session(transaction)).to_list()
            read[tenant] = [Webhook.from_document(document) for document in found]
        return list(read[tenant])

    async def webhook(self, tenant: str, webhook_id: str) -> Webhook | None:
        found = await self.db.webhooks.find_one({"_id": webhook_id, "tenant": tenant})
        return None if found is None else Webhook.from_document(found)

    async def add_webhook(
        self,
        tenant: str,
        url: str,
        secret: str,
        event_types: list[str],
        fields: frozenset[PartnerField] = frozenset(),
        transaction: Transaction | None = None,
    ) -> Webhook:
        """Register a webhook; in ``transaction`` (the office's route) with its audit entry, which
        names the opt-ins (``fields.volunteer_ids``: volunteer ids go to a third party)."""
        hook = Webhook(str(uuid.uuid4()), tenant, url, secret, tuple(event_types), datetime.now(UTC), fields)
        document = hook.to_document()
        await self.db.webhooks.insert_one(document, session=_session(transaction))
        if transaction is not None:
            written = changed_fields(document) | {f"fields.{name}" for name in sorted(fields)}
            transaction.audit(tenant, Operation.CREATE, WEBHOOKS, hook.id, written)
        return hook

    async def delete_webhook(self, tenant: str, webhook_id: str, transaction: Transaction | None = None) -> bool:
        result = await self.db.webhooks.delete_one({"_id": webhook_id, "tenant": tenant}, session=_session(transaction))
        if result.deleted_count == 1 and transaction is not None:
            transaction.audit(tenant, Operation.DELETE, WEBHOOKS, webhook_id, set())
        return result.deleted_count == 1

    # --- questions and answers: a volunteer's threads with the office -------------------------

    async def set_contact_person(
        self, tenant: str, volunteer_id: str, staff_id: str | None, version: int, transaction: Transaction
    ) -> bool:
        """The volunteer's named contact person at the office (a staff id; None: none any more), if
        this event is newer than the last one applied; never on an erased volunteer or a contact
        not read yet (the registration comes first on the volunteer's key)."""
        self._contact_written(tenant, volunteer_id, transaction)
        result = await self.db.contacts.update_one(
            {
                "_id": scoped_id(tenant, volunteer_id),
                "erased": {"$ne": True},
                "$or": [
                    {"contact_person_version": {"$exists": False}},
                    {"contact_person_version": {"$lt": version}},
                ],
            },
            {"$set": {"contact_person_id": staff_id, "contact_person_version": version}},
            session=transaction.session,
        )
        return result.modified_count == 1

    async def contact_people(self, tenant: str, volunteer_ids: list[str]) -> dict[str, str]:
        """The named contact person of each of these volunteers that has one (volunteer → staff id)."""
        found = await self.db.contacts.find(
            {"tenant": tenant, "volunteer_id": {"$in": volunteer_ids}, "contact_person_id": {"$ne": None}},
            {"volunteer_id": 1, "contact_person_id": 1},
        ).to_list()
        return {doc["volunteer_id"]: doc["contact_person_id"] for doc in found if doc.get("contact_person_id")}

    async def volunteers_of_contact_person(self, tenant: str, staff_id: str) -> list[str]:
        found = await self.db.contacts.find(
            {"tenant": tenant, "contact_person_id": staff_id}, {"volunteer_id": 1}
        ).to_list()
        return [doc["volunteer_id"] for doc in found]

    async def display_names(self, tenant: str, volunteer_ids: list[str]) -> dict[str, str]:
        """The names of these volunteers as they gave them (for the office's list of questions)."""
        found = await self.db.contacts.find(
            {"tenant": tenant, "volunteer_id": {"$in": volunteer_ids}, "erased": {"$ne": True}},
            {"volunteer_id": 1, "display_name": 1},
        ).to_list()
        return {doc["volunteer_id"]: doc["display_name"] for doc in found if doc.get("display_name")}

    async def has_proposal(self, tenant: str, volunteer_id: str, need_id: str, transaction: Transaction) -> bool:
        """Whether the need is one of the volunteer's: proposed to them or picked by them."""
        found = await self.db.proposals.find_one(
            {"tenant": tenant, "volunteer_id": volunteer_id, "need_id": need_id},
            {"_id": 1},
            session=transaction.session,
        )
        return found is not None

    async def open_thread(self, thread: Thread, transaction: Transaction) -> None:
        document = thread.to_document()
        await self.db.threads.insert_one(document, session=transaction.session)
        fields = changed_fields(document)
        transaction.audit(
            thread.tenant, Operation.CREATE, THREADS, thread.thread_id, fields, subject_id=thread.volunteer_id
        )

    async def thread(self, tenant: str, thread_id: str, transaction: Transaction | None = None) -> Thread | None:
        found = await self.db.threads.find_one(
            {"_id": scoped_id(tenant, thread_id), "tenant": tenant}, session=_session(transaction)
        )
        return None if found is None else Thread.from_document(found)

    async def add_thread_message(
        self, tenant: str, thread_id: str, message: ThreadMessage, state: ThreadState, transaction: Transaction
    ) -> Thread | None:
        """Append a message (one atomic update: two posts at once both stay) and set the state;
        audited (who wrote in which thread, never the text)."""
        update = {
            "$push": {"messages": message.to_document()},
            "$set": {
                "state": state.value,
                "last_activity_at": message.created_at,
                "last_from": message.author.value,
            },
        }
        found = await self.db.threads.find_one_and_update(
            {"_id": scoped_id(tenant, thread_id), "tenant": tenant},
            update,
            return_document=ReturnDocument.AFTER,
            session=transaction.session,
        )
        if found is None:
            return None
        changed = Thread.from_document(found)
        fields = changed_fields(update)
        transaction.audit(tenant, Operation.UPDATE, THREADS, thread_id, fields, subject_id=changed.volunteer_id)
        return changed

    async def set_thread_state(
        self, tenant: str, thread_id: str, state: ThreadState, transaction: Transaction
    ) -> Thread | None:
        update = {"$set": {"state": state.value}}
        found = await self.db.threads.find_one_and_update(
            {"_id": scoped_id(tenant, thread_id), "tenant": tenant},
            update,
            return_document=ReturnDocument.AFTER,
            session=transaction.session,
        )
        if found is None:
            return None
        changed = Thread.from_document(found)
        fields = changed_fields(update)
        transaction.audit(tenant, Operation.UPDATE, THREADS, thread_id, fields, subject_id=changed.volunteer_id)
        return changed

    async def held_about_volunteer(self, tenant: str, volunteer_id: str) -> HeldAboutVolunteer:
        """Every document of the tenant that is about the volunteer (the subject-access export)."""
        mine = {"tenant": tenant, "volunteer_id": volunteer_id}
        contact = await self.db.contacts.find_one({"_id": scoped_id(tenant, volunteer_id)})
        engagements = await self.db.proposals.find(mine).sort("_id", ASCENDING).to_list()
        addressed = naming_volunteer(tenant, volunteer_id, [doc["proposal_id"] for doc in engagements])
        return HeldAboutVolunteer(
            contact=[contact] if contact is not None else [],
            engagements=engagements,
            messages=await self.db.messages.find(mine).sort("created_at", ASCENDING).to_list(),
            threads=await self.db.threads.find(mine).sort("last_activity_at", ASCENDING).to_list(),
            post_counts=await self.db.post_counts.find({"tenant": tenant, "author_id": volunteer_id}).to_list(),
            deliveries=await self.db.deliveries.find(addressed).sort("created_at", ASCENDING).to_list(),
            digest_items=await self.db.digest_items.find(addressed).sort("created_at", ASCENDING).to_list(),
            audit=await entries_about_person(self.db, tenant, volunteer_id),
        )

    async def threads_of_volunteer(self, tenant: str, volunteer_id: str, limit: int = 200) -> list[Thread]:
        """A volunteer's threads, the latest activity first."""
        found = self.db.threads.find({"tenant": tenant, "volunteer_id": volunteer_id})
        return [
            Thread.from_document(doc) for doc in await found.sort("last_activity_at", DESCENDING).limit(limit).to_list()
        ]

    async def threads(
        self,
        tenant: str,
        *,
        states: list[ThreadState],
        volunteer_ids: list[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Thread], int]:
        """The tenant's threads in these states (of these volunteers only, if given), the latest
        activity first, one page of them and how many there are in all."""
        query: Doc = {"tenant": tenant, "state": {"$in": [state.value for state in states]}}
        if volunteer_ids is not None:
            query["volunteer_id"] = {"$in": volunteer_ids}
        total = await self.db.threads.count_documents(query)
        cursor = self.db.threads.find(query).sort([("last_activity_at", DESCENDING), ("_id", ASCENDING)])
        found = await cursor.skip(offset).limit(limit).to_list()
        return [Thread.from_document(doc) for doc in found], total

    async def count_post(self, tenant: str, author_id: str, now: datetime, window: timedelta) -> int:
        """Count a post of this person in the current window; how many they made in it so far."""
        start = datetime.fromtimestamp(now.timestamp() // window.total_seconds() * window.total_seconds(), UTC)
        found = await self.db.post_counts.find_one_and_update(
            {"_id": scoped_id(tenant, f"{author_id}:{start.isoformat()}")},
            {
                "$inc": {"count": 1},
                "$setOnInsert": {"tenant": tenant, "author_id": author_id, "expires_at": start + 2 * window},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(found["count"]) if found else 1
