"""Events as the registry and matching would publish them, and readers for what came out."""

from __future__ import annotations

import hashlib
import hmac
import html.parser
import re
import secrets
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from lotse_contracts import (
    Envelope,
    MatchFit,
    MatchProposedSealed,
    NeedOpened,
    OrganisationRegistered,
    PersonKeyIssued,
    VolunteerRegistered,
    new_event,
    to_bytes,
    topic_for,
)
from lotse_contracts.events.values import Channel, OptionalMessageKind, QuietHours
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications.app import create_app
from lotse_notifications.settings import NotificationSettings
from lotse_runtime import answer_links
from lotse_runtime.auth import Role
from lotse_runtime.destinations import Resolver, system_resolver
from lotse_runtime.sealed import Keyring, new_data_key, plain_envelope, seal
from tests.support import events, tokens
from tests.support.kafka import produce
from tests.support.running import RunningService, own_settings
from tests.support.running import serving as serving_app
from tests.support.waiting import eventually

# Set explicitly, as an operator would; matching checks the links with the same key.
ANSWER_LINK_SECRET = secrets.token_urlsafe(32)


async def publish(bootstrap: str, *events: Envelope[Any]) -> None:
    for event in events:
        await produce(bootstrap, topic_for(event.type, event.tenant), to_bytes(event), key=event.key)


def onboarded(tenant: str, *, default_language: str = "de") -> Envelope[Any]:
    return events.tenant_onboarded(
        tenant,
        name=f"Stadt {tenant}",
        default_language=default_language,
        coordination_email=f"office@{tenant}.example",
    )


def organisation_registered(tenant: str, organisation_id: uuid.UUID) -> Envelope[Any]:
    """An initiative with its own mailbox (not the coordination office's)."""
    return events.organisation_registered(tenant, organisation_id, contact_email=f"initiative@{tenant}.example")


def registered(
    tenant: str,
    *,
    language: str = "de",
    channels: tuple[str, ...] = ("email", "in_app"),
    name: str | None = None,
    volunteer_id: uuid.UUID | None = None,
    quiet_hours: QuietHours | None = None,
    opted_out_of: tuple[str, ...] = (),
) -> Envelope[Any]:
    """A volunteer with a mailbox and phone number of their own."""
    contact = VolunteerRegistered.example().contact.model_copy(
        update={
            "display_name": name or f"Vol{uuid.uuid4().hex[:8]}",
            "email": f"v{uuid.uuid4().hex[:12]}@example.org",
            "phone": f"+49151{uuid.uuid4().int % 10**8:08d}",
            "preferred_language": language,
            "channels": [Channel(channel) for channel in channels],
            "quiet_hours": quiet_hours,
            "opted_out_of": [OptionalMessageKind(kind) for kind in opted_out_of],
        }
    )
    return events.volunteer_registered(tenant, volunteer_id, contact=contact)


def need_opened(tenant: str, need_id: uuid.UUID | None = None, *, description: str | None = None) -> Envelope[Any]:
    need_id = need_id or uuid.uuid4()
    return events.need_opened(tenant, need_id, description=description or f"Begleitung zum Jobcenter {need_id.hex[:6]}")


def proposed(
    tenant: str,
    need_id: uuid.UUID,
    volunteer_id: uuid.UUID,
    *,
    version: int,
    expires_in: timedelta = timedelta(days=3),
) -> Envelope[Any]:
    return events.match_proposed(
        tenant, need_id, version=version, volunteer_id=volunteer_id, expires_at=datetime.now(UTC) + expires_in
    )


async def sealed_proposal(
    keyring: Keyring, tenant: str, need_id: uuid.UUID, volunteer_id: uuid.UUID, version: int
) -> Envelope[Any]:
    """A proposal as matching publishes it (its fit sealed with the volunteer's key), the key kept."""
    key_id, data_key = new_data_key()
    issued = PersonKeyIssued(
        person_id=volunteer_id, key_id=key_id, algorithm="A256GCM", wrapped_key=keyring.kek.wrap(key_id, data_key)
    )
    await keyring.remember(
        new_event(data=issued, tenant=tenant, subject=str(volunteer_id), version=1, source="/lotse/registry")
    )
    plain = proposed(tenant, need_id, volunteer_id, version=version)
    data = plain.data
    fit = seal(
        MatchFit(score=data.score, reasons=data.reasons, distance_km=data.distance_km),
        key_id=key_id,
        data_key=data_key,
        tenant=tenant,
        subject=plain.subject,
    )
    fields = data.model_dump(include=set(MatchProposedSealed.model_fields))
    return plain_envelope(plain, MatchProposedSealed.model_validate({**fields, "fit": fit}))


async def mails_to(sink: SmtpSink, address: str, template: str | None = None) -> list[dict[str, Any]]:
    """Every message the sink received for ``address`` (optionally of one template), in full."""
    async with httpx.AsyncClient(base_url=sink.http_url) as http:
        listed = (await http.get("/messages", params={"to": address})).json()
        found = [(await http.get(f"/messages/{item['id']}")).json() for item in listed]
    return [mail for mail in found if template is None or mail["headers"].get("X-Lotse-Template") == template]


async def wait_for_mail(sink: SmtpSink, address: str, template: str, *, timeout: float = 30.0) -> dict[str, Any]:
    async def probe() -> list[dict[str, Any]]:
        return await mails_to(sink, address, template)

    (mail, *_) = await eventually(probe, timeout=timeout, what=f"a {template} email to {address}")
    return mail


ANSWER_LINK = re.compile(r"https?://[^\s\"<>]+/answers/[^\s\"<>?]+\?choice=(?:accept|decline)")


