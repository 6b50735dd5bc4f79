"""Who a delivery goes to and what it says: the recipient looked up at send time (a volunteer, an
organisation, the need's owner or the coordination office), the need's snapshot and the answer
links filled in, and the message rendered in the recipient's language.

What stops a delivery here is said by an exception: ``Undeliverable`` (record, don't retry),
``NotYet`` (a reference not read yet: wait) and ``QuietHours`` (send when the window ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.organisations import OrganisationKind
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue, domain
from lotse_notifications.catalogue import MATCH_PROPOSED, PROPOSAL_REMINDER
from lotse_notifications.domain import (
    CONTACT_REFERENCE,
    NEED_REFERENCE,
    ORGANISATION_REFERENCE,
    TENANT_REFERENCE,
    ContactPoint,
    Reference,
    SharedPerson,
    skip_reason,
)
from lotse_notifications.records import Contact, Need, Organisation, TenantFacts, Webhook
from lotse_notifications.sandbox import RenderTimeUp
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import DEAD, SKIPPED, Delivery, DeliveryStatus, Store
from lotse_notifications.templates import (
    MessageFacts,
    Rendered,
    RenderFailed,
    TemplateSource,
    UnknownTemplate,
    language_chain,
    render_off_loop,
)
from lotse_runtime import answer_links

# Messages whose email carries the volunteer's answer links.
ANSWERABLE = frozenset({MATCH_PROPOSED, PROPOSAL_REMINDER})
# Messages to a volunteer about an engagement: they name whom to ask (the need's organisation).
ABOUT_ENGAGEMENT = frozenset({catalogue.PROPOSAL_ACCEPTED, catalogue.ENGAGEMENT_REMINDER, catalogue.ENGAGEMENT_THANKS})
# Channels that disturb: held back in the volunteer's quiet hours (in-app messages wait to be read).
INTRUSIVE = frozenset({Channel.EMAIL, Channel.SMS})


@dataclass(frozen=True)
class Composed:
    """A message ready to send: rendered, where it goes (an email address or a phone number), the
    reply-to address, the payload as rendered (the need filled in) and the tenant's time zone."""

    rendered: Rendered
    address: str
    reply_to: str | None
    payload: dict[str, Any]
    timezone: str


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

    def __init__(self, code: str, message: str, status: DeliveryStatus = SKIPPED) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NotYet(Exception):
    """The recipient or the need is not in the read model yet: another topic may simply not have
    been read. Wait (without using up send attempts) until the grace period ends, then skip; the
    event that brings ``reference`` ends the wait at once."""

    def __init__(self, code: str, reference: Reference) -> None:
        super().__init__(code)
        self.code = code
        self.reference = reference


