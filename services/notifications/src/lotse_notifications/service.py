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
from lotse_contracts.events.values import Channel, ConsentPurpose
from lotse_notifications import catalogue, domain
from lotse_notifications.domain import PERSON_CHANNELS, skip_reason
from lotse_notifications.store import Doc, Store
from lotse_runtime.unit_of_work import Transaction

log = structlog.get_logger("lotse.notifications")

# Partner systems may receive need and staffing events; volunteer events carry contact data.
WEBHOOK_PREFIXES = ("de.lotse.registry.need.", "de.lotse.matching.")


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
Change = Callable[[Store, Envelope[E], Transaction], Awaitable[None]]
StaffingChange = Callable[[Store, Envelope[S], Doc | None, Transaction], Awaitable[None]]


async def nothing_to_change(store: Store, event: Envelope[EventData], transaction: Transaction) -> None:
    """Availability changes and the like do not concern notifications."""


# --- registry events ------------------------------------------------------------------------


async def tenant_onboarded(store: Store, event: Envelope[TenantOnboarded], transaction: Transaction) -> None:
    fields = event.data.model_dump(mode="json")
    await store.upsert_versioned("tenants", event.tenant, event.tenant, event.version, fields, transaction.session)


async def organisation_changed(
    store: Store, event: Envelope[OrganisationRegistered | OrganisationUpdated], transaction: Transaction
) -> None:
    data = event.data
    fields = data.model_dump(mode="json")
    await store.upsert_versioned(
        "organisations", event.tenant, str(data.organisation_id), event.version, fields, transaction.session
    )


async def volunteer_registered(store: Store, event: Envelope[VolunteerRegistered], transaction: Transaction) -> None:
    data, volunteer_id = event.data, str(event.data.volunteer_id)
    fields = _contact_fields(data) | {
        "contact_consent": ConsentPurpose.CONTACT in data.consent.purposes,
        "organisation_id": str(data.organisation_id) if data.organisation_id else None,
    }
    if await store.upsert_versioned("contacts", event.tenant, volunteer_id, event.version, fields, transaction.session):
        await _to_volunteer(store, event, volunteer_id, catalogue.WELCOME, {}, transaction)


async def volunteer_profile_updated(
    store: Store, event: Envelope[VolunteerProfileUpdated], transaction: Transaction
) -> None:
    fields = _contact_fields(event.data)
    volunteer_id = str(event.data.volunteer_id)
    await store.upsert_versioned("contacts", event.tenant, volunteer_id, event.version, fields, transaction.session)


async def volunteer_withdrawn(store: Store, event: Envelope[VolunteerWithdrawn], transaction: Transaction) -> None:
    volunteer_id = str(event.data.volunteer_id)
    if event.data.erasure_requested:
        await store.erase_volunteer(event.tenant, volunteer_id, event.version, transaction)
    else:
        await store.withdraw_volunteer(event.tenant, volunteer_id, transaction)


async def volunteer_erased(store: Store, event: Envelope[VolunteerErased], transaction: Transaction) -> None:
    await store.erase_volunteer(event.tenant, str(event.data.volunteer_id), event.version, transaction)


async def need_opened(store: Store, event: Envelope[NeedOpened], transaction: Transaction) -> None:
    tenant, need_id, session = event.tenant, str(event.data.need_id), transaction.session
    fields = domain.need_snapshot(event.data)
    known = await store.need(tenant, need_id, session)
    # Matching's staffing events may have come first (another topic); keep what they said.
    if known is None or "status" not in known:
        fields |= {"status": "open", "unstaffed": False}
    await store.set_need_status(tenant, need_id, event.version, fields, session)


async def need_updated(store: Store, event: Envelope[NeedUpdated], transaction: Transaction) -> None:
    fields = domain.need_snapshot(event.data)
    await store.set_need_status(event.tenant, str(event.data.need_id), event.version, fields, transaction.session)


