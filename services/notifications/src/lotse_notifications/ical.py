"""The calendar entry of an engagement reminder: an iCalendar document (RFC 5545, written by the
`icalendar` library, as matching's calendar feed) attached to the reminder email.

Built from what notifications knows of the need (its schedule, description and district), never
from matching's code. The events carry the feed's UIDs, ``<need_id>@lotse`` (and
``<need_id>-2@lotse``, ... for a weekly need's later times of day), so that a calendar that
subscribed to the volunteer's feed updates its event instead of showing it twice. A one-off need is
its window in UTC; a weekly need starts on its first day in the tenant's time zone (TZID, with
the VTIMEZONE it needs) and repeats weekly (RRULE) until its last day: one entry for all its
occurrences.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from pydantic import TypeAdapter

from lotse_contracts.events.values import OneOffWindow, Schedule, WeeklyRecurrence, WeeklySlot
from lotse_notifications import domain

PRODID = "-//Lotse//Erinnerung//DE"
SUMMARY_DESCRIPTION_CHARS = 60
BYDAY = {
    "monday": "MO",
    "tuesday": "TU",
    "wednesday": "WE",
    "thursday": "TH",
    "friday": "FR",
    "saturday": "SA",
    "sunday": "SU",
}
WEEKDAY_NUMBER = {name: number for number, name in enumerate(BYDAY)}
_SCHEDULE: TypeAdapter[OneOffWindow | WeeklyRecurrence] = TypeAdapter(Schedule)


def engagement_calendar(need_id: str, need: Mapping[str, Any], category: str, timezone: str, stamp: datetime) -> bytes:
    """The iCalendar document of one engagement; ``need`` is the need's snapshot document (as a
    delivery's payload holds it), ``category`` the kind of help in the message's language."""
    schedule = _SCHEDULE.validate_python(need["schedule"])
    description = " ".join(str(need["description"]).split())
    short = description
    if len(short) > SUMMARY_DESCRIPTION_CHARS:
        short = short[:SUMMARY_DESCRIPTION_CHARS].rstrip() + "…"
    summary = f"{category}: {short}"
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    zone = domain.zone(timezone)
    stamp = stamp.astimezone(UTC)
    first: date | None = None
    for uid, start, end, rule in _occurrences(need_id, schedule, zone):
        event = Event()
        event.add("uid", uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("summary", summary)
        event.add("description", str(need["description"]))
        if need.get("district"):
            event.add("location", need["district"])
        if rule is not None:
            event.add("rrule", rule)
        calendar.add_component(event)
        first = min(first or start.date(), start.date())
    if first is not None and isinstance(schedule, WeeklyRecurrence):
        calendar.add_missing_timezones(first_date=date(first.year - 1, 1, 1))
    document: bytes = calendar.to_ical()
    return document


Occurrence = tuple[str, datetime, datetime, dict[str, object] | None]  # UID, start, end, RRULE


def _occurrences(need_id: str, schedule: OneOffWindow | WeeklyRecurrence, zone: ZoneInfo) -> list[Occurrence]:
    if isinstance(schedule, OneOffWindow):
        return [(f"{need_id}@lotse", schedule.start.astimezone(UTC), schedule.end.astimezone(UTC), None)]
    found: list[Occurrence] = []
    for number, (start, end, weekdays) in enumerate(_same_times(schedule.slots), start=1):
        first = _first_day(schedule.starts_on, weekdays)
        if schedule.ends_on is not None and first > schedule.ends_on:
            continue
        uid = f"{need_id}@lotse" if number == 1 else f"{need_id}-{number}@lotse"
        rule: dict[str, object] = {"freq": "weekly", "byday": [BYDAY[day] for day in weekdays]}
        if schedule.ends_on is not None:
            # UNTIL in UTC when DTSTART has a TZID (RFC 5545 3.3.10), at the end of the last day.
            rule["until"] = datetime.combine(schedule.ends_on, time(23, 59, 59), tzinfo=zone).astimezone(UTC)
        found.append(
            (uid, datetime.combine(first, start, tzinfo=zone), datetime.combine(first, end, tzinfo=zone), rule)
        )
    return found


def _same_times(slots: list[WeeklySlot]) -> list[tuple[time, time, list[str]]]:
    """The slots grouped by time of day, earliest first, each with its weekdays Monday first."""
    groups: dict[tuple[time, time], set[str]] = {}
    for slot in slots:
        groups.setdefault((slot.start, slot.end), set()).add(slot.weekday.value)
    return [(start, end, sorted(days, key=WEEKDAY_NUMBER.__getitem__)) for (start, end), days in sorted(groups.items())]


def _first_day(starts_on: date, weekdays: list[str]) -> date:
    wanted = {WEEKDAY_NUMBER[day] for day in weekdays}
    return next(starts_on + timedelta(days=n) for n in range(7) if (starts_on + timedelta(days=n)).weekday() in wanted)
