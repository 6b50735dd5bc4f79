"""Persistence of the matching service; every query is scoped by tenant here, not by callers.

Collections of the `matching` database: `tenants`, `organisations`, `volunteers` (read model,
no contact data), `needs` (read model plus the staffing state), `proposals`, `calendar_feeds`
(one per volunteer at most: the digest of the feed's secret, never the secret),
`office_requests` (the office's actions done under an Idempotency-Key, for a day), `hours` (the
hours volunteers logged and who confirmed or rejected them), and the runtime's `inbox` and `outbox`.

Needs and proposals cross this boundary as typed records (`NeedRecord` with its `Staffing`,
`Proposal`): `from_document` and `to_document` map them onto the stored documents, whose shape
(field names, values, order) is what earlier versions wrote, so existing data reads and writes
unchanged. Tenants, organisations and volunteers stay documents: they are the registry's event
data, turned into domain objects by `profiles`. `MatchingStore`, `Transaction` and `Transactions`
are what the use cases need of the database, so that they can run against fakes as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, MatchReason
from lotse_contracts.events.matching import AnswerChannel, UnstaffedReason, WithdrawReason
from lotse_contracts.events.partner import DeclineReason
from lotse_runtime.audit import Operation, ensure_audit_indexes, entries_about_person
from lotse_runtime.inbox import ensure_inbox_index
from lotse_runtime.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes
from lotse_runtime.sealed import destroy_person_key

Document = dict[str, Any]
Session = AsyncClientSession | None
T = TypeVar("T")


class NeedStatus(StrEnum):
    """A need as the registry reports it (``needs.status``)."""

    OPEN = "open"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class StaffingState(StrEnum):
    """Matching's own state of a need's staffing (``needs.staffing.state``)."""

    OPEN = "open"
    STAFFED = "staffed"
    UNSTAFFED = "unstaffed"
    CLOSED = "closed"


class ProposalStatus(StrEnum):
    """Where a proposal (or a volunteer's pick) stands (``proposals.status``)."""

    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    STEPPED_BACK = "stepped_back"


class ProposalKind(StrEnum):
    """Matching asked the volunteer, or the volunteer took the need themselves (``proposals.kind``)."""

    PROPOSAL = "proposal"
    PICK = "pick"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who of the coordination office (or of an initiative) did something by hand: the token's
    subject and the role they acted in (``coordinator`` or ``initiative-admin``)."""

    subject: str
    role: str

    @classmethod
    def from_document(cls, document: Document | None) -> Actor | None:
        return None if document is None else cls(subject=document["subject"], role=document["role"])

    def to_document(self) -> Document:
        return {"subject": self.subject, "role": self.role}


def _known_fields(document: Document, fields: frozenset[str], what: str) -> None:
    # A field this version does not know would be lost on the next write: refuse rather than drop it.
    unknown = set(document) - fields
    if unknown:
        raise ValueError(f"{what} {document.get('_id')!r} has fields this version does not know: {sorted(unknown)}")


@dataclass(slots=True)
class Staffing:
    """Matching's staffing of one need (``needs.staffing``); changed in place by the one
    `NeedWork` that holds it in a transaction, its version raised with every event."""

    version: int
    state: StaffingState
    committed: list[str]  # volunteer ids, in the order they committed
    opened_at: datetime
    escalate_at: datetime
    escalate_reason: UnstaffedReason
    escalated: bool
    # A proposal round started by hand: who was asked before it may be asked again (written once set).
    round_started_at: datetime | None = None
    round_started_by: Actor | None = None
    # When the registry closed or cancelled the need (written once set; needs closed before this
    # field existed have none): volunteers log hours up to that day.
    closed_at: datetime | None = None

    FIELDS = frozenset(
        {
            "version",
            "state",
            "committed",
            "opened_at",
            "escalate_at",
            "escalate_reason",
            "escalated",
            "round_started_at",
            "round_started_by",
            "closed_at",
        }
    )

    @classmethod
    def from_document(cls, document: Document) -> Staffing:
        _known_fields(document, cls.FIELDS, "staffing of need")
        return cls(
            version=document["version"],
            state=StaffingState(document["state"]),
            committed=list(document["committed"]),
            opened_at=document["opened_at"],
            escalate_at=document["escalate_at"],
            escalate_reason=UnstaffedReason(document["escalate_reason"]),
            escalated=document["escalated"],
            round_started_at=document.get("round_started_at"),
            round_started_by=Actor.from_document(document.get("round_started_by")),
            closed_at=document.get("closed_at"),
        )

    def to_document(self) -> Document:
        document: Document = {
            "version": self.version,
            "state": self.state.value,
            "committed": list(self.committed),
            "opened_at": self.opened_at,
            "escalate_at": self.escalate_at,
            "escalate_reason": self.escalate_reason.value,
            "escalated": self.escalated,
        }
        if self.round_started_at is not None:
            document["round_started_at"] = self.round_started_at
        if self.round_started_by is not None:
            document["round_started_by"] = self.round_started_by.to_document()
        if self.closed_at is not None:
            document["closed_at"] = self.closed_at
        return document


@dataclass(slots=True)
class NeedRecord:
    """A need of the read model (``needs``): the registry's details and version, and matching's staffing."""

    tenant: str
    need_id: str
    version: int  # the registry's version of the need
    status: NeedStatus
    details: Document  # the registry's `NeedDetails`, as JSON; `profiles` reads it into a `Need`
    staffing: Staffing
    # When the retention job anonymised the need and its proposals (``retention``), if it did.
    anonymised_at: datetime | None = None

    FIELDS = frozenset({"_id", "tenant", "need_id", "version", "status", "details", "staffing", "anonymised_at"})

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.need_id}"

    @property
    def volunteers_needed(self) -> int:
        return int(self.details["volunteers_needed"])

    @property
    def organisation_id(self) -> str:
        organisation_id: str = self.details["organisation_id"]
        return organisation_id

    @property
    def is_open(self) -> bool:
        """Still looking for volunteers: open at the registry and not staffed yet."""
        return self.status is NeedStatus.OPEN and self.staffing.state is not StaffingState.STAFFED

    @classmethod
    def from_document(cls, document: Document) -> NeedRecord:
        _known_fields(document, cls.FIELDS, "need")
        return cls(
            tenant=document["tenant"],
            need_id=document["need_id"],
            version=document["version"],
            status=NeedStatus(document["status"]),
            details=document["details"],
            staffing=Staffing.from_document(document["staffing"]),
            anonymised_at=document.get("anonymised_at"),
        )

    def to_document(self) -> Document:
        document: Document = {
            "_id": self.key,
            "tenant": self.tenant,
            "need_id": self.need_id,
            "version": self.version,
            "status": self.status.value,
            "details": self.details,
            "staffing": self.staffing.to_document(),
        }
        if self.anonymised_at is not None:
            document["anonymised_at"] = self.anonymised_at
        return document


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal of a volunteer for a need, or a volunteer's pick of one (``proposals``);
    replaced whole (`dataclasses.replace`) when its status changes.

    Picks have no score or distance (their documents lack the fields until an erasure sets
    them); `event_id`, `withdraw_reason`, `decline_reason`, the office's `proposed_by`,
    `recorded_by` and `released_by`, and `erased` are written only once they have a value."""

    id: str
    tenant: str
    need_id: str
    volunteer_id: str
    kind: ProposalKind
    status: ProposalStatus
    reasons: tuple[MatchReason, ...]
    proposed_at: datetime
    expires_at: datetime | None  # None for a pick
    answered_at: datetime | None
    answered_via: AnswerChannel | None
    score: float | None = None
    distance_km: float | None = None
    event_id: str | None = None  # of its MatchProposed in the outbox, deleted with the volunteer's data
    withdraw_reason: WithdrawReason | None = None
    erased: bool = False
    decline_reason: DeclineReason | None = None
    proposed_by: Actor | None = None  # the office chose this volunteer (else matching's ranking did)
    recorded_by: Actor | None = None  # the office recorded the answer given by phone or in person
    released_by: Actor | None = None  # the office released the volunteer from the need

    FIELDS = frozenset(
        {
            "_id",
            "tenant",
            "need_id",
            "volunteer_id",
            "kind",
            "status",
            "score",
            "reasons",
            "distance_km",
            "proposed_at",
            "expires_at",
            "answered_at",
            "answered_via",
            "event_id",
            "withdraw_reason",
            "erased",
            "decline_reason",
            "proposed_by",
            "recorded_by",
            "released_by",
        }
    )

    @classmethod
    def from_document(cls, document: Document) -> Proposal:
        _known_fields(document, cls.FIELDS, "proposal")
        via, withdrawn, declined = (
            document["answered_via"],
            document.get("withdraw_reason"),
            document.get("decline_reason"),
        )
        return cls(
            id=document["_id"],
            tenant=document["tenant"],
            need_id=document["need_id"],
            volunteer_id=document["volunteer_id"],
            kind=ProposalKind(document["kind"]),
            status=ProposalStatus(document["status"]),
            reasons=tuple(MatchReason.model_validate(reason) for reason in document["reasons"]),
            proposed_at=document["proposed_at"],
            expires_at=document["expires_at"],
            answered_at=document["answered_at"],
            answered_via=AnswerChannel(via) if via is not None else None,
            score=document.get("score"),
            distance_km=document.get("distance_km"),
            event_id=document.get("event_id"),
            withdraw_reason=WithdrawReason(withdrawn) if withdrawn is not None else None,
            erased=document.get("erased", False),
            decline_reason=DeclineReason(declined) if declined is not None else None,
            proposed_by=Actor.from_document(document.get("proposed_by")),
            recorded_by=Actor.from_document(document.get("recorded_by")),
            released_by=Actor.from_document(document.get("released_by")),
        )

    def to_document(self) -> Document:
        document: Document = {
            "_id": self.id,
            "tenant": self.tenant,
            "need_id": self.need_id,
            "volunteer_id": self.volunteer_id,
            "kind": self.kind.value,
            "status": self.status.value,
        }
        has_fit = self.kind is ProposalKind.PROPOSAL or self.erased
        if has_fit:
            document["score"] = self.score
        document["reasons"] = [reason.model_dump(mode="json") for reason in self.reasons]
        if has_fit:
            document["distance_km"] = self.distance_km
        document.update(
            proposed_at=self.proposed_at,
            expires_at=self.expires_at,
            answered_at=self.answered_at,
            answered_via=self.answered_via.value if self.answered_via is not None else None,
        )
        if self.event_id is not None:
            document["event_id"] = self.event_id
        if self.withdraw_reason is not None:
            document["withdraw_reason"] = self.withdraw_reason.value
        if self.erased:
            document["erased"] = True
        if self.decline_reason is not None:
            document["decline_reason"] = self.decline_reason.value
        for name, actor in (
            ("proposed_by", self.proposed_by),
            ("recorded_by", self.recorded_by),
            ("released_by", self.released_by),
        ):
            if actor is not None:
                document[name] = actor.to_document()
        return document


@dataclass(frozen=True, slots=True)
class EngagementRecord:
    """A volunteer's current engagement: their accepted proposal or pick, and the need, which is
    still open at the registry and not closed by matching."""

    proposal: Proposal
    need: NeedRecord

    @property
    def committed_at(self) -> datetime:
        return self.proposal.answered_at or self.proposal.proposed_at


@dataclass(frozen=True, slots=True)
class CalendarFeed:
    """A volunteer's calendar feed (``calendar_feeds``), one per volunteer: a new one replaces,
    and so revokes, the earlier one. Only the SHA-256 of the secret in its URL is kept, so that
    neither the database nor a backup of it can be turned into a working feed URL."""

    tenant: str
    volunteer_id: str
    secret_sha256: str  # hex
    created_at: datetime

    FIELDS = frozenset({"_id", "tenant", "volunteer_id", "secret_sha256", "created_at"})

    @classmethod
    def from_document(cls, document: Document) -> CalendarFeed:
        _known_fields(document, cls.FIELDS, "calendar feed")
        return cls(
            tenant=document["tenant"],
            volunteer_id=document["volunteer_id"],
            secret_sha256=document["secret_sha256"],
            created_at=document["created_at"],
        )

    def to_document(self) -> Document:
        return {
            "_id": f"{self.tenant}:{self.volunteer_id}",
            "tenant": self.tenant,
            "volunteer_id": self.volunteer_id,
            "secret_sha256": self.secret_sha256,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class OfficeRequest:
    """An office action done under an ``Idempotency-Key`` (``office_requests``): written in the
    action's own transaction, so that a repeat of the request finds it and changes nothing. Kept
    per tenant, caller and key; `fingerprint` tells a repeat from another request under the same
    key, `outcome` and `proposal_ids` are what the action answered."""

    tenant: str
    caller: str
    key: str
    fingerprint: str
    outcome: str
    proposal_ids: tuple[str, ...]
    created_at: datetime

    FIELDS = frozenset({"_id", "tenant", "caller", "key", "fingerprint", "outcome", "proposal_ids", "created_at"})

    @staticmethod
    def id_of(tenant: str, caller: str, key: str) -> str:
        return f"{tenant}:{caller}:{key}"

    @classmethod
    def from_document(cls, document: Document) -> OfficeRequest:
        _known_fields(document, cls.FIELDS, "office request")
        return cls(
            tenant=document["tenant"],
            caller=document["caller"],
            key=document["key"],
            fingerprint=document["fingerprint"],
            outcome=document["outcome"],
            proposal_ids=tuple(document["proposal_ids"]),
            created_at=document["created_at"],
        )

    def to_document(self) -> Document:
        return {
            "_id": self.id_of(self.tenant, self.caller, self.key),
            "tenant": self.tenant,
            "caller": self.caller,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "outcome": self.outcome,
            "proposal_ids": list(self.proposal_ids),
            "created_at": self.created_at,
        }


class HoursState(StrEnum):
    """Where a volunteer's entry of hours stands (``hours.state``)."""

    PENDING = "pending"  # logged or corrected; the office or the initiative has not decided yet
    CONFIRMED = "confirmed"
    REJECTED = "rejected"  # with a reason; the volunteer may correct it (pending again) or delete it


@dataclass(frozen=True, slots=True)
class HoursEntry:
    """Hours a volunteer logged for a need they committed to (``hours``), and who of the office or
    the need's initiative confirmed or rejected them, when (and why not). The need's organisation
    and category are copied at logging time: the office's list and the statistics filter by them.
    Personal data of the volunteer: exported with their data and deleted with their erasure."""

    id: str
    tenant: str
    volunteer_id: str
    need_id: str
    organisation_id: str
    category: str
    day: date  # the day worked, in the tenant's zone (stored as YYYY-MM-DD)
    minutes: int
    note: str
    state: HoursState
    logged_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None
    decided_by: Actor | None = None
    rejection_reason: str | None = None

    FIELDS = frozenset(
        {
            "_id",
            "entry_id",
            "tenant",
            "volunteer_id",
            "need_id",
            "organisation_id",
            "category",
            "day",
            "minutes",
            "note",
            "state",
            "logged_at",
            "updated_at",
            "decided_at",
            "decided_by",
            "rejection_reason",
        }
    )

    @staticmethod
    def id_of(tenant: str, entry_id: str) -> str:
        # The tenant in the key: an id a client chose can never reach another tenant's entry.
        return f"{tenant}:{entry_id}"

    @classmethod
    def from_document(cls, document: Document) -> HoursEntry:
        _known_fields(document, cls.FIELDS, "hours entry")
        return cls(
            id=document["entry_id"],
            tenant=document["tenant"],
            volunteer_id=document["volunteer_id"],
            need_id=document["need_id"],
            organisation_id=document["organisation_id"],
            category=document["category"],
            day=date.fromisoformat(document["day"]),
            minutes=document["minutes"],
            note=document["note"],
            state=HoursState(document["state"]),
            logged_at=document["logged_at"],
            updated_at=document["updated_at"],
            decided_at=document.get("decided_at"),
            decided_by=Actor.from_document(document.get("decided_by")),
            rejection_reason=document.get("rejection_reason"),
        )

    def to_document(self) -> Document:
        document: Document = {
            "_id": self.id_of(self.tenant, self.id),
            "entry_id": self.id,
            "tenant": self.tenant,
            "volunteer_id": self.volunteer_id,
            "need_id": self.need_id,
            "organisation_id": self.organisation_id,
            "category": self.category,
            "day": self.day.isoformat(),
            "minutes": self.minutes,
            "note": self.note,
            "state": self.state.value,
            "logged_at": self.logged_at,
            "updated_at": self.updated_at,
        }
        if self.decided_at is not None:
            document["decided_at"] = self.decided_at
        if self.decided_by is not None:
            document["decided_by"] = self.decided_by.to_document()
        if self.rejection_reason is not None:
            document["rejection_reason"] = self.rejection_reason
        return document


# -- what the use cases need of the database ---------------------------------------------------


class Transaction(Protocol):
    """The runtime's `lotse_runtime.unit_of_work.Transaction`, as far as matching uses it."""

    @property
    def session(self) -> Session: ...

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool: ...

    async def append_event(self, topic: str, event: Envelope[Any]) -> None: ...

    async def append_events(self, entries: Sequence[tuple[str, Envelope[Any]]]) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...

    def before_commit(self, key: Hashable, guard: Callable[[AsyncClientSession], Awaitable[None]]) -> None: ...

    def audit(
        self,
        tenant: str,
        operation: Operation,
        resource_type: str,
        resource_id: str,
        fields: set[str],
        *,
        subject_id: str | None = None,
    ) -> None: ...


class Transactions(Protocol):
    """The runtime's `lotse_runtime.unit_of_work.UnitOfWork`, as far as matching uses it."""

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T: ...


class MatchingStore(Protocol):
    """What the use cases and the API read and write; `Store` is the MongoDB one."""

    async def tenant(self, tenant: str, session: Session = None) -> Document | None: ...

    async def put_tenant(self, document: Document, session: Session) -> None: ...

    async def known_tenants(self) -> set[str]: ...

    async def organisation(self, tenant: str, organisation_id: str, session: Session) -> Document | None: ...

    async def put_organisation(
        self, tenant: str, organisation_id: str, document: Document, session: Session
    ) -> None: ...

    async def volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> Document | None: ...

    async def put_volunteer(self, document: Document, session: Session) -> None: ...

    def volunteers_of(self, tenant: str) -> AsyncIterator[Document]: ...

    async def need_record(self, tenant: str, need_id: str, session: Session = None) -> NeedRecord | None: ...

    async def put_need(self, need: NeedRecord, expected_version: int | None, session: Session) -> None: ...

    async def need_records_by_id(self, tenant: str, need_ids: list[str]) -> dict[str, NeedRecord]: ...

    async def open_needs_of(self, tenant: str) -> list[NeedRecord]: ...

    async def needs_to_escalate(self, now: datetime) -> list[tuple[str, str]]: ...

    async def proposal_record(self, tenant: str, proposal_id: str, session: Session = None) -> Proposal | None: ...

    async def proposal_records_for_need(self, tenant: str, need_id: str, session: Session = None) -> list[Proposal]: ...

    async def proposal_records_of_volunteer(
        self, tenant: str, volunteer_id: str, session: Session = None
    ) -> list[Proposal]: ...

    async def put_proposals(self, proposals: list[Proposal], session: Session) -> None: ...

    async def open_proposal_records(self, tenant: str) -> list[Proposal]: ...

    async def office_request(
        self, tenant: str, caller: str, key: str, session: Session = None
    ) -> OfficeRequest | None: ...

    async def put_office_request(self, request: OfficeRequest, session: Session) -> None: ...

    async def overdue_proposals(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]: ...

    async def asks_since(self, tenant: str, since: datetime) -> list[tuple[str, datetime]]: ...

    async def erase_from_proposals(self, tenant: str, volunteer_id: str, session: Session) -> None: ...

    async def destroy_person_key(self, tenant: str, volunteer_id: str, session: Session) -> None: ...

    async def engagements_of(
        self, tenant: str, volunteer_id: str, session: Session = None
    ) -> list[EngagementRecord]: ...

    async def calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> CalendarFeed | None: ...

    async def calendar_feed_by_secret(self, secret_sha256: str) -> CalendarFeed | None: ...

    async def put_calendar_feed(self, feed: CalendarFeed, session: Session) -> None: ...

    async def delete_calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> bool: ...

    async def staffing_records(
        self, tenant: str, organisation_id: str | None = None
    ) -> tuple[list[NeedRecord], list[Proposal]]: ...

    async def hours_entry(self, tenant: str, entry_id: str, session: Session = None) -> HoursEntry | None: ...

    async def hours_of_volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> list[HoursEntry]: ...

    async def put_hours(self, entry: HoursEntry, session: Session) -> None: ...

    async def delete_hours(self, tenant: str, entry_id: str, session: Session) -> bool: ...

    async def delete_hours_of(self, tenant: str, volunteer_id: str, session: Session) -> None: ...

    async def hours_for_office(
        self, tenant: str, state: HoursState | None, organisation_id: str | None, limit: int
    ) -> list[HoursEntry]: ...

    async def confirmed_hours(self, tenant: str, organisation_id: str | None = None) -> list[HoursEntry]: ...

    async def organisation_names(self, tenant: str, organisation_ids: list[str]) -> dict[str, str]: ...


PROPOSAL_ORDER = [("proposed_at", ASCENDING), ("_id", ASCENDING)]
HOURS_ORDER = [("day", DESCENDING), ("logged_at", DESCENDING), ("entry_id", ASCENDING)]
# How long a repeat of an office action under the same Idempotency-Key answers as the first did.
OFFICE_REQUEST_SECONDS = 24 * 3600


class StaleWrite(Exception):
    """Someone else changed the need's staffing meanwhile (another replica); do it again."""


@dataclass(frozen=True)
class HeldAboutVolunteer:
    """What matching holds about one volunteer, by collection (see ``api.subject_access``)."""

    profile: list[Document]
    proposals: list[Document]
    committed_needs: list[Document]
    calendar_feed: list[Document]
    hours: list[Document]
    audit: list[Document]


class Store:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self.tenants = database["tenants"]
        self.organisations = database["organisations"]
        self.volunteers = database["volunteers"]
        self.needs = database["needs"]
        self.proposals = database["proposals"]
        self.calendar_feeds = database["calendar_feeds"]
        self.office_requests = database["office_requests"]
        self.hours = database["hours"]

    async def ensure_indexes(self) -> None:
        await ensure_outbox_indexes(self.database)
        await ensure_inbox_index(self.database)
        await ensure_audit_indexes(self.database)  # the trail's search and its retention (TTL)
        await self.volunteers.create_index([("tenant", ASCENDING)])
        await self.needs.create_index([("tenant", ASCENDING), ("status", ASCENDING)])
        await self.needs.create_index([("staffing.escalate_at", ASCENDING)])
        await self.proposals.create_index([("tenant", ASCENDING), ("need_id", ASCENDING)])
        await self.proposals.create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING)])
        await self.proposals.create_index([("status", ASCENDING), ("expires_at", ASCENDING)])
        await self.calendar_feeds.create_index([("secret_sha256", ASCENDING)], unique=True)
        await self.office_requests.create_index(
            [("created_at", ASCENDING)], expireAfterSeconds=OFFICE_REQUEST_SECONDS, name="office_requests_ttl"
        )
        await self.hours.create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING), ("day", ASCENDING)])
        await self.hours.create_index([("tenant", ASCENDING), ("state", ASCENDING), ("organisation_id", ASCENDING)])

    # -- tenants and organisations ------------------------------------------------------------

    async def tenant(self, tenant: str, session: Session = None) -> Document | None:
        return await self.tenants.find_one({"_id": tenant}, session=session)

    async def put_tenant(self, document: Document, session: Session) -> None:
        await self.tenants.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    async def organisation(self, tenant: str, organisation_id: str, session: Session) -> Document | None:
        return await self.organisations.find_one({"_id": f"{tenant}:{organisation_id}"}, session=session)

    async def put_organisation(self, tenant: str, organisation_id: str, document: Document, session: Session) -> None:
        document = {**document, "_id": f"{tenant}:{organisation_id}", "tenant": tenant}
        await self.organisations.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    async def known_tenants(self) -> set[str]:
        """Every tenant with settings, volunteers or needs (an event may come before the tenant's)."""
        tenants = {doc["_id"] async for doc in self.tenants.find({}, projection={"_id": 1})}
        tenants |= set(await self.volunteers.distinct("tenant"))
        return tenants | set(await self.needs.distinct("tenant"))

    # -- volunteers ---------------------------------------------------------------------------

    async def volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> Document | None:
        return await self.volunteers.find_one({"_id": f"{tenant}:{volunteer_id}"}, session=session)

    async def put_volunteer(self, document: Document, session: Session) -> None:
        document["_id"] = f"{document['tenant']}:{document['volunteer_id']}"
        await self.volunteers.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    def volunteers_of(self, tenant: str) -> AsyncIterator[Document]:
        return aiter(self.volunteers.find({"tenant": tenant, "erased": {"$ne": True}}, batch_size=5000))

    # -- needs --------------------------------------------------------------------------------

    async def need(self, tenant: str, need_id: str, session: Session = None) -> Document | None:
        """The need as stored (for inspection; the service reads `need_record`)."""
        return await self.needs.find_one({"_id": f"{tenant}:{need_id}"}, session=session)

    async def need_record(self, tenant: str, need_id: str, session: Session = None) -> NeedRecord | None:
        document = await self.need(tenant, need_id, session)
        return None if document is None else NeedRecord.from_document(document)

    async def put_need(self, need: NeedRecord, expected_version: int | None, session: Session) -> None:
        """Write the need; `expected_version` guards the staffing against a concurrent writer."""
        document = need.to_document()
        if expected_version is None:
            await self.needs.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)
            return
        result = await self.needs.replace_one(
            {"_id": document["_id"], "staffing.version": expected_version}, document, session=session
        )
        if result.matched_count != 1:
            raise StaleWrite(f"need {need.need_id} changed meanwhile")

    async def need_records_by_id(self, tenant: str, need_ids: list[str]) -> dict[str, NeedRecord]:
        found = self.needs.find({"_id": {"$in": [f"{tenant}:{need_id}" for need_id in need_ids]}, "tenant": tenant})
        return {doc["need_id"]: NeedRecord.from_document(doc) async for doc in found}

    async def open_needs_of(self, tenant: str) -> list[NeedRecord]:
        found = self.needs.find({"tenant": tenant, "status": NeedStatus.OPEN.value})
        return [NeedRecord.from_document(doc) async for doc in found]

    async def needs_to_escalate(self, now: datetime) -> list[tuple[str, str]]:
        found = self.needs.find(
            {
                "status": NeedStatus.OPEN.value,
                "staffing.state": StaffingState.OPEN.value,
                "staffing.escalated": {"$ne": True},
                "staffing.escalate_at": {"$lte": now},
            },
            projection={"tenant": 1, "need_id": 1},
        )
        return [(doc["tenant"], doc["need_id"]) async for doc in found]

    # -- proposals ----------------------------------------------------------------------------

    async def proposal(self, tenant: str, proposal_id: str, session: Session = None) -> Document | None:
        """The proposal as stored (for inspection; the service reads `proposal_record`)."""
        return await self.proposals.find_one({"_id": proposal_id, "tenant": tenant}, session=session)

    async def proposal_record(self, tenant: str, proposal_id: str, session: Session = None) -> Proposal | None:
        document = await self.proposal(tenant, proposal_id, session)
        return None if document is None else Proposal.from_document(document)

    async def proposal_records_for_need(self, tenant: str, need_id: str, session: Session = None) -> list[Proposal]:
        found = self.proposals.find({"tenant": tenant, "need_id": need_id}, session=session)
        return [Proposal.from_document(doc) for doc in await found.sort(PROPOSAL_ORDER).to_list()]

    async def proposals_of_volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> list[Document]:
        """The volunteer's proposals and picks as stored, oldest first (for inspection)."""
        found = self.proposals.find({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        return await found.sort(PROPOSAL_ORDER).to_list()

    async def proposal_records_of_volunteer(
        self, tenant: str, volunteer_id: str, session: Session = None
    ) -> list[Proposal]:
        return [Proposal.from_document(doc) for doc in await self.proposals_of_volunteer(tenant, volunteer_id, session)]

    async def put_proposals(self, proposals: list[Proposal], session: Session) -> None:
        """Write proposals in one round trip (a round asks several volunteers at once)."""
        if not proposals:
            return
        documents = [proposal.to_document() for proposal in proposals]
        writes = [ReplaceOne({"_id": document["_id"]}, document, upsert=True) for document in documents]
        await self.proposals.bulk_write(writes, session=session)

    async def open_proposal_records(self, tenant: str) -> list[Proposal]:
        """The tenant's open proposals, oldest first (the office's dashboard)."""
        found = self.proposals.find({"tenant": tenant, "status": ProposalStatus.OPEN.value})
        return [Proposal.from_document(doc) for doc in await found.sort(PROPOSAL_ORDER).to_list()]

    async def overdue_proposals(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]:
        found = self.proposals.find(
            {"status": ProposalStatus.OPEN.value, "expires_at": {"$lte": now}}, projection={"tenant": 1, "need_id": 1}
        ).limit(limit)
        return [(doc["tenant"], doc["need_id"]) async for doc in found]

    async def asks_since(self, tenant: str, since: datetime) -> list[tuple[str, datetime]]:
        """(volunteer id, when) of every proposal since ``since``; picks are nobody's ask."""
        found = self.proposals.find(
            {"tenant": tenant, "proposed_at": {"$gte": since}, "kind": ProposalKind.PROPOSAL.value},
            projection={"volunteer_id": 1, "proposed_at": 1},
        )
        return [(doc["volunteer_id"], doc["proposed_at"]) async for doc in found]

    async def destroy_person_key(self, tenant: str, volunteer_id: str, session: Session) -> None:
        """Matching's copy of the volunteer's key goes with the erasure, tombstone or not."""
        await destroy_person_key(self.database, tenant, volunteer_id, session)

    async def erase_from_proposals(self, tenant: str, volunteer_id: str, session: Session) -> None:
        """What a proposal said about the volunteer (languages, distance) is personal data: it
        goes from the proposals and, with the proposal events that carried it, from the outbox."""
        found = self.proposals.find({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        event_ids = [p["event_id"] async for p in found if p.get("event_id")]
        if event_ids:
            await self.database[OUTBOX_COLLECTION].delete_many({"_id": {"$in": event_ids}}, session=session)
        await self.proposals.update_many(
            {"tenant": tenant, "volunteer_id": volunteer_id},
            {"$set": {"reasons": [], "distance_km": None, "score": None, "erased": True}},
            session=session,
        )

    async def engagements_of(self, tenant: str, volunteer_id: str, session: Session = None) -> list[EngagementRecord]:
        """The volunteer's current engagements, oldest commitment first: accepted proposals and
        picks whose need is open at the registry, not closed here, and still counts them in."""
        found = self.proposals.find(
            {"tenant": tenant, "volunteer_id": volunteer_id, "status": ProposalStatus.ACCEPTED.value}, session=session
        )
        accepted = [Proposal.from_document(doc) for doc in await found.sort(PROPOSAL_ORDER).to_list()]
        if not accepted:
            return []
        needs = self.needs.find(
            {
                "_id": {"$in": sorted({f"{tenant}:{p.need_id}" for p in accepted})},
                "tenant": tenant,
                "status": NeedStatus.OPEN.value,
                "staffing.state": {"$ne": StaffingState.CLOSED.value},
            },
            session=session,
        )
        current = {doc["need_id"]: NeedRecord.from_document(doc) async for doc in needs}
        engagements: dict[str, EngagementRecord] = {}
        for proposal in accepted:
            need = current.get(proposal.need_id)
            # The staffing's list of who is committed is the truth; one engagement per need (the
            # latest), as a calendar holds one event per need.
            if need is not None and volunteer_id in need.staffing.committed:
                engagements[proposal.need_id] = EngagementRecord(proposal, need)
        return sorted(engagements.values(), key=lambda e: (e.committed_at, e.need.need_id))

    # -- the office's idempotent actions ------------------------------------------------------

    async def office_request(self, tenant: str, caller: str, key: str, session: Session = None) -> OfficeRequest | None:
        document = await self.office_requests.find_one(
            {"_id": OfficeRequest.id_of(tenant, caller, key), "tenant": tenant}, session=session
        )
        return None if document is None else OfficeRequest.from_document(document)

    async def put_office_request(self, request: OfficeRequest, session: Session) -> None:
        # An insert: two repeats racing in two transactions conflict, and the retried one finds this.
        await self.office_requests.insert_one(request.to_document(), session=session)

    # -- calendar feeds -----------------------------------------------------------------------

    async def calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> CalendarFeed | None:
        document = await self.calendar_feeds.find_one({"_id": f"{tenant}:{volunteer_id}"}, session=session)
        return None if document is None else CalendarFeed.from_document(document)

    async def calendar_feed_by_secret(self, secret_sha256: str) -> CalendarFeed | None:
        """The feed whose secret has this digest, of whichever tenant: the secret is all a
        calendar application presents."""
        document = await self.calendar_feeds.find_one({"secret_sha256": secret_sha256})
        return None if document is None else CalendarFeed.from_document(document)

    async def put_calendar_feed(self, feed: CalendarFeed, session: Session) -> None:
        """Replace the volunteer's feed in one write, so the earlier secret stops working at once."""
        document = feed.to_document()
        await self.calendar_feeds.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    async def delete_calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> bool:
        result = await self.calendar_feeds.delete_one({"_id": f"{tenant}:{volunteer_id}"}, session=session)
        return result.deleted_count == 1

    # -- statistics ---------------------------------------------------------------------------

    async def staffing_records(
        self, tenant: str, organisation_id: str | None = None
    ) -> tuple[list[NeedRecord], list[Proposal]]:
        """Every need of the tenant (or of one organisation) and their proposals and picks, for the
        statistics (``statistics.py``); counted in memory, as a tenant's needs are thousands at most."""
        query: Document = {"tenant": tenant}
        if organisation_id is not None:
            query["details.organisation_id"] = organisation_id
        needs = [NeedRecord.from_document(doc) async for doc in self.needs.find(query)]
        of_needs: Document = {"tenant": tenant}
        if organisation_id is not None:
            of_needs["need_id"] = {"$in": [need.need_id for need in needs]}
        return needs, [Proposal.from_document(doc) async for doc in self.proposals.find(of_needs)]

    # -- hours volunteers logged --------------------------------------------------------------

    async def hours_entry(self, tenant: str, entry_id: str, session: Session = None) -> HoursEntry | None:
        key = {"_id": HoursEntry.id_of(tenant, entry_id), "tenant": tenant}
        document = await self.hours.find_one(key, session=session)
        return None if document is None else HoursEntry.from_document(document)

    async def hours_of_volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> list[HoursEntry]:
        """The volunteer's entries, the latest day first (a volunteer's few hundred a year)."""
        found = self.hours.find({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        return [HoursEntry.from_document(doc) for doc in await found.sort(HOURS_ORDER).to_list()]

    async def put_hours(self, entry: HoursEntry, session: Session) -> None:
        document = entry.to_document()
        await self.hours.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    async def delete_hours(self, tenant: str, entry_id: str, session: Session) -> bool:
        key = {"_id": HoursEntry.id_of(tenant, entry_id), "tenant": tenant}
        result = await self.hours.delete_one(key, session=session)
        return result.deleted_count == 1

    async def delete_hours_of(self, tenant: str, volunteer_id: str, session: Session) -> None:
        await self.hours.delete_many({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)

    async def hours_for_office(
        self, tenant: str, state: HoursState | None, organisation_id: str | None, limit: int
    ) -> list[HoursEntry]:
        """The tenant's entries (in one state, of one organisation's needs), the oldest day first."""
        query: Document = {"tenant": tenant}
        if state is not None:
            query["state"] = state.value
        if organisation_id is not None:
            query["organisation_id"] = organisation_id
        found = self.hours.find(query).sort([("day", ASCENDING), ("logged_at", ASCENDING), ("entry_id", ASCENDING)])
        return [HoursEntry.from_document(doc) for doc in await found.limit(limit).to_list()]

    async def confirmed_hours(self, tenant: str, organisation_id: str | None = None) -> list[HoursEntry]:
        """Every confirmed entry of the tenant (or of one organisation's needs), for the statistics."""
        query: Document = {"tenant": tenant, "state": HoursState.CONFIRMED.value}
        if organisation_id is not None:
            query["organisation_id"] = organisation_id
        return [HoursEntry.from_document(doc) async for doc in self.hours.find(query)]

    async def held_about_volunteer(self, tenant: str, volunteer_id: str) -> HeldAboutVolunteer:
        """Every document of the tenant that is about the volunteer (the subject-access export); of
        the needs they committed to only the need and its state, not who else committed."""
        committed = self.needs.find(
            {"tenant": tenant, "staffing.committed": volunteer_id},
            projection={
                "_id": 0,
                "need_id": 1,
                "details.category": 1,
                "details.description": 1,
                "staffing.state": 1,
                "staffing.closed_at": 1,
            },
        )
        feed = await self.calendar_feeds.find_one({"_id": f"{tenant}:{volunteer_id}"})
        profile = await self.volunteer(tenant, volunteer_id)
        return HeldAboutVolunteer(
            profile=[profile] if profile is not None else [],
            proposals=await self.proposals_of_volunteer(tenant, volunteer_id),
            committed_needs=await committed.to_list(),
            calendar_feed=[feed] if feed is not None else [],
            hours=await self.hours.find({"tenant": tenant, "volunteer_id": volunteer_id}).sort(HOURS_ORDER).to_list(),
            audit=await entries_about_person(self.database, tenant, volunteer_id),
        )

    async def organisation_names(self, tenant: str, organisation_ids: list[str]) -> dict[str, str]:
        """The names of the tenant's organisations, as the registry last published them."""
        found = self.organisations.find(
            {"_id": {"$in": [f"{tenant}:{o}" for o in organisation_ids]}, "tenant": tenant},
            projection={"organisation_id": 1, "name": 1},
        )
        return {str(doc["organisation_id"]): str(doc.get("name") or "") async for doc in found}
