"""An in-memory `MatchingStore` and unit of work, so that `Matching`'s use cases run without a
database or broker.

The fake keeps what MongoDB would hold, as documents (records go through `to_document` and
`from_document` on the way in and out, as with the real store, so nobody shares state with
it by reference), with the inbox and the outbox beside them. A unit of work commits by keeping
what its body wrote and rolls everything back if the body raises; its after-commit callbacks
run after the commit, as the runtime's do. The integration tests cover the real store.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from lotse_contracts import Envelope
from lotse_matching.store import (
    CalendarFeed,
    Document,
    EngagementRecord,
    HoursEntry,
    HoursState,
    NeedRecord,
    NeedStatus,
    OfficeRequest,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Session,
    StaffingState,
    StaleWrite,
    Transaction,
)
from lotse_runtime.audit import Operation

T = TypeVar("T")


@dataclass(frozen=True)
class Outboxed:
    topic: str
    event: Envelope[Any]


@dataclass
class Collections:
    tenants: dict[str, Document] = field(default_factory=dict)
    organisations: dict[str, Document] = field(default_factory=dict)
    volunteers: dict[str, Document] = field(default_factory=dict)
    needs: dict[str, Document] = field(default_factory=dict)
    proposals: dict[str, Document] = field(default_factory=dict)
    calendar_feeds: dict[str, Document] = field(default_factory=dict)
    office_requests: dict[str, Document] = field(default_factory=dict)
    hours: dict[str, Document] = field(default_factory=dict)
    inbox: set[tuple[str, str, str]] = field(default_factory=set)  # (consumer, tenant, event id)
    outbox: list[Outboxed] = field(default_factory=list)


class FakeStore:
    """What `lotse_matching.store.Store` does, on dictionaries; sessions are ignored."""

    def __init__(self) -> None:
        self.data = Collections()

    # -- what the fake unit of work needs ------------------------------------------------------

    def snapshot(self) -> Collections:
        return copy.deepcopy(self.data)

    def restore(self, snapshot: Collections) -> None:
        self.data = snapshot

    @property
    def outbox(self) -> list[Outboxed]:
        return self.data.outbox

    # -- tenants and organisations -------------------------------------------------------------

    async def tenant(self, tenant: str, session: Session = None) -> Document | None:
        return _copy(self.data.tenants.get(tenant))

    async def put_tenant(self, document: Document, session: Session) -> None:
        self.data.tenants[document["_id"]] = copy.deepcopy(document)

    async def known_tenants(self) -> set[str]:
        found = set(self.data.tenants)
        found |= {doc["tenant"] for doc in self.data.volunteers.values()}
        return found | {doc["tenant"] for doc in self.data.needs.values()}

    async def organisation(self, tenant: str, organisation_id: str, session: Session) -> Document | None:
        return _copy(self.data.organisations.get(f"{tenant}:{organisation_id}"))

    async def put_organisation(self, tenant: str, organisation_id: str, document: Document, session: Session) -> None:
        key = f"{tenant}:{organisation_id}"
        self.data.organisations[key] = {**copy.deepcopy(document), "_id": key, "tenant": tenant}

    # -- volunteers ----------------------------------------------------------------------------

    async def volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> Document | None:
        return _copy(self.data.volunteers.get(f"{tenant}:{volunteer_id}"))

    async def put_volunteer(self, document: Document, session: Session) -> None:
        document["_id"] = f"{document['tenant']}:{document['volunteer_id']}"
        self.data.volunteers[document["_id"]] = copy.deepcopy(document)

    async def volunteers_of(self, tenant: str) -> AsyncIterator[Document]:
        for document in list(self.data.volunteers.values()):
            if document["tenant"] == tenant and not document.get("erased"):
                yield copy.deepcopy(document)

    # -- needs ---------------------------------------------------------------------------------

    async def need_record(self, tenant: str, need_id: str, session: Session = None) -> NeedRecord | None:
        document = self.data.needs.get(f"{tenant}:{need_id}")
        return None if document is None else NeedRecord.from_document(copy.deepcopy(document))

    async def put_need(self, need: NeedRecord, expected_version: int | None, session: Session) -> None:
        document = need.to_document()
        stored = self.data.needs.get(document["_id"])
        if expected_version is not None and (stored is None or stored["staffing"]["version"] != expected_version):
            raise StaleWrite(f"need {need.need_id} changed meanwhile")
        self.data.needs[document["_id"]] = copy.deepcopy(document)

    async def need_records_by_id(self, tenant: str, need_ids: list[str]) -> dict[str, NeedRecord]:
        found = (self.data.needs.get(f"{tenant}:{need_id}") for need_id in need_ids)
        return {doc["need_id"]: NeedRecord.from_document(copy.deepcopy(doc)) for doc in found if doc is not None}

    async def open_needs_of(self, tenant: str) -> list[NeedRecord]:
        return [
            NeedRecord.from_document(copy.deepcopy(doc))
            for doc in self.data.needs.values()
            if doc["tenant"] == tenant and doc["status"] == NeedStatus.OPEN.value
        ]

    async def needs_to_escalate(self, now: datetime) -> list[tuple[str, str]]:
        return [
            (doc["tenant"], doc["need_id"])
            for doc in self.data.needs.values()
            if doc["status"] == NeedStatus.OPEN.value
            and doc["staffing"]["state"] == StaffingState.OPEN.value
            and doc["staffing"]["escalated"] is not True
            and doc["staffing"]["escalate_at"] <= now
        ]

    # -- proposals -----------------------------------------------------------------------------

    async def proposal_record(self, tenant: str, proposal_id: str, session: Session = None) -> Proposal | None:
        document = self.data.proposals.get(proposal_id)
        if document is None or document["tenant"] != tenant:
            return None
        return Proposal.from_document(copy.deepcopy(document))

    async def proposal_records_for_need(self, tenant: str, need_id: str, session: Session = None) -> list[Proposal]:
        return self._proposals(lambda doc: doc["tenant"] == tenant and doc["need_id"] == need_id)

    async def proposal_records_of_volunteer(
        self, tenant: str, volunteer_id: str, session: Session = None
    ) -> list[Proposal]:
        return self._proposals(lambda doc: doc["tenant"] == tenant and doc["volunteer_id"] == volunteer_id)

    def _proposals(self, where: Callable[[Document], bool]) -> list[Proposal]:
        found = sorted(
            (doc for doc in self.data.proposals.values() if where(doc)), key=lambda d: (d["proposed_at"], d["_id"])
        )
        return [Proposal.from_document(copy.deepcopy(doc)) for doc in found]

    async def put_proposals(self, proposals: list[Proposal], session: Session) -> None:
        for proposal in proposals:
            document = proposal.to_document()
            self.data.proposals[document["_id"]] = copy.deepcopy(document)

    async def open_proposal_records(self, tenant: str) -> list[Proposal]:
        return self._proposals(lambda doc: doc["tenant"] == tenant and doc["status"] == ProposalStatus.OPEN.value)

    async def overdue_proposals(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]:
        overdue = [
            (doc["tenant"], doc["need_id"])
            for doc in self.data.proposals.values()
            if doc["status"] == ProposalStatus.OPEN.value and doc["expires_at"] <= now
        ]
        return overdue[:limit]

    async def asks_since(self, tenant: str, since: datetime) -> list[tuple[str, datetime]]:
        return [
            (doc["volunteer_id"], doc["proposed_at"])
            for doc in self.data.proposals.values()
            if doc["tenant"] == tenant and doc["proposed_at"] >= since and doc["kind"] == ProposalKind.PROPOSAL.value
        ]

    async def erase_from_proposals(self, tenant: str, volunteer_id: str, session: Session) -> None:
        theirs = [
            d for d in self.data.proposals.values() if d["tenant"] == tenant and d["volunteer_id"] == volunteer_id
        ]
        event_ids = {d["event_id"] for d in theirs if d.get("event_id")}
        self.data.outbox = [row for row in self.data.outbox if str(row.event.id) not in event_ids]
        for document in theirs:
            document.update(reasons=[], distance_km=None, score=None, erased=True)

    async def engagements_of(self, tenant: str, volunteer_id: str, session: Session = None) -> list[EngagementRecord]:
        engagements: dict[str, EngagementRecord] = {}
        for proposal in await self.proposal_records_of_volunteer(tenant, volunteer_id):
            need = await self.need_record(tenant, proposal.need_id)
            if (
                proposal.status is ProposalStatus.ACCEPTED
                and need is not None
                and need.status is NeedStatus.OPEN
                and need.staffing.state is not StaffingState.CLOSED
                and volunteer_id in need.staffing.committed
            ):
                engagements[proposal.need_id] = EngagementRecord(proposal, need)
        return sorted(engagements.values(), key=lambda e: (e.committed_at, e.need.need_id))

    # -- the office's idempotent actions -------------------------------------------------------

    async def office_request(self, tenant: str, caller: str, key: str, session: Session = None) -> OfficeRequest | None:
        document = self.data.office_requests.get(OfficeRequest.id_of(tenant, caller, key))
        return None if document is None else OfficeRequest.from_document(copy.deepcopy(document))

    async def put_office_request(self, request: OfficeRequest, session: Session) -> None:
        document = request.to_document()
        if document["_id"] in self.data.office_requests:
            raise KeyError(f"duplicate office request {document['_id']}")  # MongoDB's unique _id
        self.data.office_requests[document["_id"]] = document

    # -- calendar feeds ------------------------------------------------------------------------

    async def calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> CalendarFeed | None:
        document = self.data.calendar_feeds.get(f"{tenant}:{volunteer_id}")
        return None if document is None else CalendarFeed.from_document(copy.deepcopy(document))

    async def calendar_feed_by_secret(self, secret_sha256: str) -> CalendarFeed | None:
        found = [d for d in self.data.calendar_feeds.values() if d["secret_sha256"] == secret_sha256]
        return CalendarFeed.from_document(copy.deepcopy(found[0])) if found else None

    async def put_calendar_feed(self, feed: CalendarFeed, session: Session) -> None:
        document = feed.to_document()
        self.data.calendar_feeds[document["_id"]] = document

    async def delete_calendar_feed(self, tenant: str, volunteer_id: str, session: Session = None) -> bool:
        return self.data.calendar_feeds.pop(f"{tenant}:{volunteer_id}", None) is not None

    # -- statistics ----------------------------------------------------------------------------

    async def staffing_records(
        self, tenant: str, organisation_id: str | None = None
    ) -> tuple[list[NeedRecord], list[Proposal]]:
        needs = [
            NeedRecord.from_document(copy.deepcopy(doc))
            for doc in self.data.needs.values()
            if doc["tenant"] == tenant and organisation_id in (None, doc["details"]["organisation_id"])
        ]
        ids = {need.need_id for need in needs}
        proposals = [
            Proposal.from_document(copy.deepcopy(doc))
            for doc in self.data.proposals.values()
            if doc["tenant"] == tenant and doc["need_id"] in ids
        ]
        return needs, proposals

    # -- hours volunteers logged ---------------------------------------------------------------

    async def hours_entry(self, tenant: str, entry_id: str, session: Session = None) -> HoursEntry | None:
        document = self.data.hours.get(HoursEntry.id_of(tenant, entry_id))
        return None if document is None else HoursEntry.from_document(copy.deepcopy(document))

    async def hours_of_volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> list[HoursEntry]:
        found = self._hours(lambda doc: doc["tenant"] == tenant and doc["volunteer_id"] == volunteer_id)
        # The latest day first, then the latest logged (as the store's sort).
        return sorted(found, key=lambda e: (e.day, e.logged_at), reverse=True)

    def _hours(self, where: Callable[[Document], bool]) -> list[HoursEntry]:
        found = sorted(
            (doc for doc in self.data.hours.values() if where(doc)),
            key=lambda d: (d["day"], d["logged_at"], d["entry_id"]),
        )
        return [HoursEntry.from_document(copy.deepcopy(doc)) for doc in found]

    async def put_hours(self, entry: HoursEntry, session: Session) -> None:
        document = entry.to_document()
        self.data.hours[document["_id"]] = copy.deepcopy(document)

    async def delete_hours(self, tenant: str, entry_id: str, session: Session) -> bool:
        return self.data.hours.pop(HoursEntry.id_of(tenant, entry_id), None) is not None

    async def destroy_person_key(self, tenant: str, volunteer_id: str, session: Session) -> None:
        pass  # no keyring in memory; the Mongo store's is tested in the integration tests

    async def delete_hours_of(self, tenant: str, volunteer_id: str, session: Session) -> None:
        for key, document in list(self.data.hours.items()):
            if document["tenant"] == tenant and document["volunteer_id"] == volunteer_id:
                del self.data.hours[key]

    async def hours_for_office(
        self, tenant: str, state: HoursState | None, organisation_id: str | None, limit: int
    ) -> list[HoursEntry]:
        return self._hours(
            lambda doc: (
                doc["tenant"] == tenant
                and state in (None, HoursState(doc["state"]))
                and organisation_id in (None, doc["organisation_id"])
            )
        )[:limit]

    async def confirmed_hours(self, tenant: str, organisation_id: str | None = None) -> list[HoursEntry]:
        return await self.hours_for_office(tenant, HoursState.CONFIRMED, organisation_id, len(self.data.hours))

    async def organisation_names(self, tenant: str, organisation_ids: list[str]) -> dict[str, str]:
        found = (self.data.organisations.get(f"{tenant}:{o}") for o in organisation_ids)
        return {str(doc["organisation_id"]): str(doc.get("name") or "") for doc in found if doc is not None}


def _copy(document: Document | None) -> Document | None:
    return copy.deepcopy(document)


class FakeTransaction:
    """One attempt of a fake unit of work; writes go straight to the store (undone on failure)."""

    session: Session = None

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.events: list[Envelope[Any]] = []
        self.callbacks: list[Callable[[], None]] = []

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool:
        key = (consumer, event.tenant, str(event.id))
        if key in self.store.data.inbox:
            return False
        self.store.data.inbox.add(key)
        return True

    async def append_event(self, topic: str, event: Envelope[Any]) -> None:
        self.store.data.outbox.append(Outboxed(topic, event))
        self.events.append(event)

    async def append_events(self, entries: Sequence[tuple[str, Envelope[Any]]]) -> None:
        for topic, event in entries:
            await self.append_event(topic, event)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def before_commit(self, key: Hashable, guard: Callable[[AsyncClientSession], Awaitable[None]]) -> None:
        # Fencing writes MongoDB's directory; a replica with these fakes has no database to fence in.
        raise AssertionError(f"a fake unit of work cannot be fenced ({key!r})")

    def audit(
        self,
        tenant: str,
        operation: Operation,
        resource_type: str,
        resource_id: str,
        fields: set[str],
        *,
        subject_id: str | None = None,
    ) -> None:
        """The trail is the runtime's (its own tests); the fake keeps no notes."""


class FakeUnitOfWork:
    """The runtime's `UnitOfWork` on a `FakeStore`: all of a body's writes or none of them."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.wakes = 0  # commits that appended events (the relay's wake-ups)

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        before = self.store.snapshot()
        transaction = FakeTransaction(self.store)
        try:
            result = await work(transaction)
        except BaseException:
            self.store.restore(before)
            raise
        for callback in transaction.callbacks:
            callback()
        if transaction.events:
            self.wakes += 1
        return result
