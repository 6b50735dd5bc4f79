# ruff: noqa: RUF001 - subjects in several scripts are asserted on purpose
"""Templates in all six languages: they render, Arabic and Persian run right to left, the fallback
chain holds, HTML is escaped, links stay exact, and broken overrides are refused."""

from __future__ import annotations

import html
import re

import pytest

from lotse_notifications import catalogue
from lotse_notifications.catalogue import KINDS, LANGUAGES
from lotse_notifications.domain import SharedPerson
from lotse_notifications.templates import (
    MessageFacts,
    TemplateSource,
    UnknownTemplate,
    check_source,
    default_source,
    language_chain,
    render,
    sample_facts,
)

# A word of each language's proposal subject, written here independently of the catalogue.
PROPOSAL_SUBJECT_WORD = {"de": "Anfrage", "en": "request", "ar": "طلب", "uk": "Запит", "fa": "درخواست", "tr": "talep"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language_with_subject_text_and_html(kind: str, language: str) -> None:
    rendered = render(kind, [language], sample_facts(kind))
    assert rendered.language == language
    assert rendered.subject and "\n" not in rendered.subject and "{{" not in rendered.subject
    assert rendered.text.strip() and "{{" not in rendered.text and "{%" not in rendered.text
    assert f'<html lang="{language}"' in rendered.html
    if kind != catalogue.WEEKLY_DIGEST and kind != catalogue.NEED_UNSTAFFED:
        assert "Maria" in rendered.text  # addressed by name


@pytest.mark.parametrize("kind", [catalogue.MATCH_PROPOSED, catalogue.NEED_STAFFED])
@pytest.mark.parametrize(("language", "direction"), [("ar", "rtl"), ("fa", "rtl"), ("de", "ltr"), ("uk", "ltr")])
def test_arabic_and_persian_html_runs_right_to_left(kind: str, language: str, direction: str) -> None:
    rendered = render(kind, [language], sample_facts(kind))
    assert f'dir="{direction}"' in rendered.html
    assert rendered.right_to_left is (direction == "rtl")


# Words of each language's staffed subject, written here independently of the catalogue.
STAFFED_SUBJECT_WORD = {
    "de": "besetzt",
    "en": "staffed",
    "ar": "تغطية",
    "uk": "забезпечено",
    "fa": "تأمین",
    "tr": "karşılandı",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_staffed_need_tells_the_office_what_how_many_and_who_with_only_the_shared_contact_data(
    language: str,
) -> None:
    facts = sample_facts(catalogue.NEED_STAFFED)
    payload = dict(facts.payload) | {"committed": 2, "volunteer_ids": ["v-shares", "v-keeps", "v-erased"]}
    payload["need"] = dict(payload["need"]) | {"volunteers_needed": 2}
    people = {
        "v-shares": SharedPerson("Maria Okafor", "maria@example.org", "+4915112345678"),
        "v-keeps": SharedPerson("Olena"),  # no consent to share: the name only
    }
    rendered = render(
        catalogue.NEED_STAFFED,
        [language],
        MessageFacts(**(facts.__dict__ | {"payload": payload, "people": people})),
    )
    without_erased = payload | {"volunteer_ids": ["v-shares", "v-keeps"]}
    all_known = render(
        catalogue.NEED_STAFFED,
        [language],
        MessageFacts(**(facts.__dict__ | {"payload": without_erased, "people": people})),
    )
    category = catalogue.label(catalogue.CATEGORY_LABELS, payload["need"]["category"], language)
    assert STAFFED_SUBJECT_WORD[language] in rendered.subject and category in rendered.subject
    assert payload["need"]["description"] in rendered.text
    assert re.search(r"\b2\D{1,5}2\b", rendered.text)  # committed of needed
    last = rendered.text.strip().splitlines()[-1]
    assert last.startswith("Lotse") and last.endswith("Stadt Musterstadt")  # signed by Lotse for the tenant
    lines = rendered.text.splitlines()
    assert "- Maria Okafor, maria@example.org, +4915112345678" in lines
    assert "- Olena" in lines  # and nothing else on her line
    assert rendered.text.count("@") == 1 and rendered.text.count("+49") == 1
    # Someone erased since is not named, but a line says one more committed.
    assert len(rendered.text.splitlines()) == len(all_known.text.splitlines()) + 1


def test_the_payload_of_a_staffed_need_names_volunteers_by_id_only() -> None:
    """The log keeps the payload: ids, no names or addresses (those are read when it is sent)."""
    payload = sample_facts(catalogue.NEED_STAFFED).payload
    assert set(payload) == {"need_id", "need", "committed", "volunteer_ids"}
    assert "@" not in str(payload) and "Maria" not in str(payload)


def test_the_staffed_german_wording() -> None:
    rendered = render(catalogue.NEED_STAFFED, ["de"], sample_facts(catalogue.NEED_STAFFED))
    assert rendered.subject == "Anfrage besetzt: Begleitung zu Behörden"
    assert "Zugesagt: 1 von 1" in rendered.text and "Vielen Dank" in rendered.text
    assert "Zugesagt haben:\n- Maria, maria@example.org, +4915112345678\n" in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_proposal_subject_is_in_the_persons_language(language: str) -> None:
    rendered = render(catalogue.MATCH_PROPOSED, [language], sample_facts(catalogue.MATCH_PROPOSED))
    assert PROPOSAL_SUBJECT_WORD[language].lower() in rendered.subject.lower()


def test_the_fallback_chain_is_person_then_tenant_default_then_german() -> None:
    assert language_chain("ar", "en") == ["ar", "en", "de"]
    assert language_chain(None, "tr") == ["tr", "de"]
    assert language_chain("de", "de") == ["de"]
    facts = sample_facts(catalogue.WELCOME)
    # Russian has no template: the tenant's default is used, and without one, German.
    assert render(catalogue.WELCOME, language_chain("ru", "en"), facts).language == "en"
    assert render(catalogue.WELCOME, language_chain("ru", "ru"), facts).language == "de"


def test_a_tenant_override_in_a_language_without_defaults_is_used_first() -> None:
    override = {(catalogue.WELCOME, "ru"): TemplateSource("Добро пожаловать, {{ recipient_name }}", "Привет!")}
    rendered = render(catalogue.WELCOME, language_chain("ru", "de"), sample_facts(catalogue.WELCOME), override)
    assert rendered.language == "ru" and rendered.subject == "Добро пожаловать, Maria"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(UnknownTemplate):
        render("birthday_card", ["de"], sample_facts(catalogue.WELCOME))


def test_html_is_escaped_but_text_is_not_and_links_stay_exact() -> None:
    facts = sample_facts(catalogue.MATCH_PROPOSED)
    link = "https://matching.example/a/x.y?choice=accept&p=1&sig=a%2Fb~c"
    payload = dict(facts.payload) | {"accept_url": link}
    payload["need"] = dict(payload["need"]) | {"description": 'Hilfe <script>alert("x")</script> & mehr'}
    rendered = render(catalogue.MATCH_PROPOSED, ["de"], MessageFacts(**(facts.__dict__ | {"payload": payload})))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert '<script>alert("x")</script> & mehr' in rendered.text
    hrefs = [html.unescape(href) for href in re.findall(r'href="([^"]*)"', rendered.html)]
    assert link in hrefs
    assert link in rendered.text


def test_a_guidance_override_replaces_the_default_in_its_language_only() -> None:
    facts = sample_facts(catalogue.WELCOME)
    custom = MessageFacts(**(facts.__dict__ | {"guidance": {"de": {"insurance": "Versichert über die Stadt Nord."}}}))
    assert "Versichert über die Stadt Nord." in render(catalogue.WELCOME, ["de"], custom).text
    english = render(catalogue.WELCOME, ["en"], custom).text
    assert "Versichert" not in english and "collective insurance" in english


def test_the_welcome_carries_the_guidance_on_insurance_certificates_and_whom_to_ask() -> None:
    text = render(catalogue.WELCOME, ["de"], sample_facts(catalogue.WELCOME)).text
    assert "erweitertes Führungszeugnis" in text and "versichert" in text and "Lotsenfunktion" in text


@pytest.mark.parametrize(
    ("source", "field", "words"),
    [
        (TemplateSource("Hallo {{ recipient_nam }}", "x"), "subject", "recipient_nam"),
        (TemplateSource("Hallo", "{% if %}"), "text", "syntax"),
        (TemplateSource("Hallo", "{{ need.description }}"), "text", "need"),  # not in a welcome
        (TemplateSource("Hallo", "ok", "<p>{{ office.nme }}</p>"), "html", "nme"),
        (TemplateSource("Hallo", "{{ recipient_name.__class__.__mro__ }}"), "text", "unsafe"),
    ],
)
def test_a_broken_override_is_refused_naming_the_part(source: TemplateSource, field: str, words: str) -> None:
    problems = check_source(catalogue.WELCOME, "de", source)
    assert [problem["field"] for problem in problems] == [field]
    assert words in problems[0]["message"].lower()


def test_a_working_override_passes_the_check_for_every_kind() -> None:
    for kind in KINDS:
        source = TemplateSource("{{ tenant_name }}", "{{ recipient_name }} {{ office.email }}", None)
        assert check_source(kind, "de", source) == []


def test_every_kind_has_its_template_files_and_every_language_its_guidance() -> None:
    for language in LANGUAGES:
        for kind in KINDS:
            source = default_source(kind, language)
            assert source is not None and "{% trans" in source.subject and "{% trans" in source.text
        assert set(catalogue.guidance(language)) == set(catalogue.GUIDANCE_TOPICS)
    assert len(catalogue.WEEKDAYS) == 7 and default_source(catalogue.WELCOME, "ru") is None


# Deliberate changes with the move to gettext and Babel: dates and times as each language writes
# them (before: 03.12.2026 09:00 in every language), the share as a percentage of the locale, and
# the digest's subject counts its needs with the language's plural forms.
@pytest.mark.parametrize(
    ("language", "when", "deadline"),
    [
        ("de", "Wann: 03.12.2026, 09:00–12:00 Uhr", "bis 28.11.2026, 09:00."),
        ("en", "When: Dec 3, 2026, 9:00\u202fAM\u2009–\u200912:00\u202fPM", "by Nov 28, 2026, 9:00\u202fAM."),
        ("tr", "Zaman: 3 Ara 2026 09:00–12:00", "Lütfen 28 Kas 2026 09:00 tarihine"),
        ("uk", "Коли: 3 груд. 2026\u202fр., 09:00–12:00", "до 28 лист. 2026\u202fр., 09:00."),
    ],
)
def test_dates_and_times_are_written_as_the_language_writes_them(language: str, when: str, deadline: str) -> None:
    text = render(catalogue.MATCH_PROPOSED, [language], sample_facts(catalogue.MATCH_PROPOSED)).text
    assert when in text.splitlines() and deadline in text


def test_a_weekly_need_names_its_days_and_hours_in_the_language() -> None:
    facts = sample_facts(catalogue.NEED_CANCELLED)
    weekly = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "17:00:00", "end": "18:30:00"}],
        "starts_on": "2026-12-01",
        "ends_on": None,
    }
    payload = dict(facts.payload) | {"need": dict(facts.payload["need"]) | {"schedule": weekly}}
    custom = MessageFacts(**(facts.__dict__ | {"payload": payload}))
    assert "Wann: dienstags 17:00–18:30 Uhr (01.12.2026 –)" in render(catalogue.NEED_CANCELLED, ["de"], custom).text
    assert "Zaman: salıları 17:00–18:30 (1 Ara 2026 –)" in render(catalogue.NEED_CANCELLED, ["tr"], custom).text


