"""What notifications does with each event: keep its read model of tenants, organisations,
contacts and needs up to date, queue the deliveries an event causes (pending, or skipped with a
reason and a NotificationFailed in the outbox) and forward partner-visible events to webhooks.

Each function runs inside the unit of work ``handlers`` opened for its event, so its writes, its
outbox rows and the inbox record commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from lotse_contracts import (
    Envelope,
    MatchProposed,
    NeedCancelled,
    NeedClosed,
    NeedOpened,
    NeedStaffed,
    NeedUnstaffed,
    NeedUpdated,
    OrganisationRegistered,
    OrganisationUpdated,
    ProposalAccepted,
    ProposalDeclined,
    ProposalExpired,
    ProposalWithdrawn,
    TenantOnboarded,
    VolunteerErased,
    VolunteerPickedNeed,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerSteppedBack,
    VolunteerWithdrawn,
    to_bytes,
)
from lotse_contracts.base import EventData
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel, ConsentPurpose
from lotse_notifications import catalogue, domain
from lotse_notifications.domain import PERSON_CHANNELS, skip_reason
from lotse_notifications.records import (
    Contact,
    ContactDetails,
    Need,
    NeedSnapshot,
    NeedStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    TenantFacts,
)
from lotse_notifications.store import UseCaseStore
from lotse_runtime.unit_of_work import Transaction

log = structlog.get_logger("lotse.notifications")

# Partner systems may receive need and staffing events; volunteer events carry contact data.
WEBHOOK_PREFIXES = ("de.lotse.registry.need.", "de.lotse.matching.")
# A recipient queued before the need that names it was read: the need's owning organisation,
# resolved when the message is sent.
NEED_OWNER = "need_owner"


StaffingEvent = (
    MatchProposed
    | ProposalAccepted
    | VolunteerPickedNeed
    | ProposalDeclined
    | ProposalExpired
    | ProposalWithdrawn
    | VolunteerSteppedBack
    | NeedStaffed
    | NeedUnstaffed
)
E = TypeVar("E", bound=EventData)
S = TypeVar("S", bound=StaffingEvent)
Change = Callable[[UseCaseStore, Envelope[E], Transaction], Awaitable[None]]
StaffingChange = Callable[[UseCaseStore, Envelope[S], Need | None, Transaction], Awaitable[None]]


async def nothing_to_change(store: UseCaseStore, event: Envelope[EventData], transaction: Transaction) -> None:
    """Availability changes and the like do not concern notifications."""


# --- registry events ------------------------------------------------------------------------


async def tenant_onboarded(store: UseCaseStore, event: Envelope[TenantOnboarded], transaction: Transaction) -> None:
    await store.save_tenant(TenantFacts.from_event(event), transaction)


async def organisation_changed(
    store: UseCaseStore, event: Envelope[OrganisationRegistered | OrganisationUpdated], transaction: Transaction
) -> None:
    await store.save_organisation(Organisation.from_event(event), transaction)


async def volunteer_registered(
    store: UseCaseStore, event: Envelope[VolunteerRegistered], transaction: Transaction
) -> None:
    data, volunteer_id = event.data, str(event.data.volunteer_id)
    contact = Contact(
        tenant=event.tenant,
        volunteer_id=volunteer_id,
        version=event.version,
        details=ContactDetails.from_contract(data.contact),
        contact_consent=ConsentPurpose.CONTACT in data.consent.purposes,
        organisation_id=str(data.organisation_id) if data.organisation_id else None,
    )
    if await store.register_contact(contact, transaction):
        await _to_volunteer(store, event, volunteer_id, catalogue.WELCOME, {}, transaction)


async def volunteer_profile_updated(
    store: UseCaseStore, event: Envelope[VolunteerProfileUpdated], transaction: Transaction
) -> None:
    details = ContactDetails.from_contract(event.data.contact)
    await store.update_contact_details(event.tenant, str(event.data.volunteer_id), event.version, details, transaction)


async def volunteer_withdrawn(
    store: UseCaseStore, event: Envelope[VolunteerWithdrawn], transaction: Transaction
) -> None:
    volunteer_id = str(event.data.volunteer_id)
    if event.data.erasure_requested:
        await store.erase_volunteer(event.tenant, volunteer_id, event.version, transaction)
    else:
        await store.withdraw_volunteer(event.tenant, volunteer_id, transaction)


async def volunteer_erased(store: UseCaseStore, event: Envelope[VolunteerErased], transaction: Transaction) -> None:
    await store.erase_volunteer(event.tenant, str(event.data.volunteer_id), event.version, transaction)


async def need_opened(store: UseCaseStore, event: Envelope[NeedOpened], transaction: Transaction) -> None:
    tenant, need_id = event.tenant, str(event.data.need_id)
    snapshot = NeedSnapshot.from_event(event.data)
    known = await store.need(tenant, need_id, transaction)
    # Matching's staffing events may have come first (another topic); keep what they said.
    if known is None or known.status is None:
        await store.save_need(
            tenant, need_id, event.version, transaction, snapshot=snapshot, status=NeedStatus.OPEN, unstaffed=False
        )
    else:
        await store.save_need(tenant, need_id, event.version, transaction, snapshot=snapshot)


async def need_updated(store: UseCaseStore, event: Envelope[NeedUpdated], transaction: Transaction) -> None:
    snapshot = NeedSnapshot.from_event(event.data)
    await store.save_need(event.tenant, str(event.data.need_id), event.version, transaction, snapshot=snapshot)


async def need_cancelled(store: UseCaseStore, event: Envelope[NeedCancelled], transaction: Transaction) -> None:
    tenant, need_id = event.tenant, str(event.data.need_id)
    cancelled = await store.save_need(
        tenant, need_id, event.version, transaction, status=NeedStatus.CANCELLED, cancellation_reason=event.data.reason
    )
    if not cancelled:
        return
    need = await store.need(tenant, need_id, transaction)
    for volunteer_id in await store.engaged_volunteers(tenant, need_id, transaction):
        await _about_need(store, event, need, volunteer_id, catalogue.NEED_CANCELLED, transaction)
    await store.close_proposals_of_need(tenant, need_id, ProposalStatus.WITHDRAWN, transaction)


async def need_closed(store: UseCaseStore, event: Envelope[NeedClosed], transaction: Transaction) -> None:
    tenant, need_id = event.tenant, str(event.data.need_id)
    if await store.save_need(tenant, need_id, event.version, transaction, status=NeedStatus.CLOSED):
        # No reminders for a need that is over.
        await store.close_proposals_of_need(tenant, need_id, ProposalStatus.WITHDRAWN, transaction)


# --- matching's staffing events ---------------------------------------------------------------


def staffing(change: StaffingChange[S]) -> Change[S]:
    """A staffing event newer than the last one applied to its need, with the need as read."""

    async def apply(store: UseCaseStore, event: Envelope[S], transaction: Transaction) -> None:
        tenant, need_id = event.tenant, str(event.data.need_id)
        if not await store.advance_staffing(tenant, need_id, event.version, transaction):
            log.info("older staffing event ignored", tenant=tenant, event_id=str(event.id))
            return
        need = await store.need(tenant, need_id, transaction)
        await change(store, event, need, transaction)

    return apply


async def match_proposed(
    store: UseCaseStore, event: Envelope[MatchProposed], need: Need | None, transaction: Transaction
) -> None:
    data = event.data
    proposal = Proposal(
        tenant=event.tenant,
        proposal_id=str(data.proposal_id),
        need_id=str(data.need_id),
        volunteer_id=str(data.volunteer_id),
        status=ProposalStatus.OPEN,
        expires_at=data.expires_at,
        reminded=False,
        correlation_id=event.correlationid,
        payload=domain.proposal_payload(data, domain.snapshot_of(need)),
    )
    await store.save_proposal(proposal, transaction)
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.MATCH_PROPOSED, transaction)


async def proposal_accepted(
    store: UseCaseStore, event: Envelope[ProposalAccepted], need: Need | None, transaction: Transaction
) -> None:
    data = event.data
    await store.set_proposal_status(event.tenant, str(data.proposal_id), ProposalStatus.ACCEPTED, transaction)
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, transaction)


async def volunteer_picked_need(
    store: UseCaseStore, event: Envelope[VolunteerPickedNeed], need: Need | None, transaction: Transaction
) -> None:
    data, need_id = event.data, str(event.data.need_id)
    proposal = Proposal(
        tenant=event.tenant,
        proposal_id=f"picked-{need_id}-{data.volunteer_id}",
        need_id=need_id,
        volunteer_id=str(data.volunteer_id),
        status=ProposalStatus.ACCEPTED,
    )
    await store.save_proposal(proposal, transaction)
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, transaction)


def proposal_answered(
    status: ProposalStatus,
) -> StaffingChange[ProposalDeclined | ProposalExpired | ProposalWithdrawn]:
    """A proposal declined, expired or withdrawn: only its status changes (no message)."""

    async def apply(
        store: UseCaseStore,
        event: Envelope[ProposalDeclined | ProposalExpired | ProposalWithdrawn],
        need: Need | None,
        transaction: Transaction,
    ) -> None:
        await store.set_proposal_status(event.tenant, str(event.data.proposal_id), status, transaction)

    return apply


async def volunteer_stepped_back(
    store: UseCaseStore, event: Envelope[VolunteerSteppedBack], need: Need | None, transaction: Transaction
) -> None:
    data = event.data
    await store.step_back(event.tenant, str(data.need_id), str(data.volunteer_id), transaction)


async def need_staffed(
    store: UseCaseStore, event: Envelope[NeedStaffed], need: Need | None, transaction: Transaction
) -> None:
    need_id = str(event.data.need_id)
    await store.set_staffing(event.tenant, need_id, transaction, status=NeedStatus.STAFFED, unstaffed=False)
    snapshot = domain.snapshot_of(need)
    payload = domain.staffed_payload(event.data, snapshot)
    # The event names no organisation: the need's owner, once the need is read.
    if snapshot is not None:
        owner = (RecipientKind.ORGANISATION.value, snapshot.organisation_id)
    else:
        owner = (NEED_OWNER, need_id)
    await _to_office(store, event, catalogue.NEED_STAFFED, payload, owner, transaction)


async def need_unstaffed(
    store: UseCaseStore, event: Envelope[NeedUnstaffed], need: Need | None, transaction: Transaction
) -> None:
    need_id = str(event.data.need_id)
    await store.set_staffing(event.tenant, need_id, transaction, unstaffed=True)
    payload = domain.unstaffed_payload(event.data, domain.snapshot_of(need))
    owner = (RecipientKind.ORGANISATION.value, str(event.data.organisation_id))
    await _to_office(store, event, catalogue.NEED_UNSTAFFED, payload, owner, transaction)


# --- deliveries -------------------------------------------------------------------------------


async def _about_need(
    store: UseCaseStore,
    event: Envelope[Any],
    need: Need | None,
    volunteer_id: str,
    kind: str,
    transaction: Transaction,
) -> None:
    snapshot = domain.snapshot_of(need)
    if kind == catalogue.MATCH_PROPOSED:
        payload = domain.proposal_payload(event.data, snapshot)
    else:
        payload = domain.need_payload(str(event.data.need_id), snapshot)
    await _to_volunteer(store, event, volunteer_id, kind, payload, transaction)


async def _to_volunteer(
    store: UseCaseStore,
    event: Envelope[Any],
    volunteer_id: str,
    kind: str,
    payload: dict[str, Any],
    transaction: Transaction,
) -> None:
    contact = await store.contact(event.tenant, volunteer_id, transaction)
    tenant = await store.tenant(event.tenant, transaction)
    preferred = contact.details.preferred_language if contact and contact.details else None
    language = preferred or (tenant.default_language if tenant else None) or "de"
    for channel in PERSON_CHANNELS:
        # An unknown volunteer may just not be read yet (another topic): queue, the worker waits.
        reason = skip_reason(contact, channel, kind) if contact is not None else None
        await store.add_delivery(
            transaction,
            tenant=event.tenant,
            trigger_event_id=str(event.id),
            correlation_id=event.correlationid,
            kind=kind,
            recipient_kind=RecipientKind.VOLUNTEER.value,
            recipient_id=volunteer_id,
            channel=channel,
            language=language,
            payload=payload,
            skip_reason=reason,
        )


async def _to_office(
    store: UseCaseStore,
    event: Envelope[Any],
    kind: str,
    payload: dict[str, Any],
    owner: tuple[str, str],
    transaction: Transaction,
) -> None:
    """Email the coordination office and the organisation that owns the need (unless its
    mailbox is the office's), in the tenant's default language. An organisation or tenant not
    read yet is queued anyway; the worker waits for it and decides then. ``owner`` is
    ("organisation", its id), or ("need_owner", the need's id) while the need is not read yet."""
    tenant = await store.tenant(event.tenant, transaction)
    language = (tenant.default_language if tenant else None) or "de"
    recipients = [(RecipientKind.TENANT.value, event.tenant)]
    owner_kind, owner_id = owner
    organisation = None
    if owner_kind == RecipientKind.ORGANISATION.value:
        organisation = await store.organisation(event.tenant, owner_id, transaction)
    if tenant is None or organisation is None or organisation.contact_email != tenant.coordination_email:
        recipients.append(owner)
    for recipient_kind, recipient_id in recipients:
        await store.add_delivery(
            transaction,
            tenant=event.tenant,
            trigger_event_id=str(event.id),
            correlation_id=event.correlationid,
            kind=kind,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            channel=Channel.EMAIL,
            language=language,
            payload=payload,
        )


async def forward_to_webhooks(store: UseCaseStore, event: Envelope[Any], transaction: Transaction) -> None:
    hooks = await store.webhooks(event.tenant, transaction)
    if not hooks:
        return
    body = to_bytes(_for_partners(event)).decode()
    for hook in hooks:
        if not hook.forwards(event.type):
            continue
        await store.add_delivery(
            transaction,
            tenant=event.tenant,
            trigger_event_id=str(event.id),
            correlation_id=event.correlationid,
            kind="webhook_event",
            recipient_kind=RecipientKind.PARTNER.value,
            recipient_id=hook.id,
            channel=Channel.WEBHOOK,
            language="de",
            payload={"event_type": event.type, "body": body},
        )


def _for_partners(event: Envelope[Any]) -> Envelope[Any]:
    """The event as partners see it: the volunteer's signed answer links stay private."""
    if isinstance(event.data, MatchProposed):
        return event.model_copy(
            update={"data": event.data.model_copy(update={"accept_url": None, "decline_url": None})}
        )
    return event
