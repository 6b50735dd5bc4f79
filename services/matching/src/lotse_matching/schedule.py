"""Time in matching: schedules and availability as weekly "pieces" with a date range.

A need's one-off window becomes one piece per local day it touches; a weekly recurrence one
piece per slot; a volunteer's availability one piece per slot and period. Two pieces overlap
when they share a weekday, a stretch of time on it and at least one date in both ranges that
no excluded range (holidays) covers. Weekly slots are meant in the tenant's time zone, so a
one-off window is converted to it first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lotse_contracts import Availability, OneOffWindow, WeeklyRecurrence

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
END_OF_DAY = time.max


@dataclass(frozen=True, slots=True)
class Piece:
    weekday: int  # 0 = Monday
    start: time
    end: time  # exclusive; END_OF_DAY stands for midnight
    first: date
    last: date  # inclusive; date.max when open-ended


@dataclass(frozen=True, slots=True)
class DayRange:
    first: date
    last: date


@dataclass(frozen=True, slots=True)
class Overlap:
    piece: Piece  # the need's piece
    day: date  # the first date on which both overlap
    start: time
    end: time


def need_pieces(schedule: OneOffWindow | WeeklyRecurrence, timezone: ZoneInfo) -> tuple[Piece, ...]:
    if isinstance(schedule, WeeklyRecurrence):
        last = schedule.ends_on or date.max
        return tuple(
            Piece(WEEKDAYS.index(slot.weekday), slot.start, slot.end, schedule.starts_on, last)
            for slot in schedule.slots
        )
    return window_pieces(schedule.start, schedule.end, timezone)


def window_pieces(start: datetime, end: datetime, timezone: ZoneInfo) -> tuple[Piece, ...]:
    local_start, local_end = start.astimezone(timezone), end.astimezone(timezone)
    pieces = []
    day = local_start.date()
    while day <= local_end.date():
        begin = local_start.time().replace(tzinfo=None) if day == local_start.date() else time.min
        finish = local_end.time().replace(tzinfo=None) if day == local_end.date() else END_OF_DAY
        if begin < finish:
            pieces.append(Piece(day.weekday(), begin, finish, day, day))
        day += timedelta(days=1)
    return tuple(pieces)


def availability_pieces(availability: Availability) -> tuple[Piece, ...]:
    periods = [(p.start, p.end or date.max) for p in availability.periods] or [(date.min, date.max)]
    return tuple(
        Piece(WEEKDAYS.index(slot.weekday), slot.start, slot.end, first, last)
        for slot in availability.weekly_slots
        for first, last in periods
    )


def unavailable_ranges(availability: Availability) -> tuple[DayRange, ...]:
    return tuple(DayRange(r.start, r.end or date.max) for r in availability.unavailable)


def hours_mask(pieces: Iterable[Piece]) -> int:
    """One bit per hour of the week a piece touches: a cheap necessary condition for overlap."""
    mask = 0
    for piece in pieces:
        last_hour = 23 if piece.end == END_OF_DAY else _hour_before(piece.end)
        for hour in range(piece.start.hour, last_hour + 1):
            mask |= 1 << (piece.weekday * 24 + hour)
    return mask


def _hour_before(end: time) -> int:
    # The piece ends just before `end`: 16:00 exclusive still touches hour 15 only.
    return end.hour - 1 if (end.minute, end.second, end.microsecond) == (0, 0, 0) else end.hour


def first_common_day(a: Piece, b: Piece, excluded: Sequence[DayRange] = ()) -> Overlap | None:
    """The first date both pieces share (same weekday, overlapping time), outside `excluded`."""
    if a.weekday != b.weekday or not (a.start < b.end and b.start < a.end):
        return None
    low, high = max(a.first, b.first), min(a.last, b.last)
    day = _align(low, a.weekday)
    while day is not None and day <= high:
        blocking = next((r for r in excluded if r.first <= day <= r.last), None)
        if blocking is None:
            return Overlap(a, day, max(a.start, b.start), min(a.end, b.end))
        day = _align(blocking.last, a.weekday, after=True)
    return None


def _align(day: date, weekday: int, *, after: bool = False) -> date | None:
    try:
        start = day + timedelta(days=1) if after else day
        return start + timedelta(days=(weekday - start.weekday()) % 7)
    except OverflowError:
        return None


def find_overlap(need: Sequence[Piece], other: Sequence[Piece], excluded: Sequence[DayRange] = ()) -> Overlap | None:
    """The need's earliest piece that overlaps any of `other`, or None."""
    for piece in need:
        for candidate in other:
            found = first_common_day(piece, candidate, excluded)
            if found is not None:
                return found
    return None


def part_of_day(moment: time) -> str:
    if moment.hour < 12:
        return "morning"
    if moment.hour < 17:
        return "afternoon"
    return "evening"
