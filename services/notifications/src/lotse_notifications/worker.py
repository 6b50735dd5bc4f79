"""The delivery worker: sends queued deliveries with bounded concurrency, retries with backoff,
dead-letters after the last attempt, and publishes every outcome through the outbox. Who a
delivery goes to and what it says is ``recipients``; reminders and the digest are ``reminders``.

Exactly once in effect, and where it ends:

1. The event handler commits the delivery as ``pending`` in the same transaction as the inbox
   record: a redelivered event finds the inbox record, and the unique delivery key stops a second
   queue entry for the same (event, recipient, channel) in any case.
2. The worker claims a delivery with a lease (``claimed_until``); one claim, one send.
3. After the send it marks the delivery ``sent`` and appends NotificationSent in one transaction.
   In-app messages are written in that very transaction, so they are exactly once.

The remaining window is between 2 and 3 for email and webhooks: if the process dies after the
SMTP server or the endpoint accepted the message but before the mark is committed, the lease runs
out and the delivery is sent again. SMTP offers no way to ask whether a message arrived, so this
is at least once; the resend carries the same ``Message-ID`` (email) and ``X-Lotse-Delivery``
(webhook) so that receivers can drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter

from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue, domain, ical
from lotse_notifications.channels import (
    Attachment,
    EmailChannel,
    SendFailed,
    SmsChannel,
    WebhookChannel,
    email_message,
    sms_text,
)
from lotse_notifications.recipients import Composed, Composer, NotYet, QuietHours, Undeliverable
from lotse_notifications.reminders import Planner
from lotse_notifications.service import check_reachable
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import DEAD, SENT, SKIPPED, Delivery, DeliveryStatus, Store
from lotse_runtime.destinations import Resolver, system_resolver
from lotse_runtime.tracing import continuing_span
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from lotse_runtime.wakeup import woken

log = structlog.get_logger("lotse.notifications.worker")

# Channels whose addresses can fail for good (in-app messages always arrive).
TRACKED = frozenset({Channel.EMAIL, Channel.SMS})

# Labels carry no personal data: channel, kind and outcome only.
DELIVERY_ATTEMPTS = Counter(
    "lotse_notification_delivery_attempts_total",
    "Delivery attempts by outcome (sent, retry, dead, skipped, cancelled)",
    ["channel", "kind", "outcome"],
)


class DeliveryWorker:
    def __init__(
        self,
        unit_of_work: UnitOfWork,
        store: Store,
        settings: NotificationSettings,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.store = store
        self.settings = settings
        self.email = EmailChannel(settings)
        self.webhook = WebhookChannel(settings, resolver)
        self.sms = SmsChannel(settings, resolver)
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.composer = Composer(store, settings)
        self.planner = Planner(unit_of_work, store, settings, self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="delivery-worker"),
            asyncio.create_task(self.planner.run_periodically(), name="proposal-reminders"),
        ]

    async def stop(self) -> None:
        """Stop claiming; let the sends in flight finish and be recorded within the shutdown grace.
        A send cut off after the server took it would go out again once its lease ran out."""
        for task in self._tasks:
            task.cancel()
        in_flight = set(self._in_flight)
        if in_flight:
            log.info("shutdown: waiting for the deliveries in flight", in_flight=len(in_flight))
            _, unfinished = await asyncio.wait(in_flight, timeout=self.settings.shutdown_grace_seconds)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("shutdown: deliveries outlasted the grace, retried after their lease", cut=len(unfinished))
        for task in [*self._tasks, *in_flight]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._in_flight = [], set()
        await self.webhook.close()
        await self.sms.close()

    # --- the queue ---------------------------------------------------------------------------

    async def _run(self) -> None:
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        while True:
            claimed = 0
            try:
                # Claim only while a slot is free: a slow endpoint occupies one slot, never the queue.
                while True:
                    await self._slots.acquire()
                    delivery = await self.store.claim_due(self.owner, lease)
                    if delivery is None:
                        self._slots.release()
                        break
                    claimed += 1
                    task = asyncio.create_task(self._deliver_in_slot(delivery))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database may be away; try again later
                self._slots.release()
                log.warning("claiming deliveries failed", error=repr(error))
            if claimed == 0:
                self._wake.clear()
                await woken(self._wake, self.settings.worker_poll_seconds)

    async def _deliver_in_slot(self, delivery: Delivery) -> None:
        try:
            await self.deliver(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the lease brings it back; log and go on
            log.error("delivery attempt crashed", delivery_id=delivery.id, error=repr(error))
        finally:
            self._slots.release()

    async def deliver(self, delivery: Delivery) -> None:
        attributes = {
            "lotse.tenant": delivery.tenant,
            "lotse.delivery_id": delivery.id,
            "lotse.channel": delivery.channel.value,
            "lotse.kind": delivery.kind,
        }
        span_name = f"deliver {delivery.channel.value}"
        with continuing_span(span_name, delivery.trace_context, attributes=attributes):
            await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        attempt = delivery.attempts + 1
        language: str | None = delivery.language
        try:
            language = await asyncio.wait_for(self._send(delivery), self.settings.delivery_timeout_seconds + 5)
        except Undeliverable as failure:
            await self._record(delivery, attempt, status=failure.status, code=failure.code, error=str(failure))
            return
        except NotYet as waiting:
            await self._wait_for_reference(delivery, waiting.code, attempt)
            return
        except QuietHours as quiet:
            await self._postpone(delivery, quiet.until)
            return
        except SendFailed as failure:
            final = failure.permanent or attempt >= self.settings.delivery_max_attempts
            await self._record(delivery, attempt, status=DEAD if final else None, code=failure.code, error=str(failure))
            return
        except TimeoutError:
            final = attempt >= self.settings.delivery_max_attempts
            await self._record(
                delivery, attempt, status=DEAD if final else None, code="timeout", error="send timed out"
            )
            return
        await self._record(delivery, attempt, status=SENT, language=language)

    async def _send(self, delivery: Delivery) -> str:
        """Send once; return the language it went out in."""
        tenant = delivery.tenant
        if delivery.channel is Channel.WEBHOOK:
            hook = await self.store.webhook(tenant, delivery.recipient_id)
            if hook is None:
                raise Undeliverable("webhook_removed", "the webhook was removed")
            payload = delivery.payload or {}
            await self.webhook.send(
                hook.url,
                hook.secret,
                payload["body"].encode(),
                delivery_id=delivery.id,
                event_type=payload["event_type"],
            )
            return delivery.language
        composed = await self.composer.compose(delivery)
        rendered = composed.rendered
        if delivery.channel is Channel.EMAIL:
            message = email_message(
                rendered,
                sender=self.settings.mail_from,
                to=composed.address,
                delivery_id=delivery.id,
                reply_to=composed.reply_to,
                attachments=self._attachments(delivery, composed),
            )
            await self.email.send(message)
        elif delivery.channel is Channel.SMS:
            more = catalogue.gettext(rendered.language, catalogue.SMS_MORE)
            await self.sms.send(composed.address, sms_text(rendered, more), delivery_id=delivery.id)
        delivery.rendered = rendered  # in-app: stored in the same transaction as the mark
        return rendered.language

    @staticmethod
    def _attachments(delivery: Delivery, composed: Composed) -> list[Attachment]:
        """The engagement reminder's calendar entry (the in-app message and the SMS say the date only)."""
        if delivery.kind != catalogue.ENGAGEMENT_REMINDER:
            return []
        payload, language = composed.payload, composed.rendered.language
        category = catalogue.label(catalogue.CATEGORY_LABELS, payload["need"]["category"], language)
        document = ical.engagement_calendar(
            payload["need_id"], payload["need"], category, composed.timezone, datetime.now(UTC)
        )
        return [Attachment(document, "text", "calendar", "lotse-einsatz.ics", {"method": "PUBLISH"})]

    async def _wait_for_reference(self, delivery: Delivery, code: str, attempt: int) -> None:
        waited = (datetime.now(UTC) - delivery.created_at).total_seconds()
        if waited > self.settings.reference_grace_seconds:
            detail = f"still unknown after {waited:.0f} s"
            await self._record(delivery, attempt, status=SKIPPED, code=code, error=detail)
            return
        waits = delivery.waits + 1
        delay = domain.backoff_seconds(
            waits, base=self.settings.retry_base_seconds, cap=self.settings.retry_max_seconds
        )
        fields = {"waits": waits, "reason": code, "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay)}

        async def work(transaction: Transaction) -> bool:
            return await self.store.finish(delivery, fields, transaction.session)

        await self.unit_of_work.run(work)

    async def _postpone(self, delivery: Delivery, until: datetime) -> None:
        """Due again when the quiet window ends; attempts stay as they are."""

        async def work(transaction: Transaction) -> bool:
            fields = {"reason": "quiet_hours", "next_attempt_at": until}
            return await self.store.finish(delivery, fields, transaction.session)

        await self.unit_of_work.run(work)

    async def _record(
        self,
        delivery: Delivery,
        attempt: int,
        *,
        status: DeliveryStatus | None,
        code: str = "",
        error: str = "",
        language: str | None = None,
    ) -> None:
        """One transaction: the outcome in the log, its event in the outbox, the in-app message."""
        now = datetime.now(UTC)
        error = domain.without_addresses(error)
        if status == SENT:
            fields: dict[str, Any] = {"status": SENT.value, "attempts": attempt, "sent_at": now, "language": language}
        elif status is None:
            delay = domain.backoff_seconds(
                attempt, base=self.settings.retry_base_seconds, cap=self.settings.retry_max_seconds
            )
            fields = {"attempts": attempt, "next_attempt_at": now + timedelta(seconds=delay), "error": error}
            fields["reason"] = code
        else:
            fields = {"status": status.value, "attempts": attempt, "reason": code, "error": error, "failed_at": now}
        fields.update(recipient_kind=delivery.recipient_kind, recipient_id=delivery.recipient_id)

        async def work(transaction: Transaction) -> bool:
            session = transaction.session
            if not await self.store.finish(delivery, fields, session):
                return False  # the lease ran out and another attempt owns it now
            transaction.after_commit(self.wake)
            rendered = delivery.rendered
            if status == SENT and delivery.channel is Channel.IN_APP and rendered is not None:
                await self.store.add_message(
                    {
                        "_id": delivery.id,
                        "tenant": delivery.tenant,
                        "volunteer_id": delivery.recipient_id,
                        "kind": delivery.kind,
                        "language": rendered.language,
                        "subject": rendered.subject,
                        "text": rendered.text,
                        "html": rendered.html,
                        "created_at": now,
                        "read_at": None,
                    },
                    session,
                )
            if delivery.recipient_kind == RecipientKind.VOLUNTEER.value and delivery.channel in TRACKED:
                await self._track_channel(delivery, status, code, transaction)
            if delivery.recipient_kind == "need_owner":
                # The need never arrived, so there is no owner to report on; the office's delivery
                # about the same need fails with unknown_need and reports it.
                return True
            await self.store.publish_outcome(
                delivery,
                transaction,
                sent=status == SENT,
                attempts=attempt,
                error_code=code or "failed",
                error=error or code or "failed",
                will_retry=status is None,
                language=language,
            )
            return True

        if await self.unit_of_work.run(work):
            outcome = status.value if status is not None else "retry"
            DELIVERY_ATTEMPTS.labels(delivery.channel.value, delivery.kind, outcome).inc()
            log.info(
                "delivery attempt recorded",
                delivery_id=delivery.id,
                tenant=delivery.tenant,
                channel=delivery.channel.value,
                outcome=outcome,
                reason=code or None,
                attempt=attempt,
            )

    async def _track_channel(
        self, delivery: Delivery, status: DeliveryStatus | None, code: str, transaction: Transaction
    ) -> None:
        """Keep track of whether the volunteer's chosen channels work: a channel whose address was
        refused for good is marked failed, one that delivered again is cleared, and the office is
        told once when none is left (``service.check_reachable``)."""
        tenant, volunteer_id, channel = delivery.tenant, delivery.recipient_id, delivery.channel
        if status == SENT:
            changed = await self.store.clear_channel_failure(tenant, volunteer_id, channel, transaction)
        elif status in {DEAD, SKIPPED} and domain.refuses_address(channel, code):
            await self.store.mark_channel_failed(tenant, volunteer_id, channel, transaction)
            changed = True
        else:
            changed = status in {DEAD, SKIPPED} and code in domain.CHANNEL_PROBLEM_CODES
        if changed:
            await check_reachable(
                self.store, tenant, volunteer_id, delivery.id, transaction, sms_gateway=self.settings.sms_gateway
            )
