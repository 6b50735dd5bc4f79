"""The calendar feed built from engagements (pure), read back with the `icalendar` library."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar
from pydantic import TypeAdapter

from lotse_contracts.events.values import OneOffWindow, Place, Schedule, WeeklyRecurrence
from lotse_matching.calendar_feed import (
    CalendarEntry,
    build_calendar,
    feed_path,
    is_secret,
    new_secret,
    secret_sha256,
)

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PLACE = Place.model_validate({"point": {"lat": 52.52, "lon": 13.405}, "postcode": "12345", "district": "Mitte"})
SCHEDULE: TypeAdapter[OneOffWindow | WeeklyRecurrence] = TypeAdapter(Schedule)
LONG = "Begleitung zur Ausländerbehörde, Termin zur Verlängerung des Aufenthaltstitels, bitte pünktlich"


def entry(need_id: str, schedule: dict[str, Any], *, description: str = LONG, place: Place = PLACE) -> CalendarEntry:
    return CalendarEntry(
        need_id, "accompaniment_to_authorities", description, place, SCHEDULE.validate_python(schedule)
    )


def events(document: bytes) -> dict[str, Any]:
    calendar = Calendar.from_ical(document)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_a_one_off_need_is_one_event_in_utc_with_summary_location_and_stamp() -> None:
    one_off = {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T12:00:00+01:00"}
    document = build_calendar([entry("n1", one_off)], BERLIN, STAMP)

    found = events(document)
    assert list(found) == ["n1@lotse"]
    event = found["n1@lotse"]
    assert event.decoded("dtstart") == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert b"DTSTART:20261203T080000Z" in document  # UTC form, no TZID
    assert event.decoded("dtstamp") == STAMP
    assert str(event["SUMMARY"]) == f"Begleitung zu Behörden: {LONG[:60].rstrip()}…"
    assert str(event["LOCATION"]) == "12345 Mitte"
    assert "RRULE" not in event
    assert b"VTIMEZONE" not in document  # nothing refers to a zone


def test_a_weekly_need_starts_on_its_first_occurrence_in_the_tenants_zone_and_repeats_until_its_last_day() -> None:
    weekly = {
        "kind": "weekly",
        # 2026-12-02 is a Wednesday: the first Tuesday-or-Thursday is Thursday the 3rd.
        "slots": [
            {"weekday": "thursday", "start": "16:00:00", "end": "18:00:00"},
            {"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"},
            {"weekday": "saturday", "start": "10:00:00", "end": "12:30:00"},
        ],
        "starts_on": "2026-12-02",
        "ends_on": "2027-06-30",
    }
    document = build_calendar([entry("n2", weekly, description="Lernhilfe Mathe")], BERLIN, STAMP)

    found = events(document)
    assert sorted(found) == ["n2-2@lotse", "n2@lotse"]
    # Grouped by time of day, earliest first: that order does not change with the first day.
    evening = found["n2-2@lotse"]
    assert evening.decoded("dtstart") == datetime(2026, 12, 3, 16, 0, tzinfo=BERLIN)
    assert evening.decoded("dtend") == datetime(2026, 12, 3, 18, 0, tzinfo=BERLIN)
    assert evening["DTSTART"].params["TZID"] == "Europe/Berlin"
    rule = evening["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["TU", "TH"]
    # The end of 30 June in Berlin (summer time, UTC+2), in UTC as RFC 5545 demands with a TZID.
    assert rule["UNTIL"] == [datetime(2027, 6, 30, 21, 59, 59, tzinfo=UTC)]
    assert str(evening["SUMMARY"]) == "Begleitung zu Behörden: Lernhilfe Mathe"

    saturday = found["n2@lotse"]
    assert saturday.decoded("dtstart") == datetime(2026, 12, 5, 10, 0, tzinfo=BERLIN)
    assert saturday.decoded("dtend") == datetime(2026, 12, 5, 12, 30, tzinfo=BERLIN)
    assert saturday["RRULE"]["BYDAY"] == ["SA"]

    zones = Calendar.from_ical(document).walk("VTIMEZONE")
    assert [str(zone["TZID"]) for zone in zones] == ["Europe/Berlin"]


def test_an_open_ended_weekly_need_has_no_until_and_takes_the_tenants_own_zone() -> None:
    weekly = {
        "kind": "weekly",
        "slots": [{"weekday": "monday", "start": "09:00:00", "end": "10:00:00"}],
        "starts_on": "2026-12-07",
    }
    vienna = ZoneInfo("Europe/Vienna")
    event = events(build_calendar([entry("n3", weekly)], vienna, STAMP))["n3@lotse"]
    assert event.decoded("dtstart") == datetime(2026, 12, 7, 9, 0, tzinfo=vienna)
    assert event["DTSTART"].params["TZID"] == "Europe/Vienna"
    assert "UNTIL" not in event["RRULE"] and event["RRULE"]["BYDAY"] == ["MO"]


def test_a_weekly_slot_without_any_day_in_the_recurrence_is_left_out_and_a_place_without_names_has_no_location() -> (
    None
):
    weekly = {
        "kind": "weekly",
        "slots": [
            {"weekday": "friday", "start": "09:00:00", "end": "10:00:00"},
            {"weekday": "sunday", "start": "11:00:00", "end": "12:00:00"},
        ],
        "starts_on": "2026-12-02",  # Wednesday to Thursday: neither a Friday nor a Sunday
        "ends_on": "2026-12-03",
    }
    bare = Place.model_validate({"point": {"lat": 52.52, "lon": 13.405}})
    one_off = {"kind": "one_off", "start": "2026-12-03T09:00:00Z", "end": "2026-12-03T10:00:00Z"}
    found = events(build_calendar([entry("n4", weekly), entry("n5", one_off, place=bare)], BERLIN, STAMP))
    assert list(found) == ["n5@lotse"]
    assert "LOCATION" not in found["n5@lotse"]


def test_no_engagements_are_an_empty_but_valid_calendar() -> None:
    calendar = Calendar.from_ical(build_calendar([], BERLIN, STAMP))
    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    assert calendar.walk("VEVENT") == []


def test_feed_secrets_are_random_urlsafe_and_only_their_digest_is_compared() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and is_secret(first) and is_secret(second)
    assert feed_path(first) == f"/calendar-feeds/{first}.ics"
    assert len(secret_sha256(first)) == 64 and secret_sha256(first) != secret_sha256(second)
    assert secret_sha256(first) == secret_sha256(first)
    for malformed in ("", "short", first + "x", first[:-1] + "/", first[:-1] + "%"):
        assert not is_secret(malformed)
