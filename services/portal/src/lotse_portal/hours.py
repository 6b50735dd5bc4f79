"""Hours volunteers log (pure): the form read into matching's request, matching's refusals as
messages next to the fields, the entries and yearly totals as a volunteer reads them, and the
confirmation list for an application for the Ehrenamtskarte.

Matching decides whether the hours may be logged (the need, the days of the engagement, twelve
hours a day); the form checks only what it can say itself (a date, a time, a short note), so that
a typo is named without a round trip. Every message is a German message id, translated where it is
shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lotse_portal.domain import FormData
from lotse_runtime.i18n import N_

MAX_NOTE = 200
MAX_REASON = 300
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_WHOLE = re.compile(r"^[0-9]{1,4}$")

STATES: dict[str, str] = {
    "pending": N_("offen"),
    "confirmed": N_("bestätigt"),
    "rejected": N_("abgelehnt"),
}
# What matching's refusals mean, by its rule; the field is where the form shows them.
RULES: dict[str, tuple[str, str]] = {
    "not_committed": ("need_id", N_("Für diesen Einsatz können Sie keine Stunden eintragen.")),
    "in_future": (
        "date",
        N_("Dieser Tag liegt in der Zukunft. Bitte tragen Sie Stunden ein, wenn Sie sie geleistet haben."),
    ),
    "before_engagement": ("date", N_("An diesem Tag hatte Ihr Einsatz noch nicht begonnen.")),
    "after_engagement": ("date", N_("An diesem Tag war Ihr Einsatz schon beendet.")),
    "too_long_ago": (
        "date",
        N_("Dieser Tag liegt zu lange zurück, um ihn einzutragen. Bitte wenden Sie sich an die Koordination."),
    ),
    "too_many_per_day": (
        "duration",
        N_("Mit Ihren anderen Einträgen dieses Tages wären das zu viele Stunden für einen Tag."),
    ),
}
# Matching's field names (as its refusals name them) → the form's.
FIELDS = {"need_id": "need_id", "date": "date", "hours": "duration", "minutes": "duration", "note": "note"}
NOT_SAVED = N_("Das ging leider nicht. Bitte prüfen Sie Ihre Angaben.")


@dataclass(frozen=True)
class HoursForm:
    """What the person typed, to show again, and matching's request body when it is complete."""

    values: dict[str, str]
    body: dict[str, Any] | None
    errors: dict[str, str]


def read_hours_form(form: FormData, needs: Sequence[str]) -> HoursForm:
    """The hours form (``need_id`` one of ``needs``, ``date``, ``hours``, ``minutes``, ``note``)."""
    values = {name: form.get(name, "") for name in ("need_id", "date", "hours", "minutes", "note", "entry_id")}
    errors: dict[str, str] = {}
    if values["need_id"] not in needs:
        errors["need_id"] = N_("Bitte wählen Sie den Einsatz, für den Sie Stunden eintragen.")
    day = values["date"]
    try:
        worked = date.fromisoformat(day) if _DATE.fullmatch(day) else None
    except ValueError:
        worked = None
    if worked is None:
        errors["date"] = N_("Bitte geben Sie den Tag als Datum an, z. B. 2026-12-03.")
    hours_text, minutes_text = values["hours"] or "0", values["minutes"] or "0"
    if not (_WHOLE.fullmatch(hours_text) and _WHOLE.fullmatch(minutes_text)):
        errors["duration"] = N_("Bitte geben Sie Stunden und Minuten als ganze Zahlen an, z. B. 2 und 30.")
    elif int(minutes_text) > 59 or int(hours_text) > 24:
        errors["duration"] = N_("Bitte höchstens 24 Stunden und 59 Minuten.")
    elif int(hours_text) * 60 + int(minutes_text) < 1:
        errors["duration"] = N_("Bitte geben Sie an, wie lange Sie geholfen haben.")
    note = " ".join(values["note"].split())
    if len(note) > MAX_NOTE:
        errors["note"] = N_("Bitte höchstens 200 Zeichen.")
    if errors or worked is None:
        return HoursForm(values, None, errors)
    body: dict[str, Any] = {
        "need_id": values["need_id"],
        "date": worked.isoformat(),
        "hours": int(hours_text),
        "minutes": int(minutes_text),
        "note": note,
    }
    return HoursForm(values, body, errors)


