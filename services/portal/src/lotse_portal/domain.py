# ruff: noqa: RUF001 - dashes in the level names are typographic on purpose
"""What the portal decides itself, without I/O: the sign-up form read into a registration, the
availability grid, the language a person sees, and which paths a sign-in may return to.

Each form check names its field and a message id (German, translated where it is shown), so the
page shows the message next to the field in the person's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any
from urllib.parse import urlencode

from lotse_contracts.events.values import Channel, ConsentPurpose, LanguageLevel, Weekday
from lotse_portal import maps, places
from lotse_runtime import i18n
from lotse_runtime.i18n import N_

# The languages of the portal's pages (German first); Arabic and Persian read right to left.
LANGUAGES = ("de", "en", "ar", "uk", "fa", "tr")
# Blocks of the availability grid, in the tenant's local time.
DAY_PARTS: dict[str, tuple[str, str, str]] = {
    "morning": (N_("Vormittag"), "08:00:00", "12:00:00"),
    "afternoon": (N_("Nachmittag"), "12:00:00", "17:00:00"),
    "evening": (N_("Abend"), "17:00:00", "21:00:00"),
}
WEEKDAYS: dict[Weekday, str] = {
    Weekday.MONDAY: N_("Montag"),
    Weekday.TUESDAY: N_("Dienstag"),
    Weekday.WEDNESDAY: N_("Mittwoch"),
    Weekday.THURSDAY: N_("Donnerstag"),
    Weekday.FRIDAY: N_("Freitag"),
    Weekday.SATURDAY: N_("Samstag"),
    Weekday.SUNDAY: N_("Sonntag"),
}
# Languages offered in the sign-up form (ISO 639-1), the ones most asked for in the field first.
SPOKEN_LANGUAGES: dict[str, str] = {
    "de": N_("Deutsch"),
    "en": N_("Englisch"),
    "ar": N_("Arabisch"),
    "uk": N_("Ukrainisch"),
    "ru": N_("Russisch"),
    "fa": N_("Persisch (Farsi/Dari)"),
    "tr": N_("Türkisch"),
    "ps": N_("Paschtu"),
    "ku": N_("Kurdisch"),
    "ti": N_("Tigrinya"),
    "fr": N_("Französisch"),
    "es": N_("Spanisch"),
    "pl": N_("Polnisch"),
    "ro": N_("Rumänisch"),
}
LEVELS: dict[LanguageLevel, str] = {
    LanguageLevel.A1: N_("A1 – Anfänger"),
    LanguageLevel.A2: N_("A2 – Grundkenntnisse"),
    LanguageLevel.B1: N_("B1 – Mittelstufe"),
    LanguageLevel.B2: N_("B2 – gute Kenntnisse"),
    LanguageLevel.C1: N_("C1 – sehr gute Kenntnisse"),
    LanguageLevel.C2: N_("C2 – fließend"),
    LanguageLevel.NATIVE: N_("Muttersprache"),
}
PERSON_CHANNELS: dict[Channel, str] = {Channel.EMAIL: N_("E-Mail"), Channel.IN_APP: N_("Nachrichten im Portal")}
REQUIRED_PURPOSES = (ConsentPurpose.MATCHING, ConsentPurpose.CONTACT)

MAX_FIELD_LENGTH = 2001
_POSTCODE = re.compile(r"^[0-9]{5}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass
class FormResult:
    """The request body for the service, or the fields to correct (field → message id)."""

    body: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


class FormData(Mapping[str, str]):
    """A submitted form: single values by name, repeated ones (checkboxes) through ``all``."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        # Longer than any field takes: cut, so no check ever works on more (the field's own check
        # then names it as too long).
        self._items = [(key, value.strip()[:MAX_FIELD_LENGTH]) for key, value in items]
        self._first: dict[str, str] = {}
        for key, value in self._items:
            self._first.setdefault(key, value)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __iter__(self) -> Any:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def all(self, key: str) -> list[str]:
        return [value for name, value in self._items if name == key]


UNKNOWN_POSTCODE = N_("Diese Postleitzahl kennen wir in Ihrer Kommune nicht. Bitte prüfen Sie sie.")


def read_volunteer_form(
    form: FormData,
    *,
    skills: Sequence[str],
    consent_version: str | None,
    frame: maps.MapFrame | None = None,
    postcodes: Collection[str] = (),
    organisations: Collection[str] = (),
) -> FormResult:
    """The sign-up (and profile) form as the registry's registration body.

    With a map (``frame``: the tenant offers one) the home area is the point chosen on it, the
    postcode, or both (then the point is used; ``postcodes``: the tenant's table, checked here
    because the registry takes a point's postcode as given). Without one, the postcode.
    ``organisations``: the initiatives offered to choose from (sign-up); none chosen is the
    municipality's coordination office.
    """
    result = FormResult()
    errors = result.errors
    organisation_id = form.get("organisation_id", "")
    if organisation_id and organisation_id not in organisations:
        errors["organisation_id"] = N_("Bitte wählen Sie eine Initiative aus der Liste.")
    name = form.get("display_name", "")
    if not name:
        errors["display_name"] = N_("Bitte geben Sie einen Namen an.")
    elif len(name) > 80:
        errors["display_name"] = N_("Bitte höchstens 80 Zeichen.")
    email = form.get("email", "")
    if len(email) > 254 or not _EMAIL.fullmatch(email):  # the length first: the pattern backtracks
        errors["email"] = N_("Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org.")
    phone = form.get("phone", "").replace(" ", "")
    if phone and not _PHONE.fullmatch(phone):
        errors["phone"] = N_("Bitte die Nummer mit Ländervorwahl angeben, z. B. +49151 1234567.")
    preferred = form.get("preferred_language", "")
    if preferred not in LANGUAGES:
        errors["preferred_language"] = N_("Bitte wählen Sie eine Sprache.")

    languages = []
    for code in SPOKEN_LANGUAGES:
        level = form.get(f"level_{code}", "")
        if level:
            if level not in {item.value for item in LanguageLevel}:
                errors[f"level_{code}"] = N_("Bitte wählen Sie eine Stufe aus der Liste.")
            else:
                languages.append({"language": code, "level": level})
    if not languages and not any(key.startswith("level_") for key in errors):
        errors["languages"] = N_("Bitte geben Sie mindestens eine Sprache an, die Sie sprechen.")

    chosen_skills = form.all("skills")
    if unknown := [slug for slug in chosen_skills if slug not in skills]:
        errors["skills"] = N_("Bitte wählen Sie nur Tätigkeiten aus der Liste.")
        del unknown

    home_area: dict[str, Any] = {}
    postcode = form.get("postcode", "")
    point = None
    if frame is not None:
        try:
            point = maps.read_point(form, frame)
        except ValueError:
            errors["home_point"] = N_("Dieser Punkt liegt nicht auf der Karte. Bitte wählen Sie ihn neu.")
    if point is not None:
        home_area["point"] = point.as_json()
    if frame is not None and not postcode and point is None and "home_point" not in errors:
        errors["postcode"] = N_("Bitte geben Sie eine Postleitzahl an oder wählen Sie einen Punkt auf der Karte.")
    elif (postcode or frame is None) and not _POSTCODE.fullmatch(postcode):
        errors["postcode"] = N_("Bitte geben Sie eine Postleitzahl mit fünf Ziffern an.")
    elif postcode and postcodes and postcode not in postcodes:
        errors["postcode"] = UNKNOWN_POSTCODE
    elif postcode:
        home_area["postcode"] = postcode
    radius = _integer(form.get("travel_radius_km", ""), 0, 200)
    if radius is None:
        errors["travel_radius_km"] = N_("Bitte eine Zahl von 0 bis 200.")

    slots = []
    for value in form.all("slot"):
        weekday, _, part = value.partition(":")
        if weekday not in {day.value for day in Weekday} or part not in DAY_PARTS:
            errors["slots"] = N_("Bitte wählen Sie Zeiten aus dem Raster.")
            break
        _, start, end = DAY_PARTS[part]
        slots.append({"weekday": weekday, "start": start, "end": end})
    if not slots and "slots" not in errors:
        errors["slots"] = N_("Bitte wählen Sie mindestens eine Zeit, zu der Sie helfen können.")
    most = _integer(form.get("max_concurrent_engagements", ""), 1, 10)
    if most is None:
        errors["max_concurrent_engagements"] = N_("Bitte eine Zahl von 1 bis 10.")

    channels = form.all("channels")
    if not channels or any(channel not in {c.value for c in PERSON_CHANNELS} for channel in channels):
        errors["channels"] = N_("Bitte wählen Sie mindestens einen Weg, auf dem wir Sie erreichen.")
    quiet_start, quiet_end = form.get("quiet_start", ""), form.get("quiet_end", "")
    quiet_hours = None
    if quiet_start or quiet_end:
        if not (_TIME.fullmatch(quiet_start) and _TIME.fullmatch(quiet_end)) or quiet_start == quiet_end:
            errors["quiet_hours"] = N_("Bitte Beginn und Ende als Uhrzeit angeben, z. B. 21:00 und 07:00.")
        else:
            quiet_hours = {"start": f"{quiet_start}:00", "end": f"{quiet_end}:00"}

    purposes = form.all("consent")
    known = {p.value for p in ConsentPurpose}
    consent_missing = any(purpose not in known for purpose in purposes) or not all(
        required.value in purposes for required in REQUIRED_PURPOSES
    )
    if consent_version is not None and consent_missing:
        errors["consent"] = N_(
            "Ohne diese beiden Einwilligungen können wir Ihnen keine Einsätze vorschlagen. "
            "Sie können sie jederzeit widerrufen."
        )
    if result.errors:
        return result

    contact: dict[str, Any] = {
        "display_name": name,
        "email": email,
        "preferred_language": preferred,
        "channels": channels,
    }
    if phone:
        contact["phone"] = phone
    if quiet_hours:
        contact["quiet_hours"] = quiet_hours
    result.body = {
        "contact": contact,
        "skills": chosen_skills,
        "languages": languages,
        "home_area": home_area,
        "travel_radius_km": radius,
        "availability": {"weekly_slots": slots, "max_concurrent_engagements": most},
    }
    if consent_version is not None:
        result.body["consent"] = {"purposes": purposes, "text_version": consent_version}
    if organisation_id:
        result.body["organisation_id"] = organisation_id
    return result


PROFILE_FIELDS = ("contact", "skills", "languages", "home_area", "travel_radius_km", "certificates")


