"""Sending: email over SMTP (aiosmtplib), signed webhooks and SMS through a generic HTTP gateway
(httpx). Each send either returns or raises ``SendFailed`` saying whether trying again can help."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import httpx
from prometheus_client import Counter

from lotse_notifications.domain import (
    DELIVERY_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.templates import Rendered
from lotse_runtime.destinations import DestinationNotAllowed, Resolver, guarded_transport, url_problem

# The kept connections are reused: this grows by one per connection opened, not per mail.
SMTP_CONNECTIONS = Counter("lotse_notification_smtp_connections_total", "SMTP connections opened")

# The longest SMS text sent: three concatenated messages of 153 characters (GSM 7-bit).
SMS_MAX_CHARS = 459


class SendFailed(Exception):
    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class TooLate(Exception):
    """Not sent: its turn came after ``start_by`` (the claim's lease would not cover the send)."""


@dataclass(frozen=True)
class Attachment:
    content: bytes
    maintype: str
    subtype: str
    filename: str
    params: Mapping[str, str] = field(default_factory=dict)


def email_message(
    rendered: Rendered,
    *,
    sender: str,
    to: str,
    delivery_id: str,
    reply_to: str | None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mailbox(to)
    message["Subject"] = rendered.subject
    # A stable Message-ID per delivery lets mail systems drop the duplicate of a resend after a crash.
    message["Message-ID"] = f"<{delivery_id}@notifications.lotse>"
    message["Date"] = formatdate(localtime=False)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Lotse-Template"] = rendered.kind
    if reply_to:
        message["Reply-To"] = mailbox(reply_to)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for attachment in attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    # Set after the parts exist: making the message multipart moves Content-* headers into the parts.
    message["Content-Language"] = rendered.language
    return message


def mailbox(address: str) -> Address:
    """One mailbox, exactly as given, or a permanent failure. The contract's pattern lets through
    strings a header parser reads otherwise (``a,b@example.org`` is two recipients, and
    ``https://x/a@example.org`` a group named ``https``); as a header they would reach someone else."""
    try:
        return Address(addr_spec=address)
    except (ValueError, IndexError, errors.HeaderParseError) as error:
        raise SendFailed("address_invalid", "the address is not one mailbox", permanent=True) from error


@dataclass(eq=False)
class _KeptConnection:
    """One SMTP connection of the pool (``client`` None until opened, or after it broke) and the
    timer that closes it when it stays unused."""

    client: aiosmtplib.SMTP | None = None
    idle_timer: asyncio.TimerHandle | None = None

    def cancel_idle_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()


class EmailChannel:
    """Email over a small pool of up to ``connections`` SMTP connections, kept open and reused across
    mails and passes: connecting, EHLO, STARTTLS and login cost more round trips than the mail
    itself. An SMTP connection carries one mail at a time, so the pool lets that many mails go side
    by side; a mail takes the connection used last (a quiet stream keeps to one), a new one is
    opened only when all open ones are busy. A kept connection the server has closed meanwhile is
    reopened and the mail sent on the new one; a connection left after an error is closed, so the
    next mail starts clean; one idle for ``idle_seconds`` is closed (servers drop idle clients
    after a few minutes anyway), and ``close`` ends them all at shutdown."""

    def __init__(self, settings: NotificationSettings, *, connections: int = 1, idle_seconds: float = 30.0) -> None:
        self.settings = settings
        self.idle_seconds = idle_seconds
        self._turns = asyncio.Semaphore(connections)
        self._idle: list[_KeptConnection] = []  # the one used last at the end
        self._closing: set[asyncio.Task[None]] = set()

    async def send(self, message: EmailMessage, *, start_by: float | None = None) -> None:
        """Send on a kept connection; ``TooLate`` (nothing sent) if its turn comes after
        ``start_by`` (the event loop's clock)."""
        # The deadline starts once it is this mail's turn: waiting behind other mails is no failure.
        async with self._turns:
            loop = asyncio.get_running_loop()
            if start_by is not None and loop.time() > start_by:
                raise TooLate()
            kept = self._idle.pop() if self._idle else _KeptConnection()
            kept.cancel_idle_timer()
            try:
                async with asyncio.timeout(self.settings.delivery_timeout_seconds):
                    await self._send_on_connection(kept, message)
            except aiosmtplib.SMTPRecipientsRefused as error:
                kept.drop()
                raise SendFailed("recipient_refused", str(error), permanent=True) from error
            except aiosmtplib.SMTPResponseException as error:
                kept.drop()
                # 5xx is the server's final word; 4xx asks to come back later.
                raise SendFailed(f"smtp_{error.code}", str(error), permanent=error.code >= 500) from error
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                kept.drop()
                raise SendFailed("smtp_unavailable", f"{type(error).__name__}: {error}", permanent=False) from error
            except BaseException:
                kept.drop()  # cancelled halfway through a mail: the connection is in no known state
                raise
            kept.idle_timer = loop.call_later(self.idle_seconds, self._close_when_idle, kept)
            self._idle.append(kept)

    async def _send_on_connection(self, kept: _KeptConnection, message: EmailMessage) -> None:
        if kept.client is not None and kept.client.is_connected:
            try:
                await kept.client.send_message(message)
                return
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # The server closed the kept connection (idle timeout, restart) and the dialogue
                # broke off: send the mail once on a new connection (had the server taken it
                # after all, the resend carries the same Message-ID).
                kept.drop()
        client = aiosmtplib.SMTP(
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            username=self.settings.smtp_username,
            password=self.settings.smtp_password,
            start_tls=self.settings.smtp_starttls,
            timeout=self.settings.delivery_timeout_seconds,
        )
        kept.client = client
        await client.connect()
        SMTP_CONNECTIONS.inc()
        await client.send_message(message)

    def _close_when_idle(self, kept: _KeptConnection) -> None:
        kept.idle_timer = None
        if kept in self._idle:  # not taken by a mail meanwhile
            self._idle.remove(kept)
            task = asyncio.get_running_loop().create_task(self._quit(kept))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Say goodbye to the server (QUIT) on every kept connection and close them. Connections
        busy with a mail are closed by their send (the worker lets those finish first)."""
        idle, self._idle = self._idle, []
        for kept in idle:
            kept.cancel_idle_timer()
        await asyncio.gather(*(self._quit(kept) for kept in idle), *set(self._closing))

    @staticmethod
    async def _quit(kept: _KeptConnection) -> None:
        client, kept.client = kept.client, None
        if client is not None and client.is_connected:
            try:
                async with asyncio.timeout(2.0):
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


class WebhookChannel:
    """Signed POSTs to partner systems, only to public addresses (see ``destinations``). Failures
    are recorded with a short reason and no error text of the network stack: the delivery log is
    readable by the coordinator who chose the URL and must not tell what exists inside."""

    def __init__(self, settings: NotificationSettings, resolver: Resolver) -> None:
        self._env = settings.env
        self._deadline = settings.delivery_timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=settings.delivery_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=guarded_transport(settings.env, resolver),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, secret: str, body: bytes, *, delivery_id: str, event_type: str) -> None:
        if url_problem(url, self._env) is not None:  # registered before the rules, or rules got stricter
            raise SendFailed("destination_not_allowed", "destination not allowed", permanent=True)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/cloudevents+json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            # The same id on every attempt, so a receiver can drop a repeat.
            DELIVERY_HEADER: delivery_id,
            EVENT_TYPE_HEADER: event_type,
        }
        try:
            # One deadline for the whole exchange (httpx's timeout is per read: a receiver that
            # trickles its headers would hold the delivery for ever), and only the status is read:
            # the receiver chooses the body, which may be endless.
            async with asyncio.timeout(self._deadline):
                async with self._client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
        except DestinationNotAllowed as error:
            raise SendFailed("destination_not_allowed", "destination not allowed", permanent=True) from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise SendFailed("webhook_timeout", "timeout", permanent=False) from error
        except httpx.HTTPError as error:
            raise SendFailed("webhook_unreachable", "connection failed", permanent=False) from error
        if 200 <= status < 300:
            return
        raise SendFailed(f"webhook_http_{status}", f"http {status}", permanent=_permanent(status))


def _permanent(status: int) -> bool:
    """Client errors do not heal by themselves, except timeouts and rate limits; a redirect is never
    followed (it could point inside), so it fails for good as well."""
    return 300 <= status < 400 or (400 <= status < 500 and status not in {408, 425, 429})


def sms_text(rendered: Rendered, more: str) -> str:
    """An SMS says what the message is about (its subject) and where to read the rest: mails are
    too long for SMS, and answer links, being capabilities, go by email only."""
    text = f"{rendered.subject}\n{more}"
    return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 1].rstrip() + "…"


class SmsChannel:
    """SMS through a generic HTTP gateway: ``POST`` of ``{"to", "text", "sender", "reference"}`` as
    JSON with a bearer token, 2xx meaning accepted. The gateway is reached like a webhook, over the
    guarded transport (public addresses only outside development, no proxies, no redirects), and a
    failure is recorded as a short reason, never the network stack's error text."""

    def __init__(self, settings: NotificationSettings, resolver: Resolver) -> None:
        self._env = settings.env
        self._url = settings.sms_gateway_url
        self._token = settings.sms_gateway_token
        self._sender = settings.sms_sender
        self._deadline = settings.delivery_timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=settings.delivery_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=guarded_transport(settings.env, resolver),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, to: str, text: str, *, delivery_id: str) -> None:
        if not self._url:
            raise SendFailed("sms_unavailable", "no SMS gateway is configured", permanent=True)
        if url_problem(self._url, self._env) is not None:
            raise SendFailed("destination_not_allowed", "destination not allowed", permanent=True)
        body = {"to": to, "text": text, "sender": self._sender, "reference": delivery_id}
        headers = {
            "Authorization": f"Bearer {self._token.get_secret_value()}",
            # The same on every attempt: a gateway that knows the reference sends the SMS once.
            "Idempotency-Key": delivery_id,
        }
        try:
            async with asyncio.timeout(self._deadline):
                async with self._client.stream("POST", self._url, json=body, headers=headers) as response:
                    status = response.status_code
        except DestinationNotAllowed as error:
            raise SendFailed("destination_not_allowed", "destination not allowed", permanent=True) from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise SendFailed("sms_timeout", "timeout", permanent=False) from error
        except httpx.HTTPError as error:
            raise SendFailed("sms_unreachable", "connection failed", permanent=False) from error
        if 200 <= status < 300:
            return
        raise SendFailed(f"sms_http_{status}", f"http {status}", permanent=_permanent(status))
