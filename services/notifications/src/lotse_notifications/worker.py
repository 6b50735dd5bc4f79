"""The delivery worker: sends queued deliveries with bounded concurrency, retries with backoff,
dead-letters after the last attempt, and publishes every outcome through the outbox.

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
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

import structlog
from prometheus_client import Counter

from lotse_notifications import messages
from lotse_notifications.catalogue import MATCH_PROPOSED, PROPOSAL_REMINDER, WEEKLY_DIGEST
from lotse_notifications.channels import EmailChannel, SendFailed, WebhookChannel, email_message
from lotse_notifications.destinations import Resolver, system_resolver
from lotse_notifications.messages import PERSON_CHANNELS, skip_reason
from lotse_notifications.sandbox import RenderTimeUp
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import DEAD, SENT, SKIPPED, Store
from lotse_notifications.templates import (
    MessageFacts,
    Rendered,
    RenderFailed,
    UnknownTemplate,
    language_chain,
    render_off_loop,
)
from lotse_runtime import answer_links
from lotse_runtime.tracing import continuing_span
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

log = structlog.get_logger("lotse.notifications.worker")

# Messages whose email carries the volunteer's answer links.
ANSWERABLE = frozenset({MATCH_PROPOSED, PROPOSAL_REMINDER})

# Labels carry no personal data: channel, kind and outcome only.
DELIVERY_ATTEMPTS = Counter(
    "lotse_notification_delivery_attempts_total",
    "Delivery attempts by outcome (sent, retry, dead, skipped, cancelled)",
    ["channel", "kind", "outcome"],
)


def render_failure(error: RenderFailed) -> str:
    """What the delivery log keeps of a failed render: the part and the kind of error, never the
    error's text. The message's data is real here, and a template can make an error quote it (a
    dict looked up by an answer link, an attribute named after one): the text would carry the
    volunteer's answer link into the database and to the coordinator who reads the log. Saving the
    override again shows the full error against the sample message."""
    cause = error.__cause__
    if cause is None or isinstance(cause, RenderTimeUp):  # our own words, no data
        return str(error)
    return f"{error.part}: {type(cause).__name__} (details only when the override is saved again)"


class Undeliverable(Exception):
    """The delivery can never succeed (no address any more, template broken): record, don't retry."""

    def __init__(self, code: str, message: str, status: str = SKIPPED) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NotYet(Exception):
    """The recipient or the need is not in the read model yet: another topic may simply not have
    been read. Wait (without using up send attempts) until the grace period ends, then skip."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class QuietHours(Exception):
    """The volunteer's quiet hours: send the email when the window ends (not a failed attempt)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


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
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="delivery-worker"),
            asyncio.create_task(self._remind_periodically(), name="proposal-reminders"),
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.worker_poll_seconds)

    async def _deliver_in_slot(self, delivery: dict[str, Any]) -> None:
        try:
            await self.deliver(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the lease brings it back; log and go on
            log.error("delivery attempt crashed", delivery_id=delivery["_id"], error=repr(error))
        finally:
            self._slots.release()

    async def deliver(self, delivery: dict[str, Any]) -> None:
        attributes = {
            "lotse.tenant": delivery["tenant"],
            "lotse.delivery_id": delivery["_id"],
            "lotse.channel": delivery["channel"],
            "lotse.kind": delivery["kind"],
        }
        span_name = f"deliver {delivery['channel']}"
        with continuing_span(span_name, delivery.get("trace_context"), attributes=attributes):
            await self._deliver(delivery)

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        attempt = delivery.get("attempts", 0) + 1
        language = delivery.get("language")
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

    async def _send(self, delivery: dict[str, Any]) -> str:
        """Send once; return the language it went out in."""
        tenant = delivery["tenant"]
        if delivery["channel"] == "webhook":
            hook = await self.store.webhook(tenant, delivery["recipient_id"])
            if hook is None:
                raise Undeliverable("webhook_removed", "the webhook was removed")
            payload = delivery["payload"]
            await self.webhook.send(
                hook["url"],
                hook["secret"],
                payload["body"].encode(),
                delivery_id=delivery["_id"],
                event_type=payload["event_type"],
            )
            return str(delivery["language"])
        rendered, address, reply_to = await self._render(delivery)
        if delivery["channel"] == "email":
            message = email_message(
                rendered, sender=self.settings.mail_from, to=address, delivery_id=delivery["_id"], reply_to=reply_to
            )
            await self.email.send(message)
        delivery["rendered"] = rendered  # in-app: stored in the same transaction as the mark
        return rendered.language

    async def _render(self, delivery: dict[str, Any]) -> tuple[Rendered, str, str | None]:
        tenant_slug = delivery["tenant"]
        # Tenants, organisations and volunteers arrive on other topics than the events that cause
        # a message, and after a crash or rebalance they may come later: wait for them.
        tenant = await self.store.tenant(tenant_slug)
        if tenant is None:
            raise NotYet("unknown_tenant")
        office = await self.store.coordination_office(tenant_slug)
        office_email = tenant.get("coordination_email", "")
        recipient_kind, recipient_id = delivery["recipient_kind"], delivery["recipient_id"]
        person_language: str | None = None
        if recipient_kind == "volunteer":
            contact = await self.store.contact(tenant_slug, recipient_id)
            if contact is None:
                raise NotYet("no_contact")
            # Checked again at send time: the person may have opted out or been erased meanwhile.
            reason = skip_reason(contact, delivery["channel"], delivery["kind"])
            if reason is not None:
                raise Undeliverable(reason, "the volunteer cannot be reached on this channel")
            quiet = contact.get("quiet_hours")
            if delivery["channel"] == "email" and quiet:
                until = messages.quiet_until(
                    datetime.now(UTC),
                    time.fromisoformat(quiet["start"]),
                    time.fromisoformat(quiet["end"]),
                    tenant.get("timezone", "Europe/Berlin"),
                )
                if until is not None:
                    raise QuietHours(until)
            name, address, person_language = contact["display_name"], contact["email"], contact["preferred_language"]
        elif recipient_kind in {"organisation", "need_owner"}:
            if recipient_kind == "need_owner":  # queued before the need was read; its owner is known now
                need = await self.store.need(tenant_slug, recipient_id) or {}
                if not need.get("organisation_id"):
                    raise NotYet("unknown_need")
                recipient_id = str(need["organisation_id"])
                delivery.update(recipient_kind="organisation", recipient_id=recipient_id)  # recorded with the outcome
            organisation = await self.store.organisation(tenant_slug, recipient_id)
            if organisation is None:
                raise NotYet("no_contact")
            if organisation.get("contact_email") == office_email:
                raise Undeliverable("same_as_office", "the organisation's mailbox is the coordination office's")
            name, address = organisation["name"], organisation["contact_email"]
        else:
            if not office_email:
                raise Undeliverable("no_contact", "the tenant's coordination office is unknown")
            name, address = (office or {}).get("name") or tenant.get("name", tenant_slug), office_email
        payload = dict(delivery.get("payload") or {})
        if "need_id" in payload and payload.get("need") is None:
            payload["need"] = messages.snapshot_of(await self.store.need(tenant_slug, payload["need_id"]))
            if payload["need"] is None:
                raise NotYet("unknown_need")
        if delivery["channel"] == "email" and delivery["kind"] in ANSWERABLE:
            payload |= self._answer_links(tenant_slug, payload)
        facts = MessageFacts(
            recipient_name=name,
            tenant_name=tenant.get("name", tenant_slug),
            office_email=office_email,
            office_name=(office or {}).get("name"),
            timezone=tenant.get("timezone", "Europe/Berlin"),
            payload=payload,
            guidance=await self.store.guidance(tenant_slug),
        )
        chain = language_chain(person_language, tenant.get("default_language"))
        try:
            overrides = await self.store.template_overrides(tenant_slug, delivery["kind"])
            # Off the event loop, stopped at its time limit: a tenant's override is untrusted code.
            rendered = await render_off_loop(
                delivery["kind"], chain, facts, overrides, time_limit=self.settings.template_render_seconds
            )
        except UnknownTemplate as error:
            raise Undeliverable("unknown_template", str(error), status=DEAD) from error
        except RenderFailed as error:
            raise Undeliverable("render_failed", render_failure(error), status=DEAD) from error
        return rendered, address, office_email or None

    def _answer_links(self, tenant: str, payload: dict[str, Any]) -> dict[str, str]:
        """The volunteer's accept and decline links, signed for this mail only: they live in the mail
        alone (in-app messages, which are stored, ask to answer in the app instead)."""
        secret = answer_links.secret_value(self.settings.answer_link_secret)
        expires_at = datetime.fromisoformat(payload["expires_at"])
        token = answer_links.sign(secret, payload["proposal_id"], tenant, expires_at)
        base = self.settings.answer_link_base_url
        return {choice + "_url": answer_links.link(base, token, choice) for choice in ("accept", "decline")}

    async def _wait_for_reference(self, delivery: dict[str, Any], code: str, attempt: int) -> None:
        waited = (datetime.now(UTC) - delivery["created_at"]).total_seconds()
        if waited > self.settings.reference_grace_seconds:
            detail = f"still unknown after {waited:.0f} s"
            await self._record(delivery, attempt, status=SKIPPED, code=code, error=detail)
            return
        waits = delivery.get("waits", 0) + 1
        delay = messages.backoff_seconds(
            waits, base=self.settings.retry_base_seconds, cap=self.settings.retry_max_seconds
        )
        fields = {"waits": waits, "reason": code, "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay)}

        async def work(transaction: Transaction) -> bool:
            return await self.store.finish(delivery, fields, transaction.session)

        await self.unit_of_work.run(work)

    async def _postpone(self, delivery: dict[str, Any], until: datetime) -> None:
        """Due again when the quiet window ends; attempts stay as they are."""

        async def work(transaction: Transaction) -> bool:
            fields = {"reason": "quiet_hours", "next_attempt_at": until}
            return await self.store.finish(delivery, fields, transaction.session)

        await self.unit_of_work.run(work)

    async def _record(
        self,
        delivery: dict[str, Any],
        attempt: int,
        *,
        status: str | None,
        code: str = "",
        error: str = "",
        language: str | None = None,
    ) -> None:
        """One transaction: the outcome in the log, its event in the outbox, the in-app message."""
        now = datetime.now(UTC)
        error = messages.without_addresses(error)
        if status == SENT:
            fields: dict[str, Any] = {"status": SENT, "attempts": attempt, "sent_at": now, "language": language}
        elif status is None:
            delay = messages.backoff_seconds(
                attempt, base=self.settings.retry_base_seconds, cap=self.settings.retry_max_seconds
            )
            fields = {"attempts": attempt, "next_attempt_at": now + timedelta(seconds=delay), "error": error}
            fields["reason"] = code
        else:
            fields = {"status": status, "attempts": attempt, "reason": code, "error": error, "failed_at": now}
        fields.update(recipient_kind=delivery["recipient_kind"], recipient_id=delivery["recipient_id"])

        async def work(transaction: Transaction) -> bool:
            session = transaction.session
            if not await self.store.finish(delivery, fields, session):
                return False  # the lease ran out and another attempt owns it now
            transaction.after_commit(self.wake)
            rendered: Rendered | None = delivery.get("rendered")
            if status == SENT and delivery["channel"] == "in_app" and rendered is not None:
                await self.store.add_message(
                    {
                        "_id": delivery["_id"],
                        "tenant": delivery["tenant"],
                        "volunteer_id": delivery["recipient_id"],
                        "kind": delivery["kind"],
                        "language": rendered.language,
                        "subject": rendered.subject,
                        "text": rendered.text,
                        "html": rendered.html,
                        "created_at": now,
                        "read_at": None,
                    },
                    session,
                )
            if delivery["recipient_kind"] == "need_owner":
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
            DELIVERY_ATTEMPTS.labels(delivery["channel"], delivery["kind"], status or "retry").inc()
            log.info(
                "delivery attempt recorded",
                delivery_id=delivery["_id"],
                tenant=delivery["tenant"],
                channel=delivery["channel"],
                outcome=status or "retry",
                reason=code or None,
                attempt=attempt,
            )

    # --- reminders ---------------------------------------------------------------------------

    async def _remind_periodically(self) -> None:
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
            if not proposal.get("payload"):
                continue
            planned += await self.unit_of_work.run(partial(self._remind, proposal))
        if planned:
            self.wake()
        return planned

    async def _remind(self, proposal: dict[str, Any], transaction: Transaction) -> int:
        tenant, session = proposal["tenant"], transaction.session
        if not await self.store.mark_reminded(tenant, proposal["proposal_id"], session):
            return 0
        contact = await self.store.contact(tenant, proposal["volunteer_id"], session)
        trigger = str(messages.synthetic_trigger("reminder", tenant, proposal["proposal_id"]))
        for channel in PERSON_CHANNELS:
            await self.store.add_delivery(
                transaction,
                tenant=tenant,
                trigger_event_id=trigger,
                correlation_id=proposal.get("correlation_id") or trigger,
                kind=PROPOSAL_REMINDER,
                recipient_kind="volunteer",
                recipient_id=proposal["volunteer_id"],
                channel=channel,
                language=(contact or {}).get("preferred_language") or "de",
                payload=proposal["payload"],
                skip_reason=skip_reason(contact, channel, PROPOSAL_REMINDER) if contact is not None else None,
            )
        return 1

    # --- weekly digest -----------------------------------------------------------------------

    async def digest_due(self, now: datetime) -> int:
        """Plan this week's digest for every tenant whose digest time has come (once per week)."""
        planned = 0
        for tenant in await self.store.tenants():
            timezone = tenant.get("timezone", "Europe/Berlin")
            if messages.digest_due(now, timezone, self.settings.digest_weekday, self.settings.digest_hour):
                _, created = await self.plan_digest(tenant, now)
                planned += created
        return planned

    async def plan_digest(self, tenant: dict[str, Any], now: datetime) -> tuple[dict[str, Any], bool]:
        """Queue the digest of ``now``'s week for the coordination office; False if it was queued before."""
        slug = tenant["tenant"]
        # The week is the tenant's local week, as digest_due counts it.
        local = now.astimezone(messages.zone(tenant.get("timezone", "Europe/Berlin")))
        payload = messages.digest_payload(await self.store.needs_of(slug), local)
        # One digest per tenant and week: the key makes a second trigger in the same week a no-op.
        trigger = str(messages.synthetic_trigger("digest", slug, payload["week"]))

        async def work(transaction: Transaction) -> bool:
            created = await self.store.add_delivery(
                transaction,
                tenant=slug,
                trigger_event_id=trigger,
                correlation_id=trigger,
                kind=WEEKLY_DIGEST,
                recipient_kind="tenant",
                recipient_id=slug,
                channel="email",
                language=tenant.get("default_language", "de"),
                payload=payload,
            )
            if created is None:
                return False
            transaction.after_commit(self.wake)
            return True

        created = await self.unit_of_work.run(work)
        return payload, created
