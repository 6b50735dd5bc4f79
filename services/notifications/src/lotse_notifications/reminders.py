"""What the platform sends on its own schedule: reminders of proposals about to expire and the
coordination office's weekly digest. Both queue deliveries (the worker sends them) under a
synthetic trigger, so that a second pass plans nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog

from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import domain
from lotse_notifications.catalogue import PROPOSAL_REMINDER, WEEKLY_DIGEST
from lotse_notifications.domain import PERSON_CHANNELS, skip_reason
from lotse_notifications.records import Proposal, TenantFacts
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

log = structlog.get_logger("lotse.notifications.worker")


class Planner:
    """Plans reminders and digests; ``wake`` tells the delivery worker that deliveries are queued."""

    def __init__(
        self, unit_of_work: UnitOfWork, store: Store, settings: NotificationSettings, wake: Callable[[], None]
    ) -> None:
        self.unit_of_work = unit_of_work
        self.store = store
        self.settings = settings
        self.wake = wake

    async def run_periodically(self) -> None:
        """Reminders (and the weekly digest, if enabled) every ``reminder_interval_seconds``."""
        while True:
            try:
                await self.remind_due(datetime.now(UTC))
                if self.settings.weekly_digest:
                    await self.digest_due(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                log.warning("reminder pass failed", error=repr(error))
            await asyncio.sleep(self.settings.reminder_interval_seconds)

    async def remind_due(self, now: datetime) -> int:
        """Queue a reminder for each open proposal that expires within the reminder window."""
        before = timedelta(hours=self.settings.reminder_before_hours)
        planned = 0
        for proposal in await self.store.proposals_to_remind(now, before):
            if not proposal.payload:
                continue
            planned += await self.unit_of_work.run(partial(self._remind, proposal))
        if planned:
            self.wake()
        return planned

    async def _remind(self, proposal: Proposal, transaction: Transaction) -> int:
        tenant = proposal.tenant
        if not await self.store.mark_reminded(tenant, proposal.proposal_id, transaction):
            return 0
        contact = await self.store.contact(tenant, proposal.volunteer_id, transaction)
        trigger = str(domain.synthetic_trigger("reminder", tenant, proposal.proposal_id))
        language = contact.details.preferred_language if contact and contact.details else "de"
        for channel in PERSON_CHANNELS:
            await self.store.add_delivery(
                transaction,
                tenant=tenant,
                trigger_event_id=trigger,
                correlation_id=proposal.correlation_id or trigger,
                kind=PROPOSAL_REMINDER,
                recipient_kind=RecipientKind.VOLUNTEER.value,
                recipient_id=proposal.volunteer_id,
                channel=channel,
                language=language,
                payload=proposal.payload or {},
                skip_reason=skip_reason(contact, channel, PROPOSAL_REMINDER) if contact is not None else None,
            )
        return 1

    # --- weekly digest -----------------------------------------------------------------------

    async def digest_due(self, now: datetime) -> int:
        """Plan this week's digest for every tenant whose digest time has come (once per week)."""
        planned = 0
        for tenant in await self.store.tenants():
            if domain.digest_due(now, tenant.timezone, self.settings.digest_weekday, self.settings.digest_hour):
                _, created = await self.plan_digest(tenant, now)
                planned += created
        return planned

    async def plan_digest(self, tenant: TenantFacts, now: datetime) -> tuple[dict[str, Any], bool]:
        """Queue the digest of ``now``'s week for the coordination office; False if it was queued before."""
        slug = tenant.tenant
        # The week is the tenant's local week, as digest_due counts it.
        local = now.astimezone(domain.zone(tenant.timezone))
        payload = domain.digest_payload(await self.store.needs_of(slug), local)
        # One digest per tenant and week: the key makes a second trigger in the same week a no-op.
        trigger = str(domain.synthetic_trigger("digest", slug, payload["week"]))

        async def work(transaction: Transaction) -> bool:
            created = await self.store.add_delivery(
                transaction,
                tenant=slug,
                trigger_event_id=trigger,
                correlation_id=trigger,
                kind=WEEKLY_DIGEST,
                recipient_kind=RecipientKind.TENANT.value,
                recipient_id=slug,
                channel=Channel.EMAIL,
                language=tenant.default_language,
                payload=payload,
            )
            if created is None:
                return False
            transaction.after_commit(self.wake)
            return True

        created = await self.unit_of_work.run(work)
        return payload, created
