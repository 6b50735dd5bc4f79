"""The HTML pages behind the answer links, in the volunteer's language.

One language per page: the one the visitor picked with the language switcher (``?lang=``), else
the volunteer's preferred language (matching keeps it in its read model), else the tenant's
default, else what the browser asks for (``Accept-Language``), else German. The texts are German
message ids translated through matching's gettext catalogues in ``locale/`` (de, en, ar, uk, fa,
tr; see the notifications README's "Translations" for the workflow); the direction (Arabic and
Persian right to left) comes from the language's locale data. The pages are Jinja templates in
``templates/`` with one small stylesheet served by matching itself (the pages' content security
policy allows styles from self only, no inline styles).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lotse_contracts.events.matching import MatchReason
from lotse_matching.domain import Outcome
from lotse_runtime import i18n
from lotse_runtime.i18n import N_, Catalogues

LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "uk", "fa", "tr")
SOURCE_LANGUAGE = "de"
CATALOGUES = Catalogues(Path(__file__).parent / "locale", LANGUAGES, source_language=SOURCE_LANGUAGE)
# Each language named in itself, for the switcher.
TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = (TEMPLATES / "page.css").read_text(encoding="utf-8")
# The stylesheet's address changes with its content, so a browser never keeps an old one.
STYLESHEET_PATH = f"/answers/assets/page.css?v={hashlib.sha256(STYLESHEET.encode()).hexdigest()[:12]}"

# Page kinds beyond the outcomes of an answer.
CONFIRM_ACCEPT = "confirm_accept"
CONFIRM_DECLINE = "confirm_decline"
TAMPERED = "tampered"
TOO_MANY = "too_many"
CHOICES = ("accept", "decline")

# Title and text of each page, as German message ids.
TEXTS: dict[str, tuple[str, str]] = {
    CONFIRM_ACCEPT: (
        N_("Anfrage annehmen?"),
        N_("Bitte bestätigen Sie, dass Sie diese Anfrage annehmen möchten."),
    ),
    CONFIRM_DECLINE: (
        N_("Anfrage ablehnen?"),
        N_("Bitte bestätigen Sie, dass Sie diese Anfrage ablehnen möchten."),
    ),
    Outcome.ACCEPTED: (
        N_("Vielen Dank!"),
        N_(
            "Sie haben zugesagt. Die Bestätigung mit allen Einzelheiten kommt per E-Mail oder als Nachricht in "
            "Lotse, und einen Tag vor dem Termin erinnern wir Sie."
        ),
    ),
    Outcome.DECLINED: (
        N_("Danke für Ihre Rückmeldung"),
        N_("Sie haben abgesagt. Wir fragen jemand anderen."),
    ),
    Outcome.ALREADY_ACCEPTED: (N_("Link bereits verwendet"), N_("Sie haben auf diese Anfrage schon zugesagt.")),
    Outcome.ALREADY_DECLINED: (N_("Link bereits verwendet"), N_("Sie haben auf diese Anfrage schon geantwortet.")),
    Outcome.NO_LONGER_NEEDED: (
        N_("Vielen Dank für Ihre Bereitschaft!"),
        N_("Diese Anfrage ist inzwischen besetzt oder nicht mehr aktuell. Sie müssen nichts weiter tun."),
    ),
    Outcome.EXPIRED: (
        N_("Link abgelaufen"),
        N_("Die Frist für diese Anfrage ist vorbei. Es wurde nichts geändert."),
    ),
    Outcome.LIMIT_REACHED: (
        N_("Zusage nicht möglich"),
        N_("Sie haben schon so viele Einsätze wie angegeben oder einen zur selben Zeit. Es wurde nichts geändert."),
    ),
    Outcome.NOT_FOUND: (N_("Link ungültig"), N_("Diese Anfrage gibt es nicht. Es wurde nichts geändert.")),
    TAMPERED: (N_("Link ungültig"), N_("Dieser Link ist ungültig oder beschädigt. Es wurde nichts geändert.")),
    TOO_MANY: (
        N_("Bitte kurz warten"),
        N_("Von Ihrem Anschluss kamen gerade sehr viele Anfragen. Bitte versuchen Sie es gleich noch einmal."),
    ),
}
# Pages that say something went wrong (styled as a notice rather than as good news).
TROUBLE = frozenset({Outcome.EXPIRED, Outcome.LIMIT_REACHED, Outcome.NOT_FOUND, TAMPERED, TOO_MANY})

# What each button does, whichever question the page asks (the link's choice is asked first).
BUTTONS: dict[str, str] = {"accept": N_("Ich sage zu"), "decline": N_("Ich sage ab")}

STATUS = {
    Outcome.ACCEPTED: 200,
    Outcome.DECLINED: 200,
    Outcome.NO_LONGER_NEEDED: 200,  # answered kindly: nothing is wrong with the volunteer's click
    Outcome.ALREADY_ACCEPTED: 409,
    Outcome.ALREADY_DECLINED: 409,
    Outcome.LIMIT_REACHED: 409,
    Outcome.EXPIRED: 410,
    Outcome.NOT_FOUND: 404,
    TAMPERED: 400,
    TOO_MANY: 429,
}

# The same labels as in the proposal mail (notifications' catalogue), addressed to the volunteer.
CATEGORY_LABELS: dict[str, str] = {
    "accompaniment_to_authorities": N_("Begleitung zu Behörden"),
    "translation": N_("Übersetzen"),
    "childcare": N_("Kinderbetreuung"),
    "tutoring": N_("Lernhilfe"),
    "housing_help": N_("Hilfe rund ums Wohnen"),
    "mobility": N_("Mobilität"),
    "leisure": N_("Freizeit"),
    "other": N_("Sonstiges"),
}
REASON_LABELS: dict[str, str] = {
    "skills": N_("Ihre Fähigkeiten passen zur Anfrage."),
    "language": N_("Sie sprechen die Sprache, die gebraucht wird."),
    "distance": N_("Sie wohnen in der Nähe."),
    "availability": N_("Sie haben zur passenden Zeit Zeit."),
    "certificate": N_("Sie haben den nötigen Nachweis."),
    "organisation": N_("Die Anfrage kommt von Ihrer Initiative."),
}
WEEKDAYS: tuple[str, ...] = (
    # Translators: "on Mondays", followed by the hours of a weekly need: "montags 17:00 bis 18:30 Uhr".
    N_("montags"),
    N_("dienstags"),
    N_("mittwochs"),
    N_("donnerstags"),
    N_("freitags"),
    N_("samstags"),
    N_("sonntags"),
)
_WEEKDAY_CODES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Proposed:
    """What the confirmation page shows of a proposal: the need, why the volunteer was asked,
    until when to answer."""

    category: str
    description: str
    district: str | None
    schedule: Mapping[str, Any]
    reasons: Sequence[MatchReason]
    distance_km: float | None
    expires_at: datetime
    timezone: ZoneInfo


@dataclass(frozen=True)
class ContactPoint:
    """Whom a volunteer who just said yes asks about the engagement: the need's organisation, or
    the municipality's coordination office."""

    name: str
    email: str


