"""What notifications does with each event: keep its read model of tenants, organisations,
contacts and needs up to date, queue the deliveries an event causes (pending, or skipped with a
reason and a NotificationFailed in the outbox) and forward partner-visible events to webhooks.

Each function runs inside the unit of work ``handlers`` opened for its event, so its writes, its
outbox rows and the inbox record commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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
    VolunteerCertificateExpiring,
    VolunteerErased,
    VolunteerPickedNeed,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerSteppedBack,
    VolunteerWithdrawn,
    to_bytes,
)
from lotse_contracts.base import EventData
from lotse_contracts.events.needs import NeedOutcome
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel, ConsentPurpose
from lotse_notifications import catalogue, domain, partner_events
from lotse_notifications.domain import skip_reason, volunteer_channels
from lotse_notifications.records import (
    Contact,
    ContactDetails,
    DigestItem,
    Need,
    NeedOpening,
    NeedSnapshot,
    NeedStatus,
    NewDelivery,
    OfficeMail,
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
# Messages about an engagement that are planned ahead and cancelled when it no longer happens.
ENGAGEMENT_MESSAGES = (catalogue.ENGAGEMENT_REMINDER, catalogue.ENGAGEMENT_THANKS)


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


def volunteer_registered(*, sms_gateway: bool) -> Change[VolunteerRegistered]:
    """The contact, the welcome, and word to the office if none of the chosen channels can work
    (``sms_gateway``: whether SMS can be delivered here)."""

    async def apply(store: UseCaseStore, event: Envelope[VolunteerRegistered], transaction: Transaction) -> None:
        data, volunteer_id = event.data, str(event.data.volunteer_id)
        purposes = data.consent.purposes
        contact = Contact(
            tenant=event.tenant,
            volunteer_id=volunteer_id,
            version=event.version,
            details=ContactDetails.from_contract(data.contact),
            contact_consent=ConsentPurpose.CONTACT in purposes,
            organisation_id=str(data.organisation_id) if data.organisation_id else None,
            share_consent=ConsentPurpose.SHARE_WITH_ORGANISATION in purposes,
        )
        if await store.register_contact(contact, transaction):
            await _to_volunteer(store, event, volunteer_id, catalogue.WELCOME, {}, transaction)
            await check_reachable(
                store, event.tenant, volunteer_id, str(event.id), transaction, sms_gateway=sms_gateway
            )

    return apply


def volunteer_profile_updated(*, sms_gateway: bool) -> Change[VolunteerProfileUpdated]:
    async def apply(store: UseCaseStore, event: Envelope[VolunteerProfileUpdated], transaction: Transaction) -> None:
        details = ContactDetails.from_contract(event.data.contact)
        volunteer_id = str(event.data.volunteer_id)
        if await store.update_contact_details(event.tenant, volunteer_id, event.version, details, transaction):
            await check_reachable(
                store, event.tenant, volunteer_id, str(event.id), transaction, sms_gateway=sms_gateway
            )

    return apply


async def check_reachable(
    store: UseCaseStore,
    tenant: str,
    volunteer_id: str,
    trigger: str,
    transaction: Transaction,
    *,
    sms_gateway: bool,
) -> None:
    """Tell the office, once, when none of the channels a volunteer chose can reach them (SMS
    without a gateway, an address refused for good, email without consent to be contacted), so
    that it can reach them another way; once one works again, a later loss is told again."""
    contact = await store.contact(tenant, volunteer_id, transaction)
    problems = domain.unreachable(contact, sms_gateway=sms_gateway)
    if problems is None:
        if contact is not None and contact.unreachable_reported:
            await store.set_unreachable_reported(tenant, volunteer_id, False, transaction)
        return
    if not await store.set_unreachable_reported(tenant, volunteer_id, True, transaction):
        return
    facts = await store.tenant(tenant, transaction)
    log.info("volunteer cannot be reached on any chosen channel", tenant=tenant, volunteer_id=volunteer_id)
    await store.add_delivery(
        transaction,
        tenant=tenant,
        trigger_event_id=trigger,
        correlation_id=trigger,
        kind=catalogue.VOLUNTEER_UNREACHABLE,
        recipient_kind=RecipientKind.TENANT.value,
        recipient_id=tenant,
        channel=Channel.EMAIL,
        language=(facts.default_language if facts else None) or "de",
        payload=domain.unreachable_payload(volunteer_id, problems),
    )


async def volunteer_withdrawn(
    store: UseCaseStore, event: Envelope[VolunteerWithdrawn], transaction: Transaction
) -> None:
    volunteer_id = str(event.data.volunteer_id)
    if event.data.erasure_requested:
        await store.erase_volunteer(event.tenant, volunteer_id, event.version, transaction)
    else:
        await store.withdraw_volunteer(event.tenant, volunteer_id, transaction)


async def certificate_expiring(
    store: UseCaseStore, event: Envelope[VolunteerCertificateExpiring], transaction: Transaction
) -> None:
    """A certificate the office checked runs out soon: the volunteer is asked to bring a new one
    (on their channels), and the office and the volunteer's own organisation are mailed directly
    (an action, so never folded into a daily digest), naming the volunteer as they may see them."""
    volunteer_id, payload = str(event.data.volunteer_id), domain.certificate_payload(event.data)
    await _to_volunteer(store, event, volunteer_id, catalogue.CERTIFICATE_EXPIRING, payload, transaction)
    contact = await store.contact(event.tenant, volunteer_id, transaction)
    organisation_id = contact.organisation_id if contact is not None else None
    facts = await store.tenant(event.tenant, transaction)
    recipients = await _office_recipients(store, event.tenant, organisation_id, transaction)
    await store.add_deliveries(
        transaction,
        [
            NewDelivery(
                tenant=event.tenant,
                trigger_event_id=str(event.id),
                correlation_id=event.correlationid,
                kind=catalogue.CERTIFICATE_EXPIRING_OFFICE,
                recipient_kind=recipient_kind,
                recipient_id=recipient_id,
                channel=Channel.EMAIL,
                language=(facts.default_language if facts else None) or "de",
                payload=payload,
            )
            for recipient_kind, recipient_id in recipients
        ],
    )


async def volunteer_erased(store: UseCaseStore, event: Envelope[VolunteerErased], transaction: Transaction) -> None:
    await store.erase_volunteer(event.tenant, str(event.data.volunteer_id), event.version, transaction)


async def need_opened(store: UseCaseStore, event: Envelope[NeedOpened], transaction: Transaction) -> None:
    tenant, need_id = event.tenant, str(event.data.need_id)
    snapshot = NeedSnapshot.from_event(event.data)
    # Matching's staffing events may have come first (another topic); keep what they said, and
    # give the engagements they accepted before the need was read its schedule now.
    opening = await store.open_need(tenant, need_id, event.version, snapshot, transaction)
    if opening is NeedOpening.AFTER_STAFFING:
        await _plan_engagements(store, tenant, need_id, snapshot, event.time, transaction)


async def need_updated(store: UseCaseStore, event: Envelope[NeedUpdated], transaction: Transaction) -> None:
    tenant, need_id = event.tenant, str(event.data.need_id)
    snapshot = NeedSnapshot.from_event(event.data)
    before = domain.snapshot_of(await store.need(tenant, need_id, transaction))
    if not await store.save_need(tenant, need_id, event.version, transaction, snapshot=snapshot):
        return
    # Only a new schedule moves the engagements (and re-arms their reminder).
    if before is None or before.schedule != snapshot.schedule:
        await _plan_engagements(store, tenant, need_id, snapshot, event.time, transaction)


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
    await store.cancel_engagement_messages(tenant, need_id, ENGAGEMENT_MESSAGES, "need_cancelled", transaction)
    await store.close_proposals_of_need(tenant, need_id, ProposalStatus.WITHDRAWN, transaction)


async def need_closed(store: UseCaseStore, event: Envelope[NeedClosed], transaction: Transaction) -> None:
    """A need that is over: no more reminders; those who helped are thanked now unless it was
    not fulfilled (a weekly need without a last day ends only so), once whatever the schedule did."""
    tenant, need_id = event.tenant, str(event.data.need_id)
    if not await store.save_need(tenant, need_id, event.version, transaction, status=NeedStatus.CLOSED):
        return
    reminders = (catalogue.ENGAGEMENT_REMINDER,)
    await store.cancel_engagement_messages(tenant, need_id, reminders, "need_closed", transaction)
    if event.data.outcome is NeedOutcome.NOT_FULFILLED:
        await store.cancel_engagement_messages(tenant, need_id, ENGAGEMENT_MESSAGES, "need_closed", transaction)
    else:
        for engagement in await store.accepted_proposals(tenant, need_id, transaction):
            await thank(store, engagement, transaction)
    await store.close_proposals_of_need(tenant, need_id, ProposalStatus.WITHDRAWN, transaction)


# --- matching's staffing events ---------------------------------------------------------------


def staffing(change: StaffingChange[S]) -> Change[S]:
    """A staffing event newer than the last one applied to its need, with the need as read."""

    async def apply(store: UseCaseStore, event: Envelope[S], transaction: Transaction) -> None:
        tenant, need_id = event.tenant, str(event.data.need_id)
        need = await store.advance_staffing(tenant, need_id, event.version, transaction)
        if need is None:
            log.info("older staffing event ignored", tenant=tenant, event_id=str(event.id))
            return
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
    await _plan_engagement(store, event.tenant, str(data.proposal_id), need, event.time, transaction)


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
    await _plan_engagement(store, event.tenant, proposal.proposal_id, need, event.time, transaction)


async def proposal_declined(
    store: UseCaseStore, event: Envelope[ProposalDeclined], need: Need | None, transaction: Transaction
) -> None:
    """No mail of its own (matching asks someone else, and escalates when nobody is left), but the
    office and the need's owner see it in their daily digest if they chose one."""
    await store.set_proposal_status(event.tenant, str(event.data.proposal_id), ProposalStatus.DECLINED, transaction)
    snapshot = domain.snapshot_of(need)
    recipients = await _office_recipients(
        store, event.tenant, snapshot.organisation_id if snapshot else None, transaction
    )
    payload = domain.declined_payload(event.data, snapshot)
    for recipient_kind, recipient_id in recipients:
        if await _wants_digest(store, event.tenant, recipient_kind, recipient_id, transaction):
            item = DigestItem(
                event.tenant,
                recipient_kind,
                recipient_id,
                catalogue.PROPOSAL_DECLINED,
                str(event.id),
                payload,
                datetime.now(UTC),
            )
            await store.add_digest_item(item, transaction)


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
    await store.cancel_engagement_messages(
        event.tenant,
        str(data.need_id),
        ENGAGEMENT_MESSAGES,
        "volunteer_stepped_back",
        transaction,
        volunteer_id=str(data.volunteer_id),
    )


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


