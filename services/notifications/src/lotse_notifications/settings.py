"""The one settings class of the notifications service (environment prefix ``LOTSE_``)."""

from __future__ import annotations

import ipaddress
from datetime import time
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from lotse_runtime import secrets
from lotse_runtime.connections import ServiceSettings
from lotse_runtime.destinations import url_problem
from lotse_runtime.retention import RetentionSettings
from lotse_runtime.sealed import PersonKeySettings

DEVELOPMENT_ANSWER_LINK_BASE_URL = "http://127.0.0.1:8002"
# The portal as `lotse up` runs it: the link in the mails about a question.
DEVELOPMENT_PORTAL_URL = "http://127.0.0.1:8000"


class NotificationSettings(ServiceSettings, RetentionSettings, PersonKeySettings):
    database: str = Field("notifications", description="MongoDB database this service owns")
    consumer_group: str = Field("notifications", description="Kafka consumer group of the event handlers")
    person_keys_consumer_group: str = Field(
        "notifications-person-keys", description="Kafka consumer group of the person keys (crypto-shredding)"
    )
    tenant_pattern: str | None = Field(
        None, description="Regex of the tenant slugs to serve (a broker shared with others); unset: all tenants"
    )
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on")
    http_port: int = Field(8003, description="Port of the HTTP API")
    smtp_host: str = Field("127.0.0.1", description="SMTP server; locally the devstack SMTP sink")
    smtp_port: int = Field(2525, description="SMTP port; locally the devstack SMTP sink")
    smtp_username: str | None = Field(None, description="SMTP user, if the server wants one")
    smtp_password: str | None = Field(None, description="SMTP password, if the server wants one")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS")
    answer_link_secret: SecretStr | None = Field(
        None, description="HMAC key of the answer links in proposal mails (the same as matching's, which checks them)"
    )
    answer_link_base_url: str = Field(
        "",
        description=(
            "Public base URL of the matching service's answer pages; required in production (https), "
            f"{DEVELOPMENT_ANSWER_LINK_BASE_URL} in development"
        ),
    )
    mail_from: str = Field("Lotse <noreply@lotse.local>", description="Sender of every email")
    delivery_concurrency: int = Field(8, ge=1, le=100, description="Deliveries composed or sent side by side")
    delivery_batch_size: int = Field(
        50, ge=1, le=500, description="Deliveries claimed and in flight at once (claimed in one pass, read together)"
    )
    delivery_timeout_seconds: float = Field(10.0, gt=0, description="Longest a single send may take")
    max_body_bytes: int = Field(
        # A template override may hold 70,300 characters, each up to 6 bytes as a JSON escape.
        512 * 1024,
        ge=1024,
        description="Largest request body accepted; a larger one is refused with 413 unread",
    )
    template_render_seconds: float = Field(
        2.0, gt=0, le=30, description="Longest a message may take to render; a tenant's template is stopped then"
    )
    delivery_lease_seconds: float = Field(60.0, gt=0, description="A claimed delivery is retried after this")
    delivery_max_attempts: int = Field(6, ge=1, description="Attempts before a delivery is dead-lettered")
    retry_base_seconds: float = Field(5.0, gt=0, description="First retry delay (doubles per attempt, jittered)")
    retry_max_seconds: float = Field(900.0, gt=0, description="Longest retry delay")
    worker_poll_seconds: float = Field(
        1.0,
        gt=0,
        description=(
            "How often the worker looks for deliveries that became due by time (retries and waits, "
            "seconds apart) or were queued by another replica; one queued here wakes it at once"
        ),
    )
    smtp_idle_seconds: float = Field(30.0, gt=0, description="An SMTP connection unused this long is closed")
    smtp_connections: int | None = Field(
        None, ge=1, le=100, description="SMTP connections kept open side by side; delivery_concurrency when unset"
    )
    reference_grace_seconds: float = Field(
        900.0, gt=0, description="How long a message waits for its volunteer or need to be read (topics are unordered)"
    )
    reminder_before_hours: float = Field(24.0, gt=0, description="Remind this long before a proposal expires")
    weekly_digest: bool = Field(True, description="Send coordinators a weekly digest by themselves")
    digest_weekday: int = Field(0, ge=0, le=6, description="Weekday of the digest in the tenant's time, 0 = Monday")
    digest_hour: int = Field(8, ge=0, le=23, description="Hour from which the digest is sent, tenant's local time")
    reminder_interval_seconds: float = Field(300.0, gt=0, description="How often reminders are looked for")
    daily_digest_time: time = Field(
        time(7, 0),
        description="Local time of the office's daily digest, for those who chose one without naming a time",
    )
    engagement_reminder_hours: float = Field(
        24.0, gt=0, le=168, description="Remind a volunteer this long before an engagement starts"
    )
    sms_gateway_url: str | None = Field(
        None,
        description=(
            "The HTTP SMS gateway's send endpoint (POST JSON: to, text, sender, reference; bearer token); "
            "unset: SMS is not offered. https to a public address in production, like webhooks"
        ),
    )
    # Not a required secret (SMS is optional): required, or generated in development, when the URL is set.
    sms_gateway_token: SecretStr = Field(
        SecretStr(""), description="Bearer token of the SMS gateway; required with LOTSE_SMS_GATEWAY_URL"
    )
    sms_sender: str = Field("Lotse", max_length=11, description="Sender name of SMS (11 characters at most)")
    portal_url: str | None = Field(
        None,
        description=(
            "The portal's public address, for the link to a question's page in the mails about it; "
            "unset: the mails say where in Lotse to look (development: the local portal)"
        ),
    )
    thread_post_limit: int = Field(
        20, ge=1, description="Questions and answers one person may post per window (LOTSE_THREAD_POST_WINDOW_SECONDS)"
    )
    thread_post_window_seconds: float = Field(600.0, gt=0, description="The window of the post limit")

    @property
    def sms_gateway(self) -> bool:
        """Whether SMS can be delivered here."""
        return bool(self.sms_gateway_url)

    @model_validator(mode="after")
    def _sms_gateway(self) -> Self:
        if not self.sms_gateway_url:
            return self
        if url_problem(self.sms_gateway_url, self.env) is not None:
            raise ValueError(
                "LOTSE_SMS_GATEWAY_URL must be an https URL of a host on the public internet "
                "(plain http only to loopback, and only in development)"
            )
        if not self.sms_gateway_token.get_secret_value():
            if self.env != "development":
                raise ValueError("LOTSE_SMS_GATEWAY_TOKEN is not set: the bearer token of the SMS gateway")
            self.sms_gateway_token = SecretStr(secrets.development_secret(self.home, "sms_gateway_token"))
        return self

    @model_validator(mode="after")
    def _local_portal(self) -> Self:
        if self.portal_url is None and self.env == "development":
            self.portal_url = DEVELOPMENT_PORTAL_URL
        return self

    @model_validator(mode="after")
    def _answer_links_over_https(self) -> Self:
        # An answer link is a capability: over plain http whoever is on the path (a café's wifi, a
        # proxy) reads it and can answer for the volunteer. http only to this machine (compose).
        if not self.answer_link_base_url:
            if self.env != "development":
                # A default would mail links to a host nobody outside reaches: dead links, silently.
                raise ValueError(
                    "LOTSE_ANSWER_LINK_BASE_URL is not set: the public https address of matching's answer pages"
                )
            self.answer_link_base_url = DEVELOPMENT_ANSWER_LINK_BASE_URL
        if self.env == "production" and not _https_or_loopback(self.answer_link_base_url):
            raise ValueError(
                "LOTSE_ANSWER_LINK_BASE_URL must be an https URL in production (plain http only to loopback): "
                "the links in proposal mails are capabilities"
            )
        return self


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
