"""What the platform sends on its own schedule: reminders of proposals about to expire, reminders
before an engagement and thanks after it, the daily digests of those who chose one and the
coordination office's weekly digest. Each queues deliveries (the worker sends them) in one
transaction with the mark that it was planned, under a synthetic trigger, so that a second pass,
a restart or a second replica plans nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from pymongo.errors import DuplicateKeyError

from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import domain, service
from lotse_notifications.catalogue import DAILY_DIGEST, PROPOSAL_REMINDER, WEEKLY_DIGEST
from lotse_notifications.records import Proposal, TenantFacts
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import DELIVERIES, Store
from lotse_runtime.audit import Operation
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
        """Every ``reminder_interval_seconds``: what is due of reminders, thanks and daily digests
        (and the weekly digest, if enabled)."""
        while True:
            try:
                await self.plan_due(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                log.warning("reminder pass failed", error=repr(error))
            await asyncio.sleep(self.settings.reminder_interval_seconds)

    async def plan_due(self, now: datetime) -> int:
        planned = await self.remind_due(now)
        planned += await self.remind_engagements(now)
        planned += await self.thank_engagements(now)
        planned += await self.daily_digests_due(now)
        if self.settings.weekly_digest:
            planned += await self.digest_due(now)
        return planned

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
        trigger = str(domain.synthetic_trigger("reminder", tenant, proposal.proposal_id))
        await service.queue_for_volunteer(
            self.store,
            transaction,
            tenant=tenant,
            volunteer_id=proposal.volunteer_id,
            kind=PROPOSAL_REMINDER,
            payload=proposal.payload or {},
            trigger=trigger,
            correlation_id=proposal.correlation_id or trigger,
        )
        return 1

    # --- engagements -------------------------------------------------------------------------

    async def remind_engagements(self, now: datetime) -> int:
        """Remind each volunteer of an engagement starting within ``engagement_reminder_hours``.
        One reminder per start: a weekly need is reminded before its first occurrence only, since
        the calendar entry of that reminder holds every occurrence (a mail each week would soon be
        noise); a need moved to another day is reminded again."""
        before = timedelta(hours=self.settings.engagement_reminder_hours)
        planned = 0
        for engagement in await self.store.engagements_to_remind(now, before):
            planned += await self._planned(partial(self._once, service.remind, engagement))
        if planned:
            self.wake()
        return planned

    async def thank_engagements(self, now: datetime) -> int:
        """Thank each volunteer after their engagement's end (a weekly need without a last day is
        thanked when its owner closes it as done: ``service.need_closed``)."""
        planned = 0
        for engagement in await self.store.engagements_to_thank(now, domain.THANKS_WITHIN):
            planned += await self._planned(partial(self._once, service.thank, engagement))
        if planned:
            self.wake()
        return planned

    async def _planned(self, work: Callable[[Transaction], Awaitable[int]]) -> int:
        """Run one plan in its own transaction. Another replica that planned the same message at the
        same moment has taken its delivery key: then this one plans nothing (its transaction is gone)."""
        try:
            return await self.unit_of_work.run(work)
        except DuplicateKeyError:
            log.info("planned by another replica meanwhile")
            return 0

    async def _once(
        self,
        plan: Callable[[Store, Proposal, Transaction], Awaitable[bool]],
        engagement: Proposal,
        transaction: Transaction,
    ) -> int:
        return 1 if await plan(self.store, engagement, transaction) else 0

    # --- daily digests -----------------------------------------------------------------------

    async def daily_digests_due(self, now: datetime) -> int:
        """For everyone with events waiting: once their digest time has come today (their own,
        else ``daily_digest_time``; the tenant's local time), one digest of what waited since
        before that time. Events that come later wait for the next day's digest."""
        planned = 0
        for slug, recipient_kind, recipient_id in await self.store.digest_recipients():
            tenant = await self.store.tenant(slug)
            if tenant is None:
                continue
            preference = await self.store.mail_preference(slug, recipient_kind, recipient_id)
            at = preference.digest_time if preference else self.settings.daily_digest_time
            day, moment = domain.daily_digest_moment(now, tenant.timezone, at)
            if now < moment:
                continue
            work = partial(self._daily_digest, tenant, recipient_kind, recipient_id, day, moment)
            planned += await self._planned(work)
        if planned:
            self.wake()
        return planned

    async def _daily_digest(
        self,
        tenant: TenantFacts,
        recipient_kind: str,
        recipient_id: str,
        day: date,
        moment: datetime,
        transaction: Transaction,
    ) -> int:
        slug = tenant.tenant
        items = await self.store.waiting_digest_items(slug, recipient_kind, recipient_id, moment, transaction)
        if not items:
            return 0
        # One digest per recipient and day: planning it again (a restart, a second replica) is a no-op.
        trigger = str(domain.synthetic_trigger("daily-digest", slug, recipient_kind, recipient_id, day.isoformat()))
        created = await self.store.add_delivery(
            transaction,
            tenant=slug,
            trigger_event_id=trigger,
            correlation_id=trigger,
            kind=DAILY_DIGEST,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            channel=Channel.EMAIL,
            language=tenant.default_language,
            payload=domain.daily_digest_payload(items, day),
        )
        if created is None:
            return 0
        await self.store.take_digest_items(items, trigger, transaction)
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
            # Audited: the office asks for it by hand (the timer's is the system's).
            fields = {"kind", "recipient_kind", "recipient_id", "channel", "payload"}
            transaction.audit(slug, Operation.CREATE, DELIVERIES, created.id, fields)
            transaction.after_commit_or_unknown(self.wake)
            return True

        created = await self.unit_of_work.run(work)
        return payload, created