async def need_cancelled(store: Store, event: Envelope[NeedCancelled], transaction: Transaction) -> None:
    tenant, need_id, session = event.tenant, str(event.data.need_id), transaction.session
    fields = {"status": "cancelled", "cancellation_reason": event.data.reason.value}
    if not await store.set_need_status(tenant, need_id, event.version, fields, session):
        return
    need = await store.need(tenant, need_id, session)
    for volunteer_id in await store.engaged_volunteers(tenant, need_id, session):
        await _about_need(store, event, need, volunteer_id, catalogue.NEED_CANCELLED, transaction)
    await store.close_proposals_of_need(tenant, need_id, "withdrawn", session)


async def need_closed(store: Store, event: Envelope[NeedClosed], transaction: Transaction) -> None:
    tenant, need_id, session = event.tenant, str(event.data.need_id), transaction.session
    if await store.set_need_status(tenant, need_id, event.version, {"status": "closed"}, session):
        # No reminders for a need that is over.
        await store.close_proposals_of_need(tenant, need_id, "withdrawn", session)


# --- matching's staffing events ---------------------------------------------------------------


def staffing(change: StaffingChange[S]) -> Change[S]:
    """A staffing event newer than the last one applied to its need, with the need as read."""

    async def apply(store: Store, event: Envelope[S], transaction: Transaction) -> None:
        tenant, need_id, session = event.tenant, str(event.data.need_id), transaction.session
        if not await store.advance_staffing(tenant, need_id, event.version, session):
            log.info("older staffing event ignored", tenant=tenant, event_id=str(event.id))
            return
        need = await store.need(tenant, need_id, session)
        await change(store, event, need, transaction)

    return apply


async def match_proposed(
    store: Store, event: Envelope[MatchProposed], need: Doc | None, transaction: Transaction
) -> None:
    data = event.data
    await store.save_proposal(
        event.tenant,
        str(data.proposal_id),
        {
            "need_id": str(data.need_id),
            "volunteer_id": str(data.volunteer_id),
            "status": "open",
            "expires_at": data.expires_at,
            "reminded": False,
            "correlation_id": event.correlationid,
            "payload": domain.proposal_payload(data, domain.snapshot_of(need)),
        },
        transaction.session,
    )
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.MATCH_PROPOSED, transaction)


async def proposal_accepted(
    store: Store, event: Envelope[ProposalAccepted], need: Doc | None, transaction: Transaction
) -> None:
    data = event.data
    await store.set_proposal_status(event.tenant, str(data.proposal_id), "accepted", transaction.session)
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, transaction)


async def volunteer_picked_need(
    store: Store, event: Envelope[VolunteerPickedNeed], need: Doc | None, transaction: Transaction
) -> None:
    data, need_id = event.data, str(event.data.need_id)
    await store.save_proposal(
        event.tenant,
        f"picked-{need_id}-{data.volunteer_id}",
        {"need_id": need_id, "volunteer_id": str(data.volunteer_id), "status": "accepted"},
        transaction.session,
    )
    await _about_need(store, event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, transaction)


def proposal_answered(
    status: str,
) -> StaffingChange[ProposalDeclined | ProposalExpired | ProposalWithdrawn]:
    """A proposal declined, expired or withdrawn: only its status changes (no message)."""

    async def apply(
        store: Store,
        event: Envelope[ProposalDeclined | ProposalExpired | ProposalWithdrawn],
        need: Doc | None,
        transaction: Transaction,
    ) -> None:
        await store.set_proposal_status(event.tenant, str(event.data.proposal_id), status, transaction.session)

    return apply


async def volunteer_stepped_back(
    store: Store, event: Envelope[VolunteerSteppedBack], need: Doc | None, transaction: Transaction
) -> None:
    data = event.data
    await store.step_back(event.tenant, str(data.need_id), str(data.volunteer_id), transaction.session)


async def need_staffed(store: Store, event: Envelope[NeedStaffed], need: Doc | None, transaction: Transaction) -> None:
    need_id = str(event.data.need_id)
    await store.set_need_fields(event.tenant, need_id, {"status": "staffed", "unstaffed": False}, transaction.session)
    payload = domain.staffed_payload(event.data, domain.snapshot_of(need))
    # The event names no organisation: the need's owner, once the need is read.
    known_owner = (need or {}).get("organisation_id")
    owner = ("organisation", str(known_owner)) if known_owner else ("need_owner", need_id)
    await _to_office(store, event, catalogue.NEED_STAFFED, payload, owner, transaction)