def profile_update(body: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """The registry's profile update from the form's body: the certificates the volunteer showed
    stay as the registry holds them (the form has none, and the update replaces the whole profile)."""
    update = {name: body[name] for name in PROFILE_FIELDS if name in body}
    update["certificates"] = list(record.get("certificates") or [])
    return update


def volunteer_form_values(record: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The profile form filled from the registry's volunteer record: single values and the
    chosen checkboxes, as ``read_volunteer_form`` reads them back."""
    contact: Mapping[str, Any] = record.get("contact") or {}
    home_area: Mapping[str, Any] = record.get("home_area") or {}
    availability: Mapping[str, Any] = record.get("availability") or {}
    quiet: Mapping[str, Any] = contact.get("quiet_hours") or {}
    point: Mapping[str, Any] = home_area.get("point") or {}
    values = {
        "display_name": str(contact.get("display_name") or ""),
        "email": str(contact.get("email") or ""),
        "phone": str(contact.get("phone") or ""),
        "preferred_language": str(contact.get("preferred_language") or ""),
        "quiet_start": str(quiet.get("start") or "")[:5],
        "quiet_end": str(quiet.get("end") or "")[:5],
        "postcode": str(home_area.get("postcode") or ""),
        "home_lat": str(point["lat"]) if "lat" in point else "",
        "home_lon": str(point["lon"]) if "lon" in point else "",
        "travel_radius_km": str(record.get("travel_radius_km", "")),
        "max_concurrent_engagements": str(availability.get("max_concurrent_engagements", "")),
        "organisation_id": str(record.get("organisation_id") or ""),
    }
    for spoken in record.get("languages") or []:
        values[f"level_{spoken.get('language')}"] = str(spoken.get("level") or "")
    slots = []
    for slot in availability.get("weekly_slots") or []:
        for part, (_, start, end) in DAY_PARTS.items():
            if str(slot.get("start", ""))[:5] == start[:5] and str(slot.get("end", ""))[:5] == end[:5]:
                slots.append(f"{slot.get('weekday')}:{part}")
    chosen = {
        "skills": [str(slug) for slug in record.get("skills") or []],
        "slot": slots,
        "channels": [str(channel) for channel in contact.get("channels") or []],
    }
    return values, chosen


def registry_field(path: str) -> str:
    """The form field that a field named by the registry (``home_area.postcode``) belongs to."""
    mapping = {
        "contact.display_name": "display_name",
        "contact.email": "email",
        "contact.phone": "phone",
        "contact.preferred_language": "preferred_language",
        "contact.channels": "channels",
        "contact.quiet_hours": "quiet_hours",
        "home_area.postcode": "postcode",
        "home_area.point": "home_point",
        "home_area": "postcode",
        "travel_radius_km": "travel_radius_km",
        "availability.max_concurrent_engagements": "max_concurrent_engagements",
        "availability.weekly_slots": "slots",
        "skills": "skills",
        "organisation_id": "organisation_id",
        "consent": "consent",
        "consent.text_version": "consent",
    }
    for prefix, name in mapping.items():
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            return name
    if path.startswith("languages"):
        return "languages"
    return "form"


def safe_next(path: str | None) -> str:
    """Where a sign-in may return to: a path of the portal itself, never another site."""
    if not path or not path.startswith("/") or "\\" in path or any(ord(c) < 32 for c in path):
        return "/"
    segments = path.split("?", 1)[0].split("/")[1:]
    if "//" in path.split("?", 1)[0] or any(segment in (".", "..") for segment in segments):
        return "/"
    return path


def pick_language(*preferred: str | None, accept_language: str = "") -> str:
    """The session's choice, then the browser's languages, then German."""
    for language in preferred:
        if language in LANGUAGES:
            return language
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "de"


def _integer(value: str, low: int, high: int) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if low <= number <= high else None


NEED_CATEGORIES: dict[str, str] = {
    "accompaniment_to_authorities": N_("Begleitung zu Ämtern"),
    "translation": N_("Übersetzen und Dolmetschen"),
    "childcare": N_("Kinderbetreuung"),
    "tutoring": N_("Lernhilfe"),
    "housing_help": N_("Hilfe rund ums Wohnen"),
    "mobility": N_("Fahrten und Mobilität"),
    "leisure": N_("Freizeit und Begegnung"),
    "other": N_("Anderes"),
}
# The contract's certificate kinds (CertificateKind) a need may require.
CERTIFICATES: dict[str, str] = {
    "extended_police_certificate": N_("Erweitertes Führungszeugnis"),
    "first_aid": N_("Erste-Hilfe-Kurs"),
    "measles_immunity": N_("Nachweis über Masernschutz"),
    "driving_licence": N_("Führerschein"),
    "interpreter_qualification": N_("Qualifikation als Dolmetscherin oder Dolmetscher"),
}
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAX_STREET = 120


@dataclass(frozen=True)
class NeedForm:
    """A need as an initiative reports it; its place is decided afterwards (``places``) from the
    postcode, the street if given, and the choice the person made when asked (``place_choice``:
    the postcode's centre or a candidate's point; ``searched``: the street those were found for)."""

    body: dict[str, Any]
    postcode: str
    street: str = ""
    place_choice: str = ""
    searched: str = ""

    @property
    def address(self) -> str:
        """What the address search is asked."""
        return f"{self.street}, {self.postcode}"


def read_need_form(
    form: FormData,
    *,
    organisation_id: str,
    skills: Sequence[str],
    timezone: str,
    organisations: Mapping[str, str] | None = None,
) -> tuple[NeedForm | None, dict[str, str]]:
    """The need form, the initiative's and the office's. ``organisations``: those a coordinator
    chooses the need's organisation from (the form's ``organisation_id``); without them the need
    belongs to ``organisation_id``, fixed."""
    from datetime import date, datetime, time
    from zoneinfo import ZoneInfo

    errors: dict[str, str] = {}
    if organisations is not None:
        organisation_id = form.get("organisation_id", "")
        if organisation_id not in organisations:
            errors["organisation_id"] = N_("Bitte wählen Sie die Organisation aus der Liste.")
    category = form.get("category", "")
    if category not in NEED_CATEGORIES:
        errors["category"] = N_("Bitte wählen Sie, welche Hilfe gebraucht wird.")
    description = form.get("description", "")
    if not 10 <= len(description) <= 2000:
        errors["description"] = N_("Bitte beschreiben Sie die Aufgabe in 10 bis 2000 Zeichen.")
    if len(description) <= 2000 and any(pattern.search(description) for pattern in _PERSONAL_DATA):
        errors["description"] = N_(
            "Bitte keine E-Mail-Adressen oder Telefonnummern in die Beschreibung: "
            "Freiwillige sehen sie, bevor sie zugesagt haben."
        )
    postcode = form.get("postcode", "")
    if not _POSTCODE.fullmatch(postcode):
        errors["postcode"] = N_("Bitte geben Sie eine Postleitzahl mit fünf Ziffern an.")
    street = " ".join(form.get("street", "").split())
    if street and not 3 <= len(street) <= MAX_STREET:
        errors["street"] = N_("Bitte Straße und Hausnummer in 3 bis 120 Zeichen, z. B. Marktstraße 5.")
    day, start, end = form.get("date", ""), form.get("start", ""), form.get("end", "")
    schedule: dict[str, Any] | None = None
    weekly = form.get("repeat") == "weekly"
    until = form.get("until", "")
    if not _DATE.fullmatch(day) or not _TIME.fullmatch(start) or not _TIME.fullmatch(end):
        errors["schedule"] = N_("Bitte Datum und Uhrzeiten angeben, z. B. 2026-12-03, 09:00 bis 12:00.")
    elif weekly and until and not _DATE.fullmatch(until):
        errors["schedule"] = N_("Bitte das Enddatum als Datum angeben, z. B. 2027-03-31.")
    else:
        try:
            zone = ZoneInfo(timezone)
            on = date.fromisoformat(day)
            begins = datetime.combine(on, time.fromisoformat(start), zone)
            ends = datetime.combine(on, time.fromisoformat(end), zone)
            last = date.fromisoformat(until) if weekly and until else None
        except ValueError:
            errors["schedule"] = N_("Bitte Datum und Uhrzeiten angeben, z. B. 2026-12-03, 09:00 bis 12:00.")
        else:
            if ends <= begins:
                errors["schedule"] = N_("Das Ende muss nach dem Beginn liegen.")
            elif begins <= datetime.now(zone):
                errors["schedule"] = N_("Der Termin muss in der Zukunft liegen.")
            elif last is not None and last < on:
                errors["schedule"] = N_("Das Enddatum muss nach dem ersten Termin liegen.")
            elif weekly:
                # Every week on the first date's weekday, at the same hours, from that date on.
                slot = {"weekday": list(Weekday)[on.weekday()].value, "start": f"{start}:00", "end": f"{end}:00"}
                schedule = {"kind": "weekly", "slots": [slot], "starts_on": on.isoformat()}
                if last is not None:
                    schedule["ends_on"] = last.isoformat()
            else:
                schedule = {"kind": "one_off", "start": begins.isoformat(), "end": ends.isoformat()}
    needed = _integer(form.get("volunteers_needed", ""), 1, 50)
    if needed is None:
        errors["volunteers_needed"] = N_("Bitte eine Zahl von 1 bis 50.")
    chosen_skills = form.all("skills")
    if any(slug not in skills for slug in chosen_skills):
        errors["skills"] = N_("Bitte wählen Sie nur Tätigkeiten aus der Liste.")
    languages = []
    language, level = form.get("language", ""), form.get("language_level", "")
    if language:
        if language not in SPOKEN_LANGUAGES or level not in {item.value for item in LanguageLevel}:
            errors["language"] = N_("Bitte wählen Sie Sprache und Mindeststufe aus der Liste.")
        else:
            languages.append({"language": language, "min_level": level})
    certificate = form.get("certificate_required", "")
    if certificate and certificate not in CERTIFICATES:
        errors["certificate_required"] = N_("Bitte wählen Sie einen Nachweis aus der Liste.")
    if errors or schedule is None or needed is None:
        return None, errors
    body: dict[str, Any] = {
        "organisation_id": organisation_id,
        "category": category,
        "description": description,
        "required_skills": chosen_skills,
        "languages": languages,
        "schedule": schedule,
        "volunteers_needed": needed,
    }
    if certificate:
        body["certificate_required"] = certificate
    return NeedForm(body, postcode, street, form.get("place_choice", ""), form.get("searched", "")), errors


def need_form_values(need: Mapping[str, Any], timezone: str) -> tuple[dict[str, str], list[str]]:
    """The need form's fields filled from the registry's need (to edit it), and its skills. The
    street is not stored (only the point), so it stays empty: the need keeps its place unless the
    postcode or a street is given anew."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    schedule: Mapping[str, Any] = need.get("schedule") or {}
    place: Mapping[str, Any] = need.get("place") or {}
    values = {
        "organisation_id": str(need.get("organisation_id") or ""),
        "category": str(need.get("category") or ""),
        "description": str(need.get("description") or ""),
        "postcode": str(place.get("postcode") or ""),
        "volunteers_needed": str(need.get("volunteers_needed") or 1),
        "certificate_required": str(need.get("certificate_required") or ""),
    }
    languages = need.get("languages") or []
    if languages:
        values["language"] = str(languages[0].get("language") or "")
        values["language_level"] = str(languages[0].get("min_level") or "")
    if schedule.get("kind") == "weekly":
        slots = schedule.get("slots") or [{}]
        first = date.fromisoformat(str(schedule.get("starts_on")))
        values.update(
            repeat="weekly",
            date=first.isoformat(),
            start=str(slots[0].get("start") or "")[:5],
            end=str(slots[0].get("end") or "")[:5],
            until=str(schedule.get("ends_on") or ""),
        )
    elif schedule.get("start") and schedule.get("end"):
        begins = datetime.fromisoformat(str(schedule["start"])).astimezone(zone)
        ends = datetime.fromisoformat(str(schedule["end"])).astimezone(zone)
        values.update(repeat="once", date=begins.date().isoformat(), start=f"{begins:%H:%M}", end=f"{ends:%H:%M}")
    return values, [str(slug) for slug in need.get("required_skills") or []]


# Contact data has no place in a need's description (volunteers read it before they commit).
_PERSONAL_DATA = (
    re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE),
    re.compile(r"(\+|00)?[0-9][0-9 /-]{7,}[0-9]"),
)


