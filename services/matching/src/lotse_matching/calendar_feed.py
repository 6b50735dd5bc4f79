"""A volunteer's engagements as an iCalendar feed (RFC 5545, written by the `icalendar` library),
and the feed's secret.

The calendar is built without I/O from the engagements and the tenant's time zone. One event per
engagement, its UID ``<need_id>@lotse`` stable across fetches, so that a calendar application
updates the event in place when the need changes. A one-off need is its window in UTC. A weekly
need is its first occurrence in the tenant's time zone (TZID, with the VTIMEZONE it needs) and a
weekly RRULE until the need's last day: the slots are local times, so only the zone's rules keep
them at the same wall-clock time across daylight saving time. Slots of one need at different
times of day cannot share one DTSTART, so each time of day is an event of its own, the earliest
``<need_id>@lotse``, the later ones ``<need_id>-2@lotse``, ... (by time of day, so a changed
first day does not swap them); slots at the same time on several days are one event
(``BYDAY=TU,TH``).

The feed URL is ``/calendar-feeds/<secret>.ics``: a calendar application cannot send a token, so
the secret is the credential. Only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from pydantic import TypeAdapter

from lotse_contracts.events.values import OneOffWindow, Place, Schedule, WeeklyRecurrence, WeeklySlot
from lotse_matching.store import EngagementRecord

# 32 random bytes, base64url: as strong as the answer links' key.
SECRET_BYTES = 32
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
SUMMARY_DESCRIPTION_CHARS = 60
PRODID = "-//Lotse//Einsaetze//DE"
CALENDAR_NAME = "Lotse: meine Einsätze"

# The kinds of help in German. The answer pages (`pages`) hold the same labels as gettext message
# ids for their languages; the feed speaks German only, so it needs no catalogue.
CATEGORY_NAMES: dict[str, str] = {
    "accompaniment_to_authorities": "Begleitung zu Behörden",
    "translation": "Übersetzen",
    "childcare": "Kinderbetreuung",
    "tutoring": "Lernhilfe",
    "housing_help": "Hilfe rund ums Wohnen",
    "mobility": "Mobilität",
    "leisure": "Freizeit",
    "other": "Sonstiges",
}
BYDAY = {"monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR", "saturday": "SA"}
BYDAY["sunday"] = "SU"
WEEKDAY_NUMBER = {name: number for number, name in enumerate(BYDAY)}  # monday 0, as date.weekday()
_SCHEDULE: TypeAdapter[OneOffWindow | WeeklyRecurrence] = TypeAdapter(Schedule)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_secret(text: str) -> bool:
    """Shaped like a secret of ours; anything else is not looked up at all."""
    return SECRET_PATTERN.fullmatch(text) is not None


def feed_path(secret: str) -> str:
    return f"/calendar-feeds/{secret}.ics"


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """What the feed shows of one engagement."""

    need_id: str
    category: str
    description: str
    place: Place
    schedule: OneOffWindow | WeeklyRecurrence


def entry_of(engagement: EngagementRecord) -> CalendarEntry:
    details = engagement.need.details
    return CalendarEntry(
        need_id=engagement.need.need_id,
        category=details["category"],
        description=details["description"],
        place=Place.model_validate(details["place"]),
        schedule=_SCHEDULE.validate_python(details["schedule"]),
    )


def build_calendar(entries: Iterable[CalendarEntry], timezone: ZoneInfo, stamp: datetime) -> bytes:
    """The iCalendar document of ``entries``; weekly slots are in ``timezone``, ``stamp`` is the
    DTSTAMP of every event (when the feed was produced: no METHOD, so a published calendar)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", CALENDAR_NAME)
    earliest: date | None = None
    for entry in entries:
        for event in _events(entry, timezone, stamp.astimezone(UTC)):
            calendar.add_component(event)
            start: datetime = event.decoded("dtstart")
            earliest = min(earliest or start.date(), start.date())
    if earliest is not None:
        # The zone's transitions from a year before the first event on, not since 1970: the
        # feed is fetched again and again.
        calendar.add_missing_timezones(first_date=date(earliest.year - 1, 1, 1))
    document: bytes = calendar.to_ical()
    return document


def summary(entry: CalendarEntry) -> str:
    category = CATEGORY_NAMES.get(entry.category, CATEGORY_NAMES["other"])
    description = " ".join(entry.description.split())  # one line, whatever the need's text holds
    if len(description) > SUMMARY_DESCRIPTION_CHARS:
        description = description[:SUMMARY_DESCRIPTION_CHARS].rstrip() + "…"
    return f"{category}: {description}"


def location(place: Place) -> str | None:
    """Postcode and district, as a volunteer would look for it; the coordinates stay in the API."""
    parts = [part for part in (place.postcode, place.district) if part]
    return " ".join(parts) or None


def _events(entry: CalendarEntry, timezone: ZoneInfo, stamp: datetime) -> list[Event]:
    schedule = entry.schedule
    if isinstance(schedule, OneOffWindow):
        return [
            _event(entry, f"{entry.need_id}@lotse", schedule.start.astimezone(UTC), schedule.end.astimezone(UTC), stamp)
        ]
    events = []
    for number, (start, end, weekdays) in enumerate(_same_times(schedule.slots), start=1):
        first = _first_day(schedule.starts_on, weekdays)
        if schedule.ends_on is not None and first > schedule.ends_on:
            continue  # no occurrence at all in the recurrence's days
        uid = f"{entry.need_id}@lotse" if number == 1 else f"{entry.need_id}-{number}@lotse"
        event = _event(
            entry,
            uid,
            datetime.combine(first, start, tzinfo=timezone),
            datetime.combine(first, end, tzinfo=timezone),
            stamp,
        )
        rule: dict[str, object] = {"freq": "weekly", "byday": [BYDAY[day] for day in weekdays]}
        if schedule.ends_on is not None:
            # UNTIL must be UTC when DTSTART has a TZID (RFC 5545 3.3.10); the end of the last
            # day keeps that day's occurrence.
            last = datetime.combine(schedule.ends_on, time(23, 59, 59), tzinfo=timezone)
            rule["until"] = last.astimezone(UTC)
        event.add("rrule", rule)
        events.append(event)
    return events


def _event(entry: CalendarEntry, uid: str, start: datetime, end: datetime, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary(entry))
    event.add("description", entry.description)
    if (where := location(entry.place)) is not None:
        event.add("location", where)
    return event


def _same_times(slots: list[WeeklySlot]) -> list[tuple[time, time, list[str]]]:
    """The slots grouped by time of day, earliest first, each with its weekdays Monday first."""
    groups: dict[tuple[time, time], set[str]] = {}
    for slot in slots:
        groups.setdefault((slot.start, slot.end), set()).add(slot.weekday.value)
    return [(start, end, sorted(days, key=WEEKDAY_NUMBER.__getitem__)) for (start, end), days in sorted(groups.items())]


def _first_day(starts_on: date, weekdays: list[str]) -> date:
    """The first day on or after ``starts_on`` that is one of ``weekdays``."""
    wanted = {WEEKDAY_NUMBER[day] for day in weekdays}
    return next(starts_on + timedelta(days=n) for n in range(7) if (starts_on + timedelta(days=n)).weekday() in wanted)