# --- engagements -------------------------------------------------------------------------------


async def _plan_engagements(
    store: UseCaseStore, tenant: str, need_id: str, snapshot: NeedSnapshot, after: datetime, transaction: Transaction
) -> None:
    for engagement in await store.accepted_proposals(tenant, need_id, transaction):
        await _schedule(store, tenant, engagement.proposal_id, snapshot, after, transaction)


async def _plan_engagement(
    store: UseCaseStore, tenant: str, proposal_id: str, need: Need | None, after: datetime, transaction: Transaction
) -> None:
    """An accepted proposal's schedule, from the need (once the need is read: ``need_opened``)."""
    snapshot = domain.snapshot_of(need)
    if snapshot is not None:
        await _schedule(store, tenant, proposal_id, snapshot, after, transaction)


async def _schedule(
    store: UseCaseStore,
    tenant: str,
    proposal_id: str,
    snapshot: NeedSnapshot,
    after: datetime,
    transaction: Transaction,
) -> None:
    facts = await store.tenant(tenant, transaction)
    timezone = facts.timezone if facts else "Europe/Berlin"
    starts_at, ends_at = domain.engagement_window(snapshot.schedule, timezone, after)
    await store.schedule_engagement(tenant, proposal_id, starts_at, ends_at, transaction)