@pytest.mark.parametrize(
    ("language", "subject", "rate"),
    [
        ("de", "Wochenübersicht 2026-W48: 2 offene Anfragen, 1 ohne genug Engagierte", "Besetzungsquote: 33\xa0%"),
        ("en", "Weekly summary 2026-W48: 2 open requests, 1 without enough volunteers", "staffing rate: 33%"),
        ("ar", "الملخص الأسبوعي 2026-W48: طلبان مفتوحان، 1 بلا متطوعين كافين", "نسبة التغطية: 33%"),
        (
            "uk",
            "Тижневий огляд 2026-W48: 2 відкриті запити, 1 без достатньої кількості волонтерів",
            "рівень забезпечення: 33%",
        ),
        ("tr", "Haftalık özet 2026-W48: 2 açık talep, 1 yeterli gönüllüsü olmayan", "karşılanma oranı: %33"),
    ],
)
def test_the_digest_counts_with_plural_forms_and_a_percentage_of_the_locale(
    language: str, subject: str, rate: str
) -> None:
    rendered = render(catalogue.WEEKLY_DIGEST, [language], sample_facts(catalogue.WEEKLY_DIGEST))
    assert rendered.subject == subject and f"- {rate}" in rendered.text.splitlines()


@pytest.mark.parametrize(
    ("count", "words"), [(1, "1 відкритий запит"), (3, "3 відкриті запити"), (5, "5 відкритих запитів")]
)
def test_ukrainian_counts_needs_with_its_three_plural_forms(count: int, words: str) -> None:
    facts = sample_facts(catalogue.WEEKLY_DIGEST)
    payload = dict(facts.payload) | {"digest": dict(facts.payload["digest"]) | {"open": count}}
    rendered = render(catalogue.WEEKLY_DIGEST, ["uk"], MessageFacts(**(facts.__dict__ | {"payload": payload})))
    assert f": {words}," in rendered.subject


def test_an_override_may_use_the_catalogue_and_the_shared_partials() -> None:
    source = TemplateSource(
        "{% trans %}Hallo {{ recipient_name }},{% endtrans %}",
        '{{ _("Herzliche Grüße") }}\n{% include "_contact.txt" %}',
    )
    assert check_source(catalogue.WELCOME, "uk", source) == []
    rendered = render(catalogue.WELCOME, ["uk"], sample_facts(catalogue.WELCOME), {(catalogue.WELCOME, "uk"): source})
    assert rendered.subject == "Вітаємо, Maria!"
    assert rendered.text.startswith("З найкращими побажаннями\nЗапитання? Ваш провідник — Koordinationsstelle Ehrenamt")
