"""The console's own rules (pure): what the guidance form sends, how a guidance text reads, and
the statistics as charts, tables and CSV with every withheld count said as such."""

from __future__ import annotations

import csv
import io
from typing import Any

from lotse_portal import guidance, pages, statistics
from lotse_portal.domain import FormData
from tests.unit.portal.test_pages import COMMON

DEFAULT = "Sie sind über das Land versichert."
ANSWER = {
    "language": "de",
    "insurance": "Versichert über die Stadt.",
    "certificates": "Führungszeugnis im Bürgerbüro.",
    "contact": "Fragen Sie uns.",
    "overridden": ["insurance"],
    "topics": ["insurance", "certificates", "authorities", "contact"],
    "defaults": {"insurance": DEFAULT, "certificates": "Führungszeugnis im Bürgerbüro.", "contact": "Fragen Sie uns."},
}


def test_the_topics_come_in_the_services_order_with_text_default_and_whose_text_it_is() -> None:
    topics = guidance.topics_of(ANSWER)
    assert [t.topic for t in topics] == ["insurance", "certificates", "authorities", "contact"]
    assert topics[0] == guidance.TopicText("insurance", "Versichert über die Stadt.", DEFAULT, True)
    assert topics[2] == guidance.TopicText("authorities", "", "", False)
    assert topics[2].label == "Wie die Behörden arbeiten"


def test_the_form_sends_only_what_differs_from_the_default() -> None:
    topics = guidance.topics_of(ANSWER)
    form = FormData(
        [
            ("insurance", "Versichert über die Stadt.\r\n\r\nZweiter Absatz."),
            ("certificates", "Führungszeugnis im Bürgerbüro."),  # the default, unchanged
            ("authorities", "   "),  # emptied: no text
            ("contact", "Frau Demir, Zimmer 3"),
            ("reset_contact", "yes"),  # reset wins over the text
        ]
    )
    texts, errors = guidance.read_form(form, topics)
    assert texts == {"insurance": "Versichert über die Stadt.\n\nZweiter Absatz."} and errors == {}


def test_a_text_over_the_limit_is_named_with_its_topic() -> None:
    texts, errors = guidance.read_form(FormData([("authorities", "x" * 1001)]), guidance.topics_of(ANSWER))
    assert errors == {"authorities": guidance.TOO_LONG}
    texts, errors = guidance.read_form(FormData([("authorities", "x" * 1000)]), guidance.topics_of(ANSWER))
    assert errors == {} and len(texts["authorities"]) == 1000


def test_paragraphs_are_made_of_blank_lines_only() -> None:
    assert guidance.paragraphs("Eins\nnoch eins\n\n  \nZwei\r\n\r\nDrei") == ["Eins\nnoch eins", "Zwei", "Drei"]
    assert guidance.paragraphs("  ") == []


REGISTRY: dict[str, Any] = {
    "organisation_id": None,
    "needs_by_category": {
        "other": {"open": 5, "staffed": None, "unstaffed": None},
        "translation": {"open": 20, "staffed": 10, "unstaffed": None},
    },
    "needs_by_district": [
        {"district": "=HYPERLINK(1)", "open": 5, "staffed": None, "unstaffed": None},
        {"district": None, "open": None, "staffed": None, "unstaffed": None},
    ],
    "volunteers": {"active": 40, "engaged": 12, "withdrawn": None, "erased": None},
}
MATCHING: dict[str, Any] = {
    "time_to_staff": {"staffed_needs": 9, "median_hours": 4.0, "p75_hours": 6.0, "p90_hours": 8.4},
    "proposals": {"proposals": 13, "accepted": 9, "declined": None, "proposals_per_acceptance": 1.4},
    "hours": {
        "by_month": [
            {"month": "2026-10", "hours": 42.5, "volunteers": 6},
            {"month": "2026-11", "hours": None, "volunteers": None},
        ],
        "by_category": [
            {"category": "other", "hours": None, "volunteers": None},
            {"category": "translation", "hours": 50.0, "volunteers": 7},
        ],
    },
}


def _chart(slug: str, registry: dict[str, Any] = REGISTRY) -> statistics.Chart:
    return next(chart for chart in statistics.charts(registry, MATCHING) if chart.slug == slug)


def test_bars_are_shares_of_the_largest_value_and_withheld_values_have_none() -> None:
    chart = _chart("needs-by-category")
    # Categories in the portal's order: translation before other.
    assert [row.label for row in chart.rows] == ["Übersetzen und Dolmetschen", "Anderes"]
    assert [(cell.value, cell.width) for cell in chart.rows[0].cells] == [(20, 100), (10, 50), (None, 0)]
    assert [(cell.value, cell.width) for cell in chart.rows[1].cells] == [(5, 25), (None, 0), (None, 0)]
    assert chart.rows[1].cells[1].withheld