async def need_unstaffed(
    store: Store, event: Envelope[NeedUnstaffed], need: Doc | None, transaction: Transaction
) -> None:
    need_id = str(event.data.need_id)
    await store.set_need_fields(event.tenant, need_id, {"unstaffed": True}, transaction.session)
    payload = domain.unstaffed_payload(event.data, domain.snapshot_of(need))
    owner = ("organisation", str(event.data.organisation_id))
    await _to_office(store, event, catalogue.NEED_UNSTAFFED, payload, owner, transaction)


# --- deliveries -------------------------------------------------------------------------------


async def _about_need(
    store: Store,
    event: Envelope[Any],
    need: Doc | None,
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
    store: Store,
    event: Envelope[Any],
    volunteer_id: str,
    kind: str,
    payload: dict[str, Any],
    transaction: Transaction,
) -> None:
    contact = await store.contact(event.tenant, volunteer_id, transaction.session)
    tenant = await store.tenant(event.tenant, transaction.session)
    language = (contact or {}).get("preferred_language") or (tenant or {}).get("default_language") or "de"
    for channel in PERSON_CHANNELS:
        # An unknown volunteer may just not be read yet (another topic): queue, the worker waits.
        reason = skip_reason(contact, channel, kind) if contact is not None else None
        await store.add_delivery(
            transaction,
            tenant=event.tenant,
            trigger_event_id=str(event.id),
            correlation_id=event.correlationid,
            kind=kind,
            recipient_kind="volunteer",
            recipient_id=volunteer_id,
            channel=channel,
            language=language,
            payload=payload,
            skip_reason=reason,
        )


async def _to_office(
    store: Store,
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
    tenant = await store.tenant(event.tenant, transaction.session)
    language = (tenant or {}).get("default_language") or "de"
    recipients = [("tenant", event.tenant)]
    owner_kind, owner_id = owner
    organisation = None
    if owner_kind == "organisation":
        organisation = await store.organisation(event.tenant, owner_id, transaction.session)
    if not (tenant and organisation) or organisation.get("contact_email") != tenant.get("coordination_email"):
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
            channel=Channel.EMAIL.value,
            language=language,
            payload=payload,
        )


async def forward_to_webhooks(store: Store, event: Envelope[Any], transaction: Transaction) -> None:
    hooks = await store.webhooks(event.tenant, transaction.session)
    if not hooks:
        return
    body = to_bytes(_for_partners(event)).decode()
    for hook in hooks:
        if hook["event_types"] and event.type not in hook["event_types"]:
            continue
        await store.add_delivery(
            transaction,
            tenant=event.tenant,
            trigger_event_id=str(event.id),
            correlation_id=event.correlationid,
            kind="webhook_event",
            recipient_kind="partner",
            recipient_id=hook["_id"],
            channel=Channel.WEBHOOK.value,
            language="de",
            payload={"event_type": event.type, "body": body},
        )


def _contact_fields(data: VolunteerRegistered | VolunteerProfileUpdated) -> dict[str, Any]:
    contact = data.contact
    return {
        "volunteer_id": str(data.volunteer_id),
        "display_name": contact.display_name,
        "email": contact.email,
        "phone": contact.phone,
        "preferred_language": contact.preferred_language,
        "channels": [channel.value for channel in contact.channels],
        "quiet_hours": contact.quiet_hours.model_dump(mode="json") if contact.quiet_hours else None,
        "opted_out_of": [kind.value for kind in contact.opted_out_of],
        "active": True,
    }


def _for_partners(event: Envelope[Any]) -> Envelope[Any]:
    """The event as partners see it: the volunteer's signed answer links stay private."""
    if isinstance(event.data, MatchProposed):
        return event.model_copy(
            update={"data": event.data.model_copy(update={"accept_url": None, "decline_url": None})}
        )
    return event
