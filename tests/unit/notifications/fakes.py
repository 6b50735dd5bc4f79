"""The notifications use cases without a broker or database: an in-memory ``UseCaseStore`` and
unit of work, driven through the real dispatch table (``handlers.event_handlers``).

``MemoryStore`` keeps the read model as records and answers as ``store.Store`` does: versioned
writes ignore an event older than what is stored and never bring an erased volunteer back, a
write without upsert changes nothing that is not there, a delivery key admits one delivery, and a
skipped or cancelled delivery publishes its NotificationFailed (built by the real
``store.outcome_event``). The unit of work is the runtime's in memory (tests/support/memory.py):
all or nothing, as a transaction is; its inbox makes a redelivered event change nothing, and its
outbox holds what the relay would publish.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from lotse_contracts import Envelope, topic_for
from lotse_contracts.events.needs import CancellationReason
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications.domain import delivery_key
from lotse_notifications.handlers import event_handlers
from lotse_notifications.partner_events import PartnerField
from lotse_notifications.records import (
    ENGAGED,
    Contact,
    ContactDetails,
    DigestItem,
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
)
from lotse_notifications.store import CANCELLED, PENDING, SKIPPED, Delivery, UseCaseStore, outcome_event
from lotse_runtime.consumer import Delivery as Received
from lotse_runtime.unit_of_work import Transaction
from tests.support.memory import Appended, MemoryUnitOfWork

R = TypeVar("R", Need, Proposal)
Key = tuple[str, str]  # (tenant, id)

CONSUMER = "notifications"


def _merged(known: R | None, new: R) -> R:
    """``$set`` of a record's document onto a stored one: the parts the new record leaves out
    (None) stay as they were."""
    if known is None:
        return new
    given = {part.name: getattr(new, part.name) for part in fields(new) if getattr(new, part.name) is not None}
    return replace(known, **given)


@dataclass
class Memory:
    """Everything the store holds, in one value, so that a unit of work can put it back."""

    tenants: dict[str, TenantFacts] = field(default_factory=dict)
    organisations: dict[Key, Organisation] = field(default_factory=dict)
    contacts: dict[Key, Contact] = field(default_factory=dict)
    needs: dict[Key, Need] = field(default_factory=dict)
    proposals: dict[Key, Proposal] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # by delivery key, in queue order
    preferences: dict[tuple[str, str, str], MailPreference] = field(default_factory=dict)
    digest_items: dict[str, DigestItem] = field(default_factory=dict)  # by key
    threads: dict[Key, Thread] = field(default_factory=dict)
    contact_people: dict[Key, tuple[str | None, int]] = field(default_factory=dict)  # staff id, version


class MemoryStore(UseCaseStore):
    def __init__(self) -> None:
        self.memory = Memory()

    def snapshot(self) -> Memory:
        return copy.deepcopy(self.memory)

    def restore(self, snapshot: Memory) -> None:
        self.memory = snapshot

    # --- what the use cases call (store.UseCaseStore) -------------------------------------------

    async def tenant(self, tenant: str, transaction: Transaction | None = None) -> TenantFacts | None:
        return self.memory.tenants.get(tenant)

    async def save_tenant(self, facts: TenantFacts, transaction: Transaction) -> bool:
        known = self.memory.tenants.get(facts.tenant)
        if known is not None and known.version >= facts.version:
            return False
        self.memory.tenants[facts.tenant] = facts
        return True

    async def organisation(
        self, tenant: str, organisation_id: str, transaction: Transaction | None = None
    ) -> Organisation | None:
        return self.memory.organisations.get((tenant, organisation_id))

    async def save_organisation(self, organisation: Organisation, transaction: Transaction) -> bool:
        key = (organisation.tenant, organisation.organisation_id)
        known = self.memory.organisations.get(key)
        if known is not None and known.version >= organisation.version:
            return False
        self.memory.organisations[key] = organisation
        return True

    async def contact(self, tenant: str, volunteer_id: str, transaction: Transaction | None = None) -> Contact | None:
        return self.memory.contacts.get((tenant, volunteer_id))

    def _contact_is_older(self, key: Key, version: int) -> bool:
        known = self.memory.contacts.get(key)
        return known is not None and (known.version >= version or known.erased)

    async def register_contact(self, contact: Contact, transaction: Transaction) -> bool:
        key = (contact.tenant, contact.volunteer_id)
        if self._contact_is_older(key, contact.version):
            return False
        self.memory.contacts[key] = contact
        return True

    async def update_contact_details(
        self, tenant: str, volunteer_id: str, version: int, details: ContactDetails, transaction: Transaction
    ) -> bool:
        key = (tenant, volunteer_id)
        if self._contact_is_older(key, version):
            return False
        known = self.memory.contacts.get(key) or Contact(tenant, volunteer_id, version, details)
        failed = known.failed_channels
        if known.details is not None:  # a new address works again until it fails itself
            changed = {
                Channel.EMAIL: details.email != known.details.email,
                Channel.SMS: details.phone != known.details.phone,
            }
            failed = tuple(channel for channel in failed if not changed.get(channel, False))
        self.memory.contacts[key] = replace(
            known, version=version, details=details, active=True, failed_channels=failed
        )
        return True

    async def set_unreachable_reported(
        self, tenant: str, volunteer_id: str, reported: bool, transaction: Transaction
    ) -> bool:
        known = self.memory.contacts.get((tenant, volunteer_id))
        if known is None or known.unreachable_reported == reported:
            return False
        self.memory.contacts[(tenant, volunteer_id)] = replace(known, unreachable_reported=reported)
        return True

    async def withdraw_volunteer(self, tenant: str, volunteer_id: str, transaction: Transaction) -> None:
        known = self.memory.contacts.get((tenant, volunteer_id))
        if known is not None:
            self.memory.contacts[(tenant, volunteer_id)] = replace(known, active=False)
        await self._cancel_pending(tenant, volunteer_id, "volunteer_withdrawn", transaction)

    async def erase_volunteer(self, tenant: str, volunteer_id: str, version: int, transaction: Transaction) -> None:
        self.memory.contacts[(tenant, volunteer_id)] = Contact.tombstone(tenant, volunteer_id, version)
        self.memory.proposals = {
            key: proposal
            for key, proposal in self.memory.proposals.items()
            if (proposal.tenant, proposal.volunteer_id) != (tenant, volunteer_id)
        }
        self.memory.threads = {
            key: thread
            for key, thread in self.memory.threads.items()
            if (thread.tenant, thread.volunteer_id) != (tenant, volunteer_id)
        }
        self.memory.contact_people.pop((tenant, volunteer_id), None)
        await self._cancel_pending(tenant, volunteer_id, "volunteer_erased", transaction)
        # The log keeps who, what kind and the outcome; the payload held personal links.
        for key, delivery in self.memory.deliveries.items():
            if self._for_volunteer(delivery, tenant, volunteer_id):
                self.memory.deliveries[key] = replace(delivery, payload=None)

    async def need(self, tenant: str, need_id: str, transaction: Transaction | None = None) -> Need | None:
        return self.memory.needs.get((tenant, need_id))

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
        known = self.memory.needs.get((tenant, need_id))
        if known is not None and (known.version or 0) >= version:
            return False
        change = Need(tenant, need_id, version, snapshot, status, unstaffed, cancellation_reason)
        self.memory.needs[(tenant, need_id)] = _merged(known, change)
        return True

    async def open_need(
        self, tenant: str, need_id: str, version: int, snapshot: NeedSnapshot, transaction: Transaction
    ) -> NeedOpening:
        known = self.memory.needs.get((tenant, need_id))
        if known is not None and (known.version or 0) >= version:
            return NeedOpening.STALE
        opened = known is None or known.status is None
        status, unstaffed = (NeedStatus.OPEN, False) if opened else (None, None)
        await self.save_need(
            tenant, need_id, version, transaction, snapshot=snapshot, status=status, unstaffed=unstaffed
        )
        staffed_before = known is not None and known.staffing_version is not None
        return NeedOpening.AFTER_STAFFING if staffed_before else NeedOpening.FIRST

    async def advance_staffing(self, tenant: str, need_id: str, version: int, transaction: Transaction) -> Need | None:
        known = self.memory.needs.get((tenant, need_id))
        if known is not None and (known.staffing_version or 0) >= version:
            return None
        advanced = replace(known or Need(tenant, need_id), staffing_version=version)
        self.memory.needs[(tenant, need_id)] = advanced
        return advanced

    async def set_staffing(
        self, tenant: str, need_id: str, transaction: Transaction, *, unstaffed: bool, status: NeedStatus | None = None
    ) -> None:
        known = self.memory.needs.get((tenant, need_id))
        if known is not None:
            self.memory.needs[(tenant, need_id)] = replace(known, unstaffed=unstaffed, status=status or known.status)

    async def save_proposal(self, proposal: Proposal, transaction: Transaction) -> None:
        key = (proposal.tenant, proposal.proposal_id)
        self.memory.proposals[key] = _merged(self.memory.proposals.get(key), proposal)

    async def set_proposal_status(
        self, tenant: str, proposal_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None:
        known = self.memory.proposals.get((tenant, proposal_id))
        if known is not None:
            self.memory.proposals[(tenant, proposal_id)] = replace(known, status=status)

    def _proposals_of(self, tenant: str, need_id: str) -> list[Proposal]:
        return [p for (owner, _), p in self.memory.proposals.items() if (owner, p.need_id) == (tenant, need_id)]

    async def engaged_volunteers(self, tenant: str, need_id: str, transaction: Transaction) -> list[str]:
        return sorted({p.volunteer_id for p in self._proposals_of(tenant, need_id) if p.status in ENGAGED})

    async def close_proposals_of_need(
        self, tenant: str, need_id: str, status: ProposalStatus, transaction: Transaction
    ) -> None:
        for proposal in self._proposals_of(tenant, need_id):
            if proposal.status in ENGAGED:
                self.memory.proposals[(tenant, proposal.proposal_id)] = replace(proposal, status=status)

    async def step_back(self, tenant: str, need_id: str, volunteer_id: str, transaction: Transaction) -> None:
        for proposal in self._proposals_of(tenant, need_id):
            if proposal.volunteer_id == volunteer_id:
                stepped_back = replace(proposal, status=ProposalStatus.STEPPED_BACK)
                self.memory.proposals[(tenant, proposal.proposal_id)] = stepped_back

    async def webhooks(self, tenant: str, transaction: Transaction | None = None) -> list[Webhook]:
        return [hook for hook in self.memory.webhooks.values() if hook.tenant == tenant]

    async def accepted_proposals(self, tenant: str, need_id: str, transaction: Transaction) -> list[Proposal]:
        return [p for p in self._proposals_of(tenant, need_id) if p.status is ProposalStatus.ACCEPTED]

    async def schedule_engagement(
        self,
        tenant: str,
        proposal_id: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        transaction: Transaction,
    ) -> None:
        known = self.memory.proposals.get((tenant, proposal_id))
        if known is None:
            return
        changed = replace(known, starts_at=starts_at, ends_at=ends_at)
        if starts_at != known.starts_at or known.start_reminder_due is None:
            changed = replace(changed, start_reminder_due=starts_at is not None)
        if known.thanks_due is None:
            changed = replace(changed, thanks_due=True)
        self.memory.proposals[(tenant, proposal_id)] = changed

    async def mark_start_reminded(
        self, tenant: str, proposal_id: str, starts_at: datetime, transaction: Transaction
    ) -> bool:
        known = self.memory.proposals.get((tenant, proposal_id))
        if known is None or known.start_reminder_due is not True or known.starts_at != starts_at:
            return False
        self.memory.proposals[(tenant, proposal_id)] = replace(known, start_reminder_due=False)
        return True

    async def mark_thanked(self, tenant: str, proposal_id: str, transaction: Transaction) -> bool:
        known = self.memory.proposals.get((tenant, proposal_id))
        if known is None or known.thanks_due is False:
            return False
        self.memory.proposals[(tenant, proposal_id)] = replace(known, thanks_due=False)
        return True

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
        for key, delivery in self.memory.deliveries.items():
            about = delivery.kind in kinds and (delivery.payload or {}).get("need_id") == need_id
            whose = volunteer_id is None or self._for_volunteer(delivery, tenant, volunteer_id)
            if delivery.tenant == tenant and about and whose and delivery.status is PENDING:
                await self._cancel(key, delivery, reason, transaction)

    async def mail_preference(
        self, tenant: str, recipient_kind: str, recipient_id: str, transaction: Transaction | None = None
    ) -> MailPreference | None:
        return self.memory.preferences.get((tenant, recipient_kind, recipient_id))

    async def add_digest_item(self, item: DigestItem, transaction: Transaction) -> bool:
        if item.key in self.memory.digest_items:
            return False
        self.memory.digest_items[item.key] = item
        return True

    async def set_contact_person(
        self, tenant: str, volunteer_id: str, staff_id: str | None, version: int, transaction: Transaction
    ) -> bool:
        key = (tenant, volunteer_id)
        known = self.memory.contacts.get(key)
        stored = self.memory.contact_people.get(key)
        if known is None or known.erased or (stored is not None and stored[1] >= version):
            return False
        self.memory.contact_people[key] = (staff_id, version)
        return True

    async def has_proposal(self, tenant: str, volunteer_id: str, need_id: str, transaction: Transaction) -> bool:
        return any(
            (p.tenant, p.volunteer_id, p.need_id) == (tenant, volunteer_id, need_id)
            for p in self.memory.proposals.values()
        )

    async def open_thread(self, thread: Thread, transaction: Transaction) -> None:
        self.memory.threads[(thread.tenant, thread.thread_id)] = thread

    async def thread(self, tenant: str, thread_id: str, transaction: Transaction | None = None) -> Thread | None:
        return self.memory.threads.get((tenant, thread_id))

    async def add_thread_message(
        self, tenant: str, thread_id: str, message: ThreadMessage, state: ThreadState, transaction: Transaction
    ) -> Thread | None:
        known = self.memory.threads.get((tenant, thread_id))
        if known is None:
            return None
        changed = replace(
            known,
            messages=(*known.messages, message),
            state=state,
            last_activity_at=message.created_at,
            last_from=message.author,
        )
        self.memory.threads[(tenant, thread_id)] = changed
        return changed

    async def set_thread_state(
        self, tenant: str, thread_id: str, state: ThreadState, transaction: Transaction
    ) -> Thread | None:
        known = self.memory.threads.get((tenant, thread_id))
        if known is None:
            return None
        self.memory.threads[(tenant, thread_id)] = replace(known, state=state)
        return self.memory.threads[(tenant, thread_id)]

    # --- what the scheduler (reminders.Planner) reads, for the tests that drive it ----------------

    async def engagements_to_remind(self, now: datetime, before: timedelta, limit: int = 200) -> list[Proposal]:
        return [
            p
            for p in self.memory.proposals.values()
            if p.status is ProposalStatus.ACCEPTED
            and p.start_reminder_due
            and p.starts_at is not None
            and now < p.starts_at <= now + before
        ]

    async def engagements_to_thank(self, now: datetime, within: timedelta, limit: int = 200) -> list[Proposal]:
        return [
            p
            for p in self.memory.proposals.values()
            if p.status is ProposalStatus.ACCEPTED
            and p.thanks_due
            and p.ends_at is not None
            and now - within < p.ends_at <= now
        ]

    async def release_waiting(self, references: list[str], transaction: Transaction) -> int:
        return 0  # no worker here: nothing waits for a reference

    async def add_deliveries(self, transaction: Transaction, deliveries: Sequence[NewDelivery]) -> list[Delivery]:
        added = [await self.add_delivery(transaction, **vars(request)) for request in deliveries]
        return [delivery for delivery in added if delivery is not None]

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
        key = delivery_key(trigger_event_id, recipient_kind, recipient_id, channel)
        if key in self.memory.deliveries:
            return None
        delivery = Delivery(
            id=str(uuid.uuid4()),
            key=key,
            tenant=tenant,
            trigger_event_id=trigger_event_id,
            correlation_id=correlation_id,
            kind=kind,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            channel=channel,
            language=language,
            status=PENDING if skip_reason is None else SKIPPED,
            created_at=datetime.now(UTC),
            payload=dict(payload) if skip_reason is None else None,
            reason=skip_reason,
        )
        self.memory.deliveries[key] = delivery
        if skip_reason is not None:
            failed = outcome_event(
                delivery, sent=False, attempts=1, error_code=skip_reason, error=skip_detail or skip_reason
            )
            await transaction.append_event(topic_for(failed.type, tenant), failed)
        return delivery

    # --- for the tests --------------------------------------------------------------------------

    def add_webhook(self, tenant: str, *event_types: str, fields: frozenset[PartnerField] = frozenset()) -> Webhook:
        hook = Webhook(
            str(uuid.uuid4()), tenant, "https://partner.example/hook", "s" * 32, event_types, datetime.now(UTC), fields
        )
        self.memory.webhooks[hook.id] = hook
        return hook

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.memory.deliveries.values())

    def proposal(self, tenant: str, proposal_id: str) -> Proposal | None:
        return self.memory.proposals.get((tenant, proposal_id))

    @staticmethod
    def _for_volunteer(delivery: Delivery, tenant: str, volunteer_id: str) -> bool:
        recipient = (delivery.tenant, delivery.recipient_kind, delivery.recipient_id)
        return recipient == (tenant, RecipientKind.VOLUNTEER.value, volunteer_id)

    async def _cancel_pending(self, tenant: str, volunteer_id: str, reason: str, transaction: Transaction) -> None:
        for key, delivery in self.memory.deliveries.items():
            if self._for_volunteer(delivery, tenant, volunteer_id) and delivery.status is PENDING:
                await self._cancel(key, delivery, reason, transaction)

    async def _cancel(self, key: str, delivery: Delivery, reason: str, transaction: Transaction) -> None:
        self.memory.deliveries[key] = replace(delivery, status=CANCELLED, reason=reason)
        failed = outcome_event(delivery, sent=False, attempts=delivery.attempts + 1, error_code=reason, error=reason)
        await transaction.append_event(topic_for(failed.type, delivery.tenant), failed)

    def set_preference(self, preference: MailPreference) -> None:
        key = (preference.tenant, preference.recipient_kind, preference.recipient_id)
        self.memory.preferences[key] = preference

    @property
    def digest_items(self) -> list[DigestItem]:
        return list(self.memory.digest_items.values())


class Notifications:
    """The use cases as the consumer runs them: every event through the real dispatch table, in
    a unit of work on the in-memory store. ``queued`` counts the worker's wake-ups."""

    def __init__(self, *, tenant_pattern: str | None = None, sms_gateway: bool = False) -> None:
        self.store = MemoryStore()
        self.unit_of_work = MemoryUnitOfWork(self.store)
        self.queued = 0
        self.dispatch = event_handlers(
            self.unit_of_work,
            self.store,
            CONSUMER,
            queued=self._wake_worker,
            tenant_pattern=tenant_pattern,
            sms_gateway=sms_gateway,
        )
        self._offsets = itertools.count()

    def _wake_worker(self) -> None:
        self.queued += 1

    async def consume(self, *events: Envelope[Any]) -> None:
        for event in events:
            received = Received(topic_for(event.type, event.tenant), 0, next(self._offsets), event.key)
            await self.dispatch(event, received)

    @property
    def outbox(self) -> list[Appended]:
        return self.unit_of_work.outbox
