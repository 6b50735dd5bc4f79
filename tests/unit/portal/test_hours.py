"""The hours pages' own rules (pure): the form read into matching's request, matching's refusals
said next to their fields, durations in words, the confirmation list's totals; the pages show the
state and reason of each entry and a field's message beside it."""

from __future__ import annotations

from datetime import date

from lotse_portal import hours, pages
from lotse_portal.domain import FormData
from tests.unit.portal.hours_pages import CONFIRMED, HOURS_PAGES, PENDING, REJECTED
from tests.unit.portal.test_pages import COMMON

NEEDS = ["n1", "n2"]


def form(**fields: str) -> FormData:
    values = {"need_id": "n1", "date": "2026-12-01", "hours": "2", "minutes": "30", "note": "", **fields}
    return FormData(values.items())


def test_a_complete_form_becomes_matchings_request() -> None:
    read = hours.read_hours_form(form(note="  Elternabend \n übersetzt "), NEEDS)
    assert read.errors == {}
    assert read.body == {
        "need_id": "n1",
        "date": "2026-12-01",
        "hours": 2,
        "minutes": 30,
        "note": "Elternabend übersetzt",
    }
    only_minutes = hours.read_hours_form(form(hours="", minutes="45"), NEEDS)
    assert only_minutes.body is not None and (only_minutes.body["hours"], only_minutes.body["minutes"]) == (0, 45)


def test_each_mistake_is_named_at_its_field() -> None:
    cases = {
        "need_id": form(need_id="elsewhere"),
        "date": form(date="2026-02-30"),
        "duration": form(hours="zwei"),
    }
    for field, submitted in cases.items():
        read = hours.read_hours_form(submitted, NEEDS)
        assert read.body is None and list(read.errors) == [field], field
    assert hours.read_hours_form(form(date="1.12.2026"), NEEDS).errors == {
        "date": hours.read_hours_form(form(date="x"), NEEDS).errors["date"]
    }
    for hours_text, minutes_text in (("0", "0"), ("", ""), ("2", "60"), ("25", "0"), ("-1", "30")):
        read = hours.read_hours_form(form(hours=hours_text, minutes=minutes_text), NEEDS)
        assert list(read.errors) == ["duration"], (hours_text, minutes_text)
    assert list(hours.read_hours_form(form(note="x" * 201), NEEDS).errors) == ["note"]
    # What was typed comes back to the form.
    assert hours.read_hours_form(form(hours="zwei"), NEEDS).values["hours"] == "zwei"


def test_matchings_refusals_are_said_by_rule_at_their_field() -> None:
    problem = {
        "errors": [
            {"field": "date", "rule": "after_engagement", "message": "the engagement ended on 2026-12-10"},
            {"field": "minutes", "rule": "too_many_per_day", "message": "at most 720 minutes a day"},
        ]
    }
    assert hours.refusal_errors(problem) == {
        "date": hours.RULES["after_engagement"][1],
        "duration": hours.RULES["too_many_per_day"][1],
    }
    # A field named without a rule (the service's own validation) still lands at its field.
    assert hours.refusal_errors({"errors": [{"field": "minutes", "message": "x"}]}) == {"duration": hours.NOT_SAVED}
    assert hours.refusal_errors({}) == {"form": hours.NOT_SAVED}


def test_a_rejection_needs_a_reason_of_300_characters_at_most() -> None:
    assert hours.read_reason(FormData([("reason", "  Der Termin\n fiel aus. ")])) == ("Der Termin fiel aus.", None)
    assert hours.read_reason(FormData([("reason", "   ")]))[1] is not None
    assert hours.read_reason(FormData([]))[1] is not None
    assert hours.read_reason(FormData([("reason", "x" * 301)]))[1] is not None


def test_durations_read_as_hours_and_minutes_in_the_persons_language() -> None:
    english = pages.CATALOGUES.translations("en").gettext
    assert hours.duration_words(150, str) == "2 Std. 30 Min."
    assert hours.duration_words(120, str) == "2 Std."
    assert hours.duration_words(45, str) == "45 Min."
    assert hours.duration_words(150, english) != "2 Std. 30 Min." and "30" in hours.duration_words(150, english)


