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
from typing import Any

from lotse_contracts.events.values import Channel, ConsentPurpose, LanguageLevel, Weekday
from lotse_portal import maps
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
) -> FormResult:
    """The sign-up (and profile) form as the registry's registration body.

    With a map (``frame``: the tenant offers one) the home area is the point chosen on it, the
    postcode, or both (then the point is used; ``postcodes``: the tenant's table, checked here
    because the registry takes a point's postcode as given). Without one, the postcode.
    """
    result = FormResult()
    errors = result.errors
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
    return result


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
CERTIFICATES: dict[str, str] = {
    "extended_police_certificate": N_("Erweitertes Führungszeugnis"),
    "first_aid": N_("Erste-Hilfe-Kurs"),
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
    form: FormData, *, organisation_id: str, skills: Sequence[str], timezone: str
) -> tuple[NeedForm | None, dict[str, str]]:
    from datetime import date, datetime, time
    from zoneinfo import ZoneInfo

    errors: dict[str, str] = {}
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
    "proposed": N_("wartet auf Ihre Antwort"),
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
    """An engagement as the volunteer reads it: what, when (in their language), where exactly."""

    need_id: str
    category: str
    description: str
    when: str
    place: str
    map_url: str | None

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
        where = " ".join(str(part) for part in (place.get("postcode"), place.get("district")) if part)
        point: Mapping[str, Any] = place.get("point") or {}
        map_url = None
        if isinstance(point.get("lat"), float | int) and isinstance(point.get("lon"), float | int):
            map_url = f"https://www.openstreetmap.org/?mlat={point['lat']}&mlon={point['lon']}#map=17/{point['lat']}/{point['lon']}"
        return cls(
            str(data["need_id"]),
            str(data.get("category") or ""),
            str(data.get("description") or ""),
            when,
            where,
            map_url,
        )


def read_organisation_form(form: FormData, kind: str) -> FormResult:
    """An initiative's own details: name, functional mailbox, districts (comma separated)."""
    result = FormResult()
    name = form.get("name", "")
    if not 1 <= len(name) <= 160:
        result.errors["name"] = N_("Bitte geben Sie einen Namen mit höchstens 160 Zeichen an.")
    email = form.get("contact_email", "")
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        result.errors["contact_email"] = N_("Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org.")
    districts = [part.strip() for part in form.get("districts", "").split(",") if part.strip()]
    if any(len(district) > 80 for district in districts):
        result.errors["districts"] = N_("Bitte höchstens 80 Zeichen je Stadtteil.")
    if not result.errors:
        result.body = {"name": name, "kind": kind, "contact_email": email, "districts": districts}
    return result