@dataclass(frozen=True)
class LanguageLink:
    code: str
    name: str
    href: str
    current: bool
    dir: i18n.Direction


@dataclass(frozen=True)
class Page:
    """One answer page: its kind, language and what it shows."""

    kind: str
    language: str
    tenant_name: str | None = None
    choice: str | None = None  # the link's choice: the confirmation page's first button
    proposed: Proposed | None = None
    switcher: Sequence[LanguageLink] = field(default_factory=tuple)
    contact: ContactPoint | None = None  # on the page that confirms a yes


def choose_language(
    requested: str | None, volunteer: str | None, tenant: str | None, accept_language: str | None
) -> str:
    """The visitor's pick, the volunteer's preferred language, the tenant's default, the browser's
    wish, German: the first of them that has a catalogue."""
    return CATALOGUES.pick(requested, volunteer, tenant, *accepted_languages(accept_language))


def accepted_languages(header: str | None) -> list[str]:
    """The primary language tags of an ``Accept-Language`` header, most wanted first."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:20]):
        tag, _, parameters = item.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])
            except ValueError:
                continue
        language = tag.split("-")[0].strip().lower()
        if language and weight > 0:
            weighted.append((-weight, position, language))
    return [language for _, _, language in sorted(weighted)]


def switcher(current: str, query: Mapping[str, str]) -> tuple[LanguageLink, ...]:
    """Links to the same page in every language: the same query with another ``lang``. Relative
    (``?choice=accept&lang=ar``), so the token in the path stays where it is."""
    return tuple(
        LanguageLink(
            code=code,
            name=i18n.endonym(code),
            href="?" + urlencode({**{k: v for k, v in query.items() if k != "lang"}, "lang": code}),
            current=code == current,
            dir=i18n.direction(code),
        )
        for code in LANGUAGES
    )


def render(page: Page) -> str:
    language = page.language if page.language in LANGUAGES else SOURCE_LANGUAGE
    translations = CATALOGUES.translations(language)
    gettext = translations.gettext
    title_id, text_id = TEXTS[page.kind]
    context: dict[str, Any] = {
        "gettext": gettext,
        "_": gettext,
        "ngettext": translations.ngettext,
        "lang": language,
        "dir": i18n.direction(language),
        "title": gettext(title_id),
        "text": gettext(text_id),
        "trouble": page.kind in TROUBLE,
        "tenant_name": page.tenant_name,
        "stylesheet": STYLESHEET_PATH,
        "languages": page.switcher,
        "need": None,
        "buttons": [],
        "contact": page.contact,
    }
    if page.proposed is not None and page.choice in CHOICES:
        proposed = page.proposed
        context["need"] = {
            "category": _label(CATEGORY_LABELS, proposed.category, language),
            "description": proposed.description,
            "district": proposed.district,
            "when": describe_schedule(proposed.schedule, language, proposed.timezone),
            "reasons": reason_labels(proposed.reasons, proposed.distance_km, language),
            "deadline": i18n.format_datetime(_aware(proposed.expires_at), language, proposed.timezone),
        }
        # The link's choice first; the other one too, for a volunteer who clicked the wrong link.
        ordered = [page.choice, *(choice for choice in CHOICES if choice != page.choice)]
        context["buttons"] = [{"choice": choice, "label": gettext(BUTTONS[choice])} for choice in ordered]
    return _ENVIRONMENT.get_template("page.html").render(context)


def reason_labels(reasons: Sequence[MatchReason], distance_km: float | None, language: str) -> list[str]:
    labels: list[str] = []
    for reason in reasons:
        label = _label(REASON_LABELS, reason.code.value, language, reason.detail)
        if reason.code.value == "distance" and distance_km is not None:
            label = f"{label} ({i18n.format_number(distance_km, language, decimals=1)} km)"
        if label not in labels:  # one line per kind, however many languages were asked for
            labels.append(label)
    return labels


def describe_schedule(schedule: Mapping[str, Any], language: str, zone: ZoneInfo) -> str:
    """When the need is, as the proposal mail says it (``lotse_runtime.i18n.describe_schedule``)."""
    gettext = CATALOGUES.translations(language).gettext
    return i18n.describe_schedule(schedule, language, zone, lambda code: gettext(WEEKDAYS[_WEEKDAY_CODES.index(code)]))


def _label(table: Mapping[str, str], code: str, language: str, default: str | None = None) -> str:
    message = table.get(code)
    return CATALOGUES.translations(language).gettext(message) if message else (default or code)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,  # they ship with the package: no stat of each at every page
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Each render hands the language's gettext in its context, so one environment serves all languages.
    environment.install_null_translations()  # type: ignore[attr-defined]
    return environment


_ENVIRONMENT = _environment()