# Why matching proposes someone, by reason code, in words a volunteer reads.
REASONS: dict[str, str] = {
    "skills": N_("Ihre Fähigkeiten passen zur Aufgabe."),
    "language": N_("Sie sprechen die gebrauchte Sprache."),
    "distance": N_("Der Ort liegt in Ihrer Nähe."),
    "availability": N_("Sie haben zu der Zeit angegeben, dass Sie können."),
    "certificate": N_("Sie haben den nötigen Nachweis."),
    "organisation": N_("Der Bedarf kommt von Ihrer Initiative."),
}

PROPOSAL_STATUSES: dict[str, str] = {
    "open": N_("wartet auf Ihre Antwort"),
    "accepted": N_("zugesagt"),
    "declined": N_("Sie haben abgesagt"),
    "expired": N_("abgelaufen"),
    "withdrawn": N_("zurückgezogen"),
    "stepped_back": N_("zurückgetreten"),
}
NEED_STATUSES: dict[str, str] = {
    "open": N_("offen"),
    "staffed": N_("besetzt"),
    "cancelled": N_("abgesagt"),
    "closed": N_("abgeschlossen"),
}


@dataclass(frozen=True)
class Skill:
    slug: str
    label: str
    language: str  # the label's language: the person's, or the tenant's default where it lacks one


@dataclass(frozen=True)
class ConsentPurposeText:
    value: str
    text: str
    required: bool


@dataclass(frozen=True)
class TenantFacts:
    """What the registry says publicly about a municipality, in the person's language."""

    slug: str
    name: str
    timezone: str
    consent_version: str
    consent_language: str  # the text's language (the person's, else the tenant's default)
    consent_intro: str
    consent_purposes: tuple[ConsentPurposeText, ...]
    skills: tuple[Skill, ...]
    map_offered: bool = False  # the tenant wants a map and has a postcode table
    address_search: bool = False  # the registry's geocoder finds street addresses

    @classmethod
    def from_json(cls, data: Mapping[str, Any], language: str) -> TenantFacts:
        default = str(data.get("default_language") or "de")
        consent = data.get("consent") or {}
        texts: Mapping[str, Any] = consent.get("texts") or {}
        text_language = language if language in texts else default if default in texts else next(iter(texts), default)
        text: Mapping[str, Any] = texts.get(text_language) or {}
        purposes: Mapping[str, str] = text.get("purposes") or {}
        required = {purpose.value for purpose in REQUIRED_PURPOSES}
        return cls(
            slug=str(data["slug"]),
            name=str(data.get("name") or data["slug"]),
            timezone=str(data.get("timezone") or "Europe/Berlin"),
            consent_version=str(consent.get("version") or ""),
            consent_language=text_language,
            consent_intro=str(text.get("intro") or ""),
            consent_purposes=tuple(
                ConsentPurposeText(purpose.value, purposes.get(purpose.value, ""), purpose.value in required)
                for purpose in ConsentPurpose
            ),
            skills=tuple(_skill(skill, language, default) for skill in data.get("skills") or []),
            map_offered=data.get("map_offered") is True,
            address_search=data.get("address_search") is True,
        )

    @property
    def skill_slugs(self) -> list[str]:
        return [skill.slug for skill in self.skills]


def _skill(skill: Mapping[str, Any], language: str, default: str) -> Skill:
    slug, labels = str(skill["slug"]), skill.get("labels") or {}
    for candidate in (language, default, "de"):
        if labels.get(candidate):
            return Skill(slug, str(labels[candidate]), candidate)
    return Skill(slug, slug, default)


@dataclass(frozen=True)
class EngagementView:
    """An engagement as the volunteer reads it: what, when (in their language), where. The place
    in words (postcode and district, as the registry gives them) and, since the volunteer has
    committed, its point as a ``geo:`` URI (RFC 5870) for a map app on their own device: no link
    sends the point to a map site (the portal's pages load and send nothing elsewhere)."""

    need_id: str
    category: str
    description: str
    when: str
    postcode: str
    district: str
    geo_uri: str | None

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], language: str, timezone: str, gettext: Callable[[str], str]
    ) -> EngagementView:
        from zoneinfo import ZoneInfo

        from lotse_runtime import i18n

        schedule: Mapping[str, Any] = data.get("schedule") or {}
        when = i18n.describe_schedule(
            schedule, language, ZoneInfo(timezone), lambda code: gettext(WEEKDAYS.get(Weekday(code), code))
        )
        place: Mapping[str, Any] = data.get("place") or {}
        point: Mapping[str, Any] = place.get("point") or {}
        geo_uri = None
        lat, lon = point.get("lat"), point.get("lon")
        if isinstance(lat, float | int) and isinstance(lon, float | int) and -90 <= lat <= 90 and -180 <= lon <= 180:
            geo_uri = f"geo:{float(lat):.6f},{float(lon):.6f}"
        return cls(
            str(data["need_id"]),
            str(data.get("category") or ""),
            str(data.get("description") or ""),
            when,
            str(place.get("postcode") or ""),
            str(place.get("district") or ""),
            geo_uri,
        )


ORGANISATION_NAME_PROBLEM = N_("Bitte geben Sie einen Namen mit höchstens 160 Zeichen an.")
ORGANISATION_EMAIL_PROBLEM = N_("Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org.")
ORGANISATION_DISTRICTS_PROBLEM = N_("Bitte höchstens 80 Zeichen je Stadtteil.")


def read_organisation_form(form: FormData, kind: str) -> FormResult:
    """An initiative's own details: name, functional mailbox, districts (comma separated)."""
    result = FormResult()
    name = form.get("name", "")
    if not 1 <= len(name) <= 160:
        result.errors["name"] = ORGANISATION_NAME_PROBLEM
    email = form.get("contact_email", "")
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        result.errors["contact_email"] = ORGANISATION_EMAIL_PROBLEM
    districts = [part.strip() for part in form.get("districts", "").split(",") if part.strip()]
    if any(len(district) > 80 for district in districts):
        result.errors["districts"] = ORGANISATION_DISTRICTS_PROBLEM
    if not result.errors:
        result.body = {"name": name, "kind": kind, "contact_email": email, "districts": districts}
    return result


# What the registry refuses of an organisation (its field paths: ``districts[2]``, ``body.kind``),
# said at the form's field, in the person's language: (form field, message).
ORGANISATION_REFUSALS: dict[str, tuple[str, str]] = {
    "name": ("name", ORGANISATION_NAME_PROBLEM),
    "contact_email": ("contact_email", ORGANISATION_EMAIL_PROBLEM),
    "districts": (
        "districts",
        N_("Bitte geben Sie die Stadtteile mit Komma getrennt an, jeden mit höchstens 80 Zeichen."),
    ),
    # The form keeps the kind as it is; only the coordination office changes it.
    "kind": (
        "form",
        N_("Die Art Ihrer Organisation kann nur die Koordinationsstelle ändern. Bitte wenden Sie sich an sie."),
    ),
}
ORGANISATION_NOT_SAVED = N_(
    "Lotse konnte die Angaben nicht speichern. Bitte prüfen Sie sie und versuchen Sie es noch einmal."
)


def organisation_refusal(path: str) -> tuple[str, str]:
    """The form field and message for a field the registry refused in an organisation's details;
    a path that belongs to no field (the whole body) is said above the form."""
    path = path.removeprefix("body.")
    for prefix, refusal in ORGANISATION_REFUSALS.items():
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return refusal
    return "form", ORGANISATION_NOT_SAVED


# -- the coordination office's console: the dashboard and a need's page (issue 16) --------------
# Matching and the registry answer in codes (a next step, a reason, a broken rule, a state); the
# console says each in the person's language. What the services add in English (a reason's or a
# rule's detail) is shown beside the translated words, marked as English.

