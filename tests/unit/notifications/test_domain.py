"""Webhook signatures, retry backoff, the digest and who can be reached on which channel."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lotse_contracts import NeedOpened, NotificationFailed
from lotse_contracts.events.needs import NeedCategory
from lotse_contracts.events.values import Channel
from lotse_notifications import domain
from lotse_notifications.domain import backoff_seconds, sign, signature_valid, skip_reason
from lotse_notifications.records import Contact, ContactDetails, Need, NeedSnapshot, NeedStatus
from lotse_notifications.store import PENDING, Delivery, outcome_event

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    expected = hmac.new(b"s3cret", b"1764072000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", "1764072000", body) == f"sha256={expected}"


def test_a_receiver_accepts_only_the_right_secret_body_and_a_recent_timestamp() -> None:
    timestamp = str(int(NOW.timestamp()))
    body = b'{"id":"1"}'
    signature = sign("s3cret", timestamp, body)
    assert signature_valid("s3cret", timestamp, body, signature, now=NOW)
    assert not signature_valid("other", timestamp, body, signature, now=NOW)
    assert not signature_valid("s3cret", timestamp, body + b" ", signature, now=NOW)
    assert not signature_valid("s3cret", str(int(NOW.timestamp()) + 1), body, signature, now=NOW)
    assert not signature_valid("s3cret", timestamp, body, signature, now=NOW + timedelta(minutes=10))
    assert not signature_valid("s3cret", "not-a-number", body, signature, now=NOW)


def test_backoff_doubles_per_attempt_up_to_the_cap() -> None:
    lowest = [backoff_seconds(attempt, base=1, cap=60, jitter=lambda: 0.0) for attempt in range(1, 9)]
    highest = [backoff_seconds(attempt, base=1, cap=60, jitter=lambda: 1.0) for attempt in range(1, 9)]
    assert highest == [1, 2, 4, 8, 16, 32, 60, 60]
    assert lowest == [value / 2 for value in highest]


@given(attempt=st.integers(1, 40), base=st.floats(0.01, 10), cap=st.floats(0.1, 3600), jitter=st.floats(0, 1))
def test_backoff_stays_within_half_and_all_of_its_ceiling(attempt: int, base: float, cap: float, jitter: float) -> None:
    ceiling = min(cap, base * 2 ** (attempt - 1))
    value = backoff_seconds(attempt, base=base, cap=cap, jitter=lambda: jitter)
    assert ceiling / 2 - 1e-9 <= value <= ceiling + 1e-9


def test_the_jitter_spreads_retries_of_many_deliveries() -> None:
    values = {round(backoff_seconds(5, base=1, cap=60), 6) for _ in range(50)}
    assert len(values) > 40


def contact(channels: tuple[Channel, ...] = (Channel.EMAIL,), **fields: Any) -> Contact:
    details = ContactDetails("Maria", "maria@example.org", None, "de", channels)
    return Contact("bonn", "v1", 1, details, **fields)


@pytest.mark.parametrize(
    ("known", "channel", "reason"),
    [
        (None, Channel.EMAIL, "no_contact"),
        (Contact.tombstone("bonn", "v1", 3), Channel.IN_APP, "no_contact"),
        (contact(active=False), Channel.EMAIL, "volunteer_withdrawn"),
        (contact((Channel.IN_APP,)), Channel.EMAIL, "opted_out"),
        (contact(contact_consent=False), Channel.EMAIL, "no_contact_consent"),
        (contact((Channel.EMAIL, Channel.IN_APP), contact_consent=False), Channel.IN_APP, None),
        (contact(contact_consent=True), Channel.EMAIL, None),
        # Only a profile update read so far: no consent known yet, nothing refused either.
        (contact(contact_consent=None), Channel.EMAIL, None),
    ],
)
def test_who_can_be_reached_on_which_channel(known: Contact | None, channel: Channel, reason: str | None) -> None:
    assert skip_reason(known, channel) == reason


def test_the_digest_counts_open_unstaffed_and_staffed_needs() -> None:
    base = {"category": "translation", "description": "Übersetzen beim Arzt", "district": "Nord"}
    opened = NeedOpened.example()
    snapshot = replace(
        NeedSnapshot.from_event(opened),
        category=NeedCategory.TRANSLATION,
        description=base["description"],
        district=base["district"],
    )
    need = Need("bonn", str(opened.need_id), version=1, snapshot=snapshot)
    needs = [
        replace(need, status=NeedStatus.OPEN, unstaffed=True),
        replace(need, status=NeedStatus.OPEN, unstaffed=False),
        replace(need, status=NeedStatus.STAFFED),
        replace(need, status=NeedStatus.STAFFED),
        replace(need, status=NeedStatus.CANCELLED),
        replace(need, status=NeedStatus.CLOSED),
    ]
    digest = domain.digest(needs)
    assert (digest["open"], digest["unstaffed"], digest["staffed"], digest["staffing_rate"]) == (2, 1, 2, 50)
    assert digest["unstaffed_needs"] == [base]
    assert domain.digest([])["staffing_rate"] == 0


def test_delivery_keys_differ_per_channel_and_recipient_and_synthetic_triggers_are_stable() -> None:
    keys = {
        domain.delivery_key("e1", "volunteer", "v1", Channel.EMAIL),
        domain.delivery_key("e1", "volunteer", "v1", Channel.IN_APP),
        domain.delivery_key("e1", "volunteer", "v2", Channel.EMAIL),
        domain.delivery_key("e2", "volunteer", "v1", Channel.EMAIL),
    }
    assert len(keys) == 4
    # The unique index holds keys of this form: the channel as its value, as stored so far.
    assert domain.delivery_key("e1", "volunteer", "v1", Channel.IN_APP) == "e1:volunteer:v1:in_app"
    week = domain.iso_week(NOW)
    assert week == "2026-W48"
    assert domain.synthetic_trigger("digest", "bonn", week) == domain.synthetic_trigger("digest", "bonn", week)
    assert domain.synthetic_trigger("digest", "bonn", week) != domain.synthetic_trigger("digest", "celle", week)


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        ("2026-11-23T06:59:00+00:00", False),  # Monday 07:59 in Berlin
        ("2026-11-23T07:00:00+00:00", True),  # Monday 08:00 in Berlin
        ("2026-11-25T03:00:00+00:00", True),  # later in the week: still due (planned once per week)
        ("2026-11-22T23:30:00+00:00", False),  # Monday 00:30 in Berlin, before the hour
    ],
)
def test_the_weekly_digest_is_due_from_its_weekday_and_hour_in_the_tenants_time(moment: str, due: bool) -> None:
    assert domain.digest_due(datetime.fromisoformat(moment), "Europe/Berlin", weekday=0, hour=8) is due


def test_error_texts_lose_the_addresses_mail_servers_quote() -> None:
    error = "(550, '5.1.1 <maria.k@example.org>: Recipient address rejected') {'x@y.de': (550, b'no')}"
    cleaned = domain.without_addresses(error)
    assert "@" not in cleaned and "Recipient address rejected" in cleaned and "550" in cleaned


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        ("gateway refused +49 151 2345678: not a mobile number", "not a mobile number"),
        ("SMS to 0151/23456789 failed (code 21)", "code 21"),
        ("invalid destination (0251) 123-4567", "invalid destination"),
    ],
)
def test_error_texts_lose_phone_numbers_and_keep_codes_ids_and_hosts(error: str, kept: str) -> None:
    cleaned = domain.without_addresses(error)
    assert "<phone>" in cleaned and kept in cleaned
    assert not any(digits in cleaned for digits in ("2345678", "23456789", "123-4567"))
    # What helps to find the fault stays: status codes, ids, hosts and ports.
    other = "550 5.1.1 delivery 3f2a9c10-1234-5678-9abc-def012345678 to 192.168.100.200:25 in 12345 ms"
    assert domain.without_addresses(other) == other


def test_the_recipients_own_address_goes_whatever_it_looks_like() -> None:
    address = "o'brien.k@example.org"
    error = f"(550, b'5.1.1 <{address}>: Recipient address rejected')"
    cleaned = domain.without_addresses(error, known=[address])
    assert "brien" not in cleaned and "Recipient address rejected" in cleaned


def test_a_failure_on_the_deliveries_topic_carries_no_address_or_phone_number() -> None:
    delivery = Delivery(
        id=str(uuid.uuid4()),
        key="k",
        tenant="musterstadt",
        trigger_event_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        kind="welcome",
        recipient_kind="volunteer",
        recipient_id=str(uuid.uuid4()),
        channel=Channel.SMS,
        language="de",
        status=PENDING,
        created_at=datetime.now(UTC),
    )
    error = "{'maria.k@example.org': (550, b'5.1.1 rejected')} and +49 151 2345678 unknown"
    event = outcome_event(delivery, sent=False, attempts=1, error_code="recipient_refused", error=error)
    assert isinstance(event.data, NotificationFailed)
    assert event.data.error == "{'<address>': (550, b'5.1.1 rejected')} and <phone> unknown"