def mailed_answer_links(mail: dict[str, Any], proposal: Envelope[Any], settings: NotificationSettings) -> list[str]:
    """The accept and decline link of a proposal mail's text, after checking that each is signed
    with the answer-link secret for this proposal and municipality and points at the answer pages."""
    links = ANSWER_LINK.findall(mail["text"])
    assert [link.rsplit("=", 1)[1] for link in links] == ["accept", "decline"], mail["text"]
    secret = answer_links.secret_value(settings.answer_link_secret)
    for link in links:
        assert link.startswith(settings.answer_link_base_url.rstrip("/") + "/answers/")
        token = link.split("/answers/", 1)[1].split("?", 1)[0]
        claims = answer_links.verify(secret, token, datetime.now(UTC))
        assert (claims.proposal_id, claims.tenant) == (str(proposal.data.proposal_id), proposal.tenant)
        assert claims.expires_at == proposal.data.expires_at.replace(microsecond=0)
    return links


def answer_tokens(links: list[str]) -> list[str]:
    return [link.split("/answers/", 1)[1].split("?", 1)[0] for link in links]


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.dirs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag in {"html", "body"} and values.get("dir"):
            self.dirs.append(values["dir"] or "")


def html_links_and_direction(document: str) -> tuple[list[str], list[str]]:
    """The hrefs (unescaped, as a mail client would follow them) and the dir attributes."""
    parser = _Links()
    parser.feed(document)
    return parser.hrefs, parser.dirs


@dataclass
class WebhookCall:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


class WebhookReceiver:
    """A partner endpoint on a loopback port that checks the signature itself and answers with
    the statuses it is given, one per call (the last one repeats)."""

    def __init__(self, secret: str = "", statuses: tuple[int, ...] = (200,), slow_first_seconds: float = 0.0) -> None:
        self.secret = secret
        self.statuses = statuses
        self.calls: list[WebhookCall] = []
        self.connections = 0  # TCP connections accepted, whether or not a request followed
        self.started = 0
        self.release_first = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                receiver.connections += 1
                super().setup()

            def do_POST(self) -> None:
                receiver.started += 1
                if receiver.started == 1 and slow_first_seconds:
                    receiver.release_first.wait(slow_first_seconds)  # a hanging partner system
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Lotse-Timestamp", "")
                expected = hmac.new(receiver.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
                ok = hmac.compare_digest("sha256=" + expected.hexdigest(), self.headers.get("X-Lotse-Signature", ""))
                receiver.calls.append(WebhookCall(dict(self.headers), body, ok))
                index = min(len(receiver.calls) - 1, len(receiver.statuses) - 1)
                self.send_response(receiver.statuses[index])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[bytes]:
        return [call.body for call in list(self.calls)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/lotse-events"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def service_settings(stack: Stack, smtp_sink: SmtpSink, prefix: str, **overrides: Any) -> NotificationSettings:
    """A notifications service under test: its own database and consumer group, and only the
    tenants whose slug starts with ``prefix`` (other tests' tenants share the topics)."""
    values: dict[str, Any] = {
        **own_settings(stack, "notifications", prefix),
        "tenant_pattern": rf"{prefix}-[a-z0-9-]+",
        "smtp_port": smtp_sink.smtp_port,
        "worker_poll_seconds": 0.1,
        "weekly_digest": False,  # triggered over HTTP in the tests, so that they decide when
        "reference_grace_seconds": 60,
        # Development: plain-http webhooks to the loopback receivers of these tests are allowed.
        "env": "development",
        "answer_link_secret": ANSWER_LINK_SECRET,
        "answer_link_base_url": "https://matching.lotse.example",
    }
    return NotificationSettings(**{**values, **overrides})


N = TypeVar("N", bound="Running")


@asynccontextmanager
async def serving(
    record: type[N],
    stack: Stack,
    settings: NotificationSettings,
    prefix: str,
    resolver: Resolver = system_resolver,
    **extra: Any,
) -> AsyncIterator[N]:
    """The app with its consumers, relay and worker running as a ``record`` (``Running`` or a
    test's subclass, which ``extra`` completes); its database is dropped afterwards."""
    app = create_app(settings, resolver=resolver)
    async with serving_app(record, stack, app, settings, prefix, **extra) as running:
        yield running


class Running(RunningService[NotificationSettings]):
    """A notifications service under test, with who may call it and what it holds."""

    def auth(self, role: Role, tenant: str, subject: str | None = None) -> dict[str, str]:
        token = tokens.issue(subject or str(uuid.uuid4()), [role], tenant=tenant)
        return {"Authorization": f"Bearer {token}"}

    def coordinator(self, tenant: str) -> dict[str, str]:
        return self.auth(Role.COORDINATOR, tenant)

    async def deliveries(self, tenant: str, **query: Any) -> list[dict[str, Any]]:
        return await self.database.deliveries.find({"tenant": tenant, **query}).to_list()

    async def applied(self, tenant: str, *events: Envelope[Any]) -> None:
        """Wait until registry events are in the read model. Topics are not ordered among each
        other, and matching only proposes people and needs the registry published long before."""
        await self.publish(*events)
        wanted = [("tenants", tenant)]
        for event in events:
            if isinstance(event.data, VolunteerRegistered):
                wanted.append(("contacts", f"{tenant}:{event.data.volunteer_id}"))
            elif isinstance(event.data, NeedOpened):
                wanted.append(("needs", f"{tenant}:{event.data.need_id}"))
            elif isinstance(event.data, OrganisationRegistered):
                wanted.append(("organisations", f"{tenant}:{event.data.organisation_id}"))

        async def all_there() -> bool:
            for collection, key in wanted:
                found = await self.database[collection].find_one({"_id": key})
                if found is None or (collection == "needs" and "description" not in found):
                    return False
            return True

        await eventually(all_there, what="the registry events to be applied")
