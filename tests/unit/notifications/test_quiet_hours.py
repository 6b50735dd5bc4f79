"""Quiet hours and opt-outs: the pure window logic and what the contract accepts."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from lotse_contracts import VolunteerRegistered
from lotse_contracts.events.values import Channel, OptionalMessageKind, QuietHours
from lotse_notifications.domain import quiet_until, skip_reason
from lotse_notifications.records import Contact, ContactDetails

NIGHT = (time(21, 0), time(7, 0))
LUNCH = (time(12, 0), time(13, 30))


@pytest.mark.parametrize(
    ("moment", "window", "until"),
    [
        # 2026-11-25 is winter time in Berlin: UTC+1.
        ("2026-11-25T19:59:00+00:00", NIGHT, None),  # 20:59 local, before the window
        ("2026-11-25T20:00:00+00:00", NIGHT, "2026-11-26T06:00:00+00:00"),  # 21:00 local: until 07:00 tomorrow
        ("2026-11-25T22:30:00+00:00", NIGHT, "2026-11-26T06:00:00+00:00"),  # 23:30 local, before midnight
        ("2026-11-25T23:30:00+00:00", NIGHT, "2026-11-26T06:00:00+00:00"),  # 00:30 local, after midnight
        ("2026-11-26T05:59:00+00:00", NIGHT, "2026-11-26T06:00:00+00:00"),  # 06:59 local
        ("2026-11-26T06:00:00+00:00", NIGHT, None),  # 07:00 local: the window is over
        ("2026-11-25T11:00:00+00:00", LUNCH, "2026-11-25T12:30:00+00:00"),  # 12:00 local, same-day window
        ("2026-11-25T12:30:00+00:00", LUNCH, None),
        ("2026-07-01T19:30:00+00:00", NIGHT, "2026-07-02T05:00:00+00:00"),  # summer time: UTC+2
    ],
)
def test_the_quiet_window_is_in_the_tenants_local_time_and_may_cross_midnight(
    moment: str, window: tuple[time, time], until: str | None
) -> None:
    found = quiet_until(datetime.fromisoformat(moment), *window, "Europe/Berlin")
    assert found == (datetime.fromisoformat(until) if until else None)


def test_the_same_instant_is_quiet_in_one_time_zone_and_not_in_another() -> None:
    moment = datetime(2026, 11, 25, 21, 30, tzinfo=UTC)  # 22:30 in Berlin, 16:30 in New York
    assert quiet_until(moment, *NIGHT, "Europe/Berlin") == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    assert quiet_until(moment, *NIGHT, "America/New_York") is None
    assert quiet_until(moment, *NIGHT, "Not/AZone") == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # Berlin fallback


def test_the_contract_refuses_an_empty_window_and_accepts_one_across_midnight() -> None:
    with pytest.raises(ValidationError, match="start and end must differ"):
        QuietHours(start=time(22, 0), end=time(22, 0))
    assert QuietHours.model_validate({"start": "21:00:00", "end": "07:00:00"}).end == time(7, 0)


def test_only_optional_kinds_can_be_opted_out_of_and_both_fields_are_optional() -> None:
    data = VolunteerRegistered.example().model_dump(mode="json")
    assert VolunteerRegistered.model_validate(data).contact.opted_out_of == []
    assert VolunteerRegistered.model_validate(data).contact.quiet_hours is None
    data["contact"]["opted_out_of"] = ["welcome", "proposal_reminder"]
    assert len(VolunteerRegistered.model_validate(data).contact.opted_out_of) == 2
    for essential in ("match_proposed", "need_cancelled", "proposal_accepted"):
        data["contact"]["opted_out_of"] = [essential]
        with pytest.raises(ValidationError):
            VolunteerRegistered.model_validate(data)


@pytest.mark.parametrize(
    ("kind", "channel", "reason"),
    [
        ("proposal_reminder", Channel.EMAIL, "opted_out"),
        ("proposal_reminder", Channel.IN_APP, "opted_out"),
        ("match_proposed", Channel.EMAIL, None),
        ("match_proposed", Channel.IN_APP, None),
    ],
)
def test_an_opted_out_kind_is_skipped_on_every_channel(kind: str, channel: Channel, reason: str | None) -> None:
    details = ContactDetails(
        "Maria",
        "maria@example.org",
        None,
        "de",
        (Channel.EMAIL, Channel.IN_APP),
        opted_out_of=(OptionalMessageKind.PROPOSAL_REMINDER,),
    )
    contact = Contact("bonn", "v1", 1, details, contact_consent=True)
    assert skip_reason(contact, channel, kind) == reason