def test_every_figure_is_in_a_chart_with_its_table_and_confirmed_hours_by_month_and_kind() -> None:
    assert [c.slug for c in statistics.charts(REGISTRY, MATCHING)] == [
        "needs-by-category",
        "needs-by-district",
        "time-to-staff",
        "proposals",
        "volunteers",
        "hours-by-month",
        "hours-by-category",
    ]
    months = _chart("hours-by-month")
    assert [(row.label, row.cells[0].value, row.cells[0].width) for row in months.rows] == [
        ("2026-10", 42.5, 100),
        ("2026-11", None, 0),
    ]
    # Kinds of help in the portal's order; hours from fewer than five volunteers are no "fewer than 5".
    kinds = _chart("hours-by-category")
    assert [(row.label, row.cells[0].value) for row in kinds.rows] == [
        ("Übersetzen und Dolmetschen", 50.0),
        ("Anderes", None),
    ]
    assert kinds.withheld == "von weniger als 5 Freiwilligen"
    assert [row[1] for row in _rows(statistics.csv_of(kinds, str))[1:]] == ["50.0", ""]
    assert [c.slug for c in statistics.charts(REGISTRY, {}) if not c.rows] == ["hours-by-month", "hours-by-category"]
    assert [cell.value for row in _chart("time-to-staff").rows for cell in row.cells] == [4.0, 6.0, 8.4]
    assert _chart("time-to-staff").facts[0].value == 9 and _chart("proposals").facts[0].value == 1.4
    # An organisation's figures have no erasures (an erasure keeps no organisation).
    own = _chart("volunteers", {**REGISTRY, "organisation_id": "org-1"})
    assert [row.label for row in own.rows] == ["registriert und aktiv", "davon gerade im Einsatz", "nicht mehr aktiv"]
    assert len(_chart("volunteers").rows) == 4


def _rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_csv_says_less_than_five_and_never_starts_a_formula() -> None:
    english = _rows(statistics.csv_of(_chart("needs-by-district"), lambda m: pages.translate("en", m)))
    assert english[0] == [
        pages.translate("en", "Stadtteil"),
        *(pages.translate("en", m) for _, m in statistics.NEED_SERIES),
    ]
    assert english[1] == ["'=HYPERLINK(1)", "5", "< 5", "< 5"]
    assert english[2] == [pages.translate("en", "ohne Stadtteil"), "< 5", "< 5", "< 5"]
    hours = _rows(statistics.csv_of(_chart("time-to-staff"), str))
    assert [row[1] for row in hours[1:]] == ["4.0", "6.0", "8.4"]
    withheld = {**MATCHING, "time_to_staff": {"staffed_needs": None}}
    chart = next(c for c in statistics.charts(REGISTRY, withheld) if c.slug == "time-to-staff")
    # A time is not "fewer than 5 hours": it is not computed from fewer than five needs.
    assert [row[1] for row in _rows(statistics.csv_of(chart, str))[1:]] == ["", "", ""]


def test_the_page_says_fewer_than_five_in_the_persons_language_and_tables_carry_every_number() -> None:
    context = {
        **COMMON,
        "is_coordinator": True,
        "charts": statistics.charts(REGISTRY, MATCHING),
        "organisation_only": False,
        "minimum": 5,
    }
    html = pages.render("uk", "console_statistics.html", context)
    assert pages.translate("uk", "weniger als 5") in html and "weniger als 5" not in html
    assert html.count("<table") == 7 and html.count('class="chart" aria-hidden="true"') == 7
    assert html.count('.csv" download>') == 7 and "&#39;=HYPERLINK" not in html and "=HYPERLINK(1)" in html
    assert pages.translate("uk", "Geleistete Stunden je Monat") in html
    assert pages.translate("uk", "von weniger als 5 Freiwilligen") in html


def test_the_guidance_edit_form_writes_in_the_texts_language_and_names_errors() -> None:
    context = {
        **COMMON,
        "is_coordinator": True,
        "language": {"code": "ar", "name": "العربية", "direction": "rtl"},
        "topics": guidance.topics_of(ANSWER),
        "values": {"insurance": "x" * 1001},
        "errors": {"insurance": guidance.TOO_LONG},
        "max_length": 1000,
    }
    html = pages.render("de", "console_guidance_edit.html", context)
    assert '<textarea id="topic-insurance" name="insurance" rows="6" lang="ar" dir="rtl"' in html
    assert 'aria-describedby="topic-insurance-hint topic-insurance-error" aria-invalid="true"' in html
    assert 'id="reset-insurance"' in html and 'id="reset-certificates"' not in html
    assert "Dafür gibt es keinen Standardtext" in html
