"""Hypothesis strategies for volunteers, needs and matching contexts around one town."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from lotse_contracts.events.values import OneOffWindow
from lotse_matching.candidates import Engagement, MatchContext, Need, Volunteer
from lotse_matching.profiles import need_from_document, volunteer_from_document
from lotse_matching.schedule import WEEKDAYS, need_pieces

TENANT = "musterstadt"
TIMEZONE = ZoneInfo("Europe/Berlin")
BASE_DAY = date(2026, 12, 1)
CENTRE = (52.52, 13.405)
SKILLS = ("accompaniment", "driving", "translation", "childcare", "tutoring")
LANGUAGES = ("de", "ar", "uk", "fa")
LEVELS = ("a1", "a2", "b1", "b2", "c1", "c2", "native")
ORGANISATIONS = [str(uuid.UUID(int=i + 1)) for i in range(3)]


def uuids() -> st.SearchStrategy[str]:
    return st.uuids(version=4).map(str)


def points(spread: float = 0.3) -> st.SearchStrategy[dict[str, float]]:
    return st.builds(
        lambda dlat, dlon: {"lat": round(CENTRE[0] + dlat, 5), "lon": round(CENTRE[1] + dlon, 5)},
        st.floats(-spread, spread),
        st.floats(-spread, spread),
    )


def clock_times() -> st.SearchStrategy[time]:
    return st.integers(6 * 4, 21 * 4).map(lambda quarter: time(quarter // 4, (quarter % 4) * 15))


@st.composite
def slots(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(clock_times())
    hours = draw(st.integers(1, 10))
    end = min(time(23, 45), (datetime.combine(BASE_DAY, start) + timedelta(hours=hours)).time())
    if end <= start:
        end = time(23, 59)
    return {"weekday": draw(st.sampled_from(WEEKDAYS)), "start": start.isoformat(), "end": end.isoformat()}


@st.composite
def day_ranges(draw: st.DrawFn, open_end: bool = True) -> dict[str, Any]:
    start = BASE_DAY + timedelta(days=draw(st.integers(-10, 40)))
    length = draw(st.one_of(st.none(), st.integers(0, 30))) if open_end else draw(st.integers(0, 30))
    return {"start": start.isoformat(), "end": None if length is None else (start + timedelta(days=length)).isoformat()}


def certificate_checks(kind: str, until: int) -> dict[str, Any]:
    """A check the office recorded, valid until ``until`` days after the base day."""
    return {"kind": kind, "seen_on": "2025-01-01", "valid_until": (BASE_DAY + timedelta(days=until)).isoformat()}


@st.composite
def volunteer_documents(draw: st.DrawFn) -> dict[str, Any]:
    languages = draw(st.lists(st.sampled_from(LANGUAGES), min_size=1, max_size=4, unique=True))
    certificates = draw(
        st.lists(
            st.builds(
                lambda kind, until: {
                    "kind": kind,
                    "issued_on": "2025-01-01",
                    "valid_until": None if until is None else (BASE_DAY + timedelta(days=until)).isoformat(),
                },
                st.sampled_from(["extended_police_certificate", "first_aid"]),
                st.one_of(st.none(), st.integers(-30, 60)),
            ),
            max_size=2,
        )
    )
    checks = draw(
        st.lists(
            st.builds(
                certificate_checks,
                st.sampled_from(["extended_police_certificate", "first_aid"]),
                st.integers(-30, 60),
            ),
            max_size=2,
            unique_by=lambda check: check["kind"],
        )
    )
    return {
        "tenant": draw(st.sampled_from([TENANT] * 7 + ["nachbarstadt"])),
        "volunteer_id": draw(uuids()),
        "organisation_id": draw(st.one_of(st.none(), st.sampled_from(ORGANISATIONS))),
        "active": draw(st.sampled_from([True] * 5 + [False])),
        "profile": {
            "skills": draw(st.lists(st.sampled_from(SKILLS), min_size=1, max_size=5, unique=True)),
            "languages": [{"language": code, "level": draw(st.sampled_from(LEVELS))} for code in languages],
            "home_area": draw(
                st.one_of(
                    st.builds(lambda p: {"point": p, "postcode": "10115"}, points(0.15)),
                    st.builds(lambda p: {"point": p}, points(0.15)),
                    st.just({"postcode": "10115"}),
                )
            ),
            "travel_radius_km": draw(st.sampled_from([30, 0, 3, 8, 15, 60, 200])),
            # Declared by the volunteer: never enough for a need that requires a certificate.
            "certificates": certificates,
        },
        "certificate_checks": checks,
        "availability": {
            "weekly_slots": draw(st.lists(slots(), min_size=1, max_size=8)),
            "periods": draw(st.lists(day_ranges(), max_size=2)) if draw(st.booleans()) else [],
            "unavailable": draw(st.lists(day_ranges(open_end=False), max_size=2)),
            "max_concurrent_engagements": draw(st.integers(1, 3)),
        },
    }


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        day = BASE_DAY + timedelta(days=draw(st.integers(0, 45)))
        start = datetime.combine(day, draw(clock_times()), tzinfo=TIMEZONE)
        end = start + timedelta(minutes=draw(st.integers(30, 600)))
        # Sometimes written in UTC, so that the conversion to the tenant's zone matters.
        zone = draw(st.sampled_from([TIMEZONE, ZoneInfo("UTC")]))
        return {"kind": "one_off", "start": start.astimezone(zone).isoformat(), "end": end.astimezone(zone).isoformat()}
    starts = BASE_DAY + timedelta(days=draw(st.integers(-5, 30)))
    length = draw(st.one_of(st.none(), st.integers(0, 60)))
    return {
        "kind": "weekly",
        "slots": draw(st.lists(slots(), min_size=1, max_size=2)),
        "starts_on": starts.isoformat(),
        "ends_on": None if length is None else (starts + timedelta(days=length)).isoformat(),
    }


@st.composite
def need_documents(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "tenant": TENANT,
        "need_id": draw(uuids()),
        "details": {
            "organisation_id": draw(st.sampled_from(ORGANISATIONS)),
            "category": draw(st.sampled_from(["translation", "mobility", "childcare", "other"])),
            "description": "Hilfe",
            "required_skills": draw(st.sampled_from([[], [], *[[skill] for skill in SKILLS]])),
            "languages": draw(
                st.sampled_from(
                    [[], []] + [[{"language": code, "min_level": level}] for code in LANGUAGES for level in LEVELS]
                )
            ),
            "place": {"point": draw(points(0.1))},
            "schedule": draw(schedules()),
            "volunteers_needed": draw(st.integers(1, 3)),
            "certificate_required": draw(st.sampled_from([None, None, None, "extended_police_certificate"])),
        },
    }


def volunteers() -> st.SearchStrategy[Volunteer]:
    return volunteer_documents().map(volunteer_from_document)


def needs() -> st.SearchStrategy[Need]:
    return need_documents().map(lambda document: need_from_document(document, TIMEZONE))


@st.composite
def contexts(draw: st.DrawFn, population: list[Volunteer]) -> MatchContext:
    ids = [volunteer.id for volunteer in population]
    engagements: dict[str, tuple[Engagement, ...]] = {}
    for volunteer_id in draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []:
        count = draw(st.integers(1, 3))
        engagements[volunteer_id] = tuple(
            Engagement(str(uuid.UUID(int=1000 + n)), need_pieces(OneOffWindow(**draw(one_offs())), TIMEZONE))
            for n in range(count)
        )
    return MatchContext(
        today=BASE_DAY,
        engagements=engagements,
        recent_asks={i: draw(st.integers(0, 5)) for i in draw(st.lists(st.sampled_from(ids), unique=True))}
        if ids
        else {},
        excluded=frozenset(draw(st.lists(st.sampled_from(ids), unique=True))) if ids else frozenset(),
    )


@st.composite
def one_offs(draw: st.DrawFn) -> dict[str, Any]:
    day = BASE_DAY + timedelta(days=draw(st.integers(0, 45)))
    start = datetime.combine(day, draw(clock_times()), tzinfo=TIMEZONE)
    return {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}


@st.composite
def tailored_volunteer_documents(draw: st.DrawFn, need: dict[str, Any]) -> dict[str, Any]:
    """A volunteer close to fitting `need`: most rules hold, and a few are bent at random."""
    document = draw(volunteer_documents())
    details = need["details"]
    profile = document["profile"]
    profile["skills"] = sorted(set(profile["skills"]) | set(details["required_skills"]))
    for wanted in details["languages"]:
        lowest = LEVELS.index(wanted["min_level"]) - draw(st.sampled_from([0, 0, 0, 1]))
        level = draw(st.sampled_from(LEVELS[max(0, lowest) :]))
        profile["languages"] = [item for item in profile["languages"] if item["language"] != wanted["language"]]
        profile["languages"].append({"language": wanted["language"], "level": level})
    place = details["place"]["point"]
    offset = draw(st.floats(-0.05, 0.05))
    profile["home_area"] = {"point": {"lat": round(place["lat"] + offset, 5), "lon": place["lon"]}}
    profile["travel_radius_km"] = draw(st.sampled_from([5, 8, 30, 200]))
    if details["certificate_required"] and draw(st.booleans()):
        until = draw(st.one_of(st.none(), st.integers(-5, 90)))
        profile["certificates"].append(
            {
                "kind": details["certificate_required"],
                "issued_on": "2025-01-01",
                "valid_until": None if until is None else (BASE_DAY + timedelta(days=until)).isoformat(),
            }
        )
    if details["certificate_required"] and draw(st.booleans()):
        checked = [c for c in document["certificate_checks"] if c["kind"] != details["certificate_required"]]
        checked.append(certificate_checks(details["certificate_required"], draw(st.integers(-5, 90))))
        document["certificate_checks"] = checked
    if draw(st.booleans()):
        whole_day = [{"weekday": day, "start": "00:00:00", "end": "23:59:00"} for day in WEEKDAYS]
        document["availability"]["weekly_slots"] = whole_day
    return document


def populations(need: dict[str, Any], max_size: int = 40) -> st.SearchStrategy[list[dict[str, Any]]]:
    half = max_size // 2
    return st.builds(
        lambda a, b: a + b,
        st.lists(volunteer_documents(), max_size=half),
        st.lists(tailored_volunteer_documents(need), max_size=half),
    )