# The dashboard's lists, most urgent first: (title, what it means, what an empty list means).
DASHBOARD_SECTIONS: dict[str, tuple[str, str, str]] = {
    "starting_soon": (
        N_("Beginnen bald ohne genug Leute"),
        N_("Diese Bedarfe beginnen in den nächsten %(hours)s Stunden und haben noch nicht genug Zusagen."),
        N_("Nichts zu tun: Kein Bedarf beginnt bald ohne genug Leute."),
    ),
    "unstaffed": (
        N_("Ohne Freiwillige oder eskaliert"),
        N_(
            "Lotse findet niemanden mehr, den es fragen kann, oder die Initiative weiß schon, dass der Bedarf "
            "nicht rechtzeitig besetzt ist."
        ),
        N_("Nichts zu tun: Jeder offene Bedarf hat noch Freiwillige, die gefragt werden können."),
    ),
    "expiring_proposals": (
        N_("Vorschläge, die bald ablaufen"),
        N_("Diese Freiwilligen haben in den nächsten %(hours)s Stunden zum letzten Mal Zeit zu antworten."),
        N_("Nichts zu tun: Kein Vorschlag läuft bald ab."),
    ),
    "not_fully_proposed": (
        N_("Noch nicht genug Leute gefragt"),
        N_("Für diese Bedarfe sind weniger Freiwillige gefragt, als noch gebraucht werden."),
        N_("Nichts zu tun: Für jeden offenen Bedarf sind genug Freiwillige gefragt."),
    ),
    "waiting_for_answers": (
        N_("Warten auf Antworten"),
        N_("Freiwillige sind gefragt und haben noch nicht geantwortet."),
        N_("Nichts zu tun: Kein Vorschlag wartet auf eine Antwort."),
    ),
    "over": (
        N_("Vorbei, aber noch offen"),
        N_("Die Zeit dieser Bedarfe ist vorbei. Schließen Sie sie ab und halten Sie fest, wie es lief."),
        N_("Nichts zu tun: Kein vergangener Bedarf ist mehr offen."),
    ),
}
# How far ahead the dashboard looks for needs starting and proposals expiring (matching's windows).
DASHBOARD_WINDOW_HOURS = 48
# Matching's next step for a need (`next_step`), as the thing to do.
NEXT_STEPS: dict[str, str] = {
    "propose_more": N_("Weitere Freiwillige vorschlagen oder eine neue Vorschlagsrunde starten."),
    "wait_for_answers": N_("Auf die Antworten warten: Genug Freiwillige sind gefragt."),
    "call_volunteer": N_(
        "Die gefragten Freiwilligen anrufen: Eine Antwort ist bald fällig, oder der Einsatz beginnt bald."
    ),
    "start_new_round": N_("Eine neue Vorschlagsrunde starten: In dieser Runde ist niemand mehr zu fragen."),
    "escalate": N_(
        "Hilfe außerhalb von Lotse suchen und die Initiative informieren: Der Einsatz beginnt bald, "
        "und niemand ist gefragt."
    ),
    "close": N_("Den Bedarf abschließen: Seine Zeit ist vorbei."),
}
NOTHING_TO_DO = N_("Nichts zu tun.")
# Why matching proposes someone, as the office reads it (REASONS is the volunteer's own wording).
OFFICE_REASONS: dict[str, str] = {
    "skills": N_("Hat die gebrauchten Fähigkeiten."),
    "language": N_("Spricht die gebrauchte Sprache."),
    "distance": N_("Wohnt in der Nähe."),
    "availability": N_("Hat zu der Zeit angegeben, dass es passt."),
    "certificate": N_("Hat den nötigen Nachweis, von der Koordination geprüft."),
    "organisation": N_("Gehört zur Initiative des Bedarfs."),
}
# A hard rule a volunteer breaks for a need (matching's `broken_rules`), named in words.
BROKEN_RULES: dict[str, str] = {
    "tenant": N_("Gehört zu einer anderen Kommune."),
    "consent": N_(
        "Ist nicht für Vorschläge offen: ohne Einwilligung dazu, nicht mehr aktiv oder ohne Profil und Zeiten."
    ),
    "already_proposed": N_("Hat für diesen Bedarf schon einen offenen Vorschlag."),
    "already_committed": N_("Hat für diesen Bedarf schon zugesagt."),
    "stepped_back": N_("Ist von diesem Bedarf zurückgetreten oder wurde freigestellt."),
    "asked_before": N_(
        "Wurde in dieser Vorschlagsrunde schon gefragt. Mit einer neuen Runde kann die Person wieder gefragt werden."
    ),
    "skills": N_("Hat nicht alle gebrauchten Fähigkeiten."),
    "languages": N_("Spricht die gebrauchte Sprache nicht gut genug."),
    "certificate": N_("Hat keinen von der Koordination geprüften Nachweis, der an den Tagen des Bedarfs gilt."),
    "distance": N_("Wohnt weiter weg, als sie oder er fahren möchte, oder die Entfernung ist nicht zu prüfen."),
    "availability": N_("Hat zu der Zeit des Bedarfs nicht angegeben, dass es passt."),
    "limit": N_("Hat schon so viele Einsätze, wie sie oder er angegeben hat."),
    "engagement_overlap": N_("Hat zur selben Zeit einen anderen Einsatz."),
    "other": N_("Verstößt gegen eine andere Regel für Vorschläge."),
}
# A proposal's state on a need's page, in the order the page groups them ("released": stepped back
# because the office released the person).
OFFICE_PROPOSAL_STATES: dict[str, str] = {
    "proposed": N_("Warten auf Antwort"),
    "accepted": N_("Zugesagt"),
    "declined": N_("Abgesagt"),
    "expired": N_("Abgelaufen ohne Antwort"),
    "stepped_back": N_("Zurückgetreten"),
    "released": N_("Von der Koordination freigestellt"),
    "withdrawn": N_("Von Lotse zurückgenommen"),
}
# Why a volunteer declined (matching's and partners' `DeclineReason`), as the office records and reads it.
OFFICE_DECLINE_REASONS: dict[str, str] = {
    "no_time": N_("Keine Zeit"),
    "too_far": N_("Zu weit weg"),
    "not_a_fit": N_("Die Aufgabe passt nicht"),
    "other": N_("Ein anderer Grund"),
}
WITHDRAW_REASONS: dict[str, str] = {
    "need_staffed": N_("Der Bedarf war besetzt."),
    "need_cancelled": N_("Der Bedarf wurde abgesagt."),
    "need_closed": N_("Der Bedarf wurde abgeschlossen."),
    "need_changed": N_("Der Bedarf wurde geändert."),
    "volunteer_withdrawn": N_("Die Person macht nicht mehr mit."),
}
CANCELLATION_REASONS: dict[str, str] = {
    "no_longer_needed": N_("Wird nicht mehr gebraucht"),
    "solved_otherwise": N_("Anders gelöst"),
    "duplicate": N_("Doppelt gemeldet"),
    "other": N_("Ein anderer Grund"),
}
NEED_OUTCOMES: dict[str, str] = {
    "fulfilled": N_("Erfüllt"),
    "partially_fulfilled": N_("Teilweise erfüllt"),
    "not_fulfilled": N_("Nicht erfüllt"),
}
# What matching's and the registry's refusals of an office action mean (by matching's `outcome`,
# else by status), said next to the control that was used.
OFFICE_REFUSALS: dict[str, str] = {
    "no_longer_needed": N_("Dieser Bedarf ist schon besetzt, abgesagt oder abgeschlossen."),
    "already_accepted": N_("Auf diesen Vorschlag wurde schon geantwortet: Die Person hat zugesagt."),
    "already_declined": N_("Auf diesen Vorschlag wurde schon geantwortet: Die Person hat abgesagt."),
    "expired": N_("Die Zeit für eine Antwort auf diesen Vorschlag ist abgelaufen."),
    "limit_reached": N_("Die Person hat schon so viele Einsätze, wie sie angegeben hat, oder einen zur selben Zeit."),
    "not_committed": N_("Die Person hat für diesen Bedarf nicht oder nicht mehr zugesagt."),
    "broken_rules": N_("Diese Person kann nicht vorgeschlagen werden."),
    "key_reused": N_("Dieses Formular ist veraltet. Bitte laden Sie die Seite neu."),
    "need_over": N_("Der Bedarf ist schon abgesagt oder abgeschlossen."),
}
REFUSED_OTHERWISE = N_("Das ging leider nicht. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.")


def office_refusal(status: int, outcome: str) -> str:
    """The message for a refused office action: matching names its outcome; the registry's 409 on
    a need means it is over (cancelled or closed)."""
    if outcome in OFFICE_REFUSALS:
        return OFFICE_REFUSALS[outcome]
    return OFFICE_REFUSALS["need_over"] if status == 409 else REFUSED_OTHERWISE


def _moment(value: Any, language: str, zone: tzinfo) -> str:
    """An ISO timestamp from a service, in the tenant's zone as the language writes it; "" if none."""
    if not isinstance(value, str) or not value:
        return ""
    return i18n.format_datetime(datetime.fromisoformat(value), language, zone)


def _kilometres(value: Any, language: str) -> str:
    """A distance in km with one decimal as the language writes numbers; "" if none."""
    return i18n.format_number(value, language, decimals=1) if isinstance(value, int | float) else ""


@dataclass(frozen=True)
class NeedCard:
    """A need as the dashboard lists it: what, where, when, how far its staffing is, and what to do."""

    need_id: str
    organisation: str  # the organisation's name, "" where unknown
    category: str  # a code; shown by its label
    description: str
    district: str
    starts: str  # the first occurrence in the tenant's zone, as the language writes it
    weekly: bool
    needed: int
    committed: int
    waiting: int  # proposals waiting for an answer
    escalated: bool
    next_step: str  # message id; "" when there is nothing to do
    next_expiry: str  # when the first open proposal expires unanswered, or ""

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], language: str, zone: tzinfo, organisations: Mapping[str, str]
    ) -> NeedCard:
        step = data.get("next_step")
        return cls(
            need_id=str(data["need_id"]),
            organisation=organisations.get(str(data.get("organisation_id")), ""),
            category=str(data.get("category") or ""),
            description=str(data.get("description") or ""),
            district=str(data.get("district") or ""),
            starts=_moment(data.get("starts_at"), language, zone),
            weekly=data.get("schedule_kind") == "weekly",
            needed=int(data.get("volunteers_needed") or 0),
            committed=int(data.get("committed") or 0),
            waiting=int(data.get("open_proposals") or 0),
            escalated=data.get("escalated") is True,
            next_step=NEXT_STEPS.get(str(step), REFUSED_OTHERWISE) if step else "",
            next_expiry=_moment(data.get("next_expiry"), language, zone),
        )


@dataclass(frozen=True)
class ExpiringProposal:
    """An open proposal whose time to answer runs out soon: call the volunteer."""

    proposal_id: str
    need_id: str
    category: str  # of its need, "" where the dashboard does not list the need
    expires: str
    next_step: str = NEXT_STEPS["call_volunteer"]


@dataclass(frozen=True)
class DashboardSection:
    key: str
    title: str  # message id
    meaning: str  # message id, may name %(hours)s
    empty: str  # message id: what an empty list means
    needs: tuple[NeedCard, ...] = ()
    proposals: tuple[ExpiringProposal, ...] = ()

    @property
    def count(self) -> int:
        return len(self.needs) + len(self.proposals)


def dashboard_sections(
    data: Mapping[str, Any], language: str, zone: tzinfo, organisations: Mapping[str, str]
) -> list[DashboardSection]:
    """Matching's ``GET /tenants/{t}/dashboard`` as the page's sections, most urgent first."""
    sections = []
    categories: dict[str, str] = {}
    for key in DASHBOARD_SECTIONS:
        if key == "expiring_proposals":
            continue
        cards = tuple(NeedCard.from_json(item, language, zone, organisations) for item in data.get(key) or [])
        categories.update({card.need_id: card.category for card in cards})
        sections.append(DashboardSection(key, *DASHBOARD_SECTIONS[key], needs=cards))
    expiring = tuple(
        ExpiringProposal(
            proposal_id=str(item["proposal_id"]),
            need_id=str(item["need_id"]),
            category=categories.get(str(item["need_id"]), ""),
            expires=_moment(item.get("expires_at"), language, zone),
        )
        for item in data.get("expiring_proposals") or []
    )
    sections.insert(
        2, DashboardSection("expiring_proposals", *DASHBOARD_SECTIONS["expiring_proposals"], proposals=expiring)
    )
    return sections


