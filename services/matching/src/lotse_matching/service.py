"""The matching service's use cases: apply registry events, answer proposals, pick needs, and
the timer that expires proposals and escalates needs.

Every use case runs under its tenant's lock (one writer per tenant in this process, so the
index and the database move together) and in one MongoDB transaction with its outbox events
and, for consumed events, its inbox record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
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
    VolunteerCertificateChecked,
    VolunteerCertificateCheckRevoked,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
)
from lotse_contracts.base import EventData
from lotse_contracts.events.matching import AnswerChannel, WithdrawReason
from lotse_contracts.events.needs import NeedDetails
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import ConsentPurpose
from lotse_contracts.events.volunteers import VolunteerProfile
from lotse_matching import audited
from lotse_matching.calendar_feed import new_secret, secret_sha256
from lotse_matching.candidates import Candidate, Engagement, assess, candidate, rough_distance_km
from lotse_matching.domain import NeedWork, Outcome, new_staffing
from lotse_matching.hours import (
    COMMITTED,
    Commitment,
    HoursDraft,
    HoursOutcome,
    HoursRules,
    Refusal,
    check,
    commitment,
    local_day,
    may_still_log,
    minutes_on,
)
from lotse_matching.index import FAIRNESS_WINDOW, TenantIndex
from lotse_matching.office import BrokenRule, Filters, NeedSituation, Windows, situation
from lotse_matching.ownership import NotOwner, Ownership
from lotse_matching.profiles import need_from_record, timezone_of, volunteer_from_document
from lotse_matching.sealing import PersonKeys
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import (
    Actor,
    CalendarFeed,
    Document,
    HoursEntry,
    HoursState,
    MatchingStore,
    NeedRecord,
    NeedStatus,
    OfficeRequest,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Session,
    StaffingState,
    Store,
    Transaction,
    Transactions,
)
from lotse_runtime.audit import Operation
from lotse_runtime.unit_of_work import Batch, UnitOfWork, WaitedForLock, current_batch

log = structlog.get_logger("lotse.matching")
T = TypeVar("T")
E = TypeVar("E", bound=EventData)
REGISTRY_CONSUMER = "matching-registry"
PARTNER_CONSUMER = "matching-partner"
PROFILE_FIELDS = set(VolunteerProfile.model_fields) - {"contact"}  # no contact data (the language aside)
NEED_FIELDS = set(NeedDetails.model_fields)


class _CallbacksTaken:
    """A transaction whose after-commit callbacks its caller runs itself (see ``_run_in_batch``)."""

    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction
        self.callbacks: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        return self.transaction.session

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool:
        return await self.transaction.record_once(consumer, event)

    async def append_event(self, topic: str, event: Envelope[Any]) -> None:
        await self.transaction.append_event(topic, event)

    async def append_events(self, entries: Sequence[tuple[str, Envelope[Any]]]) -> None:
        await self.transaction.append_events(entries)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def before_commit(self, key: Hashable, guard: Callable[[AsyncClientSession], Awaitable[None]]) -> None:
        self.transaction.before_commit(key, guard)

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
        self.transaction.audit(tenant, operation, resource_type, resource_id, fields, subject_id=subject_id)


class UnknownAggregate(Exception):
    """An event about a volunteer or need not seen yet; retried briefly, then dead-lettered."""


class Matching:
    """The use cases on a `MatchingStore` and its units of work: MongoDB's (`client` and a
    `Store`, with ``wake`` the relay's wake-up after a commit that appended events), or any
    other given as ``transactions`` (the unit tests' in-memory fakes). ``person_keys`` seal each
    proposal's fit with its volunteer's key (``sealing``)."""

    def __init__(
        self,
        settings: MatchingSettings,
        client: AsyncMongoClient[Document] | None,
        store: MatchingStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wake: Callable[[], None] = lambda: None,
        *,
        person_keys: PersonKeys,
        transactions: Transactions | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.settings = settings
        # Which tenants this replica matches for; alone (no consumer group), every one.
        self.ownership = ownership or Ownership(everything=True)
        self.client = client
        self.store = store
        self.person_keys = person_keys
        if transactions is None:
            if client is None or not isinstance(store, Store):
                raise TypeError("without a MongoDB client and Store, Matching needs its units of work (transactions)")
            transactions = UnitOfWork(client, store.database, wake=wake)
        self.unit_of_work = transactions
        self.clock = clock
        self.indexes: dict[str, TenantIndex] = {}
        # A batch holding a tenant gives way to a request that waits for it (WaitedForLock).
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(WaitedForLock)
        self.stale: set[str] = set()  # tenants whose index could not be rebuilt after a failure
        # The generation of its partition each index was built in: an index built before this
        # replica gave the partition up (and took it back) misses the other owner's changes.
        self.built_in: dict[str, int | None] = {}
        self._warming: set[asyncio.Task[None]] = set()  # index builds of partitions just taken

    def index(self, tenant: str) -> TenantIndex:
        """The tenant's index; NotOwner while another replica matches for the tenant or while its
        index is still being built here (a unit of work builds it first: ``_run``)."""
        if not self.ownership.owns(tenant):
            raise NotOwner(tenant)
        if not self.ownership.everything and not self._built_in_this_generation(tenant):
            raise NotOwner(tenant, "its index is being built")
        if tenant not in self.indexes:
            self.indexes[tenant] = TenantIndex(tenant)
        return self.indexes[tenant]

    def _built_in_this_generation(self, tenant: str) -> bool:
        """Whether the tenant's index was built in the generation of its partition this replica
        holds now (one built before a give-up and a take back misses the other owner's changes)."""
        return tenant in self.indexes and self.built_in.get(tenant) == self.ownership.generation_of(tenant)

    def _index_current(self, tenant: str) -> bool:
        """Whether a unit of work may use the tenant's index as it is (not left stale by a failure)."""
        return self._built_in_this_generation(tenant) and tenant not in self.stale

    # -- rebuilding the index from the database -------------------------------------------------

    async def load(self) -> None:
        for tenant in sorted(await self.store.known_tenants()):
            await self.load_tenant(tenant)

    async def take_partitions(self, partitions: set[int]) -> None:
        """The work topic's ``partitions`` are this replica's now. Their tenants' indexes are built
        in the background (``warm_up``), not here: the group stops this member's heartbeats while
        it takes partitions, and expels it if that lasts longer than its session. Until a tenant's
        index is built, its first unit of work builds it (under the tenant's lock) and its reads
        answer 503."""
        await self.ownership.take(partitions)
        log.info("work partitions taken", partitions=sorted(partitions))
        task = asyncio.create_task(self.warm_up(partitions), name="matching-warm-up")
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def warm_up(self, partitions: set[int]) -> None:
        """Build the indexes of the known tenants of ``partitions`` that are still this replica's."""
        started = time.monotonic()
        try:
            tenants = self.ownership.owned_of(await self.store.known_tenants(), partitions)
            for tenant in tenants:
                async with self.locks[tenant]:
                    if self.ownership.owns(tenant) and not self._index_current(tenant):
                        with contextlib.suppress(NotOwner):  # given up meanwhile
                            await self.ownership.counted(tenant)  # only then is the database all there
                            await self.load_tenant(tenant)
        except Exception as error:  # noqa: BLE001 - each tenant's first unit of work builds its index then
            log.warning("building the indexes of taken partitions failed", error=repr(error))
            return
        log.info(
            "indexes built", partitions=sorted(partitions), tenants=len(tenants), seconds=time.monotonic() - started
        )

    async def give_up_partitions(self, partitions: set[int]) -> None:
        """``partitions`` go to another replica: refuse their tenants' work from now on, wait for
        what is in flight (under each tenant's lock), then drop their indexes."""
        await self.ownership.give_up(partitions)
        for tenant in self.ownership.owned_of(list(self.indexes), partitions):
            async with self.locks[tenant]:
                self._drop_index(tenant)
        log.info("work partitions given up", partitions=sorted(partitions), tenants=len(self.indexes))

    def _drop_index(self, tenant: str) -> None:
        self.indexes.pop(tenant, None)
        self.built_in.pop(tenant, None)
        self.stale.discard(tenant)

    async def load_tenant(self, tenant: str) -> None:
        generation = self.ownership.generation_of(tenant)
        settings = await self.store.tenant(tenant)
        index = TenantIndex(tenant, settings.get("timezone") if settings else None)
        index.upsert_many([volunteer_from_document(document) async for document in self.store.volunteers_of(tenant)])
        for record in await self.store.open_needs_of(tenant):
            need = need_from_record(record, index.timezone)
            for volunteer_id in record.staffing.committed:
                index.add_engagement(volunteer_id, Engagement(need.id, need.pieces))
            if record.staffing.state is not StaffingState.STAFFED:
                index.open_needs[need.id] = need
        for volunteer_id, at in await self.store.asks_since(tenant, self.clock() - FAIRNESS_WINDOW):
            if volunteer_id in index.volunteers:  # nobody erased comes back, not even as an id
                index.record_ask(volunteer_id, at)
        if not self.ownership.owns(tenant):  # given up while it was built (a revocation waits for none)
            self._drop_index(tenant)
            return
        self.indexes[tenant] = index
        self.built_in[tenant] = generation
        self.stale.discard(tenant)

    # -- the unit of work -----------------------------------------------------------------------

    async def _run(self, tenant: str, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """The runtime's unit of work, under the tenant's lock; the index changes after the commit."""
        batch = current_batch()
        if batch is not None:
            return await self._run_in_batch(batch, tenant, work)
        async with self.locks[tenant]:
            if not self.ownership.owns(tenant):
                raise NotOwner(tenant)  # its partition moved while this waited for the lock
            try:
                await self.ownership.counted(tenant)
                if not self._index_current(tenant):
                    await self.load_tenant(tenant)
                generation = self.ownership.generation_of(tenant)  # once: PyMongo may run the body again

                async def fenced(transaction: Transaction) -> T:
                    self.ownership.fence(tenant, transaction, generation)
                    return await work(transaction)

                return await self.unit_of_work.run(fenced)
            except (UnknownAggregate, NotOwner):
                raise  # raised before anything in memory changed
            except Exception:
                # The index may hold changes the database refused; rebuild it from the truth.
                await self._reload(tenant)
                raise

    async def _run_in_batch(self, batch: Batch, tenant: str, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """A consumer event's unit of work inside the consumer's batch (one transaction for many events).

        A later event of the batch must see what earlier ones did, also in the index (a volunteer's
        open proposals, so that two needs of one batch do not over-propose them): each event's index
        changes are applied as soon as its work is done, not at the batch's commit. The tenant stays
        locked until the batch ends, so that no use case sees the index ahead of the database and
        writes on it; if the batch is abandoned, the tenant's index is rebuilt from the database.
        """
        wanted = {event.tenant for event in batch.events} | {tenant}
        missing = [each for each in sorted(wanted) if not batch.holds(self.locks[each])]
        if len(missing) == len(wanted):
            # The locks of every tenant of the batch at once, in one order for all batches: the
            # registry's and the partners' batches never hold one tenant each while waiting for the other's.
            for each in missing:
                await batch.hold(self.locks[each])
        else:
            # A tenant none of the batch's events names, needed later: waiting for it out of order
            # could deadlock, so the batch is applied one by one if it is held (LockBusy).
            for each in missing:
                await batch.hold(self.locks[each], wait=False)
        if not self.ownership.owns(tenant):
            raise NotOwner(tenant)  # its partition moved while the batch waited for the lock
        await self.ownership.counted(tenant)
        if batch.on_abort(("matching-index", tenant), lambda: self._reload(tenant)):
            # The tenant's first unit of work in the batch. Stale until the batch is known to be
            # committed: whatever goes wrong (an abort hook that fails, a commit of unknown outcome),
            # the tenant's next unit of work rebuilds the index from the database.
            if not self._index_current(tenant):
                await self.load_tenant(tenant)
            self.stale.add(tenant)
            batch.after_commit(lambda: self.stale.discard(tenant))

        generation = self.ownership.generation_of(tenant)

        async def at_once(transaction: Transaction) -> T:
            self.ownership.fence(tenant, transaction, generation)  # once per partition and batch
            taken = _CallbacksTaken(transaction)
            result = await work(taken)
            for callback in taken.callbacks:
                callback()
            return result

        return await self.unit_of_work.run(at_once)

    async def _reload(self, tenant: str) -> None:
        """Rebuild the tenant's index; if the database is away, at the tenant's next unit of work."""
        if not self.ownership.owns(tenant):  # fenced out meanwhile: its new owner builds it
            self._drop_index(tenant)
            return
        self.stale.add(tenant)
        await self.load_tenant(tenant)

    async def _need_work(
        self, transaction: Transaction, tenant: str, need_id: str, cause: Envelope[Any] | None, now: datetime
    ) -> NeedWork | None:
        record = await self.store.need_record(tenant, need_id, transaction.session)
        if record is None:
            return None
        proposals = await self.store.proposal_records_for_need(tenant, need_id, transaction.session)
        return self._work(record, proposals, cause, now)

    def _work(
        self,
        record: NeedRecord,
        proposals: list[Proposal],
        cause: Envelope[Any] | None,
        now: datetime,
        new: bool = False,
    ) -> NeedWork:
        index = self.index(record.tenant)
        return NeedWork(
            record=record,
            proposals=proposals,
            index=index,
            settings=self.settings,
            now=now,
            cause=cause,
            is_new=new,
        )

    async def _save(self, work: NeedWork, transaction: Transaction) -> None:
        await work.save(self.store, transaction, self.person_keys)
        for effect in work.after:
            transaction.after_commit(effect)

    # -- registry events ------------------------------------------------------------------------

    async def apply(self, event: Envelope[E], change: Callable[[Envelope[E], Transaction], Awaitable[None]]) -> None:
        """Apply a registry event once: its inbox record and ``change`` in one unit of work."""

        async def work(transaction: Transaction) -> None:
            if await transaction.record_once(REGISTRY_CONSUMER, event):
                await change(event, transaction)

        await self._run(event.tenant, work)

    async def nothing_to_change(self, event: Envelope[EventData], transaction: Transaction) -> None:
        """Registry events matching has no use for: only their inbox record."""

    async def tenant_onboarded(self, event: Envelope[TenantOnboarded], transaction: Transaction) -> None:
        data, session = event.data, transaction.session
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
                record = await self.store.need_record(event.tenant, need_id, session)
                if record is not None:
                    index.open_needs[need_id] = need_from_record(record, index.timezone)
                else:
                    index.open_needs.pop(need.id, None)

    async def organisation_changed(
        self, event: Envelope[OrganisationRegistered | OrganisationUpdated], transaction: Transaction
    ) -> None:
        organisation_id = str(event.data.organisation_id)
        current = await self.store.organisation(event.tenant, organisation_id, transaction.session)
        if current is not None and current["version"] >= event.version:
            return
        document = {"version": event.version, **event.data.model_dump(mode="json")}
        await self.store.put_organisation(event.tenant, organisation_id, document, transaction.session)

    async def volunteer_registered(self, event: Envelope[VolunteerRegistered], transaction: Transaction) -> None:
        data, tenant, volunteer_id = event.data, event.tenant, str(event.data.volunteer_id)
        if await self.store.volunteer(tenant, volunteer_id, transaction.session) is not None:
            return  # registered is the first event: a second one is a replay (or came after an erasure)
        document = {
            "tenant": tenant,
            "volunteer_id": volunteer_id,
            "organisation_id": str(data.organisation_id) if data.organisation_id else None,
            "active": ConsentPurpose.MATCHING in data.consent.purposes,
            "withdrawn": False,
            "profile": data.model_dump(mode="json", include=PROFILE_FIELDS),
            # The language of the answer pages: all matching keeps of the contact data.
            "preferred_language": data.contact.preferred_language,
            "availability": data.availability.model_dump(mode="json"),
            "profile_version": event.version,
            "availability_version": event.version,
            "version": event.version,
        }
        await self._volunteer_changed(event, document, transaction)

    async def volunteer_profile_updated(
        self, event: Envelope[VolunteerProfileUpdated], transaction: Transaction
    ) -> None:
        document = await self._known_volunteer(event, str(event.data.volunteer_id), transaction)
        if document is None or event.version <= document["profile_version"]:
            return
        profile = event.data.model_dump(mode="json", include=PROFILE_FIELDS)
        document.update(
            profile=profile, preferred_language=event.data.contact.preferred_language, profile_version=event.version
        )
        await self._volunteer_changed(event, document, transaction)

    async def volunteer_availability_changed(
        self, event: Envelope[VolunteerAvailabilityChanged], transaction: Transaction
    ) -> None:
        document = await self._known_volunteer(event, str(event.data.volunteer_id), transaction)
        if document is None or event.version <= document["availability_version"]:
            return
        availability = event.data.availability.model_dump(mode="json")
        document.update(availability=availability, availability_version=event.version)
        await self._volunteer_changed(event, document, transaction)

    async def volunteer_certificates_checked(
        self,
        event: Envelope[VolunteerCertificateChecked] | Envelope[VolunteerCertificateCheckRevoked],
        transaction: Transaction,
    ) -> None:
        """The checks the office has in force (both events carry them all): a need that requires a
        certificate looks only at these, never at what the profile declares."""
        document = await self._known_volunteer(event, str(event.data.volunteer_id), transaction)
        if document is None or event.version <= document.get("checks_version", 0):
            return
        checks = [check.model_dump(mode="json") for check in event.data.checks]
        document.update(certificate_checks=checks, checks_version=event.version)
        await self._volunteer_changed(event, document, transaction)

    async def volunteer_withdrawn(self, event: Envelope[VolunteerWithdrawn], transaction: Transaction) -> None:
        document = await self._known_volunteer(event, str(event.data.volunteer_id), transaction)
        if document is None or document["withdrawn"]:
            return
        document.update(active=False, withdrawn=True)
        await self._volunteer_changed(event, document, transaction, leaving=True)

    async def volunteer_erased(self, event: Envelope[VolunteerErased], transaction: Transaction) -> None:
        await self._erase(event, str(event.data.volunteer_id), transaction)

    async def volunteer_key_destroyed(self, event: Envelope[Any], transaction: Transaction) -> None:
        """A sealed event of a volunteer whose key is destroyed: only an erasure destroys one, so
        the volunteer is recorded as erased now, as ``volunteer.erased`` does (which follows on the
        same partition, or came before). Their later events then change nothing, instead of
        waiting for a registration that will never open and being dead-lettered."""
        await self._erase(event, event.subject, transaction)

    async def _erase(self, event: Envelope[Any], volunteer_id: str, transaction: Transaction) -> None:
        tenant, session = event.tenant, transaction.session
        document = await self.store.volunteer(tenant, volunteer_id, session)
        if document is not None and document.get("erased"):
            return  # nothing comes back after an erasure
        await self._leave(event, volunteer_id, WithdrawReason.VOLUNTEER_WITHDRAWN, transaction)
        await self.store.put_volunteer(
            {"tenant": tenant, "volunteer_id": volunteer_id, "erased": True, "version": event.version}, session
        )
        await self.store.erase_from_proposals(tenant, volunteer_id, session)
        # The key topic's tombstone may be missed (compacted away first); the erasure is not.
        await self.store.destroy_person_key(tenant, volunteer_id, session)
        # The feed's digest names the volunteer, and the feed would go on serving their needs.
        await self.store.delete_calendar_feed(tenant, volunteer_id, session)
        await self.store.delete_hours_of(tenant, volunteer_id, session)
        self.index(tenant).forget(volunteer_id)
        transaction.after_commit(lambda: self.index(tenant).forget(volunteer_id))

    async def _known_volunteer(
        self, event: Envelope[Any], volunteer_id: str, transaction: Transaction
    ) -> Document | None:
        """The volunteer the event changes; None after an erasure (nothing comes back)."""
        document = await self.store.volunteer(event.tenant, volunteer_id, transaction.session)
        if document is not None and document.get("erased"):
            return None
        if document is None:
            raise UnknownAggregate(f"volunteer {volunteer_id} of tenant {event.tenant} is not known (yet)")
        return document

    async def _volunteer_changed(
        self, event: Envelope[Any], document: Document, transaction: Transaction, *, leaving: bool = False
    ) -> None:
        document["version"] = max(document["version"], event.version)
        await self.store.put_volunteer(document, transaction.session)
        # Idempotent, so safe inside a transaction that may be retried; rolled back by a reload.
        self.index(event.tenant).upsert(volunteer_from_document(document))
        if leaving:
            await self._leave(event, document["volunteer_id"], WithdrawReason.VOLUNTEER_WITHDRAWN, transaction)
        else:
            await self._rematch_for(event, document["volunteer_id"], transaction)

    async def _leave(
        self, event: Envelope[Any], volunteer_id: str, reason: WithdrawReason, transaction: Transaction
    ) -> None:
        """Withdraw the volunteer's open proposals and end their engagements (the needs go round again)."""
        tenant, now = event.tenant, self.clock()
        self.index(tenant).upsert(
            volunteer_from_document({"tenant": tenant, "volunteer_id": volunteer_id, "active": False})
        )
        proposals = await self.store.proposal_records_of_volunteer(tenant, volunteer_id, transaction.session)
        for need_id in sorted(
            {p.need_id for p in proposals if p.status in (ProposalStatus.OPEN, ProposalStatus.ACCEPTED)}
        ):
            work = await self._need_work(transaction, tenant, need_id, event, now)
            if work is None:
                continue
            work.withdraw_open(reason, volunteer_id)
            if volunteer_id in work.committed and work.record.status is not NeedStatus.OPEN:
                work.committed.remove(volunteer_id)  # the need is over: nobody to tell, only the id to drop
            elif volunteer_id in work.committed:
                work.step_back(volunteer_id)  # also asks the next person
            else:
                work.top_up()
            await self._save(work, transaction)

    async def _rematch_for(self, event: Envelope[Any], volunteer_id: str, transaction: Transaction) -> None:
        """A volunteer arrived or changed: needs still looking for people may now find them."""
        index, now = self.index(event.tenant), self.clock()
        volunteer = index.volunteers.get(volunteer_id)
        if volunteer is None or not volunteer.active:
            return
        context = index.context(now)
        for need_id in sorted(index.open_needs):
            if isinstance(assess(volunteer, index.open_needs[need_id], context), str):
                continue
            work = await self._need_work(transaction, event.tenant, need_id, event, now)
            if work is not None and work.top_up():
                await self._save(work, transaction)

    async def need_opened(self, event: Envelope[NeedOpened], transaction: Transaction) -> None:
        tenant, need_id, now = event.tenant, str(event.data.need_id), self.clock()
        record = await self.store.need_record(tenant, need_id, transaction.session)
        details = event.data.model_dump(mode="json", include=NEED_FIELDS)
        if record is None:
            record = NeedRecord(
                tenant=tenant,
                need_id=need_id,
                version=event.version,
                status=NeedStatus.OPEN,
                details=details,
                staffing=new_staffing(details, now, self.settings, tenant),
            )
            work = self._work(record, [], event, now, new=True)
            work.top_up()
            await self._save(work, transaction)
        elif event.version > record.version:
            await self._details_changed(event, record, details, transaction, now)

    async def need_updated(self, event: Envelope[NeedUpdated], transaction: Transaction) -> None:
        record = await self._known_need(event, str(event.data.need_id), transaction)
        if record is not None:
            details = event.data.model_dump(mode="json", include=NEED_FIELDS)
            await self._details_changed(event, record, details, transaction, self.clock())

    async def need_cancelled(self, event: Envelope[NeedCancelled], transaction: Transaction) -> None:
        await self._close(
            event, str(event.data.need_id), NeedStatus.CANCELLED, WithdrawReason.NEED_CANCELLED, transaction
        )

    async def need_closed(self, event: Envelope[NeedClosed], transaction: Transaction) -> None:
        await self._close(event, str(event.data.need_id), NeedStatus.CLOSED, WithdrawReason.NEED_CLOSED, transaction)

    async def _known_need(self, event: Envelope[Any], need_id: str, transaction: Transaction) -> NeedRecord | None:
        """The need the event changes; None if the event is older than what is held."""
        record = await self.store.need_record(event.tenant, need_id, transaction.session)
        if record is None:
            raise UnknownAggregate(f"need {need_id} of tenant {event.tenant} is not known (yet)")
        return record if event.version > record.version else None

    async def _details_changed(
        self, event: Envelope[Any], record: NeedRecord, details: Document, transaction: Transaction, now: datetime
    ) -> None:
        proposals = await self.store.proposal_records_for_need(event.tenant, record.need_id, transaction.session)
        record.version, record.details = event.version, details
        work = self._work(record, proposals, event, now)
        if record.status is NeedStatus.OPEN:
            work.need_changed()
        await self._save(work, transaction)

    async def _close(
        self, event: Envelope[Any], need_id: str, status: NeedStatus, reason: WithdrawReason, transaction: Transaction
    ) -> None:
        now = self.clock()
        record = await self._known_need(event, need_id, transaction)
        if record is None:
            return
        proposals = await self.store.proposal_records_for_need(event.tenant, need_id, transaction.session)
        record.version = event.version
        work = self._work(record, proposals, event, now)
        work.close(status, reason)
        await self._save(work, transaction)

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

        async def work(transaction: Transaction) -> Outcome:
            if cause is not None and not await transaction.record_once(PARTNER_CONSUMER, cause):
                return Outcome.DUPLICATE
            proposal = await self.store.proposal_record(tenant, proposal_id, transaction.session)
            if proposal is None or proposal.kind is not ProposalKind.PROPOSAL:
                return Outcome.NOT_FOUND
            if (volunteer_id and proposal.volunteer_id != volunteer_id) or (need_id and proposal.need_id != need_id):
                return Outcome.NOT_FOUND
            now = self.clock()
            staffing = await self._need_work(transaction, tenant, proposal.need_id, cause, now)
            if staffing is None:
                return Outcome.NOT_FOUND
            mine = staffing.proposals[proposal_id]
            settled = settled_outcome(mine, staffing.is_open, now)
            if settled is not None:
                return settled
            accepting = choice == "accept"
            outcome = staffing.accept(mine, via) if accepting else staffing.decline(mine, via, reason)
            await self._save(staffing, transaction)
            return outcome

        return await self._run(tenant, work)

    async def answerable(self, tenant: str, proposal_id: str, volunteer_id: str, need_id: str) -> bool:
        """Whether a partner's answer names a proposal of this tenant, volunteer and need (any replica
        may ask: it reads the database only)."""
        proposal = await self.store.proposal_record(tenant, proposal_id)
        return (
            proposal is not None
            and proposal.kind is ProposalKind.PROPOSAL
            and (proposal.volunteer_id, proposal.need_id) == (volunteer_id, need_id)
        )

    async def step_back(self, tenant: str, volunteer_id: str, need_id: str) -> Outcome:
        async def work(transaction: Transaction) -> Outcome:
            staffing = await self._need_work(transaction, tenant, need_id, None, self.clock())
            if staffing is None:
                return Outcome.NOT_FOUND
            outcome = staffing.step_back(volunteer_id)
            if outcome is Outcome.STEPPED_BACK:
                await self._save(staffing, transaction)
            return outcome

        return await self._run(tenant, work)

    async def pick(self, tenant: str, volunteer_id: str, need_id: str) -> Outcome:
        async def work(transaction: Transaction) -> Outcome:
            staffing = await self._need_work(transaction, tenant, need_id, None, self.clock())
            if staffing is None:
                return Outcome.NOT_FOUND
            outcome = staffing.pick(volunteer_id)
            if outcome in (Outcome.PICKED, Outcome.ACCEPTED):
                await self._save(staffing, transaction)
            return outcome

        return await self._run(tenant, work)

    async def new_calendar_feed(self, tenant: str, volunteer_id: str) -> str | None:
        """A new secret for the volunteer's calendar feed, replacing (so revoking) any earlier
        one; None for a volunteer matching does not know or has erased. The secret is returned
        once and only its digest is stored.

        Under the tenant's lock and in a transaction, like the erasure, so that no feed is
        created for a volunteer whose erasure has just gone through."""
        secret = new_secret()

        async def work(transaction: Transaction) -> bool:
            volunteer = await self.store.volunteer(tenant, volunteer_id, transaction.session)
            if volunteer is None or volunteer.get("erased"):
                return False
            feed = CalendarFeed(tenant, volunteer_id, secret_sha256(secret), self.clock())
            await self.store.put_calendar_feed(feed, transaction.session)
            fields = audited.written_fields(None, feed.to_document())
            operation, feeds = Operation.CREATE, audited.CALENDAR_FEEDS
            transaction.audit(tenant, operation, feeds, volunteer_id, fields, subject_id=volunteer_id)
            return True

        return secret if await self._run(tenant, work) else None

    async def revoke_calendar_feed(self, tenant: str, volunteer_id: str) -> bool:
        """Delete the volunteer's calendar feed (its secret stops working); False if there was none."""

        async def work(transaction: Transaction) -> bool:
            if not await self.store.delete_calendar_feed(tenant, volunteer_id, transaction.session):
                return False
            transaction.audit(
                tenant, Operation.DELETE, audited.CALENDAR_FEEDS, volunteer_id, set(), subject_id=volunteer_id
            )
            return True

        return await self._run(tenant, work)

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

    def rough_distance_for(self, tenant: str, volunteer_id: str, need: NeedRecord) -> float | None:
        """How far the need is from the volunteer's home, as a volunteer who has not committed
        reads it (`candidates.rough_distance_km`); None without both points."""
        volunteer = self.index(tenant).volunteers.get(volunteer_id)
        point = (need.details.get("place") or {}).get("point")
        if volunteer is None or volunteer.point is None or not point:
            return None
        return rough_distance_km(volunteer.point, (point["lat"], point["lon"]))

    # -- the coordination office ----------------------------------------------------------------

    def _may_choose(self, scope: OfficeScope, volunteer_id: str) -> bool:
        """A volunteer matching knows (not erased) whom the caller may see: coordinators anyone of
        the tenant, initiative admins their own organisation's people (as in the registry)."""
        volunteer = self.index(scope.tenant).volunteers.get(volunteer_id)
        return volunteer is not None and scope.may_see_volunteer(volunteer.organisation_id)

    async def office_need(self, scope: OfficeScope, need_id: str) -> tuple[NeedRecord, list[Proposal]] | None:
        """A need the caller manages, with its proposals and picks; None if there is none."""
        record = await self.store.need_record(scope.tenant, need_id)
        if record is None or not scope.may_manage(record):
            return None
        return record, await self.store.proposal_records_for_need(scope.tenant, need_id)

    async def office_dashboard(self, scope: OfficeScope, filters: Filters, windows: Windows) -> list[NeedSituation]:
        """The needs open at the registry that want something done, soonest start first."""
        now, timezone = self.clock(), self.index(scope.tenant).timezone
        waiting: defaultdict[str, list[Proposal]] = defaultdict(list)
        for proposal in await self.store.open_proposal_records(scope.tenant):
            waiting[proposal.need_id].append(proposal)
        found = []
        for record in await self.store.open_needs_of(scope.tenant):
            if not scope.may_manage(record):
                continue
            where = situation(record, waiting[record.need_id], timezone, now, windows)
            if where is not None and filters.match(record, where.timing, timezone):
                found.append(where)
        return sorted(found, key=lambda where: (where.timing.starts_at, where.record.need_id))

    async def office_check(self, scope: OfficeScope, need_id: str, volunteer_id: str) -> OfficeResult:
        """What proposing the volunteer would find, without proposing: the broken rules, or the
        fit with score and reasons."""
        found = await self.office_need(scope, need_id)
        if found is None or not self._may_choose(scope, volunteer_id):
            return OfficeResult(Outcome.NOT_FOUND)
        work = self._work(*found, None, self.clock())
        if not work.is_open:
            return OfficeResult(Outcome.NO_LONGER_NEEDED)
        broken, fit = work.check(volunteer_id)
        return OfficeResult(Outcome.BROKEN_RULES if fit is None else Outcome.PROPOSED, tuple(broken), fit=fit)

    async def office_propose(
        self, scope: OfficeScope, need_id: str, volunteer_id: str, request: IdempotentRequest | None = None
    ) -> OfficeResult:
        def act(work: NeedWork) -> OfficeResult:
            if not self._may_choose(scope, volunteer_id):
                return OfficeResult(Outcome.NOT_FOUND)
            outcome, broken, proposal_id = work.propose_chosen(volunteer_id, scope.actor)
            return OfficeResult(outcome, tuple(broken), (proposal_id,) if proposal_id else ())

        return await self._office(scope, need_id, request, act, {Outcome.PROPOSED})

    async def office_answer(
        self,
        scope: OfficeScope,
        need_id: str,
        proposal_id: str,
        choice: str,
        reason: DeclineReason | None = None,
        request: IdempotentRequest | None = None,
    ) -> OfficeResult:
        """An answer the volunteer gave the office by phone or in person, under the same rules as
        their own; the office is recorded as where it was given and who recorded it."""

        def act(work: NeedWork) -> OfficeResult:
            proposal = work.proposals.get(proposal_id)
            if proposal is None or proposal.kind is not ProposalKind.PROPOSAL:
                return OfficeResult(Outcome.NOT_FOUND)
            settled = settled_outcome(proposal, work.is_open, work.now)
            if settled is not None:
                return OfficeResult(settled)
            via = AnswerChannel.COORDINATION_OFFICE
            if choice == "accept":
                return OfficeResult(work.accept(proposal, via, recorded_by=scope.actor), proposal_ids=(proposal_id,))
            return OfficeResult(
                work.decline(proposal, via, reason, recorded_by=scope.actor), proposal_ids=(proposal_id,)
            )

        return await self._office(scope, need_id, request, act, {Outcome.ACCEPTED, Outcome.DECLINED})

    async def office_release(
        self, scope: OfficeScope, need_id: str, volunteer_id: str, request: IdempotentRequest | None = None
    ) -> OfficeResult:
        """Release a committed volunteer (who called in sick): as if they stepped back themselves."""

        def act(work: NeedWork) -> OfficeResult:
            if work.record.status is not NeedStatus.OPEN:
                return OfficeResult(Outcome.NO_LONGER_NEEDED)
            if volunteer_id not in work.committed:
                known = volunteer_id in self.index(scope.tenant).volunteers
                return OfficeResult(Outcome.NOT_COMMITTED if known else Outcome.NOT_FOUND)
            return OfficeResult(work.step_back(volunteer_id, released_by=scope.actor))

        return await self._office(scope, need_id, request, act, {Outcome.STEPPED_BACK})

    async def office_round(
        self, scope: OfficeScope, need_id: str, request: IdempotentRequest | None = None
    ) -> OfficeResult:
        """Start a proposal round now (after everybody declined, or an escalation)."""

        def act(work: NeedWork) -> OfficeResult:
            outcome, created = work.new_round(scope.actor)
            return OfficeResult(outcome, proposal_ids=tuple(created))

        return await self._office(scope, need_id, request, act, {Outcome.ROUND_STARTED, Outcome.NO_CANDIDATES})

    async def _office(
        self,
        scope: OfficeScope,
        need_id: str,
        request: IdempotentRequest | None,
        act: Callable[[NeedWork], OfficeResult],
        changing: set[Outcome],
    ) -> OfficeResult:
        """One office action on one need in one unit of work, like every use case; under an
        Idempotency-Key its record is written in the same transaction, so a repeat finds it and
        answers as the first time, changing nothing. Refusals change nothing and keep no record."""

        async def work(transaction: Transaction) -> OfficeResult:
            if request is not None:
                earlier = await self.store.office_request(
                    scope.tenant, request.caller, request.key, transaction.session
                )
                if earlier is not None and earlier.fingerprint != request.fingerprint:
                    return OfficeResult(Outcome.KEY_REUSED)
                if earlier is not None:
                    return OfficeResult(Outcome(earlier.outcome), proposal_ids=earlier.proposal_ids, replayed=True)
            staffing = await self._need_work(transaction, scope.tenant, need_id, None, self.clock())
            if staffing is None or not scope.may_manage(staffing.record):
                return OfficeResult(Outcome.NOT_FOUND)
            result = act(staffing)
            if result.outcome in changing:
                await self._save(staffing, transaction)
                if request is not None:
                    record = OfficeRequest(
                        scope.tenant,
                        request.caller,
                        request.key,
                        request.fingerprint,
                        result.outcome.value,
                        result.proposal_ids,
                        staffing.now,
                    )
                    await self.store.put_office_request(record, transaction.session)
            return result

        return await self._run(scope.tenant, work)

    # -- hours volunteers log -------------------------------------------------------------------

    @property
    def hours_rules(self) -> HoursRules:
        return HoursRules(self.settings.hours_max_minutes_per_day, self.settings.hours_log_days)

    def today(self, tenant: str) -> date:
        """The tenant's calendar day now."""
        return local_day(self.clock(), self.index(tenant).timezone)

    async def _commitment(
        self, tenant: str, volunteer_id: str, need_id: str, transaction: Transaction
    ) -> Commitment | None:
        need = await self.store.need_record(tenant, need_id, transaction.session)
        if need is None:
            return None
        proposals = await self.store.proposal_records_for_need(tenant, need_id, transaction.session)
        return commitment(need, proposals, volunteer_id, self.index(tenant).timezone)

    async def _knows(self, tenant: str, volunteer_id: str, transaction: Transaction) -> bool:
        volunteer = await self.store.volunteer(tenant, volunteer_id, transaction.session)
        return volunteer is not None and not volunteer.get("erased")

    async def loggable_needs(self, tenant: str, volunteer_id: str) -> list[Commitment]:
        """The needs the volunteer may log hours for now, the latest start first."""
        proposals = await self.store.proposal_records_of_volunteer(tenant, volunteer_id)
        need_ids = sorted({p.need_id for p in proposals if p.status in COMMITTED})
        needs = await self.store.need_records_by_id(tenant, need_ids)
        timezone, today = self.index(tenant).timezone, self.today(tenant)
        found = []
        for need_id, need in needs.items():
            theirs = [p for p in proposals if p.need_id == need_id]
            engaged = commitment(need, theirs, volunteer_id, timezone)
            if engaged is not None and may_still_log(engaged, today, self.hours_rules):
                found.append(engaged)
        return sorted(found, key=lambda c: (c.first_day, c.need_id), reverse=True)

    async def log_hours(
        self, tenant: str, volunteer_id: str, draft: HoursDraft, entry_id: str | None = None
    ) -> HoursResult:
        """A new entry of hours, pending until the office or the initiative decides. ``entry_id``:
        the caller's id for the entry, so that a repeat of the request (a form sent twice) finds
        the entry instead of logging the hours twice."""

        async def work(transaction: Transaction) -> HoursResult:
            if not await self._knows(tenant, volunteer_id, transaction):
                return HoursResult(HoursOutcome.NOT_FOUND)
            if entry_id is not None:
                earlier = await self.store.hours_entry(tenant, entry_id, transaction.session)
                if earlier is not None:
                    same = earlier.volunteer_id == volunteer_id and _content(earlier) == draft
                    return HoursResult(HoursOutcome.UNCHANGED, earlier) if same else HoursResult(HoursOutcome.ID_TAKEN)
            engaged = await self._commitment(tenant, volunteer_id, draft.need_id, transaction)
            entries = await self.store.hours_of_volunteer(tenant, volunteer_id, transaction.session)
            refusals = check(draft, engaged, minutes_on(entries, draft.day), self.today(tenant), self.hours_rules)
            if refusals or engaged is None:
                return HoursResult(HoursOutcome.INVALID, refusals=tuple(refusals))
            now = self.clock()
            entry = HoursEntry(
                id=entry_id or str(uuid.uuid4()),
                tenant=tenant,
                volunteer_id=volunteer_id,
                need_id=draft.need_id,
                organisation_id=engaged.need.organisation_id,
                category=engaged.need.details["category"],
                day=draft.day,
                minutes=draft.minutes,
                note=draft.note,
                state=HoursState.PENDING,
                logged_at=now,
                updated_at=now,
            )
            await self.store.put_hours(entry, transaction.session)
            _audit_hours(transaction, None, entry)
            return HoursResult(HoursOutcome.LOGGED, entry)

        return await self._run(tenant, work)

    async def correct_hours(self, tenant: str, volunteer_id: str, entry_id: str, draft: HoursDraft) -> HoursResult:
        """The volunteer corrects an entry not confirmed yet; a rejected one becomes pending again."""

        async def work(transaction: Transaction) -> HoursResult:
            entry = await self.store.hours_entry(tenant, entry_id, transaction.session)
            if entry is None or entry.volunteer_id != volunteer_id:
                return HoursResult(HoursOutcome.NOT_FOUND)
            if entry.state is HoursState.CONFIRMED:
                return HoursResult(HoursOutcome.ALREADY_CONFIRMED, entry)
            engaged = await self._commitment(tenant, volunteer_id, draft.need_id, transaction)
            entries = await self.store.hours_of_volunteer(tenant, volunteer_id, transaction.session)
            same_day = minutes_on(entries, draft.day, leaving_out=entry_id)
            refusals = check(draft, engaged, same_day, self.today(tenant), self.hours_rules)
            if refusals or engaged is None:
                return HoursResult(HoursOutcome.INVALID, refusals=tuple(refusals))
            corrected = replace(
                entry,
                need_id=draft.need_id,
                organisation_id=engaged.need.organisation_id,
                category=engaged.need.details["category"],
                day=draft.day,
                minutes=draft.minutes,
                note=draft.note,
                state=HoursState.PENDING,
                updated_at=self.clock(),
                decided_at=None,
                decided_by=None,
                rejection_reason=None,
            )
            await self.store.put_hours(corrected, transaction.session)
            _audit_hours(transaction, entry, corrected)
            return HoursResult(HoursOutcome.CORRECTED, corrected)

        return await self._run(tenant, work)

    async def delete_hours(self, tenant: str, volunteer_id: str, entry_id: str) -> HoursResult:
        async def work(transaction: Transaction) -> HoursResult:
            entry = await self.store.hours_entry(tenant, entry_id, transaction.session)
            if entry is None or entry.volunteer_id != volunteer_id:
                return HoursResult(HoursOutcome.NOT_FOUND)
            if entry.state is HoursState.CONFIRMED:
                return HoursResult(HoursOutcome.ALREADY_CONFIRMED, entry)
            await self.store.delete_hours(tenant, entry_id, transaction.session)
            transaction.audit(tenant, Operation.DELETE, audited.HOURS, entry_id, set(), subject_id=entry.volunteer_id)
            return HoursResult(HoursOutcome.DELETED, entry)

        return await self._run(tenant, work)

    def may_decide_hours(self, scope: OfficeScope, entry: HoursEntry) -> bool:
        """Coordinators decide on every entry of the tenant, initiative admins on those for their
        organisation's needs (whoever the volunteer is)."""
        return scope.organisation is None or entry.organisation_id == scope.organisation

    async def decide_hours(
        self, scope: OfficeScope, entry_id: str, confirm: bool, reason: str | None = None
    ) -> HoursResult:
        """The office or the need's initiative confirms a pending entry, or rejects it with a
        reason; who and when are recorded."""

        async def work(transaction: Transaction) -> HoursResult:
            entry = await self.store.hours_entry(scope.tenant, entry_id, transaction.session)
            if entry is None or not self.may_decide_hours(scope, entry):
                return HoursResult(HoursOutcome.NOT_FOUND)
            if entry.volunteer_id == scope.actor.subject:
                return HoursResult(HoursOutcome.OWN_ENTRY, entry)
            if entry.state is not HoursState.PENDING:
                return HoursResult(HoursOutcome.ALREADY_DECIDED, entry)
            decided = replace(
                entry,
                state=HoursState.CONFIRMED if confirm else HoursState.REJECTED,
                decided_at=self.clock(),
                decided_by=scope.actor,
                rejection_reason=None if confirm else reason,
            )
            await self.store.put_hours(decided, transaction.session)
            _audit_hours(transaction, entry, decided)
            return HoursResult(HoursOutcome.CONFIRMED if confirm else HoursOutcome.REJECTED, decided)

        return await self._run(scope.tenant, work)

    # -- the timer ------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Expire overdue proposals (asking the next person) and escalate needs out of time.

        Idempotent: what is already expired or escalated is not found again."""
        now = self.clock()
        changed = 0
        owns = self.ownership.owns  # each replica minds the needs of its own tenants
        for tenant, need_id in sorted(set(await self.store.overdue_proposals(now))):
            if owns(tenant):
                changed += await self._on_need(tenant, need_id, lambda work: work.expire_overdue() > 0)
        for tenant, need_id in await self.store.needs_to_escalate(now):
            if owns(tenant):
                changed += await self._on_need(tenant, need_id, lambda work: work.escalate())
        return changed

    async def _on_need(self, tenant: str, need_id: str, change: Callable[[NeedWork], bool]) -> int:
        async def work(transaction: Transaction) -> int:
            staffing = await self._need_work(transaction, tenant, need_id, None, self.clock())
            if staffing is None or not change(staffing):
                return 0
            await self._save(staffing, transaction)
            return 1

        try:
            return await self._run(tenant, work)
        except NotOwner:
            return 0  # the tenant moved to another replica since the timer looked: its timer now

    async def run_timer(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database may be away; try again next time
                log.warning("matching timer pass failed", error=repr(error))
            await asyncio.sleep(self.settings.timer_interval_seconds)


@dataclass(frozen=True, slots=True)
class OfficeScope:
    """Who acts for the coordination office, and on what: the tenant, the actor, and for an
    initiative admin their organisation (None: the whole tenant, a coordinator)."""

    tenant: str
    actor: Actor
    organisation: str | None

    def may_manage(self, need: NeedRecord) -> bool:
        return self.organisation is None or need.organisation_id == self.organisation

    def may_see_volunteer(self, organisation_id: str | None) -> bool:
        return self.organisation is None or organisation_id == self.organisation


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """An office action sent with an Idempotency-Key: the caller's key and what the request said."""

    caller: str
    key: str
    fingerprint: str  # of method, path and body, so a key reused for another request is refused


@dataclass(frozen=True, slots=True)
class OfficeResult:
    outcome: Outcome
    broken: tuple[BrokenRule, ...] = ()
    proposal_ids: tuple[str, ...] = ()  # made (a proposal, a round) or answered
    fit: Candidate | None = None  # a check's fit, with score and reasons
    replayed: bool = False  # the answer of an earlier request under the same Idempotency-Key


@dataclass(frozen=True, slots=True)
class HoursResult:
    outcome: HoursOutcome
    entry: HoursEntry | None = None
    refusals: tuple[Refusal, ...] = ()  # the rules an entry breaks (outcome invalid)


def _content(entry: HoursEntry) -> HoursDraft:
    return HoursDraft(entry.need_id, entry.day, entry.minutes, entry.note)


def settled_outcome(proposal: Proposal, need_is_open: bool, now: datetime) -> Outcome | None:
    """The outcome for a proposal that can no longer be answered, or None if it can."""
    status = proposal.status
    if status is ProposalStatus.ACCEPTED:
        return Outcome.ALREADY_ACCEPTED
    if status is ProposalStatus.DECLINED:
        return Outcome.ALREADY_DECLINED
    overdue = proposal.expires_at is not None and proposal.expires_at <= now
    if status is ProposalStatus.EXPIRED or (status is ProposalStatus.OPEN and overdue):
        return Outcome.EXPIRED  # the timer publishes the expiry and asks the next person
    if status is not ProposalStatus.OPEN or not need_is_open:
        return Outcome.NO_LONGER_NEEDED
    return None


def _audit_hours(transaction: Transaction, before: HoursEntry | None, after: HoursEntry) -> None:
    """Note an hours entry written (a volunteer's, or the office's decision), about its volunteer."""
    earlier = None if before is None else before.to_document()
    fields = audited.written_fields(earlier, after.to_document())
    operation = audited.operation_of(earlier)
    transaction.audit(after.tenant, operation, audited.HOURS, after.id, fields, subject_id=after.volunteer_id)
