"""The matching service's use cases: apply registry events, answer proposals, pick needs, and
the timer that expires proposals and escalates needs.

Every use case runs under its tenant's lock (one writer per tenant in this process, so the
index and the database move together) and in one MongoDB transaction with its outbox events
and, for consumed events, its inbox record.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from lotse_contracts import (
    Envelope,
    NeedCancelled,
    NeedClosed,
    NeedOpened,
    NeedUpdated,
    OrganisationRegistered,
    OrganisationUpdated,
    TenantOnboarded,
    VolunteerAvailabilityChanged,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
)
from lotse_contracts.events.matching import AnswerChannel, WithdrawReason
from lotse_contracts.events.needs import NeedDetails
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import ConsentPurpose
from lotse_contracts.events.volunteers import VolunteerProfile
from lotse_matching.candidates import Candidate, Engagement, assess, candidate
from lotse_matching.index import FAIRNESS_WINDOW, TenantIndex
from lotse_matching.profiles import need_from_document, timezone_of, volunteer_from_document
from lotse_matching.rounds import NeedWork, Outcome, new_staffing
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Document, Store
from lotse_runtime.inbox import record_once
from lotse_runtime.mongo import in_transaction

log = structlog.get_logger("lotse.matching")
T = TypeVar("T")
After = list[Callable[[], None]]
REGISTRY_CONSUMER = "matching-registry"
PARTNER_CONSUMER = "matching-partner"
PROFILE_FIELDS = set(VolunteerProfile.model_fields) - {"contact"}  # matching needs no contact data
NEED_FIELDS = set(NeedDetails.model_fields)


class UnknownAggregate(Exception):
    """An event about a volunteer or need not seen yet; retried briefly, then dead-lettered."""


class Matching:
    def __init__(
        self,
        settings: MatchingSettings,
        client: AsyncMongoClient[Document],
        store: Store,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.clock = clock
        self.indexes: dict[str, TenantIndex] = {}
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.committed: Callable[[], None] = lambda: None  # wakes the outbox relay

    def index(self, tenant: str) -> TenantIndex:
        if tenant not in self.indexes:
            self.indexes[tenant] = TenantIndex(tenant)
        return self.indexes[tenant]

    # -- rebuilding the index from the database -------------------------------------------------

    async def load(self) -> None:
        tenants = {doc["_id"] for doc in await self.store.all_tenants()}
        tenants |= set(await self.store.volunteers.distinct("tenant"))
        tenants |= set(await self.store.needs.distinct("tenant"))
        for tenant in sorted(tenants):
            await self.load_tenant(tenant)

    async def load_tenant(self, tenant: str) -> None:
        settings = await self.store.tenant(tenant)
        index = TenantIndex(tenant, settings.get("timezone") if settings else None)
        index.upsert_many([volunteer_from_document(document) async for document in self.store.volunteers_of(tenant)])
        for document in await self.store.open_needs_of(tenant):
            need = need_from_document(document, index.timezone)
            for volunteer_id in document["staffing"]["committed"]:
                index.add_engagement(volunteer_id, Engagement(need.id, need.pieces))
            if document["staffing"]["state"] != "staffed":
                index.open_needs[need.id] = need
        for proposal in await self.store.proposals_since(tenant, self.clock() - FAIRNESS_WINDOW):
            if proposal["volunteer_id"] in index.volunteers:  # nobody erased comes back, not even as an id
                index.record_ask(proposal["volunteer_id"], proposal["proposed_at"])
        self.indexes[tenant] = index

    # -- the unit of work -----------------------------------------------------------------------

    async def _transact(self, tenant: str, work: Callable[[AsyncClientSession, After], Awaitable[T]]) -> T:
        async with self.locks[tenant]:

            async def attempt(session: AsyncClientSession) -> tuple[T, After]:
                after: After = []  # fresh per attempt: PyMongo may run the callback again
                return await work(session, after), after

            try:
                result, after = await in_transaction(self.client, attempt)
            except UnknownAggregate:
                raise  # raised before anything in memory changed
            except Exception:
                # The index may hold changes the database refused; rebuild it from the truth.
                await self.load_tenant(tenant)
                raise
            for effect in after:
                effect()
        self.committed()
        return result

    async def _need_work(
        self, session: AsyncClientSession, tenant: str, need_id: str, cause: Envelope[Any] | None, now: datetime
    ) -> NeedWork | None:
        document = await self.store.need(tenant, need_id, session)
        if document is None:
            return None
        proposals = await self.store.proposals_for_need(tenant, need_id, session)
        return self._work(document, proposals, cause, now)

    def _work(
        self,
        document: Document,
        proposals: list[Document],
        cause: Envelope[Any] | None,
        now: datetime,
        new: bool = False,
    ) -> NeedWork:
        index = self.index(document["tenant"])
        return NeedWork(
            document=document,
            proposals=proposals,
            index=index,
            settings=self.settings,
            now=now,
            cause=cause,
            is_new=new,
        )

    async def _save(self, work: NeedWork, session: AsyncClientSession, after: After) -> None:
        await work.save(self.store, session)
        after.extend(work.after)

    # -- registry events ------------------------------------------------------------------------

    async def apply_registry_event(self, event: Envelope[Any]) -> None:
        data = event.data

        async def work(session: AsyncClientSession, after: After) -> None:
            if not await record_once(
                self.store.database, session, consumer=REGISTRY_CONSUMER, event_id=str(event.id), tenant=event.tenant
            ):
                return
            if isinstance(data, TenantOnboarded):
                await self._apply_tenant(event, session, after)
            elif isinstance(data, OrganisationRegistered | OrganisationUpdated):
                await self._apply_organisation(event, session)
            elif isinstance(
                data,
                VolunteerRegistered
                | VolunteerProfileUpdated
                | VolunteerAvailabilityChanged
                | VolunteerWithdrawn
                | VolunteerErased,
            ):
                await self._apply_volunteer(event, session, after)
            elif isinstance(data, NeedOpened | NeedUpdated | NeedCancelled | NeedClosed):
                await self._apply_need(event, session, after)

        await self._transact(event.tenant, work)

    async def _apply_tenant(self, event: Envelope[Any], session: AsyncClientSession, after: After) -> None:
        data: TenantOnboarded = event.data
        current = await self.store.tenant(event.tenant, session)
        if current is not None and current["version"] >= event.version:
            return
        document = {"_id": event.tenant, "version": event.version, **data.model_dump(mode="json")}
        await self.store.put_tenant(document, session)
        index = self.index(event.tenant)
        if timezone_of(data.timezone) != index.timezone:
            index.timezone = timezone_of(data.timezone)
            # Weekly slots are local times: open needs are re-read in the new zone.
            for need_id, need in list(index.open_needs.items()):
                doc = await self.store.need(event.tenant, need_id, session)
                if doc is not None:
                    index.open_needs[need_id] = need_from_document(doc, index.timezone)
                else:
                    index.open_needs.pop(need.id, None)

    async def _apply_organisation(self, event: Envelope[Any], session: AsyncClientSession) -> None:
        organisation_id = str(event.data.organisation_id)
        current = await self.store.organisation(event.tenant, organisation_id, session)
        if current is not None and current["version"] >= event.version:
            return
        document = {"version": event.version, **event.data.model_dump(mode="json")}
        await self.store.put_organisation(event.tenant, organisation_id, document, session)

    async def _apply_volunteer(self, event: Envelope[Any], session: AsyncClientSession, after: After) -> None:
        data = event.data
        tenant, volunteer_id, version = event.tenant, str(data.volunteer_id), event.version
        document = await self.store.volunteer(tenant, volunteer_id, session)
        if document is not None and document.get("erased"):
            return  # nothing comes back after an erasure
        if isinstance(data, VolunteerErased):
            await self._leave(event, volunteer_id, WithdrawReason.VOLUNTEER_WITHDRAWN, session, after)
            await self.store.put_volunteer(
                {"tenant": tenant, "volunteer_id": volunteer_id, "erased": True, "version": version}, session
            )
            await self.store.erase_from_proposals(tenant, volunteer_id, session)
            self.index(tenant).forget(volunteer_id)
            after.append(lambda: self.index(tenant).forget(volunteer_id))
            return
        if isinstance(data, VolunteerRegistered):
            if document is not None:
                return  # registered is the first event: a second one is a replay
            document = {
                "tenant": tenant,
                "volunteer_id": volunteer_id,
                "organisation_id": str(data.organisation_id) if data.organisation_id else None,
                "active": ConsentPurpose.MATCHING in data.consent.purposes,
                "withdrawn": False,
                "profile": data.model_dump(mode="json", include=PROFILE_FIELDS),
                "availability": data.availability.model_dump(mode="json"),
                "profile_version": version,
                "availability_version": version,
                "version": version,
            }
        elif document is None:
            raise UnknownAggregate(f"volunteer {volunteer_id} of tenant {tenant} is not known (yet)")
        elif isinstance(data, VolunteerProfileUpdated):
            if version <= document["profile_version"]:
                return
            document.update(profile=data.model_dump(mode="json", include=PROFILE_FIELDS), profile_version=version)
        elif isinstance(data, VolunteerAvailabilityChanged):
            if version <= document["availability_version"]:
                return
            document.update(availability=data.availability.model_dump(mode="json"), availability_version=version)
        elif isinstance(data, VolunteerWithdrawn):
            if document["withdrawn"]:
                return
            document.update(active=False, withdrawn=True)
        document["version"] = max(document["version"], version)
        await self.store.put_volunteer(document, session)
        # Idempotent, so safe inside a transaction that may be retried; rolled back by a reload.
        volunteer = volunteer_from_document(document)
        self.index(tenant).upsert(volunteer)
        if isinstance(data, VolunteerWithdrawn):
            await self._leave(event, volunteer_id, WithdrawReason.VOLUNTEER_WITHDRAWN, session, after)
        else:
            await self._rematch_for(event, volunteer_id, session, after)

    async def _leave(
        self, event: Envelope[Any], volunteer_id: str, reason: WithdrawReason, session: AsyncClientSession, after: After
    ) -> None:
        """Withdraw the volunteer's open proposals and end their engagements (the needs go round again)."""
        tenant, now = event.tenant, self.clock()
        self.index(tenant).upsert(
            volunteer_from_document({"tenant": tenant, "volunteer_id": volunteer_id, "active": False})
        )
        proposals = await self.store.proposals_of_volunteer(tenant, volunteer_id, session)
        for need_id in sorted({p["need_id"] for p in proposals if p["status"] in ("open", "accepted")}):
            work = await self._need_work(session, tenant, need_id, event, now)
            if work is None:
                continue
            work.withdraw_open(reason, volunteer_id)
            if volunteer_id in work.committed and work.document["status"] != "open":
                work.committed.remove(volunteer_id)  # the need is over: nobody to tell, only the id to drop
            elif volunteer_id in work.committed:
                work.step_back(volunteer_id)  # also asks the next person
            else:
                work.top_up()
            await self._save(work, session, after)

    async def _rematch_for(
        self, event: Envelope[Any], volunteer_id: str, session: AsyncClientSession, after: After
    ) -> None:
        """A volunteer arrived or changed: needs still looking for people may now find them."""
        index, now = self.index(event.tenant), self.clock()
        volunteer = index.volunteers.get(volunteer_id)
        if volunteer is None or not volunteer.active:
            return
        context = index.context(now)
        for need_id in sorted(index.open_needs):
            if isinstance(assess(volunteer, index.open_needs[need_id], context), str):
                continue
            work = await self._need_work(session, event.tenant, need_id, event, now)
            if work is not None and work.top_up():
                await self._save(work, session, after)

    async def _apply_need(self, event: Envelope[Any], session: AsyncClientSession, after: After) -> None:
        data, tenant, now = event.data, event.tenant, self.clock()
        need_id = str(data.need_id)
        document = await self.store.need(tenant, need_id, session)
        if document is None and not isinstance(data, NeedOpened):
            raise UnknownAggregate(f"need {need_id} of tenant {tenant} is not known (yet)")
        if document is not None and event.version <= document["version"]:
            return
        if isinstance(data, NeedOpened | NeedUpdated):
            details = data.model_dump(mode="json", include=NEED_FIELDS)
            if document is None:
                document = {
                    "tenant": tenant,
                    "need_id": need_id,
                    "version": event.version,
                    "status": "open",
                    "details": details,
                    "staffing": new_staffing(details, now, self.settings, tenant),
                }
                work = self._work(document, [], event, now, new=True)
                work.top_up()
            else:
                proposals = await self.store.proposals_for_need(tenant, need_id, session)
                document.update(version=event.version, details=details)
                work = self._work(document, proposals, event, now)
                if document["status"] == "open":
                    work.need_changed()
        else:
            assert document is not None, "refused above: only NeedOpened may come for an unknown need"
            proposals = await self.store.proposals_for_need(tenant, need_id, session)
            document["version"] = event.version
            work = self._work(document, proposals, event, now)
            if isinstance(data, NeedCancelled):
                work.close("cancelled", WithdrawReason.NEED_CANCELLED)
            else:
                work.close("closed", WithdrawReason.NEED_CLOSED)
        await self._save(work, session, after)

    # -- answers --------------------------------------------------------------------------------

    async def answer(
        self,
        tenant: str,
        proposal_id: str,
        choice: str,
        via: AnswerChannel,
        *,
        volunteer_id: str | None = None,
        need_id: str | None = None,
        reason: DeclineReason | None = None,
        cause: Envelope[Any] | None = None,
    ) -> Outcome:
        """Accept or decline a proposal; answering what is no longer open changes nothing."""

        async def work(session: AsyncClientSession, after: After) -> Outcome:
            if cause is not None and not await record_once(
                self.store.database, session, consumer=PARTNER_CONSUMER, event_id=str(cause.id), tenant=tenant
            ):
                return Outcome.DUPLICATE
            proposal = await self.store.proposal(tenant, proposal_id, session)
            if proposal is None or proposal.get("kind") != "proposal":
                return Outcome.NOT_FOUND
            if (volunteer_id and proposal["volunteer_id"] != volunteer_id) or (
                need_id and proposal["need_id"] != need_id
            ):
                return Outcome.NOT_FOUND
            now = self.clock()
            staffing = await self._need_work(session, tenant, proposal["need_id"], cause, now)
            if staffing is None:
                return Outcome.NOT_FOUND
            mine = staffing.proposals[proposal_id]
            settled = settled_outcome(mine, staffing.is_open, now)
            if settled is not None:
                return settled
            accepting = choice == "accept"
            outcome = staffing.accept(mine, via) if accepting else staffing.decline(mine, via, reason)
            await self._save(staffing, session, after)
            return outcome

        return await self._transact(tenant, work)

    async def step_back(self, tenant: str, volunteer_id: str, need_id: str) -> Outcome:
        async def work(session: AsyncClientSession, after: After) -> Outcome:
            staffing = await self._need_work(session, tenant, need_id, None, self.clock())
            if staffing is None:
                return Outcome.NOT_FOUND
            outcome = staffing.step_back(volunteer_id)
            if outcome is Outcome.STEPPED_BACK:
                await self._save(staffing, session, after)
            return outcome

        return await self._transact(tenant, work)

    async def pick(self, tenant: str, volunteer_id: str, need_id: str) -> Outcome:
        async def work(session: AsyncClientSession, after: After) -> Outcome:
            staffing = await self._need_work(session, tenant, need_id, None, self.clock())
            if staffing is None:
                return Outcome.NOT_FOUND
            outcome = staffing.pick(volunteer_id)
            if outcome in (Outcome.PICKED, Outcome.ACCEPTED):
                await self._save(staffing, session, after)
            return outcome

        return await self._transact(tenant, work)

    def open_needs_for(self, tenant: str, volunteer_id: str) -> list[tuple[str, Candidate]]:
        """Open needs that fit the volunteer, best first, with the same reasons a proposal gives."""
        index = self.index(tenant)
        volunteer = index.volunteers.get(volunteer_id)
        if volunteer is None:
            return []
        context = index.context(self.clock())
        found = [
            (need_id, fit)
            for need_id, need in index.open_needs.items()
            if (fit := candidate(volunteer, need, context)) is not None
        ]
        return sorted(found, key=lambda item: (-item[1].score, item[0]))

    # -- the timer ------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Expire overdue proposals (asking the next person) and escalate needs out of time.

        Idempotent: what is already expired or escalated is not found again."""
        now = self.clock()
        changed = 0
        for tenant, need_id in sorted(set(await self.store.overdue_proposals(now))):
            changed += await self._on_need(tenant, need_id, lambda work: work.expire_overdue() > 0)
        for tenant, need_id in await self.store.needs_to_escalate(now):
            changed += await self._on_need(tenant, need_id, lambda work: work.escalate())
        return changed

    async def _on_need(self, tenant: str, need_id: str, change: Callable[[NeedWork], bool]) -> int:
        async def work(session: AsyncClientSession, after: After) -> int:
            staffing = await self._need_work(session, tenant, need_id, None, self.clock())
            if staffing is None or not change(staffing):
                return 0
            await self._save(staffing, session, after)
            return 1

        return await self._transact(tenant, work)

    async def run_timer(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database may be away; try again next time
                log.warning("matching timer pass failed", error=repr(error))
            await asyncio.sleep(self.settings.timer_interval_seconds)


def settled_outcome(proposal: Document, need_is_open: bool, now: datetime) -> Outcome | None:
    """The outcome for a proposal that can no longer be answered, or None if it can."""
    status = proposal["status"]
    if status == "accepted":
        return Outcome.ALREADY_ACCEPTED
    if status == "declined":
        return Outcome.ALREADY_DECLINED
    if status == "expired" or (status == "open" and proposal["expires_at"] <= now):
        return Outcome.EXPIRED  # the timer publishes the expiry and asks the next person
    if status != "open" or not need_is_open:
        return Outcome.NO_LONGER_NEEDED
    return None