@dataclass(frozen=True)
class DashboardFilters:
    """The dashboard's filters as the form gives them ("" filters nothing); dates are the need's
    first day in the tenant's zone, both inclusive."""

    organisation_id: str = ""
    category: str = ""
    district: str = ""
    starts_from: str = ""
    starts_until: str = ""

    @property
    def active(self) -> bool:
        return any(self.query().values())

    def query(self) -> dict[str, str]:
        """Matching's query parameters for these filters."""
        given = {
            "organisation_id": self.organisation_id,
            "category": self.category,
            "district": self.district,
            "starts_from": self.starts_from,
            "starts_until": self.starts_until,
        }
        return {name: value for name, value in given.items() if value}


MAX_DISTRICT = 100


def read_dashboard_filters(
    given: Mapping[str, str], organisations: Collection[str]
) -> tuple[DashboardFilters, dict[str, str]]:
    """The filter form (a GET): what is valid filters, what is not is named by its field and
    left out. ``organisations``: those the person may choose (none: the field is not offered)."""
    errors: dict[str, str] = {}
    organisation = given.get("organisation_id", "").strip()
    if organisation and organisation not in organisations:
        errors["organisation_id"] = N_("Bitte wählen Sie eine Initiative aus der Liste.")
        organisation = ""
    category = given.get("category", "").strip()
    if category and category not in NEED_CATEGORIES:
        errors["category"] = N_("Bitte wählen Sie, welche Hilfe gebraucht wird.")
        category = ""
    district = " ".join(given.get("district", "").split())
    if len(district) > MAX_DISTRICT:
        errors["district"] = N_("Bitte höchstens 100 Zeichen.")
        district = ""
    days: dict[str, date | None] = {}
    for name in ("starts_from", "starts_until"):
        text = given.get(name, "").strip()
        days[name] = None
        if not text:
            continue
        try:
            if not _DATE.fullmatch(text):
                raise ValueError(text)
            days[name] = date.fromisoformat(text)
        except ValueError:
            errors[name] = N_("Bitte ein Datum angeben, z. B. 2026-12-03.")
    first, last = days["starts_from"], days["starts_until"]
    if first is not None and last is not None and last < first:
        errors["starts_until"] = N_("Das Ende des Zeitraums muss nach seinem Anfang liegen.")
        last = None
    filters = DashboardFilters(
        organisation,
        category,
        district,
        first.isoformat() if first else "",
        last.isoformat() if last else "",
    )
    return filters, errors


@dataclass(frozen=True)
class ReasonLine:
    """A reason or a broken rule: its words (message id) and the service's detail (English)."""

    label: str
    detail: str


def reason_lines(items: Iterable[Mapping[str, Any]]) -> tuple[ReasonLine, ...]:
    """Matching's reasons (``code``, ``detail``) as the office reads them."""
    return tuple(
        ReasonLine(OFFICE_REASONS.get(str(item.get("code")), BROKEN_RULES["other"]), str(item.get("detail") or ""))
        for item in items
    )


def rule_lines(items: Iterable[Mapping[str, Any]]) -> tuple[ReasonLine, ...]:
    """Matching's broken rules (``rule``, ``detail``), each named in words."""
    return tuple(
        ReasonLine(BROKEN_RULES.get(str(item.get("rule")), BROKEN_RULES["other"]), str(item.get("detail") or ""))
        for item in items
    )


@dataclass(frozen=True)
class Who:
    """Who of the office acted: a name (shown as it is) or a message id (translated)."""

    text: str
    translate: bool


YOU = N_("Ihnen")
ACTOR_ROLES: dict[str, str] = {
    "coordinator": N_("der Koordinationsstelle"),
    "initiative-admin": N_("der Initiative"),
}


def staff_id_of(subject: str, issuer: str) -> str:
    """The registry's staff id of a token subject: the subject itself when it is a UUID, else the
    UUID the services derive from issuer and subject (``Principal.volunteer_id``'s rule)."""
    from uuid import UUID, uuid5

    from lotse_runtime.auth import VOLUNTEER_ID_NAMESPACE

    try:
        return str(UUID(subject))
    except ValueError:
        return str(uuid5(VOLUNTEER_ID_NAMESPACE, f"{issuer}#{subject}"))


def actor_names(data: Mapping[str, Any], staff: Mapping[str, str], issuer: str) -> dict[str, str]:
    """The names of the office's staff who acted on a staffing (``staff``: staff id → name), by the
    token subject matching records."""
    actors = [data.get("round_started_by")]
    for item in data.get("proposals") or []:
        actors += [item.get("proposed_by"), item.get("recorded_by"), item.get("released_by")]
    subjects = {str(actor["subject"]) for actor in actors if isinstance(actor, Mapping) and actor.get("subject")}
    found = {subject: staff.get(staff_id_of(subject, issuer), "") for subject in subjects}
    return {subject: name for subject, name in found.items() if name}


def who_acted(actor: Mapping[str, Any] | None, me: str, staff: Mapping[str, str]) -> Who | None:
    """Matching's ``{subject, role}``: the signed-in person themselves ("you"), a member of the
    office's staff by name (``staff``: subject → name), else the role."""
    if not actor:
        return None
    subject = str(actor.get("subject") or "")
    if subject and subject == me:
        return Who(YOU, True)
    if staff.get(subject):
        return Who(staff[subject], False)
    return Who(ACTOR_ROLES.get(str(actor.get("role")), ACTOR_ROLES["coordinator"]), True)


@dataclass(frozen=True)
class VolunteerContact:
    """A volunteer as the registry shows them to this caller: the name and how to reach them only
    where it allows (the volunteer's organisation, or the office for those it coordinates)."""

    volunteer_id: str
    name: str = ""
    email: str = ""
    phone: str = ""
    erased: bool = False

    @property
    def reference(self) -> str:
        """What names the person where the name is not shown: the start of their id."""
        return self.volunteer_id[:8]

    @property
    def contact_shown(self) -> bool:
        return bool(self.email or self.phone)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VolunteerContact:
        contact: Mapping[str, Any] = data.get("contact") or {}
        return cls(
            volunteer_id=str(data["volunteer_id"]),
            name=str(contact.get("display_name") or ""),
            email=str(contact.get("email") or ""),
            phone=str(contact.get("phone") or ""),
            erased=data.get("status") == "erased",
        )


@dataclass(frozen=True)
class ProposalRow:
    """A proposal of a volunteer for the need (or their own pick of it) on the need's page."""

    proposal_id: str
    volunteer: VolunteerContact
    state: str  # a key of OFFICE_PROPOSAL_STATES
    pick: bool  # the volunteer took the need themselves
    reasons: tuple[ReasonLine, ...]
    distance: str  # km, as the language writes the number ("2,3"), or ""
    proposed: str
    proposed_by: Who | None  # the office chose this person; None: matching's round
    expires: str
    answered: str  # when answered or ended; for an answer the office recorded, when it recorded it
    by_office: bool  # the answer was given to the office by phone or in person
    recorded_by: Who | None
    released_by: Who | None
    decline_reason: str  # message id, or ""
    withdraw_reason: str  # message id, or ""

    @property
    def open(self) -> bool:
        return self.state == "proposed"


@dataclass(frozen=True)
class ProposalGroup:
    state: str
    label: str  # message id
    rows: tuple[ProposalRow, ...]


@dataclass(frozen=True)
class CommittedRow:
    volunteer: VolunteerContact
    pick: bool
    since: str


@dataclass(frozen=True)
class StaffingView:
    """Matching's ``GET .../needs/{n}/staffing`` with the people as the registry shows them."""

    card: NeedCard
    state: str  # matching's staffing: open, staffed, unstaffed
    groups: tuple[ProposalGroup, ...]
    committed: tuple[CommittedRow, ...]
    round_started: str
    round_started_by: Who | None

    @property
    def open_proposals(self) -> tuple[ProposalRow, ...]:
        return next((group.rows for group in self.groups if group.state == "proposed"), ())

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        people: Mapping[str, VolunteerContact],
        *,
        language: str,
        zone: tzinfo,
        me: str,
        staff: Mapping[str, str],
        organisations: Mapping[str, str],
    ) -> StaffingView:
        def person(volunteer_id: str) -> VolunteerContact:
            return people.get(volunteer_id) or VolunteerContact(volunteer_id)

        rows: list[ProposalRow] = []
        for item in data.get("proposals") or []:
            state = str(item.get("state") or "")
            if state == "stepped_back" and item.get("released_by"):
                state = "released"
            distance = item.get("distance_km")
            rows.append(
                ProposalRow(
                    proposal_id=str(item["proposal_id"]),
                    volunteer=person(str(item["volunteer_id"])),
                    state=state,
                    pick=item.get("kind") == "pick",
                    reasons=reason_lines(item.get("reasons") or []),
                    distance=_kilometres(distance, language),
                    proposed=_moment(item.get("proposed_at"), language, zone),
                    proposed_by=who_acted(item.get("proposed_by"), me, staff),
                    expires=_moment(item.get("expires_at"), language, zone),
                    answered=_moment(item.get("answered_at"), language, zone),
                    by_office=item.get("answered_via") == "coordination_office",
                    recorded_by=who_acted(item.get("recorded_by"), me, staff),
                    released_by=who_acted(item.get("released_by"), me, staff),
                    decline_reason=OFFICE_DECLINE_REASONS.get(str(item.get("decline_reason")), ""),
                    withdraw_reason=WITHDRAW_REASONS.get(str(item.get("withdraw_reason")), ""),
                )
            )
        groups = tuple(
            ProposalGroup(state, label, tuple(row for row in rows if row.state == state))
            for state, label in OFFICE_PROPOSAL_STATES.items()
            if any(row.state == state for row in rows)
        )
        committed = tuple(
            CommittedRow(
                person(str(item["volunteer_id"])),
                item.get("kind") == "pick",
                _moment(item.get("committed_at"), language, zone),
            )
            for item in data.get("committed") or []
        )
        need: Mapping[str, Any] = data.get("need") or {}
        return cls(
            card=NeedCard.from_json(need, language, zone, organisations),
            state=str(need.get("state") or ""),
            groups=groups,
            committed=committed,
            round_started=_moment(data.get("round_started_at"), language, zone),
            round_started_by=who_acted(data.get("round_started_by"), me, staff),
        )


