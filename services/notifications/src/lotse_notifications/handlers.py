"""Kafka handler: apply registry and matching events to the read model and queue deliveries.

Each event is applied in one transaction together with its inbox record and the deliveries it
causes (status pending, or skipped with a reason and a NotificationFailed in the outbox). Nothing
is sent here: the delivery worker sends from the queue, so a slow SMTP server or partner endpoint
never holds up the consumer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

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
from lotse_contracts.events.values import Channel, ConsentPurpose
from lotse_notifications import catalogue, messages
from lotse_notifications.messages import PERSON_CHANNELS, skip_reason
from lotse_notifications.store import Store
from lotse_runtime.consumer import Delivery
from lotse_runtime.inbox import record_once
from lotse_runtime.mongo import in_transaction

log = structlog.get_logger("lotse.notifications")

# Partner systems may receive need and staffing events; volunteer events carry contact data.
WEBHOOK_PREFIXES = ("de.lotse.registry.need.", "de.lotse.matching.")


class EventHandler:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        store: Store,
        consumer: str,
        on_commit: Callable[[], None],
        tenant_pattern: str | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.consumer = consumer
        self.on_commit = on_commit
        self.tenants = re.compile(tenant_pattern) if tenant_pattern else None

    async def __call__(self, event: Envelope[Any], delivery: Delivery) -> None:
        if self.tenants is not None and not self.tenants.fullmatch(event.tenant):
            return

        async def work(session: AsyncClientSession) -> bool:
            if not await record_once(
                self.store.db, session, consumer=self.consumer, event_id=str(event.id), tenant=event.tenant
            ):
                return False
            await self.apply(event, session)
            return True

        if await in_transaction(self.client, work):
            self.on_commit()

    async def apply(self, event: Envelope[Any], session: AsyncClientSession) -> None:
        data = event.data
        tenant, version = event.tenant, event.version
        if event.type.startswith(WEBHOOK_PREFIXES):
            await self._forward_to_webhooks(event, session)
        match data:
            case TenantOnboarded():
                fields = data.model_dump(mode="json")
                await self.store.upsert_versioned("tenants", tenant, tenant, version, fields, session)
            case OrganisationRegistered() | OrganisationUpdated():
                fields = data.model_dump(mode="json")
                await self.store.upsert_versioned(
                    "organisations", tenant, str(data.organisation_id), version, fields, session
                )
            case VolunteerRegistered():
                fields = _contact_fields(data) | {
                    "contact_consent": ConsentPurpose.CONTACT in data.consent.purposes,
                    "organisation_id": str(data.organisation_id) if data.organisation_id else None,
                }
                if await self.store.upsert_versioned(
                    "contacts", tenant, str(data.volunteer_id), version, fields, session
                ):
                    await self._to_volunteer(event, str(data.volunteer_id), catalogue.WELCOME, {}, session)
            case VolunteerProfileUpdated():
                fields = _contact_fields(data)
                await self.store.upsert_versioned("contacts", tenant, str(data.volunteer_id), version, fields, session)
            case VolunteerWithdrawn():
                if data.erasure_requested:
                    await self.store.erase_volunteer(tenant, str(data.volunteer_id), version, session)
                else:
                    await self.store.withdraw_volunteer(tenant, str(data.volunteer_id), session)
            case VolunteerErased():
                await self.store.erase_volunteer(tenant, str(data.volunteer_id), version, session)
            case NeedOpened() | NeedUpdated():
                fields = messages.need_snapshot(data)
                known = await self.store.need(tenant, str(data.need_id), session)
                # Matching's staffing events may have come first (another topic); keep what they said.
                if isinstance(data, NeedOpened) and (known is None or "status" not in known):
                    fields |= {"status": "open", "unstaffed": False}
                await self.store.set_need_status(tenant, str(data.need_id), version, fields, session)
            case NeedCancelled():
                await self._need_cancelled(event, data, session)
            case NeedClosed():
                if await self.store.set_need_status(tenant, str(data.need_id), version, {"status": "closed"}, session):
                    # No reminders for a need that is over.
                    await self.store.close_proposals_of_need(tenant, str(data.need_id), "withdrawn", session)
            case _ if event.type.startswith("de.lotse.matching."):
                await self._staffing(event, session)
            case _:
                pass  # availability changes and the like do not concern notifications

    async def _staffing(self, event: Envelope[Any], session: AsyncClientSession) -> None:
        data, tenant = event.data, event.tenant
        need_id = str(data.need_id)
        if not await self.store.advance_staffing(tenant, need_id, event.version, session):
            log.info("older staffing event ignored", tenant=tenant, event_id=str(event.id))
            return
        need = await self.store.need(tenant, need_id, session)
        match data:
            case MatchProposed():
                await self.store.save_proposal(
                    tenant,
                    str(data.proposal_id),
                    {
                        "need_id": need_id,
                        "volunteer_id": str(data.volunteer_id),
                        "status": "open",
                        "expires_at": data.expires_at,
                        "reminded": False,
                        "correlation_id": event.correlationid,
                        "payload": messages.proposal_payload(data, messages.snapshot_of(need)),
                    },
                    session,
                )
                await self._about_need(event, need, str(data.volunteer_id), catalogue.MATCH_PROPOSED, session)
            case ProposalAccepted():
                await self.store.set_proposal_status(tenant, str(data.proposal_id), "accepted", session)
                await self._about_need(event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, session)
            case VolunteerPickedNeed():
                await self.store.save_proposal(
                    tenant,
                    f"picked-{need_id}-{data.volunteer_id}",
                    {"need_id": need_id, "volunteer_id": str(data.volunteer_id), "status": "accepted"},
                    session,
                )
                await self._about_need(event, need, str(data.volunteer_id), catalogue.PROPOSAL_ACCEPTED, session)
            case ProposalDeclined():
                await self.store.set_proposal_status(tenant, str(data.proposal_id), "declined", session)
            case ProposalExpired():
                await self.store.set_proposal_status(tenant, str(data.proposal_id), "expired", session)
            case ProposalWithdrawn():
                await self.store.set_proposal_status(tenant, str(data.proposal_id), "withdrawn", session)
            case VolunteerSteppedBack():
                await self.store.step_back(tenant, need_id, str(data.volunteer_id), session)
            case NeedStaffed():
                await self.store.set_need_fields(tenant, need_id, {"status": "staffed", "unstaffed": False}, session)
                payload = messages.staffed_payload(data, messages.snapshot_of(need))
                # The event names no organisation: the need's owner, once the need is read.
                known_owner = (need or {}).get("organisation_id")
                owner = ("organisation", str(known_owner)) if known_owner else ("need_owner", need_id)
                await self._to_office(event, catalogue.NEED_STAFFED, payload, owner, session)
            case NeedUnstaffed():
                await self.store.set_need_fields(tenant, need_id, {"unstaffed": True}, session)
                payload = messages.unstaffed_payload(data, messages.snapshot_of(need))
                owner = ("organisation", str(data.organisation_id))
                await self._to_office(event, catalogue.NEED_UNSTAFFED, payload, owner, session)

    async def _need_cancelled(self, event: Envelope[Any], data: NeedCancelled, session: AsyncClientSession) -> None:
        tenant, need_id = event.tenant, str(data.need_id)
        fields = {"status": "cancelled", "cancellation_reason": data.reason.value}
        if not await self.store.set_need_status(tenant, need_id, event.version, fields, session):
            return
        need = await self.store.need(tenant, need_id, session)
        for volunteer_id in await self.store.engaged_volunteers(tenant, need_id, session):
            await self._about_need(event, need, volunteer_id, catalogue.NEED_CANCELLED, session)
        await self.store.close_proposals_of_need(tenant, need_id, "withdrawn", session)

    async def _about_need(
        self,
        event: Envelope[Any],
        need: dict[str, Any] | None,
        volunteer_id: str,
        kind: str,
        session: AsyncClientSession,
    ) -> None:
        snapshot = messages.snapshot_of(need)
        if kind == catalogue.MATCH_PROPOSED:
            payload = messages.proposal_payload(event.data, snapshot)
        else:
            payload = messages.need_payload(str(event.data.need_id), snapshot)
        await self._to_volunteer(event, volunteer_id, kind, payload, session)

    async def _to_volunteer(
        self, event: Envelope[Any], volunteer_id: str, kind: str, payload: dict[str, Any], session: AsyncClientSession
    ) -> None:
        contact = await self.store.contact(event.tenant, volunteer_id, session)
        tenant = await self.store.tenant(event.tenant, session)
        language = (contact or {}).get("preferred_language") or (tenant or {}).get("default_language") or "de"
        for channel in PERSON_CHANNELS:
            # An unknown volunteer may just not be read yet (another topic): queue, the worker waits.
            reason = skip_reason(contact, channel, kind) if contact is not None else None
            await self.store.add_delivery(
                session,
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
        self,
        event: Envelope[Any],
        kind: str,
        payload: dict[str, Any],
        owner: tuple[str, str],
        session: AsyncClientSession,
    ) -> None:
        """Email the coordination office and the organisation that owns the need (unless its
        mailbox is the office's), in the tenant's default language. An organisation or tenant not
        read yet is queued anyway; the worker waits for it and decides then. ``owner`` is
        ("organisation", its id), or ("need_owner", the need's id) while the need is not read yet."""
        tenant = await self.store.tenant(event.tenant, session)
        language = (tenant or {}).get("default_language") or "de"
        recipients = [("tenant", event.tenant)]
        owner_kind, owner_id = owner
        organisation = None
        if owner_kind == "organisation":
            organisation = await self.store.organisation(event.tenant, owner_id, session)
        if not (tenant and organisation) or organisation.get("contact_email") != tenant.get("coordination_email"):
            recipients.append(owner)
        for recipient_kind, recipient_id in recipients:
            await self.store.add_delivery(
                session,
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

    async def _forward_to_webhooks(self, event: Envelope[Any], session: AsyncClientSession) -> None:
        hooks = await self.store.webhooks(event.tenant, session)
        if not hooks:
            return
        body = to_bytes(_for_partners(event)).decode()
        for hook in hooks:
            if hook["event_types"] and event.type not in hook["event_types"]:
                continue
            await self.store.add_delivery(
                session,
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
