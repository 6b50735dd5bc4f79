"""Kafka handlers: apply registry and matching events to the read model and queue deliveries.

Each event is applied in one transaction together with its inbox record and the deliveries it
causes (status pending, or skipped with a reason and a NotificationFailed in the outbox). Nothing
is sent here: the delivery worker sends from the queue, so a slow SMTP server or partner endpoint
never holds up the consumer.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from lotse_contracts import (
    Envelope,
    MatchProposed,
    MatchProposedSealed,
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
    VolunteerContactPersonChanged,
    VolunteerErased,
    VolunteerPickedNeed,
    VolunteerProfileUpdated,
    VolunteerProfileUpdatedFullySealed,
    VolunteerProfileUpdatedSealed,
    VolunteerRegistered,
    VolunteerRegisteredFullySealed,
    VolunteerRegisteredSealed,
    VolunteerSteppedBack,
    VolunteerWithdrawn,
)
from lotse_notifications.batch_keys import BatchKeys
from lotse_notifications.domain import (
    CONTACT_REFERENCE,
    NEED_REFERENCE,
    ORGANISATION_REFERENCE,
    TENANT_REFERENCE,
    reference_key,
)
from lotse_notifications.records import ProposalStatus
from lotse_notifications.service import (
    WEBHOOK_PREFIXES,
    Change,
    E,
    certificate_expiring,
    forward_to_webhooks,
    match_proposed,
    need_cancelled,
    need_closed,
    need_opened,
    need_staffed,
    need_unstaffed,
    need_updated,
    nothing_to_change,
    organisation_changed,
    proposal_accepted,
    proposal_answered,
    proposal_declined,
    staffing,
    tenant_onboarded,
    volunteer_erased,
    volunteer_picked_need,
    volunteer_profile_updated,
    volunteer_registered,
    volunteer_stepped_back,
    volunteer_withdrawn,
)
from lotse_notifications.store import UseCaseStore
from lotse_notifications.threads import contact_person_changed
from lotse_runtime.consumer import Delivery, Dispatch
from lotse_runtime.sealed import Keyring, NoKeyring, SealedSource, unsealing
from lotse_runtime.unit_of_work import Batch, Transaction, UnitOfWork

# The key of the batch's one release of waiting deliveries among its steps before the commit.
RELEASE_WAITING = "notifications.release_waiting"


def brought_references(event: Envelope[Any]) -> list[str]:
    """What deliveries may be waiting for that this event brings into the read model (a tenant, a
    volunteer's contact, an organisation, a need's description): applying it releases them."""
    data, tenant = event.data, event.tenant
    if isinstance(data, TenantOnboarded):
        return [reference_key(tenant, TENANT_REFERENCE)]
    if isinstance(data, VolunteerRegistered | VolunteerProfileUpdated):
        return [reference_key(tenant, CONTACT_REFERENCE, str(data.volunteer_id))]
    if isinstance(data, OrganisationRegistered | OrganisationUpdated):
        return [reference_key(tenant, ORGANISATION_REFERENCE, str(data.organisation_id))]
    if isinstance(data, NeedOpened | NeedUpdated):
        return [reference_key(tenant, NEED_REFERENCE, str(data.need_id))]
    return []


def event_handlers(
    unit_of_work: UnitOfWork,
    store: UseCaseStore,
    consumer: str,
    *,
    queued: Callable[[], None],
    tenant_pattern: str | None = None,
    sms_gateway: bool = False,
    keyring: SealedSource = NoKeyring(),
) -> Dispatch:
    """Every event once, with its inbox record, in one unit of work; ``queued`` (the delivery
    worker's wake-up) runs after each commit. Events of tenants outside ``tenant_pattern`` are
    someone else's; events the table does not name (availability changes and the like) do not
    concern notifications beyond their inbox record. ``sms_gateway``: whether SMS can be
    delivered here (a volunteer who chose only SMS cannot be reached without one)."""
    tenants = re.compile(tenant_pattern) if tenant_pattern else None
    # A batch's sealed events (a need's proposals) open with keys read once for the batch.
    keyring = BatchKeys(keyring) if isinstance(keyring, Keyring) else keyring

    # What the events of a consumer batch brought, released in one write before its commit.
    brought: weakref.WeakKeyDictionary[Batch, list[str]] = weakref.WeakKeyDictionary()

    async def release(references: list[str], transaction: Transaction) -> None:
        """Release the deliveries waiting for ``references``: at once outside a consumer batch;
        in one, together with what the batch's other events brought, as the batch's last write
        before its commit (one update per batch rather than one per need or volunteer read)."""
        batch = transaction.batch
        if batch is None:
            await store.release_waiting(references, transaction)
            return
        if batch not in brought:
            pending = brought[batch] = []

            async def release_brought(session: AsyncClientSession) -> None:
                await store.release_waiting(pending, transaction)  # the batch's session

            transaction.before_commit((RELEASE_WAITING, id(store)), release_brought)
        brought[batch].extend(references)

    def applying(change: Change[E]) -> Callable[[Envelope[E], Delivery], Awaitable[None]]:
        async def handle(event: Envelope[E], delivery: Delivery) -> None:
            if tenants is not None and not tenants.fullmatch(event.tenant):
                return

            async def work(transaction: Transaction) -> None:
                if event.type.startswith(WEBHOOK_PREFIXES):
                    await forward_to_webhooks(store, event, transaction)
                await change(store, event, transaction)
                if references := brought_references(event):
                    # Made due now, in the transaction that applies what they waited for; the
                    # worker is woken below instead of finding them when their wait runs out.
                    await release(references, transaction)
                transaction.after_commit_or_unknown(queued)  # a wake-up: harmless if nothing committed

            await unit_of_work.run_once(consumer, event, work)

        return handle

    return Dispatch(
        {
            TenantOnboarded: applying(tenant_onboarded),
            OrganisationRegistered: applying(organisation_changed),
            OrganisationUpdated: applying(organisation_changed),
            VolunteerRegistered: applying(volunteer_registered(sms_gateway=sms_gateway)),
            VolunteerProfileUpdated: applying(volunteer_profile_updated(sms_gateway=sms_gateway)),
            # Opened with the volunteer's key; an erased volunteer's (key destroyed) changes nothing.
            VolunteerRegisteredSealed: unsealing(
                keyring, applying(volunteer_registered(sms_gateway=sms_gateway)), applying(nothing_to_change)
            ),
            VolunteerProfileUpdatedSealed: unsealing(
                keyring, applying(volunteer_profile_updated(sms_gateway=sms_gateway)), applying(nothing_to_change)
            ),
            VolunteerRegisteredFullySealed: unsealing(
                keyring, applying(volunteer_registered(sms_gateway=sms_gateway)), applying(nothing_to_change)
            ),
            VolunteerProfileUpdatedFullySealed: unsealing(
                keyring, applying(volunteer_profile_updated(sms_gateway=sms_gateway)), applying(nothing_to_change)
            ),
            VolunteerWithdrawn: applying(volunteer_withdrawn),
            VolunteerErased: applying(volunteer_erased),
            VolunteerCertificateExpiring: applying(certificate_expiring),
            VolunteerContactPersonChanged: applying(contact_person_changed),
            NeedOpened: applying(need_opened),
            NeedUpdated: applying(need_updated),
            NeedCancelled: applying(need_cancelled),
            NeedClosed: applying(need_closed),
            MatchProposed: applying(staffing(match_proposed)),
            # The fit opened with the volunteer's key for the mail; an erased volunteer is not written to.
            MatchProposedSealed: unsealing(keyring, applying(staffing(match_proposed)), applying(nothing_to_change)),
            ProposalAccepted: applying(staffing(proposal_accepted)),
            VolunteerPickedNeed: applying(staffing(volunteer_picked_need)),
            ProposalDeclined: applying(staffing(proposal_declined)),
            ProposalExpired: applying(staffing(proposal_answered(ProposalStatus.EXPIRED))),
            ProposalWithdrawn: applying(staffing(proposal_answered(ProposalStatus.WITHDRAWN))),
            VolunteerSteppedBack: applying(staffing(volunteer_stepped_back)),
            NeedStaffed: applying(staffing(need_staffed)),
            NeedUnstaffed: applying(staffing(need_unstaffed)),
        },
        unhandled=applying(nothing_to_change),
    )
