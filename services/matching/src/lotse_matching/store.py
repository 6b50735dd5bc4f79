"""Persistence of the matching service; every query is scoped by tenant here, not by callers.

Collections of the `matching` database: `tenants`, `organisations`, `volunteers` (read model,
no contact data), `needs` (read model plus the staffing state), `proposals`, and the runtime's
`inbox` and `outbox`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime.inbox import ensure_inbox_index
from lotse_runtime.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes

Document = dict[str, Any]
Session = AsyncClientSession | None


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


class StaleWrite(Exception):
    """Someone else changed the need's staffing meanwhile (another replica); do it again."""


class Store:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        self.tenants = database["tenants"]
        self.organisations = database["organisations"]
        self.volunteers = database["volunteers"]
        self.needs = database["needs"]
        self.proposals = database["proposals"]

    async def ensure_indexes(self) -> None:
        await ensure_outbox_indexes(self.database)
        await ensure_inbox_index(self.database)
        await self.volunteers.create_index([("tenant", ASCENDING)])
        await self.needs.create_index([("tenant", ASCENDING), ("status", ASCENDING)])
        await self.needs.create_index([("staffing.escalate_at", ASCENDING)])
        await self.proposals.create_index([("tenant", ASCENDING), ("need_id", ASCENDING)])
        await self.proposals.create_index([("tenant", ASCENDING), ("volunteer_id", ASCENDING)])
        await self.proposals.create_index([("status", ASCENDING), ("expires_at", ASCENDING)])

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

    async def all_tenants(self) -> list[Document]:
        return await self.tenants.find({}).to_list()

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
        return await self.needs.find_one({"_id": f"{tenant}:{need_id}"}, session=session)

    async def put_need(self, document: Document, expected_version: int | None, session: Session) -> None:
        """Write the need; `expected_version` guards the staffing against a concurrent writer."""
        document["_id"] = f"{document['tenant']}:{document['need_id']}"
        if expected_version is None:
            await self.needs.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)
            return
        result = await self.needs.replace_one(
            {"_id": document["_id"], "staffing.version": expected_version}, document, session=session
        )
        if result.matched_count != 1:
            raise StaleWrite(f"need {document['need_id']} changed meanwhile")

    async def needs_by_id(self, tenant: str, need_ids: list[str]) -> dict[str, Document]:
        found = self.needs.find({"_id": {"$in": [f"{tenant}:{need_id}" for need_id in need_ids]}, "tenant": tenant})
        return {doc["need_id"]: doc async for doc in found}

    async def open_needs_of(self, tenant: str) -> list[Document]:
        return await self.needs.find({"tenant": tenant, "status": NeedStatus.OPEN.value}).to_list()

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
        return await self.proposals.find_one({"_id": proposal_id, "tenant": tenant}, session=session)

    async def proposals_for_need(self, tenant: str, need_id: str, session: Session = None) -> list[Document]:
        found = self.proposals.find({"tenant": tenant, "need_id": need_id}, session=session)
        return await found.sort([("proposed_at", ASCENDING), ("_id", ASCENDING)]).to_list()

    async def proposals_of_volunteer(self, tenant: str, volunteer_id: str, session: Session = None) -> list[Document]:
        found = self.proposals.find({"tenant": tenant, "volunteer_id": volunteer_id}, session=session)
        return await found.sort([("proposed_at", ASCENDING), ("_id", ASCENDING)]).to_list()

    async def put_proposal(self, document: Document, session: Session) -> None:
        await self.proposals.replace_one({"_id": document["_id"]}, document, upsert=True, session=session)

    async def overdue_proposals(self, now: datetime, limit: int = 200) -> list[tuple[str, str]]:
        found = self.proposals.find(
            {"status": ProposalStatus.OPEN.value, "expires_at": {"$lte": now}}, projection={"tenant": 1, "need_id": 1}
        ).limit(limit)
        return [(doc["tenant"], doc["need_id"]) async for doc in found]

    async def proposals_since(self, tenant: str, since: datetime) -> list[Document]:
        found = self.proposals.find(
            {"tenant": tenant, "proposed_at": {"$gte": since}, "kind": "proposal"},
            projection={"volunteer_id": 1, "proposed_at": 1},
        )
        return await found.to_list()

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