def staffing_volunteers(data: Mapping[str, Any]) -> list[str]:
    """Every volunteer a staffing answer names, once each, in its order."""
    found = [str(item["volunteer_id"]) for item in data.get("proposals") or []]
    found += [str(item["volunteer_id"]) for item in data.get("committed") or []]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class NeedFacts:
    """A need as the registry shows it to the office, in the person's language."""

    need_id: str
    organisation_id: str
    category: str
    description: str
    status: str
    when: str
    postcode: str
    district: str
    volunteers_needed: int
    languages: tuple[tuple[str, str], ...]  # (language, minimum level) as message ids
    skills: tuple[str, ...]  # labels in the person's language
    certificate: str  # message id, or ""
    household_ref: str
    ended_because: str  # message id: the cancellation's reason or the closing's outcome, or ""

    @property
    def is_open(self) -> bool:
        """Open or staffed at the registry: the office may still act on it."""
        return self.status in ("open", "staffed")

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        language: str,
        zone: tzinfo,
        gettext: Callable[[str], str],
        skills: Mapping[str, str],
    ) -> NeedFacts:
        schedule: Mapping[str, Any] = data.get("schedule") or {}
        when = i18n.describe_schedule(schedule, language, zone, lambda code: gettext(WEEKDAYS.get(Weekday(code), code)))
        place: Mapping[str, Any] = data.get("place") or {}
        levels = {level.value: label for level, label in LEVELS.items()}
        languages = tuple(
            (
                SPOKEN_LANGUAGES.get(str(item.get("language")), str(item.get("language"))),
                levels.get(str(item.get("min_level")), ""),
            )
            for item in data.get("languages") or []
        )
        ended = CANCELLATION_REASONS.get(str(data.get("cancellation_reason")), "") or NEED_OUTCOMES.get(
            str(data.get("outcome")), ""
        )
        return cls(
            need_id=str(data["need_id"]),
            organisation_id=str(data.get("organisation_id") or ""),
            category=str(data.get("category") or ""),
            description=str(data.get("description") or ""),
            status=str(data.get("status") or ""),
            when=when,
            postcode=str(place.get("postcode") or ""),
            district=str(place.get("district") or ""),
            volunteers_needed=int(data.get("volunteers_needed") or 0),
            languages=languages,
            skills=tuple(skills.get(str(slug), str(slug)) for slug in data.get("required_skills") or []),
            certificate=CERTIFICATES.get(str(data.get("certificate_required")), ""),
            household_ref=str(data.get("household_ref") or ""),
            ended_because=ended,
        )


@dataclass(frozen=True)
class CandidateCheck:
    """Matching's dry run for a volunteer the office chose: the fit with its reasons, or every hard
    rule the volunteer breaks."""

    volunteer_id: str
    fits: bool
    broken: tuple[ReasonLine, ...]
    reasons: tuple[ReasonLine, ...]
    distance: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any], language: str) -> CandidateCheck:
        distance = data.get("distance_km")
        broken = rule_lines(data.get("broken_rules") or [])
        return cls(
            volunteer_id=str(data["volunteer_id"]),
            fits=data.get("fits") is True and not broken,
            broken=broken,
            reasons=reason_lines(data.get("reasons") or []),
            distance=_kilometres(distance, language),
        )


_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_form_key() -> str:
    """A key for one rendered form: sent as ``Idempotency-Key``, so that the form sent twice (a
    double click, a reload) is done once."""
    import secrets

    return secrets.token_urlsafe(18)


def form_key(form: FormData) -> str | None:
    """The form's key, if it carries a well-formed one."""
    key = form.get("idempotency_key", "")
    return key if _IDEMPOTENCY_KEY.fullmatch(key) else None


# --- questions to the coordination office (issue 16, item 5) ---------------------------------

QUESTION_SUBJECT_MAX = 150
QUESTION_TEXT_MAX = 2000  # notifications' limit, and what a form field carries (MAX_FIELD_LENGTH)
# Where a question stands, as volunteers and the office read it.
THREAD_STATES: dict[str, str] = {
    "open": N_("Wartet auf Antwort"),
    "answered": N_("Beantwortet"),
    "closed": N_("Erledigt"),
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class QuestionMessage:
    """One message of a thread as a page shows it: from the volunteer or from the office."""

    from_office: bool
    text: str  # plain text as typed: the page escapes it and keeps its line breaks
    written: str  # when, in the page's language and the municipality's time


@dataclass(frozen=True)
class QuestionThread:
    """A volunteer's question with its answers, as notifications answers ``/me/threads`` or
    ``/threads``; ``volunteer_*`` and ``mine`` only on the office's pages."""

    thread_id: str
    subject: str
    state: str
    last_activity: str
    answered_last: bool  # the office wrote last
    message_count: int
    messages: tuple[QuestionMessage, ...] = ()
    volunteer_id: str | None = None
    volunteer_name: str | None = None
    mine: bool = False
    about_need_id: str | None = None

    @property
    def state_label(self) -> str:
        return THREAD_STATES.get(self.state, self.state)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], language: str, zone: tzinfo) -> QuestionThread:
        messages = tuple(
            QuestionMessage(
                from_office=item.get("author") == "office",
                text=str(item.get("text") or ""),
                written=_moment(item.get("created_at"), language, zone),
            )
            for item in data.get("messages") or []
        )
        return cls(
            thread_id=str(data["id"]),
            subject=str(data.get("subject") or ""),
            state=str(data.get("state") or "open"),
            last_activity=_moment(data.get("last_activity_at"), language, zone),
            answered_last=data.get("last_from") == "office",
            message_count=int(data.get("message_count") or len(messages)),
            messages=messages,
            volunteer_id=data.get("volunteer_id"),
            volunteer_name=data.get("volunteer_name"),
            mine=bool(data.get("mine")),
            about_need_id=data.get("about_need_id"),
        )


@dataclass(frozen=True)
class NeedChoice:
    """One of the volunteer's needs (proposed to them or taken on) a question may be about."""

    need_id: str
    category: str  # a key of NEED_CATEGORIES (its label is translated on the page)
    description: str


# A question may be about a need the volunteer was asked for or took on, not one they declined.
ASKABLE_STATUSES = ("proposed", "accepted")


def need_choices(proposals: Iterable[Mapping[str, Any]]) -> list[NeedChoice]:
    """The needs of ``GET /volunteers/me/proposals`` a question may be about, each once."""
    found: dict[str, NeedChoice] = {}
    for item in proposals:
        need_id = item.get("need_id")
        if isinstance(need_id, str) and item.get("status") in ASKABLE_STATUSES and need_id not in found:
            found[need_id] = NeedChoice(need_id, str(item.get("category") or ""), str(item.get("description") or ""))
    return list(found.values())


QUESTION_TOO_LONG = {
    "subject": N_("Bitte kürzen Sie den Betreff auf höchstens 150 Zeichen."),
    "text": N_("Bitte kürzen Sie den Text auf höchstens 2000 Zeichen."),
}


