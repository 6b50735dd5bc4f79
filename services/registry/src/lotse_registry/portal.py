"""What the portal's landing and sign-up pages show of a tenant to anyone: its name and languages,
the consent text a volunteer agrees to, the skill catalogue with labels, and whether a map and
an address search are offered. Nothing private: the public view is built field by field from
an allow-list, never by removing fields from the stored tenant.

The consent text, the labels of the tenant's own skills and whether to offer a map are the
registry's own tenant settings (``PUT /tenants/{tenant}/portal``; no event, no other service
reads them). Until a tenant sets a consent text, the platform's default text is shown, and base
skills carry the platform's labels; both are German message ids in the registry's gettext
catalogues (``locale/``), translated into every language of the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lotse_contracts.events.values import Consent, ConsentPurpose, LanguageCode, SkillSlug
from lotse_registry import domain
from lotse_runtime.i18n import N_, Catalogues

LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "uk", "fa", "tr")
CATALOGUES = Catalogues(Path(__file__).parent / "locale", LANGUAGES, source_language="de")

# The version volunteers record (``consent.text_version``) when they agree to the default text.
DEFAULT_CONSENT_VERSION = "lotse-default-1"

DEFAULT_CONSENT_INTRO = N_(
    "Ich willige ein, dass die Kommune und die Initiativen, die hier die Hilfe für Geflüchtete "
    "koordinieren, meine Angaben zu den Zwecken verarbeiten, die ich unten auswähle. Ich kann jede "
    "Einwilligung jederzeit widerrufen und die Löschung meiner Daten verlangen."
)
DEFAULT_CONSENT_PURPOSES: dict[ConsentPurpose, str] = {
    ConsentPurpose.MATCHING: N_(
        "Vorschläge: Meine Fähigkeiten, Sprachen, Zeiten und mein ungefährer Wohnort werden genutzt, "
        "um mir passende Anfragen vorzuschlagen. Ich entscheide selbst, ob ich helfe."
    ),
    ConsentPurpose.CONTACT: N_(
        "Kontakt: Ich werde per E-Mail und, wenn ich sie angebe, per Telefon zu Anfragen und zu meinem "
        "Engagement kontaktiert."
    ),
    ConsentPurpose.SHARE_WITH_ORGANISATION: N_(
        "Weitergabe: Meine Kontaktdaten werden an die Initiative oder Organisation weitergegeben, "
        "die mich betreut oder deren Anfrage ich übernehme."
    ),
    ConsentPurpose.STATISTICS: N_(
        "Statistik: Meine Angaben fließen ohne meinen Namen in Statistiken der Kommune über das Ehrenamt ein."
    ),
}

SKILL_LABELS: dict[str, str] = {
    "accompaniment": N_("Begleitung"),
    "admin_paperwork": N_("Hilfe bei Anträgen und Formularen"),
    "childcare": N_("Kinderbetreuung"),
    "cooking": N_("Kochen"),
    "driving": N_("Fahrdienste"),
    "handicraft": N_("Handwerk"),
    "it_support": N_("Hilfe mit Computer und Handy"),
    "legal_knowledge": N_("Rechtskenntnisse"),
    "medical_background": N_("Medizinische Vorkenntnisse"),
    "music": N_("Musik"),
    "sports": N_("Sport"),
    "translation": N_("Übersetzen und Dolmetschen"),
    "tutoring": N_("Lernhilfe und Nachhilfe"),
}

Label = Annotated[str, Field(min_length=1, max_length=80)]


# --- the tenant's settings for the portal (a coordinator's request body, stored on the tenant) ---


class ConsentText(BaseModel):
    """The consent text in one language: an introduction and one sentence per purpose."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intro: str = Field(min_length=1, max_length=2000, description="What the volunteer agrees to, and their rights.")
    purposes: dict[ConsentPurpose, Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        description="One text per purpose; every purpose is described."
    )

    @model_validator(mode="after")
    def _every_purpose(self) -> ConsentText:
        missing = [purpose.value for purpose in ConsentPurpose if purpose not in self.purposes]
        if missing:
            raise ValueError(f"describe every purpose; missing: {', '.join(missing)}")
        return self


class ConsentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Consent.model_fields["text_version"]]
    texts: dict[LanguageCode, ConsentText] = Field(
        min_length=1, description="The text per language; the tenant's default language is required."
    )