def refusal_errors(problem: Mapping[str, Any]) -> dict[str, str]:
    """Matching's 422 problem as the form's messages: by rule where it names one, else by field."""
    errors: dict[str, str] = {}
    for item in problem.get("errors") or []:
        if not isinstance(item, Mapping):
            continue
        rule = RULES.get(str(item.get("rule") or ""))
        if rule is not None:
            errors.setdefault(rule[0], rule[1])
        else:
            errors.setdefault(FIELDS.get(str(item.get("field") or ""), "form"), NOT_SAVED)
    return errors or {"form": NOT_SAVED}


def read_reason(form: FormData) -> tuple[str, str | None]:
    """A rejection's reason (one line), or the message that it is missing or too long."""
    reason = " ".join(form.get("reason", "").split())
    if not reason:
        return reason, N_("Bitte schreiben Sie, warum Sie die Stunden nicht bestätigen.")
    if len(reason) > MAX_REASON:
        return reason, N_("Bitte höchstens 300 Zeichen.")
    return reason, None


def duration_words(minutes: int, gettext: Callable[[str], str]) -> str:
    """``2 Std. 30 Min.`` in the person's language."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return gettext(N_("%(hours)s Std. %(minutes)s Min.")) % {"hours": hours, "minutes": rest}
    if hours:
        return gettext(N_("%(hours)s Std.")) % {"hours": hours}
    return gettext(N_("%(minutes)s Min.")) % {"minutes": rest}


@dataclass(frozen=True)
class Entry:
    """An entry of hours as the volunteer or the office reads it."""

    entry_id: str
    volunteer_id: str
    need_id: str
    category: str
    description: str
    organisation: str
    day: date
    minutes: int
    note: str
    state: str
    rejection_reason: str
    decided_at: datetime | None
    decided_by_office: bool  # the coordination office; else the need's initiative

    @property
    def changeable(self) -> bool:
        return self.state != "confirmed"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        decided_by = data.get("decided_by") or {}
        decided_at = data.get("decided_at")
        return cls(
            entry_id=str(data["entry_id"]),
            volunteer_id=str(data.get("volunteer_id") or ""),
            need_id=str(data["need_id"]),
            category=str(data.get("category") or ""),
            description=str(data.get("description") or ""),
            organisation=str(data.get("organisation_name") or ""),
            day=date.fromisoformat(str(data["date"])),
            minutes=int(data["minutes"]),
            note=str(data.get("note") or ""),
            state=str(data.get("state") or "pending"),
            rejection_reason=str(data.get("rejection_reason") or ""),
            decided_at=datetime.fromisoformat(str(decided_at)) if decided_at else None,
            decided_by_office=decided_by.get("role") == "coordinator",
        )


@dataclass(frozen=True)
class OrganisationTotal:
    name: str
    minutes: int


@dataclass(frozen=True)
class YearTotal:
    year: int
    confirmed_minutes: int
    pending_minutes: int
    organisations: tuple[OrganisationTotal, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> YearTotal:
        return cls(
            year=int(data["year"]),
            confirmed_minutes=int(data.get("confirmed_minutes") or 0),
            pending_minutes=int(data.get("pending_minutes") or 0),
            organisations=tuple(
                OrganisationTotal(str(o.get("organisation_name") or ""), int(o.get("confirmed_minutes") or 0))
                for o in data.get("organisations") or []
            ),
        )


@dataclass(frozen=True)
class LoggableNeed:
    need_id: str
    category: str
    description: str
    organisation: str
    first_day: date
    last_day: date | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoggableNeed:
        last = data.get("last_day")
        return cls(
            need_id=str(data["need_id"]),
            category=str(data.get("category") or ""),
            description=str(data.get("description") or ""),
            organisation=str(data.get("organisation_name") or ""),
            first_day=date.fromisoformat(str(data["first_day"])),
            last_day=date.fromisoformat(str(last)) if last else None,
        )


@dataclass(frozen=True)
class ConfirmationList:
    """A year's confirmed hours for an application: each entry and the totals, per organisation."""

    year: int
    entries: tuple[Entry, ...]
    total_minutes: int
    organisations: tuple[OrganisationTotal, ...]


def confirmation_list(entries: Sequence[Entry], year: int) -> ConfirmationList:
    confirmed = sorted((e for e in entries if e.state == "confirmed" and e.day.year == year), key=lambda e: e.day)
    by_organisation: dict[str, int] = {}
    for entry in confirmed:
        by_organisation[entry.organisation] = by_organisation.get(entry.organisation, 0) + entry.minutes
    return ConfirmationList(
        year,
        tuple(confirmed),
        sum(e.minutes for e in confirmed),
        tuple(OrganisationTotal(name, minutes) for name, minutes in sorted(by_organisation.items())),
    )
