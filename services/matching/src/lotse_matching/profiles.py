"""From the read model's documents (the registry's event data) to the domain's volunteers and needs."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from lotse_contracts import Availability, LanguageLevel
from lotse_contracts.events.values import OneOffWindow, Schedule, WeeklyRecurrence
from lotse_matching.candidates import Need, Volunteer
from lotse_matching.schedule import availability_pieces, hours_mask, need_pieces, unavailable_ranges
from lotse_matching.store import NeedRecord

DEFAULT_TIMEZONE = "Europe/Berlin"
_SCHEDULE: TypeAdapter[OneOffWindow | WeeklyRecurrence] = TypeAdapter(Schedule)


def timezone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def volunteer_from_document(document: dict[str, Any]) -> Volunteer:
    profile: dict[str, Any] = document.get("profile") or {}
    availability = Availability.model_validate(document["availability"]) if document.get("availability") else None
    languages: dict[str, int] = {}
    for skill in profile.get("languages", []):
        rank = LanguageLevel(skill["level"]).rank
        languages[skill["language"]] = max(rank, languages.get(skill["language"], -1))
    # Only what the office has checked counts; the profile's own certificates are only declared.
    certificates: dict[str, date] = {}
    for check in document.get("certificate_checks") or []:
        until = date.fromisoformat(check["valid_until"])
        certificates[check["kind"]] = max(until, certificates.get(check["kind"], date.min))
    point = (profile.get("home_area") or {}).get("point")
    pieces = availability_pieces(availability) if availability else ()
    return Volunteer(
        id=document["volunteer_id"],
        tenant=document["tenant"],
        organisation_id=document.get("organisation_id"),
        # Without a profile and an availability nobody can be matched, whatever the consent says.
        active=bool(document.get("active")) and bool(profile) and availability is not None,
        skills=frozenset(profile.get("skills", [])),
        languages=languages,
        point=(point["lat"], point["lon"]) if point else None,
        travel_radius_km=float(profile.get("travel_radius_km", 0)),
        certificates=certificates,
        pieces=pieces,
        unavailable=unavailable_ranges(availability) if availability else (),
        max_engagements=availability.max_concurrent_engagements if availability else 0,
        hours=hours_mask(pieces),
    )


def need_from_record(record: NeedRecord, timezone: ZoneInfo) -> Need:
    return _need(record.tenant, record.need_id, record.details, timezone)


def need_from_document(document: dict[str, Any], timezone: ZoneInfo) -> Need:
    return _need(document["tenant"], document["need_id"], document["details"], timezone)


def _need(tenant: str, need_id: str, details: dict[str, Any], timezone: ZoneInfo) -> Need:
    schedule = _SCHEDULE.validate_python(details["schedule"])
    pieces = need_pieces(schedule, timezone)
    first_day = min((piece.first for piece in pieces), default=date.min)
    last_day = max((piece.last for piece in pieces), default=date.max)
    point = details["place"]["point"]
    return Need(
        id=need_id,
        tenant=tenant,
        organisation_id=details["organisation_id"],
        category=details["category"],
        required_skills=frozenset(details.get("required_skills", [])),
        languages=tuple(
            (item["language"], LanguageLevel(item["min_level"]).rank) for item in details.get("languages", [])
        ),
        point=(point["lat"], point["lon"]),
        pieces=pieces,
        first_day=first_day,
        last_day=last_day,
        volunteers_needed=details["volunteers_needed"],
        certificate=details.get("certificate_required"),
        hours=hours_mask(pieces),
    )
