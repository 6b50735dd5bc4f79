"""The read model as typed records: what notifications knows of tenants, organisations,
volunteers' contacts, needs, proposals and partners' webhooks.

A record is one stored document, converted at the store boundary (``from_document`` and
``to_document``). The documents keep the field names and values they always had: enums are stored
as their values, lists as lists, and a part that an event has not brought yet stays out of the
document rather than being stored as null (tests/unit/notifications/test_records.py round-trips
each shape the service writes). Records are built from the contract events (``from_event``) and
hold the contracts' enums and value types, not bare strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import TypeAdapter

from lotse_contracts import Envelope, TenantOnboarded
from lotse_contracts.events.needs import CancellationReason, NeedCategory, NeedDetails
from lotse_contracts.events.organisations import OrganisationKind, OrganisationState
from lotse_contracts.events.values import CertificateKind, Channel, OptionalMessageKind, QuietHours, Schedule
from lotse_contracts.events.volunteers import VolunteerContact
from lotse_notifications.partner_events import PartnerField

Doc = dict[str, Any]
OrganisationEvent = TypeVar("OrganisationEvent", bound=OrganisationState)

_SCHEDULE: TypeAdapter[Schedule] = TypeAdapter(Schedule)


def scoped_id(tenant: str, key: str) -> str:
    """The ``_id`` of a document of one tenant (slugs hold no colon, so ids cannot collide)."""
    return f"{tenant}:{key}"


class NeedStatus(StrEnum):
    """Where a need stands, as far as messages and the digest are concerned."""

    OPEN = "open"
    STAFFED = "staffed"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class ProposalStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    STEPPED_BACK = "stepped_back"


# Volunteers with a proposal in these states hear of the need's cancellation.
ENGAGED: tuple[ProposalStatus, ...] = (ProposalStatus.OPEN, ProposalStatus.ACCEPTED)


@dataclass(frozen=True)
class TenantFacts:
    """A municipality as its TenantOnboarded event describes it (``tenants``, keyed by slug)."""

    tenant: str
    version: int
    name: str
    municipality_key: str
    default_language: str
    supported_languages: tuple[str, ...]
    timezone: str
    coordination_email: str
    extra_skills: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: Envelope[TenantOnboarded]) -> TenantFacts:
        data = event.data
        return cls(
            tenant=event.tenant,
            version=event.version,
            name=data.name,
            municipality_key=data.municipality_key,
            default_language=data.default_language,
            supported_languages=tuple(data.supported_languages),
            timezone=data.timezone,
            coordination_email=data.coordination_email,
            extra_skills=tuple(data.extra_skills),
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TenantFacts:
        return cls(
            tenant=document["tenant"],
            version=document["version"],
            name=document["name"],
            municipality_key=document["municipality_key"],
            default_language=document["default_language"],
            supported_languages=tuple(document["supported_languages"]),
            timezone=document["timezone"],
            coordination_email=document["coordination_email"],
            extra_skills=tuple(document.get("extra_skills", ())),
        )

    def to_document(self) -> Doc:
        return {
            "_id": self.tenant,
            "tenant": self.tenant,
            "version": self.version,
            "name": self.name,
            "municipality_key": self.municipality_key,
            "default_language": self.default_language,
            "supported_languages": list(self.supported_languages),
            "timezone": self.timezone,
            "extra_skills": list(self.extra_skills),
            "coordination_email": self.coordination_email,
        }


@dataclass(frozen=True)
class Organisation:
    """An organisation of a tenant, with its functional mailbox (``organisations``)."""

    tenant: str
    organisation_id: str
    version: int
    name: str
    kind: OrganisationKind
    contact_email: str
    districts: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: Envelope[OrganisationEvent]) -> Organisation:
        data = event.data
        return cls(
            tenant=event.tenant,
            organisation_id=str(data.organisation_id),
            version=event.version,
            name=data.name,
            kind=data.kind,
            contact_email=data.contact_email,
            districts=tuple(data.districts),
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Organisation:
        return cls(
            tenant=document["tenant"],
            organisation_id=document["organisation_id"],
            version=document["version"],
            name=document["name"],
            kind=OrganisationKind(document["kind"]),
            contact_email=document["contact_email"],
            districts=tuple(document.get("districts", ())),
        )

    def to_document(self) -> Doc:
        return {
            "_id": scoped_id(self.tenant, self.organisation_id),
            "tenant": self.tenant,
            "version": self.version,
            "organisation_id": self.organisation_id,
            "name": self.name,
            "kind": self.kind.value,
            "contact_email": self.contact_email,
            "districts": list(self.districts),
        }


@dataclass(frozen=True)
class ContactDetails:
    """How to reach a volunteer, as their registration and each profile update carry it."""

    display_name: str
    email: str
    phone: str | None
    preferred_language: str
    channels: tuple[Channel, ...]
    quiet_hours: QuietHours | None = None
    opted_out_of: tuple[OptionalMessageKind, ...] = ()

    @classmethod
    def from_contract(cls, contact: VolunteerContact) -> ContactDetails:
        return cls(
            display_name=contact.display_name,
            email=contact.email,
            phone=contact.phone,
            preferred_language=contact.preferred_language,
            channels=tuple(contact.channels),
            quiet_hours=contact.quiet_hours,
            opted_out_of=tuple(contact.opted_out_of),
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ContactDetails:
        quiet = document.get("quiet_hours")
        return cls(
            display_name=document["display_name"],
            email=document["email"],
            phone=document.get("phone"),
            preferred_language=document["preferred_language"],
            channels=tuple(Channel(channel) for channel in document["channels"]),
            quiet_hours=QuietHours.model_validate(quiet) if quiet else None,
            opted_out_of=tuple(OptionalMessageKind(kind) for kind in document.get("opted_out_of", ())),
        )

    def to_document(self) -> Doc:
        """The contact's fields of its document (stored flat, beside the contact's other fields)."""
        return {
            "display_name": self.display_name,
            "email": self.email,
            "phone": self.phone,
            "preferred_language": self.preferred_language,
            "channels": [channel.value for channel in self.channels],
            "quiet_hours": self.quiet_hours.model_dump(mode="json") if self.quiet_hours else None,
            "opted_out_of": [kind.value for kind in self.opted_out_of],
        }


@dataclass(frozen=True)
class Contact:
    """A volunteer's contact (``contacts``, the only place with volunteers' addresses).

    ``details`` is None once the volunteer is erased: the tombstone keeps no contact data, only
    the version, so that an older registration replayed later is not applied again.
    ``contact_consent``, ``share_consent`` (consent to pass the contact data on to the
    organisations whose needs the volunteer takes on) and ``organisation_id`` come with the
    registration; they stay None (and out of the document) while only a profile update has been
    read. ``failed_channels`` are chosen channels that failed for good (a refused address, SMS
    without a gateway or phone); ``unreachable_reported`` says the office was told that none of
    the chosen channels works (once, until one works again).
    """

    tenant: str
    volunteer_id: str
    version: int
    details: ContactDetails | None
    active: bool = True
    contact_consent: bool | None = None
    organisation_id: str | None = None
    share_consent: bool | None = None
    failed_channels: tuple[Channel, ...] = ()
    unreachable_reported: bool = False

    @property
    def erased(self) -> bool:
        return self.details is None

    @classmethod
    def tombstone(cls, tenant: str, volunteer_id: str, version: int) -> Contact:
        return cls(tenant=tenant, volunteer_id=volunteer_id, version=version, details=None)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Contact:
        tenant, volunteer_id, version = document["tenant"], document["volunteer_id"], document["version"]
        if document.get("erased"):
            return cls.tombstone(tenant, volunteer_id, version)
        return cls(
            tenant=tenant,
            volunteer_id=volunteer_id,
            version=version,
            details=ContactDetails.from_document(document),
            active=document.get("active", True),
            contact_consent=document.get("contact_consent"),
            organisation_id=document.get("organisation_id"),
            share_consent=document.get("share_consent"),
            failed_channels=tuple(Channel(channel) for channel in document.get("failed_channels", ())),
            unreachable_reported=document.get("unreachable_reported", False),
        )

    def to_document(self) -> Doc:
        head = {"_id": scoped_id(self.tenant, self.volunteer_id), "tenant": self.tenant}
        if self.details is None:
            return head | {"volunteer_id": self.volunteer_id, "erased": True, "version": self.version}
        document = head | {"version": self.version, "volunteer_id": self.volunteer_id}
        document |= self.details.to_document() | {"active": self.active}
        if self.contact_consent is not None:
            document |= {"contact_consent": self.contact_consent, "organisation_id": self.organisation_id}
        if self.share_consent is not None:
            document["share_consent"] = self.share_consent
        if self.failed_channels:
            document["failed_channels"] = [channel.value for channel in self.failed_channels]
        if self.unreachable_reported:
            document["unreachable_reported"] = True
        return document


@dataclass(frozen=True)
class NeedSnapshot:
    """The parts of a need a message talks about (no household reference). Its document is also
    the ``need`` of a delivery's payload, as the templates read it."""

    organisation_id: str
    category: NeedCategory
    description: str
    district: str | None
    schedule: Schedule
    volunteers_needed: int
    certificate_required: CertificateKind | None = None

    @classmethod
    def from_event(cls, data: NeedDetails) -> NeedSnapshot:
        return cls(
            organisation_id=str(data.organisation_id),
            category=data.category,
            description=data.description,
            district=data.place.district,
            schedule=data.schedule,
            volunteers_needed=data.volunteers_needed,
            certificate_required=data.certificate_required,
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> NeedSnapshot:
        certificate = document.get("certificate_required")
        return cls(
            organisation_id=document["organisation_id"],
            category=NeedCategory(document["category"]),
            description=document["description"],
            district=document.get("district"),
            schedule=_SCHEDULE.validate_python(document["schedule"]),
            volunteers_needed=document["volunteers_needed"],
            certificate_required=CertificateKind(certificate) if certificate else None,
        )

    def to_document(self) -> Doc:
        return {
            "organisation_id": self.organisation_id,
            "category": self.category.value,
            "description": self.description,
            "district": self.district,
            "schedule": self.schedule.model_dump(mode="json"),
            "volunteers_needed": self.volunteers_needed,
            "certificate_required": self.certificate_required.value if self.certificate_required else None,
        }


@dataclass(frozen=True)
class Need:
    """A need as notifications knows it (``needs``): the registry's snapshot and status, and how
    far matching's staffing events got. Either may come first (they travel on other topics), so
    every part but the id may still be missing: ``version`` is the registry's event version
    (None while only staffing events were read), ``staffing_version`` matching's."""

    tenant: str
    need_id: str
    version: int | None = None
    snapshot: NeedSnapshot | None = None
    status: NeedStatus | None = None
    unstaffed: bool | None = None
    cancellation_reason: CancellationReason | None = None
    staffing_version: int | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Need:
        status, reason = document.get("status"), document.get("cancellation_reason")
        return cls(
            tenant=document["tenant"],
            need_id=document["need_id"],
            version=document.get("version"),
            snapshot=NeedSnapshot.from_document(document) if "description" in document else None,
            status=NeedStatus(status) if status else None,
            unstaffed=document.get("unstaffed"),
            cancellation_reason=CancellationReason(reason) if reason else None,
            staffing_version=document.get("staffing_version"),
        )

    def to_document(self) -> Doc:
        document: Doc = {"_id": scoped_id(self.tenant, self.need_id), "tenant": self.tenant, "need_id": self.need_id}
        optional = {
            "version": self.version,
            "status": self.status.value if self.status else None,
            "unstaffed": self.unstaffed,
            "cancellation_reason": self.cancellation_reason.value if self.cancellation_reason else None,
            "staffing_version": self.staffing_version,
        }
        document |= {key: value for key, value in optional.items() if value is not None}
        if self.snapshot is not None:
            document |= self.snapshot.to_document()
        return document


@dataclass(frozen=True)
class Proposal:
    """A volunteer's proposal for a need (``proposals``). One that matching proposed carries its
    expiry and the payload of its message (for the reminder); a need the volunteer picked
    themselves has neither.

    An accepted one is an engagement, with its schedule once the need is known: ``starts_at``
    (the first occurrence still to come when it was planned) and ``ends_at`` (the end of the
    last one; None for a weekly need without an end). ``start_reminder_due`` and ``thanks_due``
    say that the reminder before it and the thank-you after it are still to be planned."""

    tenant: str
    proposal_id: str
    need_id: str
    volunteer_id: str
    status: ProposalStatus
    expires_at: datetime | None = None
    reminded: bool | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    start_reminder_due: bool | None = None
    thanks_due: bool | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Proposal:
        return cls(
            tenant=document["tenant"],
            proposal_id=document["proposal_id"],
            need_id=document["need_id"],
            volunteer_id=document["volunteer_id"],
            status=ProposalStatus(document["status"]),
            expires_at=document.get("expires_at"),
            reminded=document.get("reminded"),
            correlation_id=document.get("correlation_id"),
            payload=document.get("payload"),
            starts_at=document.get("starts_at"),
            ends_at=document.get("ends_at"),
            start_reminder_due=document.get("start_reminder_due"),
            thanks_due=document.get("thanks_due"),
        )

    def to_document(self) -> Doc:
        document: Doc = {
            "_id": scoped_id(self.tenant, self.proposal_id),
            "tenant": self.tenant,
            "proposal_id": self.proposal_id,
            "need_id": self.need_id,
            "volunteer_id": self.volunteer_id,
            "status": self.status.value,
        }
        optional = {
            "expires_at": self.expires_at,
            "reminded": self.reminded,
            "correlation_id": self.correlation_id,
            "payload": self.payload,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "start_reminder_due": self.start_reminder_due,
            "thanks_due": self.thanks_due,
        }
        return document | {key: value for key, value in optional.items() if value is not None}


class NeedOpening(StrEnum):
    """What applying ``need.opened`` found: a version older than the one stored (nothing changed),
    or the need saved, before any of matching's staffing events or after some (which may have
    accepted proposals waiting for the need's schedule)."""

    STALE = "stale"
    FIRST = "first"
    AFTER_STAFFING = "after_staffing"


@dataclass(frozen=True)
class NewDelivery:
    """A delivery an event asks for, before it is queued: pending, or with ``skip_reason``
    recorded as skipped. Its key (``domain.delivery_key``) makes a replayed event queue nothing."""

    tenant: str
    trigger_event_id: str
    correlation_id: str
    kind: str
    recipient_kind: str
    recipient_id: str
    channel: Channel
    language: str
    payload: Mapping[str, Any]
    skip_reason: str | None = None
    skip_detail: str = ""


@dataclass(frozen=True)
class Webhook:
    """A partner system's endpoint for need and matching events (``webhooks``)."""

    id: str
    tenant: str
    url: str
    secret: str
    event_types: tuple[str, ...]
    created_at: datetime
    # What the partner's contract needs beyond the default projection (``partner_events``).
    fields: frozenset[PartnerField] = frozenset()

    def forwards(self, event_type: str) -> bool:
        """No event types named means all of them."""
        return not self.event_types or event_type in self.event_types

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Webhook:
        return cls(
            id=document["_id"],
            tenant=document["tenant"],
            url=document["url"],
            secret=document["secret"],
            event_types=tuple(document["event_types"]),
            created_at=document["created_at"],
            fields=frozenset(PartnerField(name) for name in document.get("fields", ())),
        )

    def to_document(self) -> Doc:
        return {
            "_id": self.id,
            "tenant": self.tenant,
            "url": self.url,
            "secret": self.secret,
            "event_types": list(self.event_types),
            "created_at": self.created_at,
            "fields": sorted(self.fields),
        }


class OfficeMail(StrEnum):
    """How the coordination office or an organisation hears of staffing: a mail per event, or
    one daily digest of what happened."""

    EACH_EVENT = "each_event"
    DAILY_DIGEST = "daily_digest"


@dataclass(frozen=True)
class MailPreference:
    """The choice of the office (``recipient_kind`` tenant, id the slug) or of an organisation
    (``mail_preferences``); ``digest_time`` is the local time of the daily digest."""

    tenant: str
    recipient_kind: str
    recipient_id: str
    delivery: OfficeMail
    digest_time: time
    updated_at: datetime

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> MailPreference:
        return cls(
            tenant=document["tenant"],
            recipient_kind=document["recipient_kind"],
            recipient_id=document["recipient_id"],
            delivery=OfficeMail(document["delivery"]),
            digest_time=time.fromisoformat(document["digest_time"]),
            updated_at=document["updated_at"],
        )

    def to_document(self) -> Doc:
        return {
            "_id": scoped_id(self.tenant, f"{self.recipient_kind}:{self.recipient_id}"),
            "tenant": self.tenant,
            "recipient_kind": self.recipient_kind,
            "recipient_id": self.recipient_id,
            "delivery": self.delivery.value,
            "digest_time": self.digest_time.isoformat(timespec="minutes"),
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class DigestItem:
    """One staffing event kept for a recipient's daily digest instead of a mail (``digest_items``):
    ``kind`` is the message it replaces (or ``proposal_declined``), ``payload`` what that message
    would have said (ids, no contact data). ``digest`` names the digest that took it, None while
    it waits."""

    tenant: str
    recipient_kind: str
    recipient_id: str
    kind: str
    trigger_event_id: str
    payload: dict[str, Any]
    created_at: datetime
    digest: str | None = None

    @property
    def key(self) -> str:
        return f"{self.trigger_event_id}:{self.recipient_kind}:{self.recipient_id}"

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> DigestItem:
        return cls(
            tenant=document["tenant"],
            recipient_kind=document["recipient_kind"],
            recipient_id=document["recipient_id"],
            kind=document["kind"],
            trigger_event_id=document["trigger_event_id"],
            payload=document["payload"],
            created_at=document["created_at"],
            digest=document.get("digest"),
        )

    def to_document(self) -> Doc:
        return {
            "_id": self.key,
            "tenant": self.tenant,
            "recipient_kind": self.recipient_kind,
            "recipient_id": self.recipient_id,
            "kind": self.kind,
            "trigger_event_id": self.trigger_event_id,
            "payload": self.payload,
            "created_at": self.created_at,
            "digest": self.digest,
        }


class ThreadState(StrEnum):
    """Where a volunteer's question stands: waiting for the office (``open``), answered by it and
    waiting for the volunteer, if at all (``answered``), or done (``closed``, by the office)."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class Author(StrEnum):
    """Who wrote a message of a thread: the volunteer or someone of the coordination office."""

    VOLUNTEER = "volunteer"
    OFFICE = "office"


@dataclass(frozen=True)
class ThreadMessage:
    """One message of a thread: plain text as typed (pages and mails escape it). ``author_id`` is
    the volunteer's id or the office staff member's (their token's subject as a UUID)."""

    message_id: str
    author: Author
    author_id: str
    text: str
    created_at: datetime

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ThreadMessage:
        return cls(
            message_id=document["message_id"],
            author=Author(document["author"]),
            author_id=document["author_id"],
            text=document["text"],
            created_at=document["created_at"],
        )

    def to_document(self) -> Doc:
        return {
            "message_id": self.message_id,
            "author": self.author.value,
            "author_id": self.author_id,
            "text": self.text,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Thread:
    """A volunteer's question to the coordination office and the answers (``threads``): the
    volunteer's personal data, exported with it and deleted on erasure. ``about_need_id`` is one
    of the volunteer's needs (proposed or engaged) the question is about, if they named one."""

    tenant: str
    thread_id: str
    volunteer_id: str
    subject: str
    state: ThreadState
    created_at: datetime
    last_activity_at: datetime
    last_from: Author
    messages: tuple[ThreadMessage, ...]
    about_need_id: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Thread:
        return cls(
            tenant=document["tenant"],
            thread_id=document["thread_id"],
            volunteer_id=document["volunteer_id"],
            subject=document["subject"],
            state=ThreadState(document["state"]),
            created_at=document["created_at"],
            last_activity_at=document["last_activity_at"],
            last_from=Author(document["last_from"]),
            messages=tuple(ThreadMessage.from_document(message) for message in document["messages"]),
            about_need_id=document.get("about_need_id"),
        )

    def to_document(self) -> Doc:
        document: Doc = {
            "_id": scoped_id(self.tenant, self.thread_id),
            "tenant": self.tenant,
            "thread_id": self.thread_id,
            "volunteer_id": self.volunteer_id,
            "subject": self.subject,
            "state": self.state.value,
            "created_at": self.created_at,
            "last_activity_at": self.last_activity_at,
            "last_from": self.last_from.value,
            "messages": [message.to_document() for message in self.messages],
        }
        if self.about_need_id is not None:
            document["about_need_id"] = self.about_need_id
        return document