class QuietHours(Exception):
    """The volunteer's quiet hours: send the email when the window ends (not a failed attempt)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


def named_people(kind: str, payload: dict[str, Any]) -> list[str]:
    """The volunteers a message to the office or an organisation names (their ids, in order)."""
    if kind == catalogue.NEED_STAFFED:
        ids = list(payload.get("volunteer_ids", []))
    elif kind == catalogue.DAILY_DIGEST:
        ids = [volunteer for item in payload.get("items", []) for volunteer in item.get("volunteer_ids", [])]
    elif kind in {catalogue.VOLUNTEER_UNREACHABLE, catalogue.CERTIFICATE_EXPIRING_OFFICE, catalogue.QUESTION_ASKED}:
        ids = [payload["volunteer_id"]]
    else:
        return []
    return list(dict.fromkeys(ids))


class Reads:
    """What a pass of the worker reads of the read model: for a batch of deliveries at once, in
    one round trip (``prefetch``: tenants with their organisations, guidance and template
    overrides, contacts, needs, webhooks), then kept for the pass. What the prefetch did not foresee
    is read on first use and kept as well. A pass is short, so what it keeps is as fresh as a read
    at send time was; the next pass reads again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tenants: dict[str, TenantFacts | None] = {}
        self._organisations: dict[str, dict[str, Organisation]] = {}  # per tenant: all of them
        self._offices: dict[str, Organisation | None] = {}
        self._contacts: dict[tuple[str, str], Contact | None] = {}
        self._needs: dict[tuple[str, str], Need | None] = {}
        self._guidance: dict[str, dict[str, dict[str, str]]] = {}
        self._overrides: dict[str, dict[tuple[str, str], TemplateSource]] = {}
        self._webhooks: dict[str, Webhook | None] = {}

    async def prefetch(self, deliveries: list[Delivery]) -> None:
        messages = [delivery for delivery in deliveries if delivery.channel is not Channel.WEBHOOK]
        tenants = sorted({delivery.tenant for delivery in messages})
        hooks = sorted({delivery.recipient_id for delivery in deliveries if delivery.channel is Channel.WEBHOOK})
        contacts: set[tuple[str, str]] = set()
        needs: set[tuple[str, str]] = set()
        for delivery in messages:
            tenant, payload = delivery.tenant, delivery.payload or {}
            if delivery.recipient_kind == RecipientKind.VOLUNTEER.value:
                contacts.add((tenant, delivery.recipient_id))
            elif delivery.recipient_kind == "need_owner":
                needs.add((tenant, delivery.recipient_id))
            if "need_id" in payload and payload.get("need") is None:
                needs.add((tenant, payload["need_id"]))
            needs.update((tenant, item["need_id"]) for item in payload.get("items", []) if item.get("need") is None)
            contacts.update((tenant, volunteer_id) for volunteer_id in named_people(delivery.kind, payload))
        found = await self.store.read_for_batch(
            tenants=tenants, contacts=sorted(contacts), needs=sorted(needs), webhooks=hooks
        )
        for tenant in tenants:
            self._tenants[tenant] = found.tenants.get(tenant)
            self._organisations[tenant] = {}
            self._guidance[tenant] = found.guidance.get(tenant, {})
            self._overrides[tenant] = found.overrides.get(tenant, {})
        for organisation in found.organisations:
            self._organisations[organisation.tenant][organisation.organisation_id] = organisation
        self._contacts.update({key: found.contacts.get(key) for key in contacts})
        self._needs.update({key: found.needs.get(key) for key in needs})
        self._webhooks.update({hook: found.webhooks.get(hook) for hook in hooks})

    async def tenant(self, tenant: str) -> TenantFacts | None:
        if tenant not in self._tenants:
            self._tenants[tenant] = await self.store.tenant(tenant)
        return self._tenants[tenant]

    async def organisation(self, tenant: str, organisation_id: str) -> Organisation | None:
        if tenant in self._organisations:
            return self._organisations[tenant].get(organisation_id)
        return await self.store.organisation(tenant, organisation_id)

    async def coordination_office(self, tenant: str) -> Organisation | None:
        if tenant not in self._offices:
            if tenant in self._organisations:
                offices = [
                    organisation
                    for organisation in self._organisations[tenant].values()
                    if organisation.kind is OrganisationKind.COORDINATION_OFFICE
                ]
                self._offices[tenant] = max(offices, key=lambda office: office.version, default=None)
            else:
                self._offices[tenant] = await self.store.coordination_office(tenant)
        return self._offices[tenant]

    async def contact(self, tenant: str, volunteer_id: str) -> Contact | None:
        key = (tenant, volunteer_id)
        if key not in self._contacts:
            self._contacts[key] = await self.store.contact(tenant, volunteer_id)
        return self._contacts[key]

    async def need(self, tenant: str, need_id: str) -> Need | None:
        key = (tenant, need_id)
        if key not in self._needs:
            self._needs[key] = await self.store.need(tenant, need_id)
        return self._needs[key]

    async def guidance(self, tenant: str) -> dict[str, dict[str, str]]:
        if tenant not in self._guidance:
            self._guidance[tenant] = await self.store.guidance(tenant)
        return self._guidance[tenant]

    async def template_overrides(self, tenant: str, kind: str) -> dict[tuple[str, str], TemplateSource]:
        if tenant not in self._overrides:
            return await self.store.template_overrides(tenant, kind)
        return {key: source for key, source in self._overrides[tenant].items() if key[0] == kind}

    async def webhook(self, tenant: str, webhook_id: str) -> Webhook | None:
        if webhook_id not in self._webhooks:
            self._webhooks[webhook_id] = await self.store.webhook(tenant, webhook_id)
        hook = self._webhooks[webhook_id]
        return hook if hook is not None and hook.tenant == tenant else None