class PortalSettings(BaseModel):
    """A tenant's settings for the portal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consent: ConsentSettings | None = Field(None, description="The tenant's consent text; absent: the default text.")
    offer_map: bool = Field(True, strict=True, description="Show a map (where the tenant has a postcode table).")
    skill_labels: dict[SkillSlug, dict[LanguageCode, Label]] = Field(
        default_factory=dict, description="Labels of skills per language, above all the tenant's extra skills."
    )

    def problems(self, tenant: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(field, message) for what does not fit the tenant."""
        found = []
        default = tenant["default_language"]
        if self.consent is not None and default not in self.consent.texts:
            found.append(("consent.texts", f"the tenant's default language {default} is required"))
        for skill in domain.unknown_skills(self.skill_labels, tenant.get("extra_skills", [])):
            found.append((f"skill_labels.{skill}", "not in the tenant's skill catalogue"))
        return found


# --- what anyone may read --------------------------------------------------------------------


class PublicTenant(BaseModel):
    slug: str
    name: str
    default_language: str
    languages: list[str] = Field(description="The languages the municipality works in.")


class PublicSkill(BaseModel):
    slug: str
    labels: dict[str, str] = Field(description="Label per language.")


class PublicConsent(BaseModel):
    version: str = Field(description="What a volunteer sends as consent.text_version when agreeing to this text.")
    texts: dict[str, ConsentText] = Field(description="The text per language.")


class PublicTenantDetails(PublicTenant):
    timezone: str = Field(description="IANA time zone in which weekly slots are meant.")
    consent: PublicConsent
    skills: list[PublicSkill]
    map_offered: bool = Field(description="The portal shows a map: the tenant wants one and has a postcode table.")
    address_search: bool = Field(description="GET /tenants/{tenant}/places answers (a geocoder is configured).")


def public_tenant(document: Mapping[str, Any]) -> PublicTenant:
    return PublicTenant(
        slug=document["_id"],
        name=document["name"],
        default_language=document["default_language"],
        languages=list(document["supported_languages"]),
    )


def public_details(document: Mapping[str, Any], *, has_postcodes: bool, address_search: bool) -> PublicTenantDetails:
    settings = PortalSettings.model_validate(document.get("portal") or {})
    languages = _text_languages(document)
    if settings.consent is not None:
        consent = PublicConsent(version=settings.consent.version, texts=dict(settings.consent.texts))
    else:
        consent = PublicConsent(
            version=DEFAULT_CONSENT_VERSION, texts={lang: default_consent(lang) for lang in languages}
        )
    skills = [
        PublicSkill(slug=skill, labels=_skill_labels(skill, languages, settings.skill_labels.get(skill, {})))
        for skill in sorted(domain.tenant_skills(document.get("extra_skills", [])))
    ]
    return PublicTenantDetails(
        **public_tenant(document).model_dump(),
        timezone=document["timezone"],
        consent=consent,
        skills=skills,
        map_offered=settings.offer_map and has_postcodes,
        address_search=address_search,
    )


def default_consent(language: str) -> ConsentText:
    text = CATALOGUES.translations(language).gettext
    return ConsentText(
        intro=text(DEFAULT_CONSENT_INTRO),
        purposes={purpose: text(message) for purpose, message in DEFAULT_CONSENT_PURPOSES.items()},
    )


def _text_languages(document: Mapping[str, Any]) -> list[str]:
    """The tenant's languages the platform has texts in, its default first; German at least."""
    wanted = [document["default_language"], *document["supported_languages"]]
    languages = [language for language in dict.fromkeys(wanted) if language in LANGUAGES]
    return languages or [CATALOGUES.source_language]


def _skill_labels(skill: str, languages: list[str], own: Mapping[str, str]) -> dict[str, str]:
    """The tenant's own labels, else the platform's; a skill without either is shown by its slug."""
    labels = {}
    for language in languages:
        if language in own:
            labels[language] = own[language]
        elif skill in SKILL_LABELS:
            labels[language] = CATALOGUES.translations(language).gettext(SKILL_LABELS[skill])
        else:
            labels[language] = own.get(languages[0]) or skill.replace("_", " ")
    return labels