async def thank(store: UseCaseStore, engagement: Proposal, transaction: Transaction) -> bool:
    """Queue the thank-you for an engagement, once (whether the schedule or the need's close comes first)."""
    if not await store.mark_thanked(engagement.tenant, engagement.proposal_id, transaction):
        return False
    trigger = str(domain.synthetic_trigger("thanks", engagement.tenant, engagement.proposal_id))
    payload = domain.engagement_payload(engagement.need_id, engagement.proposal_id, None)
    await queue_for_volunteer(
        store,
        transaction,
        tenant=engagement.tenant,
        volunteer_id=engagement.volunteer_id,
        kind=catalogue.ENGAGEMENT_THANKS,
        payload=payload,
        trigger=trigger,
        correlation_id=engagement.correlation_id or trigger,
    )
    return True


async def remind(store: UseCaseStore, engagement: Proposal, transaction: Transaction) -> bool:
    """Queue the reminder before an engagement's start, once per start."""
    starts_at = engagement.starts_at
    if starts_at is None or not await store.mark_start_reminded(
        engagement.tenant, engagement.proposal_id, starts_at, transaction
    ):
        return False
    trigger = str(
        domain.synthetic_trigger(
            "engagement-reminder", engagement.tenant, engagement.proposal_id, starts_at.isoformat()
        )
    )
    await queue_for_volunteer(
        store,
        transaction,
        tenant=engagement.tenant,
        volunteer_id=engagement.volunteer_id,
        kind=catalogue.ENGAGEMENT_REMINDER,
        payload=domain.engagement_payload(engagement.need_id, engagement.proposal_id, starts_at),
        trigger=trigger,
        correlation_id=engagement.correlation_id or trigger,
    )
    return True


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
    await queue_for_volunteer(
        store,
        transaction,
        tenant=event.tenant,
        volunteer_id=volunteer_id,
        kind=kind,
        payload=payload,
        trigger=str(event.id),
        correlation_id=event.correlationid,
    )