def _question_text(form: FormData, name: str, limit: int, *, single_line: bool) -> tuple[str, str | None]:
    value = form.get(name, "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value:
        return value, N_("Bitte füllen Sie dieses Feld aus.")
    if len(value) > limit:
        return value, QUESTION_TOO_LONG[name]
    if _CONTROL.search(value) or (single_line and "\n" in value):
        return value, N_("Bitte schreiben Sie nur Text, ohne Steuerzeichen.")
    return value, None


def read_question_form(form: FormData, *, with_subject: bool, needs: Collection[str] = ()) -> FormResult:
    """A new question (subject, text, optionally one of ``needs``, the volunteer's) or a reply
    (text): the body for notifications, or the fields to correct. The limits are notifications'
    own, checked here first to say so next to the field."""
    result = FormResult()
    about = form.get("about_need_id", "")
    if with_subject and about:
        if about in needs:
            result.body["about_need_id"] = about
        else:
            result.errors["about_need_id"] = N_("Bitte wählen Sie einen Ihrer Einsätze oder keinen.")
    fields = [("text", QUESTION_TEXT_MAX, False)]
    if with_subject:
        fields.insert(0, ("subject", QUESTION_SUBJECT_MAX, True))
    for name, limit, single_line in fields:
        value, problem = _question_text(form, name, limit, single_line=single_line)
        result.body[name] = value
        if problem is not None:
            result.errors[name] = problem
    return result


# -- the office's volunteers (issue 16, item 4): the search, a volunteer's page, certificate ------
# checks and contact persons. The registry decides what each caller sees of a volunteer (names and
# contact data on a need-to-know basis); these records show exactly what it returned, no more.

CERTIFICATE_KINDS: dict[str, str] = {
    "extended_police_certificate": N_("Erweitertes Führungszeugnis"),
    "first_aid": N_("Erste-Hilfe-Kurs"),
    "measles_immunity": N_("Nachweis über Masernschutz"),
    "driving_licence": N_("Führerschein"),
    "interpreter_qualification": N_("Qualifikation als Dolmetscherin oder Dolmetscher"),
}
# The certificate a volunteer is always told about: most needs with children ask for it.
POLICE_CERTIFICATE = "extended_police_certificate"
CHECK_STATUSES: dict[str, str] = {
    "in_force": N_("gilt"),
    "superseded": N_("durch eine neuere Prüfung ersetzt"),
    "revoked": N_("zurückgenommen"),
}
REVOCATION_REASONS: dict[str, str] = {
    "recorded_in_error": N_("Versehentlich eingetragen"),
    "withdrawn": N_("Der Nachweis wurde zurückgezogen oder ein neuer Eintrag ist bekannt"),
    "other": N_("Anderer Grund"),
}
VOLUNTEER_STATUSES: dict[str, str] = {
    "active": N_("aktiv"),
    "withdrawn": N_("zurückgezogen: wird nicht mehr vorgeschlagen"),
    "erased": N_("gelöscht"),
}
# A proposal's state as the office reads it in a volunteer's history.
HISTORY_STATES: dict[str, str] = {
    "proposed": N_("wartet auf Antwort"),
    "accepted": N_("zugesagt"),
    "declined": N_("abgesagt"),
    "expired": N_("nicht rechtzeitig beantwortet"),
    "withdrawn": N_("zurückgezogen, weil der Bedarf besetzt oder abgesagt ist"),
    "stepped_back": N_("zurückgetreten"),
}
# The certificate filter of the search: any, checked (of any or one kind), not checked.
CERTIFICATE_FILTERS: dict[str, str] = {
    "checked": N_("Geprüft und gültig (alle Arten)"),
    **{f"checked:{kind}": label for kind, label in CERTIFICATE_KINDS.items()},
    "unchecked": N_("Kein geprüfter Nachweis"),
}
VOLUNTEER_PAGE_SIZE = 20
MAX_RADIUS_KM = 200
MAX_NAME = 80


@dataclass(frozen=True)
class VolunteerFilters:
    """The office's volunteer search as typed into its form, kept as typed to show it again."""

    skills: tuple[str, ...] = ()
    language: str = ""
    level: str = ""
    postcode: str = ""
    radius: str = ""
    weekday: str = ""
    at: str = ""
    organisation_id: str = ""
    certificate: str = ""
    name: str = ""

    @property
    def active(self) -> bool:
        return any(value for value in vars(self).values())

    def link(self, cursor: str | None = None) -> str:
        """The search page's address with these filters (and the page after ``cursor``)."""
        pairs = [("skill", skill) for skill in self.skills]
        pairs += [(name, value) for name, value in vars(self).items() if name != "skills" and value]
        if cursor:
            pairs.append(("cursor", cursor))
        return "/console/volunteers" + (f"?{urlencode(pairs)}" if pairs else "")


@dataclass(frozen=True)
class VolunteerSearch:
    """The filters read, the registry's query for them (None: a field to correct first), and the
    fields to correct (field → message id)."""

    filters: VolunteerFilters
    query: dict[str, Any] | None
    errors: dict[str, str]


def read_volunteer_filters(
    params: Iterable[tuple[str, str]],
    *,
    skills: Collection[str],
    organisations: Collection[str],
    names_allowed: bool,
    postcodes: Sequence[maps.PostcodePoint],
) -> VolunteerSearch:
    """The search form (a GET: the address says what was searched) as the registry's query.

    A radius is measured from the centre of the postcode given (the tenant's postcode table);
    ``organisations``: the ones a coordinator may filter by (none for an initiative admin, whom the
    registry shows their own organisation's volunteers only); names only for coordinators.
    """
    given = FormData(params)
    filters = VolunteerFilters(
        skills=tuple(dict.fromkeys(given.all("skill"))),
        language=given.get("language", ""),
        level=given.get("level", ""),
        postcode=given.get("postcode", ""),
        radius=given.get("radius", ""),
        weekday=given.get("weekday", ""),
        at=given.get("at", ""),
        organisation_id=given.get("organisation_id", "") if organisations else "",
        certificate=given.get("certificate", ""),
        name=" ".join(given.get("name", "").split()) if names_allowed else "",
    )
    errors: dict[str, str] = {}
    query: dict[str, Any] = {"status": "active", "limit": VOLUNTEER_PAGE_SIZE}
    if any(skill not in skills for skill in filters.skills):
        errors["skills"] = N_("Bitte wählen Sie nur Tätigkeiten aus der Liste.")
    elif filters.skills:
        query["skill"] = list(filters.skills)
    levels = {item.value for item in LanguageLevel}
    if (filters.language and filters.language not in SPOKEN_LANGUAGES) or (
        filters.level and (filters.level not in levels or not filters.language)
    ):
        errors["language"] = N_("Bitte wählen Sie Sprache und Mindeststufe aus der Liste.")
    elif filters.language:
        query["language"] = f"{filters.language}:{filters.level}" if filters.level else filters.language
    _read_place(filters, postcodes, query, errors)
    if filters.weekday and filters.weekday not in {day.value for day in Weekday}:
        errors["weekday"] = N_("Bitte wählen Sie einen Tag aus der Liste.")
    elif filters.weekday:
        query["available_on"] = filters.weekday
    if filters.at and not _TIME.fullmatch(filters.at):
        errors["at"] = N_("Bitte geben Sie eine Uhrzeit an, z. B. 14:00.")
    elif filters.at:
        query["available_at"] = filters.at
    if filters.organisation_id and filters.organisation_id not in organisations:
        errors["organisation_id"] = N_("Bitte wählen Sie eine Organisation aus der Liste.")
    elif filters.organisation_id:
        query["organisation_id"] = filters.organisation_id
    if filters.certificate and filters.certificate not in CERTIFICATE_FILTERS:
        errors["certificate"] = N_("Bitte wählen Sie einen Nachweis aus der Liste.")
    elif filters.certificate:
        checked, _, kind = filters.certificate.partition(":")
        query["certificate_checked"] = "true" if checked == "checked" else "false"
        if kind:
            query["certificate_kind"] = kind
    if filters.name and not 2 <= len(filters.name) <= MAX_NAME:
        errors["name"] = N_("Bitte geben Sie 2 bis 80 Zeichen des Namens an.")
    elif filters.name:
        query["name"] = filters.name
    cursor = given.get("cursor", "")
    if cursor and not errors:
        query["cursor"] = cursor[:500]
    return VolunteerSearch(filters, None if errors else query, errors)


def _read_place(
    filters: VolunteerFilters, postcodes: Sequence[maps.PostcodePoint], query: dict[str, Any], errors: dict[str, str]
) -> None:
    if filters.postcode and not _POSTCODE.fullmatch(filters.postcode):
        errors["postcode"] = N_("Bitte geben Sie eine Postleitzahl mit fünf Ziffern an.")
        return
    if not filters.radius:
        if filters.postcode:
            query["postcode"] = filters.postcode
        return
    radius = _integer(filters.radius, 1, MAX_RADIUS_KM)
    if radius is None:
        errors["radius"] = N_("Bitte eine Zahl von 1 bis 200.")
        return
    if not filters.postcode:
        errors["postcode"] = N_("Bitte geben Sie die Postleitzahl an, um die herum gesucht wird.")
        return
    centre = next((row for row in postcodes if row.postcode == filters.postcode), None)
    if centre is None:
        errors["postcode"] = UNKNOWN_POSTCODE
        return
    query.update(near_lat=centre.lat, near_lon=centre.lon, within_km=radius)


# Fields the registry names in a refused search (``query.<parameter>``) → the form's fields.
_SEARCH_FIELDS = {
    "skill": "skills",
    "language": "language",
    "postcode": "postcode",
    "near_lat": "postcode",
    "near_lon": "postcode",
    "within_km": "radius",
    "available_on": "weekday",
    "available_at": "at",
    "organisation_id": "organisation_id",
    "certificate_checked": "certificate",
    "certificate_kind": "certificate",
    "name": "name",
}


def search_field(path: str) -> str:
    """The search form's field for a parameter the registry refused (``form``: none of them)."""
    return _SEARCH_FIELDS.get(path.removeprefix("query.").split(".")[0], "form")


@dataclass(frozen=True)
class LanguageSkill:
    code: str
    name: str  # a message id (the portal's list of languages), else the code as the registry has it
    level: str  # a message id, or "" for a level the portal does not know


@dataclass(frozen=True)
class CertificateState:
    """One kind of certificate of a volunteer: ``checked`` (the office saw it, valid today),
    ``check_expired`` or ``declared_not_checked``; the last valid day in the person's language."""

    kind: str
    label: str  # message id, else the code
    state: str
    valid_until: str = ""


def certificate_states(
    data: Mapping[str, Any], language: str, *, always: Sequence[str] = ()
) -> tuple[CertificateState, ...]:
    """The registry's ``certificate_status`` of a volunteer; the kinds in ``always`` are listed
    even when nobody declared or checked them (as not checked)."""
    found: dict[str, CertificateState] = {}
    for item in data.get("certificate_status") or []:
        kind = str(item.get("kind") or "")
        until = _date(item.get("valid_until"))
        found[kind] = CertificateState(
            kind,
            CERTIFICATE_KINDS.get(kind, kind),
            str(item.get("state") or "declared_not_checked"),
            i18n.format_date(until, language) if until else "",
        )
    for kind in always:
        found.setdefault(kind, CertificateState(kind, CERTIFICATE_KINDS.get(kind, kind), "declared_not_checked"))
    return tuple(found[kind] for kind in sorted(found, key=lambda kind: (kind not in always, kind)))


def availability_lines(
    availability: Mapping[str, Any], language: str, gettext: Callable[[str], str]
) -> tuple[str, ...]:
    """The weekly slots as lines of days with the same hours, touching slots joined: ``Montag
    bis Freitag: 08:00 to 12:00``, ``Samstag: 10:00 to 14:00``."""
    by_day: dict[str, list[tuple[time, time]]] = {}
    for slot in availability.get("weekly_slots") or []:
        try:
            start, end = time.fromisoformat(str(slot["start"])), time.fromisoformat(str(slot["end"]))
        except (KeyError, ValueError):
            continue
        by_day.setdefault(str(slot.get("weekday")), []).append((start, end))
    runs: list[tuple[list[str], str]] = []  # consecutive days with the same hours
    for day in WEEKDAYS:
        ranges: list[tuple[time, time]] = []
        for start, end in sorted(by_day.get(day.value, [])):
            if ranges and start <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
            else:
                ranges.append((start, end))
        hours = ", ".join(i18n.format_time_range(start, end, language) for start, end in ranges)
        if hours and runs and runs[-1][1] == hours and runs[-1][0][-1] == _previous_day(day):
            runs[-1][0].append(day.value)
        elif hours:
            runs.append(([day.value], hours))
    lines = []
    for days, hours in runs:
        names = [gettext(WEEKDAYS[Weekday(day)]) for day in days]
        if len(names) > 2:
            when = gettext(N_("%(first)s bis %(last)s")) % {"first": names[0], "last": names[-1]}
        else:
            when = ", ".join(names)
        lines.append(f"{when}: {hours}")
    return tuple(lines)


def _previous_day(day: Weekday) -> str:
    days = list(WEEKDAYS)
    return days[days.index(day) - 1].value if days.index(day) else ""


@dataclass(frozen=True)
class StaffContact:
    """A member of the office's staff as volunteers and the console see them: how to reach them."""

    staff_id: str
    name: str
    email: str = ""
    phone: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StaffContact:
        return cls(
            str(data.get("staff_id") or ""),
            str(data.get("name") or ""),
            str(data.get("email") or ""),
            str(data.get("phone") or ""),
        )


@dataclass(frozen=True)
class VolunteerCard:
    """A volunteer in the office's search results: what the registry showed this caller of them.
    ``name`` is empty where the registry shows no name (another organisation's volunteer)."""

    volunteer_id: str
    name: str
    status: str
    organisation: str
    languages: tuple[LanguageSkill, ...]
    skills: tuple[str, ...]  # labels in the person's language
    area: places.PlaceInWords | None
    availability: tuple[str, ...]
    certificates: tuple[CertificateState, ...]

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        language: str,
        gettext: Callable[[str], str],
        skills: Mapping[str, str],
        table: Sequence[maps.PostcodePoint],
        organisations: Mapping[str, str],
    ) -> VolunteerCard:
        contact: Mapping[str, Any] = data.get("contact") or {}
        home: Mapping[str, Any] = data.get("home_area") or {}
        levels = {level.value: label for level, label in LEVELS.items()}
        return cls(
            volunteer_id=str(data["volunteer_id"]),
            name=str(contact.get("display_name") or ""),
            status=str(data.get("status") or ""),
            organisation=organisations.get(str(data.get("organisation_id") or ""), ""),
            languages=tuple(
                LanguageSkill(
                    str(item.get("language")),
                    SPOKEN_LANGUAGES.get(str(item.get("language")), str(item.get("language"))),
                    levels.get(str(item.get("level")), ""),
                )
                for item in data.get("languages") or []
            ),
            skills=tuple(skills.get(str(slug), str(slug)) for slug in data.get("skills") or []),
            area=places.describe(home.get("point"), home.get("postcode"), table, by_nearest=True) if home else None,
            availability=availability_lines(data.get("availability") or {}, language, gettext),
            certificates=certificate_states(data, language),
        )

    @property
    def short_id(self) -> str:
        """How a volunteer without a name shown is told apart: the start of their id."""
        return self.volunteer_id[:8]