def test_the_confirmation_list_holds_the_years_confirmed_entries_with_totals_per_organisation() -> None:
    other_year = hours.Entry.from_json({**_json(CONFIRMED), "date": "2025-12-31", "entry_id": "e4"})
    second = hours.Entry.from_json(
        {**_json(CONFIRMED), "entry_id": "e5", "organisation_name": "Lernhilfe", "minutes": 60}
    )
    listed = hours.confirmation_list([PENDING, REJECTED, CONFIRMED, other_year, second], 2026)
    assert [e.entry_id for e in listed.entries] == ["e3", "e5"] and listed.total_minutes == 210
    assert [(o.name, o.minutes) for o in listed.organisations] == [(CONFIRMED.organisation, 150), ("Lernhilfe", 60)]
    assert hours.confirmation_list([PENDING], 2026).entries == ()


def test_the_volunteer_sees_each_state_the_reason_and_the_field_error_beside_its_field() -> None:
    html = pages.render("de", "hours.html", {**COMMON, **HOURS_PAGES["hours.html"]})
    assert 'id="date-error"' in html and 'aria-describedby="date-hint date-error" aria-invalid="true"' in html
    assert html.count('class="state"') == 3
    assert "offen" in html and "abgelehnt" in html and "bestätigt" in html and "Grund: &lt;script&gt;" in html
    # Only what is not confirmed may be changed or deleted.
    assert html.count("/edit") == 2 and html.count("/delete") == 2
    assert 'href="/hours/confirmation/2026"' in html and 'max="2026-12-02"' in html
    arabic = pages.render("ar", "hours.html", {**COMMON, **HOURS_PAGES["hours.html"]})
    assert pages.translate("ar", hours.RULES["after_engagement"][1]) in arabic


def test_the_office_page_names_a_missing_reason_beside_its_entrys_field() -> None:
    html = pages.render("de", "hours_office.html", {**COMMON, **HOURS_PAGES["hours_office.html"]})
    assert 'action="/console/hours/e1/confirm"' in html and 'action="/console/hours/e1/reject"' in html
    assert 'id="reason-e1-error"' in html and 'aria-describedby="reason-e1-hint reason-e1-error"' in html
    assert "<details open>" in html, "the rejection form stays open with its message"
    calm = {**HOURS_PAGES["hours_office.html"], "errors": {}, "reasons": {}}
    assert "<details open>" not in pages.render("de", "hours_office.html", {**COMMON, **calm})


def test_the_confirmation_list_names_the_municipality_the_person_and_who_confirmed() -> None:
    context = {**COMMON, **HOURS_PAGES["hours_confirmation.html"], "tenant_name": "Stadt Portalia", "person": "Anna"}
    html = pages.render("de", "hours_confirmation.html", context)
    assert "Stadt Portalia" in html and "Anna" in html and "Koordinationsstelle, Stadt Portalia" in html
    assert html.count("<tr>") == 1 + 1 + 1 + 1  # heads and one row in each table
    assert "2 Std. 30 Min." in html and "2,5 Stunden" in html.replace("2,50", "2,5")
    english = pages.render("en", "hours_confirmation.html", context)
    assert 'href="?lang=de"' in english, "a link to the German list for an application"


def _json(entry: hours.Entry) -> dict[str, object]:
    return {
        "entry_id": entry.entry_id,
        "need_id": entry.need_id,
        "category": entry.category,
        "organisation_name": entry.organisation,
        "date": entry.day.isoformat(),
        "minutes": entry.minutes,
        "state": entry.state,
        "decided_by": {"role": "coordinator"} if entry.decided_by_office else None,
    }


def test_an_entrys_day_and_state_come_from_matchings_answer() -> None:
    assert (PENDING.day, PENDING.minutes, PENDING.state, PENDING.changeable) == (
        date(2026, 12, 1),
        150,
        "pending",
        True,
    )
    assert not CONFIRMED.changeable and CONFIRMED.decided_by_office
