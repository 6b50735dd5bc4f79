"""The default wording: message kinds, languages, guidance and labels, as German message ids.

The mails themselves are Jinja templates in ``mail/`` (``<kind>.subject.txt``, ``<kind>.txt``, the
shared partials ``_*.txt`` and ``layout.html``); every sentence in them and every label here goes
through the gettext catalogues in ``locale/`` (German message ids, one ``.po`` per language; see
the README's "Translations"). The guidance follows the coordination offices' own words: "Als
Koordinationsstelle erfüllen wir eine Lotsenfunktion für Ehrenamtliche" — so the office is always
named as the person's guide and contact.
"""

from __future__ import annotations

from pathlib import Path

from lotse_runtime.i18n import N_, Catalogues

WELCOME = "welcome"
MATCH_PROPOSED = "match_proposed"
PROPOSAL_REMINDER = "proposal_reminder"
PROPOSAL_ACCEPTED = "proposal_accepted"
NEED_CANCELLED = "need_cancelled"
NEED_UNSTAFFED = "need_unstaffed"
NEED_STAFFED = "need_staffed"
WEEKLY_DIGEST = "weekly_digest"
ENGAGEMENT_REMINDER = "engagement_reminder"
ENGAGEMENT_THANKS = "engagement_thanks"
DAILY_DIGEST = "daily_digest"
VOLUNTEER_UNREACHABLE = "volunteer_unreachable"
# A checked certificate runs out soon: the volunteer is asked for a new one, the office told.
CERTIFICATE_EXPIRING = "certificate_expiring"
CERTIFICATE_EXPIRING_OFFICE = "certificate_expiring_office"
# A volunteer asked the office a question (or wrote again in its thread); the office answered.
QUESTION_ASKED = "question_asked"
QUESTION_ANSWERED = "question_answered"
KINDS: tuple[str, ...] = (
    WELCOME,
    MATCH_PROPOSED,
    PROPOSAL_REMINDER,
    PROPOSAL_ACCEPTED,
    NEED_CANCELLED,
    NEED_UNSTAFFED,
    NEED_STAFFED,
    WEEKLY_DIGEST,
    ENGAGEMENT_REMINDER,
    ENGAGEMENT_THANKS,
    DAILY_DIGEST,
    VOLUNTEER_UNREACHABLE,
    CERTIFICATE_EXPIRING,
    CERTIFICATE_EXPIRING_OFFICE,
    QUESTION_ASKED,
    QUESTION_ANSWERED,
)
# What a daily digest collects besides the staffed and unstaffed messages it replaces.
PROPOSAL_DECLINED = "proposal_declined"
LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "uk", "fa", "tr")
FALLBACK_LANGUAGE = "de"

PACKAGE = Path(__file__).parent
MAIL_TEMPLATES = PACKAGE / "mail"
CATALOGUES = Catalogues(PACKAGE / "locale", LANGUAGES, source_language=FALLBACK_LANGUAGE)

GUIDANCE_TOPICS: tuple[str, ...] = ("insurance", "certificates", "contact")

GUIDANCE: dict[str, str] = {
    "insurance": N_(
        "Während Ihres Engagements sind Sie über die Sammelversicherung des Landes für Ehrenamtliche "
        "unfall- und haftpflichtversichert. Fragen Sie uns, wenn Sie unsicher sind."
    ),
    "certificates": N_(
        "Für die Arbeit mit Kindern und Jugendlichen brauchen Sie ein erweitertes Führungszeugnis. "
        "Wir geben Ihnen eine Bestätigung, damit es für Sie kostenlos ist."
    ),
    "contact": N_(
        "Als Koordinationsstelle erfüllen wir eine Lotsenfunktion: Wir begleiten Sie in Ihr Ehrenamt "
        "und stehen bei Fragen immer zur Verfügung."
    ),
}

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

# Why a volunteer was asked (MatchReasons), addressed to the volunteer.
REASON_LABELS: dict[str, str] = {
    "skills": N_("Ihre Fähigkeiten passen zur Anfrage."),
    "language": N_("Sie sprechen die Sprache, die gebraucht wird."),
    "distance": N_("Sie wohnen in der Nähe."),
    "availability": N_("Sie haben zur passenden Zeit Zeit."),
    "certificate": N_("Sie haben den nötigen Nachweis."),
    "organisation": N_("Die Anfrage kommt von Ihrer Initiative."),
}

UNSTAFFED_LABELS: dict[str, str] = {
    "no_candidates": N_("Es gibt keine passenden Engagierten."),
    "all_declined": N_("Alle Gefragten haben abgesagt."),
    "proposals_expired": N_("Die Vorschläge sind unbeantwortet abgelaufen."),
    "volunteer_stepped_back": N_("Eine engagierte Person ist zurückgetreten."),
    "start_approaching": N_("Der Termin rückt näher."),
}

# Why a volunteer declined (DeclineReason), in the office's daily digest.
DECLINE_LABELS: dict[str, str] = {
    "no_time": N_("keine Zeit"),
    "too_far": N_("zu weit weg"),
    "not_a_fit": N_("passt nicht"),
    "other": N_("anderer Grund"),
}

# The channels a volunteer can choose, and why one of them does not reach them (to the office).
CHANNEL_LABELS: dict[str, str] = {
    "email": N_("E-Mail"),
    "sms": N_("SMS"),
    "in_app": N_("Nachrichten in Lotse"),
}
CHANNEL_PROBLEM_LABELS: dict[str, str] = {
    "bounced": N_("Die Adresse oder Nummer wurde abgewiesen."),
    "sms_unavailable": N_("Lotse kann hier keine SMS versenden."),
    "no_phone": N_("Es ist keine Telefonnummer angegeben."),
    "no_contact_consent": N_("Es gibt keine Einwilligung, kontaktiert zu werden."),
}

# The short note after an SMS's first line: the SMS carries the subject only.
SMS_MORE = N_("Einzelheiten in Lotse oder in Ihrer E-Mail.")

CERTIFICATE_LABELS: dict[str, str] = {
    "extended_police_certificate": N_("erweitertes Führungszeugnis"),
    "first_aid": N_("Erste-Hilfe-Nachweis"),
    "measles_immunity": N_("Nachweis der Masernimmunität"),
    "driving_licence": N_("Führerschein"),
    "interpreter_qualification": N_("Dolmetscherqualifikation"),
}

# Weekdays for describing weekly needs ("montags 10:00 to 12:00"), Monday first.
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

# The office's name when the tenant has no organisation of kind coordination office.
# Translators: shown where the municipality has not named its coordination office.
OFFICE_FALLBACK_NAME = N_("Koordinationsstelle Ehrenamt")


def gettext(language: str, message: str) -> str:
    return CATALOGUES.translations(language).gettext(message)


def guidance(language: str) -> dict[str, str]:
    """The default guidance texts in ``language`` (German for a language without a catalogue)."""
    return {topic: gettext(language, text) for topic, text in GUIDANCE.items()}


def label(table: dict[str, str], code: str, language: str, default: str | None = None) -> str:
    """A code's label in ``language``; an unknown code is shown as ``default`` or as itself."""
    message = table.get(code)
    return gettext(language, message) if message else (default if default is not None else code)