class Composer:
    """Composes a delivery's message from the read model (contacts, organisations, needs, tenants)."""

    def __init__(self, store: Store, settings: NotificationSettings) -> None:
        self.store = store
        self.settings = settings

    async def compose(self, delivery: Delivery, reads: Reads | None = None) -> Composed:
        """The message rendered for its recipient, with the recipient's address; ``reads`` is
        what the worker's pass read for its batch (None: read what this one needs)."""
        reads = reads or Reads(self.store)
        tenant_slug = delivery.tenant
        # Tenants, organisations and volunteers arrive on other topics than the events that cause
        # a message, and after a crash or rebalance they may come later: wait for them.
        tenant = await reads.tenant(tenant_slug)
        if tenant is None:
            raise NotYet("unknown_tenant", Reference(tenant_slug, TENANT_REFERENCE))
        office = await reads.coordination_office(tenant_slug)
        office_email = tenant.coordination_email
        recipient_kind, recipient_id = delivery.recipient_kind, delivery.recipient_id
        person_language: str | None = None
        if recipient_kind == "volunteer":
            contact = await reads.contact(tenant_slug, recipient_id)
            if contact is None:
                raise NotYet("no_contact", Reference(tenant_slug, CONTACT_REFERENCE, recipient_id))
            # Checked again at send time: the person may have opted out or been erased meanwhile.
            reason = skip_reason(contact, delivery.channel, delivery.kind)
            if reason is not None or contact.details is None:
                raise Undeliverable(reason or "no_contact", "the volunteer cannot be reached on this channel")
            details = contact.details
            address = details.email
            if delivery.channel is Channel.SMS:
                if not self.settings.sms_gateway:
                    raise Undeliverable("sms_unavailable", "no SMS gateway is configured")
                if not details.phone:
                    raise Undeliverable("no_phone", "the volunteer gave no phone number")
                address = details.phone
            quiet = details.quiet_hours
            if delivery.channel in INTRUSIVE and quiet:
                until = domain.quiet_until(datetime.now(UTC), quiet.start, quiet.end, tenant.timezone)
                if until is not None:
                    raise QuietHours(until)
            name, person_language = details.display_name, details.preferred_language
        elif recipient_kind in {"organisation", "need_owner"}:
            if recipient_kind == "need_owner":  # queued before the need was read; its owner is known now
                snapshot = domain.snapshot_of(await reads.need(tenant_slug, recipient_id))
                if snapshot is None:
                    raise NotYet("unknown_need", Reference(tenant_slug, NEED_REFERENCE, recipient_id))
                recipient_id = snapshot.organisation_id
                # recorded with the outcome
                delivery.recipient_kind, delivery.recipient_id = RecipientKind.ORGANISATION.value, recipient_id
            organisation = await reads.organisation(tenant_slug, recipient_id)
            if organisation is None:
                raise NotYet("no_contact", Reference(tenant_slug, ORGANISATION_REFERENCE, recipient_id))
            if organisation.contact_email == office_email:
                raise Undeliverable("same_as_office", "the organisation's mailbox is the coordination office's")
            name, address = organisation.name, organisation.contact_email
        else:
            if not office_email:
                raise Undeliverable("no_contact", "the tenant's coordination office is unknown")
            name, address = office.name if office else tenant.name, office_email
        payload = dict(delivery.payload or {})
        if "need_id" in payload and payload.get("need") is None:
            known = domain.snapshot_of(await reads.need(tenant_slug, payload["need_id"]))
            if known is None:
                raise NotYet("unknown_need", Reference(tenant_slug, NEED_REFERENCE, payload["need_id"]))
            payload["need"] = known.to_document()
        if delivery.kind == catalogue.DAILY_DIGEST:
            payload["items"] = await self._digest_items(reads, tenant_slug, payload.get("items", []))
        if delivery.channel is Channel.EMAIL and delivery.kind in ANSWERABLE:
            payload |= self._answer_links(tenant_slug, payload)
        facts = MessageFacts(
            recipient_name=name,
            tenant_name=tenant.name,
            office_email=office_email,
            office_name=office.name if office else None,
            timezone=tenant.timezone,
            payload=payload,
            guidance=await reads.guidance(tenant_slug),
            people=await self._people(reads, delivery, payload),
            contact_point=await self._contact_point(reads, tenant, delivery.kind, payload),
        )
        chain = language_chain(person_language, tenant.default_language)
        try:
            overrides = await reads.template_overrides(tenant_slug, delivery.kind)
            # Off the event loop, stopped at its time limit: a tenant's override is untrusted code.
            rendered = await render_off_loop(
                delivery.kind, chain, facts, overrides, time_limit=self.settings.template_render_seconds
            )
        except UnknownTemplate as error:
            raise Undeliverable("unknown_template", str(error), status=DEAD) from error
        except RenderFailed as error:
            raise Undeliverable("render_failed", render_failure(error), status=DEAD) from error
        return Composed(rendered, address, office_email or None, payload, tenant.timezone)

    async def _people(self, reads: Reads, delivery: Delivery, payload: dict[str, Any]) -> dict[str, SharedPerson]:
        """The volunteers a message to the office or an organisation names, as that recipient may
        see them (``domain.shared_with``); someone erased since is left out."""
        people = {}
        for volunteer_id in named_people(delivery.kind, payload):
            contact = await reads.contact(delivery.tenant, volunteer_id)
            person = domain.shared_with(contact, delivery.recipient_kind, delivery.recipient_id)
            if person is not None:
                people[volunteer_id] = person
        return people

    async def _contact_point(
        self, reads: Reads, tenant: TenantFacts, kind: str, payload: dict[str, Any]
    ) -> ContactPoint | None:
        """Whom a volunteer asks about an engagement: the organisation that owns the need, by its
        own mailbox; None (the office, named anyway) when it is the office or not known."""
        if kind not in ABOUT_ENGAGEMENT or not payload.get("need"):
            return None
        organisation = await reads.organisation(tenant.tenant, payload["need"]["organisation_id"])
        if organisation is None or organisation.contact_email == tenant.coordination_email:
            return None
        return ContactPoint(organisation.name, organisation.contact_email)

    async def _digest_items(self, reads: Reads, tenant: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The digest's events with their needs filled in; one whose need was never read is left
        out rather than holding the whole digest back."""
        filled = []
        for item in items:
            if item.get("need") is None:
                known = domain.snapshot_of(await reads.need(tenant, item["need_id"]))
                if known is None:
                    continue
                item = item | {"need": known.to_document()}
            filled.append(item)
        return filled

    def _answer_links(self, tenant: str, payload: dict[str, Any]) -> dict[str, str]:
        """The volunteer's accept and decline links, signed for this mail only: they live in the mail
        alone (in-app messages, which are stored, ask to answer in the app instead)."""
        secret = answer_links.secret_value(self.settings.answer_link_secret)
        expires_at = datetime.fromisoformat(payload["expires_at"])
        token = answer_links.sign(secret, payload["proposal_id"], tenant, expires_at)
        base = self.settings.answer_link_base_url
        return {choice + "_url": answer_links.link(base, token, choice) for choice in ("accept", "decline")}
