"""The delivery worker: sends queued deliveries with bounded concurrency, retries with backoff,
dead-letters after the last attempt, and publishes every outcome through the outbox. Who a
delivery goes to and what it says is ``recipients``; reminders and the digest are ``reminders``.

Exactly once in effect, and where it ends:

1. The event handler commits the delivery as ``pending`` in the same transaction as the inbox
   record: a redelivered event finds the inbox record, and the unique delivery key stops a second
   queue entry for the same (event, recipient, channel) in any case.
2. The worker claims due deliveries in batches, each under a claim token with a lease
   (``claimed_until``); one claim, one send. A claim token is never reused, and a send starts
   only while the lease leaves time for it.
3. After the send it marks the delivery ``sent`` and appends NotificationSent in one transaction,
   together with the other outcomes that finished meanwhile, each only while its claim holds.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import Any

import structlog
from prometheus_client import Counter

from lotse_contracts import Envelope, topic_for
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue, domain, ical
from lotse_notifications.channels import (
    Attachment,
    EmailChannel,
    SendFailed,
    SmsChannel,
    TooLate,
    WebhookChannel,
    email_message,
    sms_text,
)
from lotse_notifications.domain import Reference
from lotse_notifications.recipients import Composed, Composer, NotYet, QuietHours, Reads, Undeliverable
from lotse_notifications.reminders import Planner
from lotse_notifications.service import check_reachable
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import DEAD, SENT, SKIPPED, Delivery, DeliveryStatus, Store, outcome_event
from lotse_runtime.destinations import Resolver, system_resolver
from lotse_runtime.tracing import continuing_span
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from lotse_runtime.wakeup import woken

log = structlog.get_logger("lotse.notifications.worker")

# Channels whose addresses can fail for good (in-app messages always arrive).
TRACKED = frozenset({Channel.EMAIL, Channel.SMS})

# At most this many outcomes in one transaction (a backlog's first group would otherwise be huge).
RECORD_GROUP_LIMIT = 200
# How long finished outcomes wait for the attempts still running, to share their transaction. The
# mail is out already: the wait delays only the record (and the room for the next claims).
RECORD_LINGER_SECONDS = 0.25
# A sent delivery whose record failed (the database away for a moment) is written again with this
# backoff until shortly before its claim's lease ends: given up, its message would go out again.
RECORD_RETRY_BASE_SECONDS = 0.1
RECORD_RETRY_MAX_SECONDS = 2.0

# Labels carry no personal data: channel, kind and outcome only.
DELIVERY_ATTEMPTS = Counter(
    "lotse_notification_delivery_attempts_total",
    "Delivery attempts by outcome (sent, retry, dead, skipped, cancelled)",
    ["channel", "kind", "outcome"],
)


@dataclass(eq=False)
class Outcome:
    """What one attempt came to, waiting to be recorded together with the others of its moment:
    the delivery's new fields and, when ``publish``, its NotificationSent/Failed (a wait for a
    reference, quiet hours and a claim given back change no outcome and publish nothing)."""

    delivery: Delivery
    fields: dict[str, Any]
    label: str  # sent, retry, dead, skipped (counted and published); waiting, quiet_hours, given_back
    status: DeliveryStatus | None = None  # None with publish: tried again later
    attempt: int = 0
    code: str = ""
    error: str = ""
    language: str | None = None
    publish: bool = True
    channel_failed: bool = False  # the volunteer's channel was marked failed when the pass read it
    reference: Reference | None = None  # what a wait waits for
    record_by: float = 0.0  # the event loop's time shortly before the claim's lease ends
    recorded: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class DeliveryWorker:
    """Works in passes: a pass claims what is due (up to ``delivery_batch_size`` in flight), reads
    what the messages need for the whole batch at once (``recipients.Reads``) and sends them, at
    most ``delivery_concurrency`` composing or sending side by side, emails on a small pool of kept
    SMTP connections (``EmailChannel``). The outcomes are recorded together: whatever finished while the
    previous group was being written goes into the next transaction (``_record_outcomes``)."""

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
        self.email = EmailChannel(
            settings,
            connections=settings.smtp_connections or settings.delivery_concurrency,
            idle_seconds=settings.smtp_idle_seconds,
        )
        self.webhook = WebhookChannel(settings, resolver)
        self.sms = SmsChannel(settings, resolver)
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._room_wanted = False
        self._outcomes: list[Outcome] = []
        self._outcomes_ready = asyncio.Event()
        self._attempting = 0  # attempts running, whose outcomes are still to come
        self._attempts_done = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._record_retries: set[asyncio.Task[None]] = set()
        self.composer = Composer(store, settings)
        self.planner = Planner(unit_of_work, store, settings, self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._recorder = asyncio.create_task(self._record_outcomes(), name="delivery-recorder")
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
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.cancel()
        retries, self._record_retries = set(self._record_retries), set()
        for task in retries:
            task.cancel()
        for task in [*self._tasks, *in_flight, *retries, *([recorder] if recorder else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._in_flight = [], set()
        await self.email.close()
        await self.webhook.close()
        await self.sms.close()

    # --- the queue ---------------------------------------------------------------------------

    async def _run(self) -> None:
        lease = self.settings.delivery_lease_seconds
        # A claimed delivery is sent only while its lease leaves time for the send and the record:
        # one sent later could overlap with another worker's claim after the lease ran out.
        start_within = max(lease - self.settings.delivery_timeout_seconds - 5, lease / 2)
        loop = asyncio.get_running_loop()
        while True:
            # Cleared before the query, not after: a wake-up that comes while it runs (a delivery
            # queued just then) is kept, and the wait below returns at once.
            self._wake.clear()
            room = self.settings.delivery_batch_size - len(self._in_flight)
            self._room_wanted = room <= 0
            claimed: list[Delivery] = []
            # Taken before the claim: its lease ends no sooner than this plus the lease.
            record_by = loop.time() + lease - min(5.0, lease / 10)
            if room > 0:
                try:
                    claim = f"{self.owner}:{uuid.uuid4().hex[:12]}"  # never reused: a late record finds it gone
                    claimed = await self.store.claim_due(claim, timedelta(seconds=lease), room)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - the database may be away; try again later
                    log.warning("claiming deliveries failed", error=repr(error))
            if claimed:
                start_by = loop.time() + start_within
                reads = Reads(self.store)
                try:
                    await reads.prefetch(claimed)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - each message reads what it needs then
                    log.warning("reading for a batch of deliveries failed", error=repr(error))
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver_claimed(delivery, reads, start_by, record_by))
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
                if len(claimed) == room:
                    continue  # a full batch: more may be due
            await woken(self._wake, self.settings.worker_poll_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._room_wanted:  # the loop waits for room to claim more
            self._room_wanted = False
            self._wake.set()

    async def _deliver_claimed(self, delivery: Delivery, reads: Reads, start_by: float, record_by: float) -> None:
        attributes = {
            "lotse.tenant": delivery.tenant,
            "lotse.delivery_id": delivery.id,
            "lotse.channel": delivery.channel.value,
            "lotse.kind": delivery.kind,
        }
        self._attempting += 1
        self._attempts_done.clear()
        try:
            try:
                with continuing_span(
                    f"deliver {delivery.channel.value}", delivery.trace_context, attributes=attributes
                ):
                    outcome = await self._attempt(delivery, reads, start_by)
                outcome.record_by = record_by
            finally:
                self._attempting -= 1
                if self._attempting == 0:
                    self._attempts_done.set()
            self._outcomes.append(outcome)
            self._outcomes_ready.set()
            await outcome.recorded
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the lease brings it back; log and go on
            log.error("delivery attempt crashed", delivery_id=delivery.id, error=repr(error))

    async def _attempt(self, delivery: Delivery, reads: Reads, start_by: float) -> Outcome:
        attempt = delivery.attempts + 1
        loop = asyncio.get_running_loop()
        channel_failed = False
        message: EmailMessage | None = None
        address = ""  # the recipient's, taken out of a failure's text as it is
        try:
            async with self._slots:
                if loop.time() > start_by:
                    raise TooLate()
                if delivery.channel is Channel.WEBHOOK:
                    await self._send_webhook(delivery, reads)
                    return self._outcome(delivery, attempt, SENT, language=delivery.language)
                composed = await asyncio.wait_for(
                    self.composer.compose(delivery, reads), self.settings.delivery_timeout_seconds + 5
                )
                if delivery.recipient_kind == RecipientKind.VOLUNTEER.value:
                    contact = await reads.contact(delivery.tenant, delivery.recipient_id)
                    channel_failed = contact is not None and delivery.channel in contact.failed_channels
                rendered = composed.rendered
                address = composed.address or ""
                if delivery.channel is Channel.SMS:
                    if loop.time() > start_by:  # composing took long: the lease may not cover the send
                        raise TooLate()
                    more = catalogue.gettext(rendered.language, catalogue.SMS_MORE)
                    await self.sms.send(composed.address, sms_text(rendered, more), delivery_id=delivery.id)
                elif delivery.channel is Channel.EMAIL:
                    message = email_message(
                        rendered,
                        sender=self.settings.mail_from,
                        to=composed.address,
                        delivery_id=delivery.id,
                        reply_to=composed.reply_to,
                        attachments=self._attachments(delivery, composed),
                    )
                else:
                    delivery.rendered = rendered  # in-app: stored in the same transaction as the mark
            if message is not None:
                # Outside the slot: mails take turns on the kept connections, composing goes on meanwhile.
                await self.email.send(message, start_by=start_by)
        except TooLate:
            return Outcome(delivery, {}, "given_back", publish=False)
        except Undeliverable as failure:
            return self._outcome(delivery, attempt, failure.status, code=failure.code, error=str(failure))
        except NotYet as waiting:
            return self._waiting(delivery, waiting, attempt)
        except QuietHours as quiet:
            # Due again when the quiet window ends; attempts stay as they are.
            fields = {"reason": "quiet_hours", "next_attempt_at": quiet.until}
            return Outcome(delivery, fields, "quiet_hours", publish=False)
        except SendFailed as failure:
            final = failure.permanent or attempt >= self.settings.delivery_max_attempts
            error = domain.without_addresses(str(failure), known=[address])
            return self._outcome(delivery, attempt, DEAD if final else None, code=failure.code, error=error)
        except TimeoutError:
            final = attempt >= self.settings.delivery_max_attempts
            return self._outcome(delivery, attempt, DEAD if final else None, code="timeout", error="send timed out")
        outcome = self._outcome(delivery, attempt, SENT, language=rendered.language)
        outcome.channel_failed = channel_failed
        return outcome

    async def _send_webhook(self, delivery: Delivery, reads: Reads) -> None:
        hook = await reads.webhook(delivery.tenant, delivery.recipient_id)
        if hook is None:
            raise Undeliverable("webhook_removed", "the webhook was removed")
        payload = delivery.payload or {}
        await self.webhook.send(
            hook.url, hook.secret, payload["body"].encode(), delivery_id=delivery.id, event_type=payload["event_type"]
        )

    def _waiting(self, delivery: Delivery, waiting: NotYet, attempt: int) -> Outcome:
        """Wait for a reference not read yet, with backoff and without using up attempts, until
        the grace ends; the event that brings it releases the delivery at once (``release_waiting``)."""
        waited = (datetime.now(UTC) - delivery.created_at).total_seconds()
        if waited > self.settings.reference_grace_seconds:
            detail = f"still unknown after {waited:.0f} s"
            return self._outcome(delivery, attempt, SKIPPED, code=waiting.code, error=detail)
        waits = delivery.waits + 1
        delay = domain.backoff_seconds(
            waits, base=self.settings.retry_base_seconds, cap=self.settings.retry_max_seconds
        )
        fields = {
            "waits": waits,
            "reason": waiting.code,
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
            "waiting_for": waiting.reference.key,
        }
        return Outcome(delivery, fields, "waiting", publish=False, reference=waiting.reference)

    def _outcome(
        self,
        delivery: Delivery,
        attempt: int,
        status: DeliveryStatus | None,
        *,
        code: str = "",
        error: str = "",
        language: str | None = None,
    ) -> Outcome:
        """An attempt's outcome in the log: sent, tried again later (status None) or given up."""
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
        # need_owner deliveries know their organisation now (set by the composer)
        fields.update(recipient_kind=delivery.recipient_kind, recipient_id=delivery.recipient_id)
        label = status.value if status is not None else "retry"
        return Outcome(delivery, fields, label, status, attempt, code, error, language)

    # --- recording ----------------------------------------------------------------------------

    async def _record_outcomes(self) -> None:
        """Record what finished, in groups: one transaction for the outcomes of the attempts that
        run at the same time (waiting for those still running up to ``RECORD_LINGER_SECONDS``),
        and for all that came in while the previous group was being written."""
        while True:
            await self._outcomes_ready.wait()
            if self._attempting:
                await woken(self._attempts_done, RECORD_LINGER_SECONDS)
            self._outcomes_ready.clear()
            group, self._outcomes = self._outcomes[:RECORD_GROUP_LIMIT], self._outcomes[RECORD_GROUP_LIMIT:]
            if self._outcomes:
                self._outcomes_ready.set()
            if group:
                await self._record_group(group)

    async def _arrived_meanwhile(self, group: list[Outcome]) -> bool:
        """What a wait waits for may have been applied while the message was composed: its event
        found nothing waiting yet, so the wait would run its course. Such a wait is made due now
        instead (one read, only for groups with waits); True if there was one."""
        references = [outcome.reference for outcome in group if outcome.reference is not None]
        if not references:
            return False
        try:
            present = await self.store.present_references(references)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - then the waits run their course
            log.warning("looking for what waits wait for failed", error=repr(error))
            return False
        arrived = False
        for outcome in group:
            if outcome.reference is not None and outcome.reference.key in present:
                outcome.fields = {key: value for key, value in outcome.fields.items() if key != "waiting_for"}
                outcome.fields["next_attempt_at"] = datetime.now(UTC)
                arrived = True
        return arrived

    async def _record_group(self, group: list[Outcome]) -> None:
        try:
            arrived = await self._arrived_meanwhile(group)
            recorded = await self.unit_of_work.run(partial(self._write, group))
            if arrived:
                self.wake()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the database may be away, or one outcome is at fault
            if len(group) > 1:
                # One by one, so that a fault of one outcome costs no other its record (and a resend).
                log.warning("recording a group of outcomes failed, one by one now", error=repr(error), size=len(group))
                for outcome in group:
                    await self._record_group([outcome])
                return
            (outcome,) = group
            if outcome.status == SENT:
                # The message is out: given up now, it would go out again once the lease ran out.
                log.warning("recording a sent delivery failed, trying again", delivery_id=outcome.delivery.id)
                task = asyncio.create_task(self._record_until_lease_ends(outcome), name="delivery-record-retry")
                self._record_retries.add(task)
                task.add_done_callback(self._record_retries.discard)
                return
            log.error("recording a delivery attempt failed", delivery_id=outcome.delivery.id, error=repr(error))
            outcome.recorded.set_result(False)  # its lease brings it back
            return
        self._recorded(group, recorded)

    async def _record_until_lease_ends(self, outcome: Outcome) -> None:
        """Write a sent delivery's outcome again, alone and with backoff (the recorder goes on with
        the others meanwhile), until shortly before its claim's lease ends. Safe however late:
        ``finish_many`` records it only while the claim holds. Given up, the delivery is sent again
        after the lease (at least once, as when the process dies after the send)."""
        loop = asyncio.get_running_loop()
        tries = 0
        while True:
            tries += 1
            delay = domain.backoff_seconds(tries, base=RECORD_RETRY_BASE_SECONDS, cap=RECORD_RETRY_MAX_SECONDS)
            if loop.time() + delay >= outcome.record_by:
                log.error(
                    "recording a sent delivery failed until its lease was nearly over; it will be sent again",
                    delivery_id=outcome.delivery.id,
                    tries=tries - 1,
                )
                outcome.recorded.set_result(False)
                return
            await asyncio.sleep(delay)
            try:
                # A write still running when the lease ends would come too late to keep anyone
                # from sending it again: it is cut off then.
                async with asyncio.timeout(max(outcome.record_by - loop.time(), 0.0)):
                    recorded = await self.unit_of_work.run(partial(self._write, [outcome]))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - still away; the next try or the lease decides
                log.warning(
                    "recording a sent delivery failed again", delivery_id=outcome.delivery.id, error=repr(error)
                )
                continue
            self._recorded([outcome], recorded)
            return

    def _recorded(self, group: list[Outcome], recorded: set[str]) -> None:
        """Count and log what was recorded, and tell each attempt whether its claim still held."""
        for outcome in group:
            held = outcome.delivery.id in recorded
            if held and outcome.publish:
                delivery = outcome.delivery
                DELIVERY_ATTEMPTS.labels(delivery.channel.value, delivery.kind, outcome.label).inc()
                log.info(
                    "delivery attempt recorded",
                    delivery_id=delivery.id,
                    tenant=delivery.tenant,
                    channel=delivery.channel.value,
                    outcome=outcome.label,
                    reason=outcome.code or None,
                    attempt=outcome.attempt,
                )
            if not outcome.recorded.done():
                outcome.recorded.set_result(held)

    async def _write(self, group: list[Outcome], transaction: Transaction) -> set[str]:
        """One transaction: the outcomes in the log, their events in the outbox, the in-app
        messages; outcomes whose lease ran out (another attempt owns them now) are left out."""
        session = transaction.session
        held = await self.store.finish_many([(outcome.delivery, outcome.fields) for outcome in group], session)
        mine = [outcome for outcome in group if outcome.delivery.id in held]
        now = datetime.now(UTC)
        messages = [
            {
                "_id": outcome.delivery.id,
                "tenant": outcome.delivery.tenant,
                "volunteer_id": outcome.delivery.recipient_id,
                "kind": outcome.delivery.kind,
                "language": rendered.language,
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
                "created_at": now,
                "read_at": None,
            }
            for outcome in mine
            if outcome.status == SENT
            and outcome.delivery.channel is Channel.IN_APP
            and (rendered := outcome.delivery.rendered) is not None
        ]
        if messages:
            await self.store.add_messages(messages, session)
        events: list[tuple[str, Envelope[Any]]] = []
        for outcome in mine:
            if not outcome.publish:
                continue
            delivery = outcome.delivery
            if delivery.recipient_kind == RecipientKind.VOLUNTEER.value and delivery.channel in TRACKED:
                await self._track_channel(outcome, transaction)
            if delivery.recipient_kind == "need_owner":
                # The need never arrived, so there is no owner to report on; the office's delivery
                # about the same need fails with unknown_need and reports it.
                continue
            event = outcome_event(
                delivery,
                sent=outcome.status == SENT,
                attempts=outcome.attempt,
                error_code=outcome.code or "failed",
                error=outcome.error or outcome.code or "failed",
                will_retry=outcome.status is None,
                language=outcome.language,
            )
            events.append((topic_for(event.type, event.tenant), event))
        await transaction.append_events(events)
        return held

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

    async def _track_channel(self, outcome: Outcome, transaction: Transaction) -> None:
        """Keep track of whether the volunteer's chosen channels work: a channel whose address was
        refused for good is marked failed, one that delivered again is cleared (written only when
        the pass read it as failed: most sends change nothing here), and the office is told once
        when none is left (``service.check_reachable``)."""
        delivery, status, code = outcome.delivery, outcome.status, outcome.code
        tenant, volunteer_id, channel = delivery.tenant, delivery.recipient_id, delivery.channel
        if status == SENT:
            changed = outcome.channel_failed and await self.store.clear_channel_failure(
                tenant, volunteer_id, channel, transaction
            )
        elif status in {DEAD, SKIPPED} and domain.refuses_address(channel, code):
            await self.store.mark_channel_failed(tenant, volunteer_id, channel, transaction)
            changed = True
        else:
            changed = status in {DEAD, SKIPPED} and code in domain.CHANNEL_PROBLEM_CODES
        if changed:
            await check_reachable(
                self.store, tenant, volunteer_id, delivery.id, transaction, sms_gateway=self.settings.sms_gateway
            )
