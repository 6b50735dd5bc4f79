"""The small HTML pages behind the answer links: German first, then the tenant's language.

The texts are German message ids translated through matching's gettext catalogues in ``locale/``
(de, en, ar, uk, fa, tr; see the notifications README's "Translations" for the workflow); the
direction of each section (Arabic and Persian right to left) comes from the language's locale data.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from lotse_matching.domain import Outcome
from lotse_runtime.i18n import N_, Catalogues, direction

LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "uk", "fa", "tr")
CATALOGUES = Catalogues(Path(__file__).parent / "locale", LANGUAGES, source_language="de")

# Page kinds beyond the outcomes of an answer.
CONFIRM_ACCEPT = "confirm_accept"
CONFIRM_DECLINE = "confirm_decline"
TAMPERED = "tampered"
TOO_MANY = "too_many"

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
        N_("Sie haben zugesagt. Die Koordination meldet sich mit den Einzelheiten."),
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

BUTTONS: dict[str, str] = {"accept": N_("Ja, ich sage zu"), "decline": N_("Ja, ich sage ab")}

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


def languages_for(tenant_language: str | None) -> list[str]:
    chosen = ["de"]
    if tenant_language and tenant_language != "de" and tenant_language in LANGUAGES:
        chosen.append(tenant_language)
    return chosen


def page(kind: str, languages: list[str], *, summary: str = "", choice: str | None = None) -> str:
    sections = []
    title_id, text_id = TEXTS[kind]
    for language in languages:
        gettext = CATALOGUES.translations(language).gettext
        rtl = ' dir="rtl"' if direction(language) == "rtl" else ""
        body = f"<h1>{escape(gettext(title_id))}</h1><p>{escape(gettext(text_id))}</p>"
        if summary:
            body += f"<blockquote>{escape(summary)}</blockquote>"
        if choice is not None:
            body += (
                f'<form method="post"><input type="hidden" name="choice" value="{escape(choice)}">'
                f'<button type="submit">{escape(gettext(BUTTONS[choice]))}</button></form>'
            )
        sections.append(f'<section lang="{language}"{rtl}>{body}</section>')
    return (
        '<!doctype html><html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><title>Lotse</title></head><body>'
        + "<hr>".join(sections)
        + "</body></html>"
    )