@dataclass(frozen=True)
class VolunteerDetails:
    """A volunteer's page: the card, and what the registry adds for this caller on its own page
    (contact data and home area only where its need-to-know rule allows)."""

    card: VolunteerCard
    email: str
    phone: str
    preferred_language: str  # the language's own name
    travel_radius_km: int | None
    max_engagements: int | None
    registered_on: str
    contact_person: StaffContact | None
    active: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any], card: VolunteerCard, language: str) -> VolunteerDetails:
        contact: Mapping[str, Any] = data.get("contact") or {}
        availability: Mapping[str, Any] = data.get("availability") or {}
        preferred = str(contact.get("preferred_language") or "")
        registered = _date(str(data.get("created_at") or "")[:10])
        person: Mapping[str, Any] | None = data.get("contact_person")
        radius, most = data.get("travel_radius_km"), availability.get("max_concurrent_engagements")
        return cls(
            card=card,
            email=str(contact.get("email") or ""),
            phone=str(contact.get("phone") or ""),
            preferred_language=i18n.endonym(preferred) if preferred in LANGUAGES else preferred,
            travel_radius_km=radius if isinstance(radius, int) else None,
            max_engagements=most if isinstance(most, int) else None,
            registered_on=i18n.format_date(registered, language) if registered else "",
            contact_person=StaffContact.from_json(person) if person else None,
            active=data.get("status") == "active",
        )


@dataclass(frozen=True)
class CheckRow:
    """One certificate check in a volunteer's history; ``seen_by`` a message id (with ``%(name)s``
    for a named member of the office's staff)."""

    check_id: str
    kind: str
    seen_on: str
    valid_until: str
    seen_by: str
    seen_by_name: str
    status: str
    ended_on: str
    revocation_reason: str
    counts_today: bool

    @property
    def in_force(self) -> bool:
        return self.status == "in_force"

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, language: str, me: str, staff: Mapping[str, str], today: date
    ) -> CheckRow:
        seen_on, until = _date(data.get("seen_on")), _date(data.get("valid_until"))
        ended = _date(str(data.get("ended_at") or "")[:10])
        seen_by, name = str(data.get("seen_by") or ""), ""
        if seen_by and seen_by == me:
            who = N_("Gesehen von Ihnen")
        elif seen_by in staff:
            who, name = N_("Gesehen von %(name)s"), staff[seen_by]
        elif data.get("seen_by_role") == "initiative_admin":
            who = N_("Gesehen von der Initiative")
        else:
            who = N_("Gesehen von der Koordinationsstelle")
        status = str(data.get("status") or "")
        return cls(
            check_id=str(data["check_id"]),
            kind=str(data.get("kind") or ""),
            seen_on=i18n.format_date(seen_on, language) if seen_on else "",
            valid_until=i18n.format_date(until, language) if until else "",
            seen_by=who,
            seen_by_name=name,
            status=status,
            ended_on=i18n.format_date(ended, language) if ended else "",
            revocation_reason=str(data.get("revocation_reason") or ""),
            counts_today=status == "in_force" and until is not None and until >= today,
        )


@dataclass(frozen=True)
class HistoryRow:
    """A proposal or a pick in a volunteer's history; ``notes`` say what the office did (ids)."""

    proposal_id: str
    need_id: str
    category: str
    description: str
    starts: str
    state: str  # message id
    notes: tuple[str, ...]
    proposed_on: str
    answered_on: str


@dataclass(frozen=True)
class CommittedNeed:
    need_id: str
    category: str
    description: str
    starts: str
    district: str


@dataclass(frozen=True)
class VolunteerHistory:
    """Matching's engagements and history of a volunteer (``GET .../volunteers/{v}/staffing``)."""

    committed: tuple[CommittedNeed, ...]
    rows: tuple[HistoryRow, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], language: str, zone: tzinfo) -> VolunteerHistory:
        needs = {str(need["need_id"]): need for need in data.get("needs") or []}

        def moment(value: Any) -> str:
            try:
                return i18n.format_datetime(datetime.fromisoformat(str(value)), language, zone) if value else ""
            except ValueError:
                return ""

        def day(value: Any) -> str:
            try:
                when = datetime.fromisoformat(str(value)).astimezone(zone).date() if value else None
            except ValueError:
                when = None
            return i18n.format_date(when, language) if when else ""

        committed = tuple(
            CommittedNeed(
                need_id,
                str(needs[need_id].get("category") or ""),
                str(needs[need_id].get("description") or ""),
                moment(needs[need_id].get("starts_at")),
                str(needs[need_id].get("district") or ""),
            )
            for need_id in (str(item) for item in data.get("committed") or [])
            if need_id in needs
        )
        rows = []
        for item in data.get("proposals") or []:
            need: Mapping[str, Any] = needs.get(str(item.get("need_id")), {})
            notes = []
            if item.get("kind") == "pick":
                notes.append(N_("selbst übernommen"))
            if item.get("proposed_by"):
                notes.append(N_("von der Koordination vorgeschlagen"))
            if item.get("recorded_by"):
                notes.append(N_("Antwort von der Koordination eingetragen"))
            state = str(item.get("state") or "")
            if item.get("released_by"):
                label = N_("von der Koordination freigestellt")
            else:
                label = HISTORY_STATES.get(state, state)
            rows.append(
                HistoryRow(
                    proposal_id=str(item.get("proposal_id") or ""),
                    need_id=str(item.get("need_id") or ""),
                    category=str(need.get("category") or ""),
                    description=str(need.get("description") or ""),
                    starts=moment(need.get("starts_at")),
                    state=label,
                    notes=tuple(notes),
                    proposed_on=day(item.get("proposed_at")),
                    answered_on=day(item.get("answered_at")),
                )
            )
        return cls(committed, tuple(rows))


@dataclass(frozen=True)
class OwnOffice:
    """What a volunteer sees of the office on their overview: their contact person there, and
    their certificates as the office checked them (the extended police certificate always)."""

    contact_person: StaffContact | None
    certificates: tuple[CertificateState, ...]

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any], language: str) -> OwnOffice:
        person: Mapping[str, Any] | None = profile.get("contact_person")
        return cls(
            StaffContact.from_json(person) if person and person.get("name") else None,
            certificate_states(profile, language, always=(POLICE_CERTIFICATE,)),
        )


def read_check_form(form: FormData, today: date) -> tuple[dict[str, str] | None, dict[str, str]]:
    """A certificate check as the registry's body (who saw it comes from the token), or the fields
    to correct. ``today``: the municipality's day; the registry checks again."""
    errors: dict[str, str] = {}
    kind = form.get("kind", "")
    if kind not in CERTIFICATE_KINDS:
        errors["kind"] = N_("Bitte wählen Sie einen Nachweis aus der Liste.")
    seen_on, valid_until = _date(form.get("seen_on", "")), _date(form.get("valid_until", ""))
    if seen_on is None:
        errors["seen_on"] = N_("Bitte geben Sie an, wann Sie den Nachweis gesehen haben, z. B. 2026-12-01.")
    elif seen_on > today:
        errors["seen_on"] = CHECK_SEEN_IN_FUTURE
    if valid_until is None:
        errors["valid_until"] = N_("Bitte geben Sie an, bis wann der Nachweis gilt, z. B. 2031-11-30.")
    elif seen_on is not None and valid_until < seen_on:
        errors["valid_until"] = CHECK_ENDS_BEFORE_SEEN
    elif valid_until < today:
        errors["valid_until"] = CHECK_EXPIRED
    if errors or seen_on is None or valid_until is None:
        return None, errors
    return {"kind": kind, "seen_on": seen_on.isoformat(), "valid_until": valid_until.isoformat()}, errors


def read_subject_access_request(values: Mapping[str, str], today: date) -> tuple[date | None, dict[str, str]]:
    """The day the person's written request for their data arrived, or the fields to correct: the
    office confirms that a written request exists and says when it came (at the latest today)."""
    errors: dict[str, str] = {}
    if values.get("written_request") != "yes":
        errors["written_request"] = N_("Bitte bestätigen Sie, dass ein schriftlicher Antrag der Person vorliegt.")
    received = _date(values.get("request_date", ""))
    if received is None:
        errors["request_date"] = N_("Bitte geben Sie an, wann der Antrag eingegangen ist, z. B. 2026-12-01.")
    elif received > today:
        errors["request_date"] = N_(
            "Das Datum liegt in der Zukunft. Bitte tragen Sie den Tag ein, an dem der Antrag einging."
        )
    return (None if errors else received), errors


CHECK_SEEN_IN_FUTURE = N_("Das Datum liegt in der Zukunft. Bitte tragen Sie den Tag ein, an dem Sie ihn gesehen haben.")
CHECK_ENDS_BEFORE_SEEN = N_("„Gültig bis“ muss am oder nach dem Tag liegen, an dem Sie den Nachweis gesehen haben.")
CHECK_EXPIRED = N_("Dieser Nachweis gilt nicht mehr. Eine abgelaufene Prüfung lässt sich nicht eintragen.")


def check_refusal(field_name: str, message: str) -> tuple[str, str]:
    """The check form's field and the message for a field the registry refused (its English
    ``message`` tells which rule)."""
    if field_name == "seen_on":
        return "seen_on", CHECK_SEEN_IN_FUTURE
    if field_name == "valid_until":
        return "valid_until", CHECK_ENDS_BEFORE_SEEN if "before" in message else CHECK_EXPIRED
    if field_name == "kind":
        return "kind", N_("Bitte wählen Sie einen Nachweis aus der Liste.")
    return "check", N_("Bitte prüfen Sie diese Angabe.")


def read_staff_form(form: FormData) -> FormResult:
    """A coordinator's own entry as a contact person: name, work e-mail, phone (optional)."""
    result = FormResult()
    name = " ".join(form.get("name", "").split())
    if not name:
        result.errors["name"] = N_("Bitte geben Sie einen Namen an.")
    elif len(name) > MAX_NAME:
        result.errors["name"] = N_("Bitte höchstens 80 Zeichen.")
    email = form.get("email", "")
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        result.errors["email"] = N_("Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org.")
    phone = form.get("phone", "").replace(" ", "")
    if phone and not _PHONE.fullmatch(phone):
        result.errors["phone"] = N_("Bitte die Nummer mit Ländervorwahl angeben, z. B. +49151 1234567.")
    if not result.errors:
        result.body = {"name": name, "email": email, **({"phone": phone} if phone else {})}
    return result


def _date(value: Any) -> date | None:
    """A YYYY-MM-DD date, or None for anything else."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