async def queue_for_volunteer(
    store: UseCaseStore,
    transaction: Transaction,
    *,
    tenant: str,
    volunteer_id: str,
    kind: str,
    payload: dict[str, Any],
    trigger: str,
    correlation_id: str,
) -> None:
    """One delivery per channel (``domain.volunteer_channels``), in the volunteer's language; one
    the volunteer cannot be reached on is recorded as skipped with its reason."""
    contact = await store.contact(tenant, volunteer_id, transaction)
    language = contact.details.preferred_language if contact and contact.details else None
    if not language:  # the tenant's language is read only for those who chose none
        facts = await store.tenant(tenant, transaction)
        language = (facts.default_language if facts else None) or "de"
    # All channels in one write; an unknown volunteer may just not be read yet (another topic):
    # queued without a skip reason, the worker waits.
    await store.add_deliveries(
        transaction,
        [
            NewDelivery(
                tenant=tenant,
                trigger_event_id=trigger,
                correlation_id=correlation_id,
                kind=kind,
                recipient_kind=RecipientKind.VOLUNTEER.value,
                recipient_id=volunteer_id,
                channel=channel,
                language=language,
                payload=payload,
                skip_reason=skip_reason(contact, channel, kind) if contact is not None else None,
            )
            for channel in volunteer_channels(contact)
        ],
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
    mailbox is the office's), in the tenant's default language; a recipient who chose a daily
    digest finds the event there instead. An organisation or tenant not read yet is queued
    anyway; the worker waits for it and decides then. ``owner`` is ("organisation", its id), or
    ("need_owner", the need's id) while the need is not read yet (then by mail)."""
    tenant = await store.tenant(event.tenant, transaction)
    language = (tenant.default_language if tenant else None) or "de"
    owner_kind, owner_id = owner
    if owner_kind == RecipientKind.ORGANISATION.value:
        recipients = await _office_recipients(store, event.tenant, owner_id, transaction)
    else:
        recipients = [(RecipientKind.TENANT.value, event.tenant), owner]
    mails: list[NewDelivery] = []
    for recipient_kind, recipient_id in recipients:
        if await _wants_digest(store, event.tenant, recipient_kind, recipient_id, transaction):
            item = DigestItem(
                event.tenant, recipient_kind, recipient_id, kind, str(event.id), payload, datetime.now(UTC)
            )
            await store.add_digest_item(item, transaction)
            continue
        mails.append(
            NewDelivery(
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
        )
    await store.add_deliveries(transaction, mails)


async def _office_recipients(
    store: UseCaseStore, tenant_slug: str, organisation_id: str | None, transaction: Transaction
) -> list[tuple[str, str]]:
    """The coordination office, and the need's organisation unless it is not known or its
    mailbox is the office's (then the office's mail is the only one)."""
    recipients = [(RecipientKind.TENANT.value, tenant_slug)]
    if organisation_id is None:
        return recipients
    tenant = await store.tenant(tenant_slug, transaction)
    organisation = await store.organisation(tenant_slug, organisation_id, transaction)
    if tenant is None or organisation is None or organisation.contact_email != tenant.coordination_email:
        recipients.append((RecipientKind.ORGANISATION.value, organisation_id))
    return recipients


async def _wants_digest(
    store: UseCaseStore, tenant: str, recipient_kind: str, recipient_id: str, transaction: Transaction
) -> bool:
    if recipient_kind not in {RecipientKind.TENANT.value, RecipientKind.ORGANISATION.value}:
        return False
    preference = await store.mail_preference(tenant, recipient_kind, recipient_id, transaction)
    return preference is not None and preference.delivery is OfficeMail.DAILY_DIGEST


async def forward_to_webhooks(store: UseCaseStore, event: Envelope[Any], transaction: Transaction) -> None:
    """Each webhook gets the event as its partner may see it (``partner_events``): the delivery
    log keeps only that projection, never the whole event."""
    hooks = await store.webhooks(event.tenant, transaction)
    deliveries = []
    for hook in hooks:
        if not hook.forwards(event.type) or (forwarded := partner_events.for_partner(event, hook.fields)) is None:
            continue
        deliveries.append(
            NewDelivery(
                tenant=event.tenant,
                trigger_event_id=str(event.id),
                correlation_id=event.correlationid,
                kind="webhook_event",
                recipient_kind=RecipientKind.PARTNER.value,
                recipient_id=hook.id,
                channel=Channel.WEBHOOK,
                language="de",
                payload={"event_type": event.type, "body": to_bytes(forwarded).decode()},
            )
        )
    if deliveries:
        await store.add_deliveries(transaction, deliveries)
