# ruff: noqa: RUF001 - the dashes in levels and time ranges are the languages' own
"""The office's volunteer pages without I/O: the search form read into the registry's query, what
a card and a volunteer's page show of the registry's and matching's answers, the certificate
check and staff forms, and the pages rendered (escaped, errors next to their fields).
tests/e2e/test_office_volunteers_browser.py runs them against the real services."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_portal import domain, maps, pages, places
from lotse_portal.store import SignedInUser

HOSTILE = "<script>alert(1)</script>"
BERLIN = ZoneInfo("Europe/Berlin")
TODAY = date(2026, 12, 1)
TABLE = (maps.PostcodePoint("48143", "Mitte", 51.9625, 7.627), maps.PostcodePoint("48147", HOSTILE, 51.972, 7.618))
COORDINATOR = SignedInUser(
    subject="jana",
    volunteer_id="staff-jana",
    tenant="lindenau",
    roles=("coordinator",),
    organisation=None,
    name=HOSTILE,
    access_token="a",
    refresh_token=None,
    id_token="i",
    expires_at=datetime.now(UTC),
)
# A volunteer as the registry shows them to a coordinator on their own page (registered with the
# municipality: contact data and home area included).
VOLUNTEER: dict[str, Any] = {
    "volunteer_id": "0b6e4f1c-1111-4d3a-9a51-3c2b7e1f0a99",
    "organisation_id": None,
    "status": "active",
    "skills": ["driving", "unknown-skill"],
    "languages": [{"language": "ar", "level": "b2"}, {"language": "xx", "level": "c1"}],
    "travel_radius_km": 10,
    "availability": {
        "weekly_slots": [
            {"weekday": "tuesday", "start": "12:00:00", "end": "17:00:00"},
            {"weekday": "monday", "start": "17:00:00", "end": "21:00:00"},
            {"weekday": "tuesday", "start": "08:00:00", "end": "12:00:00"},
        ],
        "max_concurrent_engagements": 2,
    },
    "certificate_status": [
        {"kind": "extended_police_certificate", "declared": True, "state": "checked", "valid_until": "2031-11-19"},
        {"kind": "first_aid", "declared": True, "state": "declared_not_checked", "valid_until": None},
    ],
    "contact": {"display_name": HOSTILE, "email": "maria@example.org", "phone": "+491511234567"},
    "home_area": {"postcode": "48147", "point": None},
    "contact_person": {"staff_id": "staff-jana", "name": HOSTILE, "email": "j@example.org", "phone": None},
    "created_at": "2026-11-02T10:00:00+00:00",
}
CHECKS = [
    {
        "check_id": "c2",
        "kind": "extended_police_certificate",
        "seen_on": "2026-11-20",
        "valid_until": "2031-11-19",
        "seen_by": "staff-jana",
        "seen_by_role": "coordinator",
        "status": "in_force",
    },
    {
        "check_id": "c1",
        "kind": "first_aid",
        "seen_on": "2024-01-10",
        "valid_until": "2026-01-10",
        "seen_by": "staff-other",
        "seen_by_role": "coordinator",
        "status": "revoked",
        "ended_at": "2026-11-20T10:00:00+00:00",
        "revocation_reason": "recorded_in_error",
    },
    {
        "check_id": "c0",
        "kind": "first_aid",
        "seen_on": "2023-01-10",
        "valid_until": "2025-01-10",
        "seen_by": "admin-x",
        "seen_by_role": "initiative_admin",
        "status": "superseded",
    },
]
NEED = {
    "need_id": "n1",
    "organisation_id": "o1",
    "category": "translation",
    "description": HOSTILE,
    "district": HOSTILE,
    "schedule_kind": "one_off",
    "starts_at": "2026-12-07T08:00:00Z",
    "status": "open",
    "state": "open",
    "over": False,
}
HISTORY = {
    "volunteer_id": VOLUNTEER["volunteer_id"],
    "committed": ["n1"],
    "needs": [NEED, {**NEED, "need_id": "n2", "category": "childcare"}],
    "proposals": [
        {
            "proposal_id": "p2",
            "need_id": "n1",
            "kind": "proposal",
            "state": "accepted",
            "proposed_at": "2026-11-30T08:00:00Z",
            "answered_at": "2026-11-30T09:00:00Z",
            "proposed_by": {"subject": "jana", "role": "coordinator"},
            "recorded_by": {"subject": "jana", "role": "coordinator"},
        },
        {
            "proposal_id": "p1",
            "need_id": "n2",
            "kind": "pick",
            "state": "stepped_back",
            "proposed_at": "2026-11-20T08:00:00Z",
            "answered_at": "2026-11-25T08:00:00Z",
            "released_by": {"subject": "jana", "role": "coordinator"},
        },
    ],
}
SKILLS = {"driving": "Fahren"}


def gettext_de(message: str) -> str:
    return pages.translate("de", message)


def card(data: dict[str, Any] = VOLUNTEER) -> domain.VolunteerCard:
    return domain.VolunteerCard.from_json(
        data, language="de", gettext=gettext_de, skills=SKILLS, table=TABLE, organisations={"o1": HOSTILE}
    )


def search(params: list[tuple[str, str]], *, coordinator: bool = True) -> domain.VolunteerSearch:
    return domain.read_volunteer_filters(
        params,
        skills=["driving", "cooking"],
        organisations=["o1"] if coordinator else [],
        names_allowed=coordinator,
        postcodes=TABLE,
    )


# -- the search form ------------------------------------------------------------------------------


def test_the_search_asks_the_registry_for_active_volunteers_with_every_filter_given() -> None:
    found = search(
        [
            ("language", "ar"),
            ("level", "b2"),
            ("skill", "driving"),
            ("skill", "cooking"),
            ("postcode", "48143"),
            ("weekday", "tuesday"),
            ("at", "14:00"),
            ("organisation_id", "o1"),
            ("certificate", "checked:extended_police_certificate"),
            ("name", "  Ma   ria "),
        ]
    )
    assert found.errors == {}
    assert found.query == {
        "status": "active",
        "limit": domain.VOLUNTEER_PAGE_SIZE,
        "language": "ar:b2",
        "skill": ["driving", "cooking"],
        "postcode": "48143",
        "available_on": "tuesday",
        "available_at": "14:00",
        "organisation_id": "o1",
        "certificate_checked": "true",
        "certificate_kind": "extended_police_certificate",
        "name": "Ma ria",
    }
    assert found.filters.active


def test_a_radius_is_measured_from_the_centre_of_the_postcode_given() -> None:
    found = search([("postcode", "48147"), ("radius", "5")])
    assert found.query is not None
    assert (found.query["near_lat"], found.query["near_lon"], found.query["within_km"]) == (51.972, 7.618, 5)
    assert "postcode" not in found.query
    assert search([("radius", "5")]).errors == {
        "postcode": "Bitte geben Sie die Postleitzahl an, um die herum gesucht wird."
    }
    assert search([("postcode", "99999"), ("radius", "5")]).errors == {"postcode": domain.UNKNOWN_POSTCODE}
    assert search([("postcode", "48143"), ("radius", "500")]).errors == {"radius": "Bitte eine Zahl von 1 bis 200."}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([("language", "klingon")], "language"),
        ([("level", "b2")], "language"),
        ([("language", "ar"), ("level", "z9")], "language"),
        ([("skill", "juggling")], "skills"),
        ([("postcode", "4814")], "postcode"),
        ([("weekday", "someday")], "weekday"),
        ([("at", "25:00")], "at"),
        ([("organisation_id", "o2")], "organisation_id"),
        ([("certificate", "checked:diploma")], "certificate"),
        ([("name", "M")], "name"),
    ],
)
def test_a_filter_that_is_not_on_the_list_is_named_and_nothing_is_searched(
    params: list[tuple[str, str]], field: str
) -> None:
    found = search(params)
    assert found.query is None and list(found.errors) == [field]


def test_initiative_admins_filter_neither_by_name_nor_by_organisation() -> None:
    found = search([("name", "Maria"), ("organisation_id", "o1"), ("certificate", "unchecked")], coordinator=False)
    assert found.errors == {} and found.query is not None
    assert "name" not in found.query and "organisation_id" not in found.query
    assert found.query["certificate_checked"] == "false" and "certificate_kind" not in found.query


def test_paging_links_keep_the_filters_and_add_the_cursor() -> None:
    found = search([("language", "ar"), ("skill", "driving"), ("skill", "cooking"), ("cursor", "abc")])
    assert found.query is not None and found.query["cursor"] == "abc"
    assert found.filters.link("next+1") == "/console/volunteers?skill=driving&skill=cooking&language=ar&cursor=next%2B1"
    assert domain.VolunteerFilters().link() == "/console/volunteers"
    assert domain.search_field("query.available_at") == "at" and domain.search_field("query.cursor") == "form"


# -- what the pages show --------------------------------------------------------------------------


def test_a_card_shows_what_the_registry_returned_in_the_persons_language() -> None:
    shown = card()
    assert shown.name == HOSTILE and shown.organisation == ""
    assert [(item.name, item.level) for item in shown.languages] == [
        ("Arabisch", "B2 – gute Kenntnisse"),
        ("xx", "C1 – sehr gute Kenntnisse"),
    ]
    assert shown.skills == ("Fahren", "unknown-skill")
    assert shown.area == places.PlaceInWords("48147", HOSTILE, True)
    # Touching slots of a day are one range; the days in the week's order.
    assert shown.availability == ("Montag: 17:00–21:00 Uhr", "Dienstag: 08:00–17:00 Uhr")
    week = [{"weekday": day, "start": "08:00:00", "end": "12:00:00"} for day in ("monday", "tuesday", "wednesday")]
    weekend = [{"weekday": day, "start": "10:00:00", "end": "14:00:00"} for day in ("saturday", "sunday")]
    friday = [{"weekday": "friday", "start": "08:00:00", "end": "12:00:00"}]
    lines = domain.availability_lines({"weekly_slots": week + friday + weekend}, "de", gettext_de)
    # Days in a row with the same hours are one line; Friday is not in Wednesday's row.
    assert lines == (
        "Montag bis Mittwoch: 08:00–12:00 Uhr",
        "Freitag: 08:00–12:00 Uhr",
        "Samstag, Sonntag: 10:00–14:00 Uhr",
    )
    police, first_aid = shown.certificates
    assert (police.state, police.valid_until) == ("checked", "19.11.2031")
    assert (first_aid.label, first_aid.state, first_aid.valid_until) == ("Erste-Hilfe-Kurs", "declared_not_checked", "")


def test_a_volunteer_of_another_organisation_is_listed_without_name_or_home() -> None:
    listed = {key: value for key, value in VOLUNTEER.items() if key not in ("contact", "home_area")}
    shown = card({**listed, "organisation_id": "o1"})
    assert shown.name == "" and shown.short_id == "0b6e4f1c" and shown.area is None and shown.organisation == HOSTILE
    details = domain.VolunteerDetails.from_json({**listed, "contact_person": None}, shown, "de")
    assert (details.email, details.phone, details.contact_person) == ("", "", None)


def test_the_page_shows_contact_data_and_the_contact_person_where_the_registry_gives_them() -> None:
    details = domain.VolunteerDetails.from_json(VOLUNTEER, card(), "de")
    assert (details.email, details.phone, details.travel_radius_km, details.max_engagements) == (
        "maria@example.org",
        "+491511234567",
        10,
        2,
    )
    assert details.registered_on == "02.11.2026" and details.active
    assert details.contact_person == domain.StaffContact("staff-jana", HOSTILE, "j@example.org", "")


def test_checks_say_who_saw_the_certificate_and_what_became_of_the_check() -> None:
    rows = [
        domain.CheckRow.from_json(item, language="de", me="staff-jana", staff={"staff-other": "Olaf"}, today=TODAY)
        for item in CHECKS
    ]
    mine, revoked, superseded = rows
    assert (mine.seen_by, mine.in_force, mine.counts_today, mine.valid_until) == (
        "Gesehen von Ihnen",
        True,
        True,
        "19.11.2031",
    )
    assert (revoked.seen_by, revoked.seen_by_name, revoked.in_force, revoked.ended_on) == (
        "Gesehen von %(name)s",
        "Olaf",
        False,
        "20.11.2026",
    )
    assert revoked.revocation_reason == "recorded_in_error" and not revoked.counts_today
    assert superseded.seen_by == "Gesehen von der Initiative"
    unknown = domain.CheckRow.from_json(CHECKS[1], language="de", me="x", staff={}, today=TODAY)
    assert unknown.seen_by == "Gesehen von der Koordinationsstelle"


def test_the_history_names_what_the_office_did_and_the_committed_needs() -> None:
    history = domain.VolunteerHistory.from_json(HISTORY, "de", BERLIN)
    (committed,) = history.committed
    assert (committed.need_id, committed.starts, committed.district) == ("n1", "07.12.2026, 09:00", HOSTILE)
    accepted, released = history.rows
    assert accepted.state == "zugesagt" and accepted.notes == (
        "von der Koordination vorgeschlagen",
        "Antwort von der Koordination eingetragen",
    )
    assert released.state == "von der Koordination freigestellt" and released.notes == ("selbst übernommen",)
    assert (released.category, released.proposed_on, released.answered_on) == ("childcare", "20.11.2026", "25.11.2026")


def test_a_volunteer_always_reads_about_the_police_certificate() -> None:
    own = domain.OwnOffice.from_profile({"certificate_status": [], "contact_person": None}, "de")
    assert own.contact_person is None
    assert [(item.kind, item.state) for item in own.certificates] == [
        ("extended_police_certificate", "declared_not_checked")
    ]
    checked = domain.OwnOffice.from_profile(VOLUNTEER, "en")
    assert [item.kind for item in checked.certificates] == ["extended_police_certificate", "first_aid"]
    assert checked.certificates[0].valid_until == "Nov 19, 2031"
    assert checked.contact_person is not None and checked.contact_person.email == "j@example.org"


# -- the forms ------------------------------------------------------------------------------------


def form(**values: str) -> domain.FormData:
    return domain.FormData(values.items())


def test_a_check_is_read_with_the_registrys_rules() -> None:
    body, errors = domain.read_check_form(form(kind="first_aid", seen_on="2026-12-01", valid_until="2028-12-01"), TODAY)
    assert errors == {} and body == {"kind": "first_aid", "seen_on": "2026-12-01", "valid_until": "2028-12-01"}
    cases = {
        "kind": form(kind="diploma", seen_on="2026-12-01", valid_until="2028-12-01"),
        "seen_on": form(kind="first_aid", seen_on="2026-12-02", valid_until="2028-12-01"),
        "valid_until": form(kind="first_aid", seen_on="2026-11-01", valid_until="2026-10-01"),
    }
    for field, given in cases.items():
        body, errors = domain.read_check_form(given, TODAY)
        assert body is None and list(errors) == [field], field
    _, expired = domain.read_check_form(form(kind="first_aid", seen_on="2020-01-01", valid_until="2026-11-30"), TODAY)
    assert expired == {"valid_until": domain.CHECK_EXPIRED}
    _, missing = domain.read_check_form(form(kind="first_aid", seen_on="01.12.2026"), TODAY)
    assert set(missing) == {"seen_on", "valid_until"}
    assert domain.check_refusal("valid_until", "valid_until: is before seen_on") == (
        "valid_until",
        domain.CHECK_ENDS_BEFORE_SEEN,
    )
    assert domain.check_refusal("valid_until", "valid_until: has passed")[1] == domain.CHECK_EXPIRED
    assert domain.check_refusal("seen_on", "lies in the future") == ("seen_on", domain.CHECK_SEEN_IN_FUTURE)


def test_a_staff_entry_needs_a_name_and_a_work_address() -> None:
    result = domain.read_staff_form(form(name=" Jana   Weber ", email="j.weber@example.org", phone="+49 151 1234567"))
    assert result.valid and result.body == {
        "name": "Jana Weber",
        "email": "j.weber@example.org",
        "phone": "+491511234567",
    }
    assert domain.read_staff_form(form(name="Jana", email="j@example.org")).body == {
        "name": "Jana",
        "email": "j@example.org",
    }
    refused = domain.read_staff_form(form(name="", email="nope", phone="0151"))
    assert set(refused.errors) == {"name", "email", "phone"}


# -- the pages ------------------------------------------------------------------------------------

COMMON = {
    "user": COORDINATOR,
    "csrf": "token",
    "path": "/console/volunteers",
    "flash": None,
    "is_volunteer": False,
    "is_initiative_admin": False,
    "is_coordinator": True,
}
SEARCH_PAGE: dict[str, Any] = {
    "filters": domain.VolunteerFilters(language="ar", postcode=HOSTILE, name=HOSTILE),
    "errors": {"postcode": "Bitte geben Sie eine Postleitzahl mit fünf Ziffern an."},
    "searched": True,
    "cards": [card()],
    "next_link": "/console/volunteers?language=ar&cursor=x",
    "first_link": "/console/volunteers?language=ar",
    "skills": domain.TenantFacts.from_json(
        {"slug": "l", "skills": [{"slug": "driving", "labels": {"de": HOSTILE}}]}, "de"
    ).skills,
    "organisations": {"o1": HOSTILE},
    "spoken_languages": domain.SPOKEN_LANGUAGES,
    "levels": domain.LEVELS,
    "weekdays": domain.WEEKDAYS,
    "certificate_filters": domain.CERTIFICATE_FILTERS,
    "certificate_kinds": domain.CERTIFICATE_KINDS,
    "postcodes": TABLE,
}
VOLUNTEER_PAGE: dict[str, Any] = {
    "volunteer": domain.VolunteerDetails.from_json(VOLUNTEER, card(), "de"),
    "checks": [
        domain.CheckRow.from_json(item, language="de", me="staff-jana", staff={"staff-other": HOSTILE}, today=TODAY)
        for item in CHECKS
    ],
    "history": domain.VolunteerHistory.from_json(HISTORY, "de", BERLIN),
    "staff": [domain.StaffContact("staff-jana", HOSTILE, "j@example.org"), domain.StaffContact("s2", "Olaf")],
    "errors": {
        "revoke-c2": "Bitte bestätigen Sie, dass Sie diese Prüfung zurücknehmen.",
        "valid_until": domain.CHECK_EXPIRED,
    },
    "values": {"seen_on": "2026-12-01", "valid_until": HOSTILE},
    "today": "2026-12-01",
    "certificate_kinds": domain.CERTIFICATE_KINDS,
    "check_statuses": domain.CHECK_STATUSES,
    "revocation_reasons": domain.REVOCATION_REASONS,
    "volunteer_statuses": domain.VOLUNTEER_STATUSES,
    "form_key": domain.new_form_key,
}
# Every page of this module with a context that shows all of it (tests/unit/portal/test_pages.py
# renders them in every language with the other pages).
VOLUNTEER_PAGES: dict[str, dict[str, Any]] = {
    "office_volunteers.html": {**COMMON, **SEARCH_PAGE},
    "office_volunteer.html": {**COMMON, **VOLUNTEER_PAGE},
    "office_volunteer_staff.html": {
        **COMMON,
        "values": {"name": HOSTILE, "email": HOSTILE},
        "errors": {"email": "Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org."},
        "entered": True,
    },
}


def render(template: str, language: str = "de", **changes: Any) -> str:
    html = pages.render(language, template, {**VOLUNTEER_PAGES[template], **changes})
    assert HOSTILE not in html
    return html


def test_the_search_page_keeps_the_filters_and_says_the_error_next_to_its_field() -> None:
    html = render("office_volunteers.html")
    assert 'id="postcode-error"' in html and 'aria-describedby="postcode-error" aria-invalid="true"' in html
    assert '<option value="ar" selected>' in html and 'id="name"' in html and 'id="organisation_id"' in html
    assert 'href="/console/volunteers/0b6e4f1c-1111-4d3a-9a51-3c2b7e1f0a99"' in html
    assert "geprüft bis 19.11.2031" in html and "angegeben, nicht geprüft" in html
    assert 'href="/console/volunteers?language=ar&amp;cursor=x"' in html
    # Initiative admins search neither by name nor by organisation (the registry shows them their own).
    admin = render("office_volunteers.html", is_coordinator=False, is_initiative_admin=True, organisations={})
    assert 'id="name"' not in admin and 'id="organisation_id"' not in admin


def test_the_empty_search_helps_on() -> None:
    html = render("office_volunteers.html", cards=[], errors={}, next_link=None, first_link=None)
    assert "Niemand passt zu allen diesen Filtern." in html and "Alle Filter zurücksetzen" in html
    nothing = render("office_volunteers.html", cards=[], errors={}, filters=domain.VolunteerFilters())
    assert "Noch haben sich keine Freiwilligen in Ihrer Kommune registriert." in nothing


def test_the_volunteers_page_records_checks_as_the_signed_in_person_and_revokes_only_when_confirmed() -> None:
    html = render("office_volunteer.html")
    # Who saw it is shown, not asked for.
    assert 'name="seen_by"' not in html and "Gesehen von: &lt;script&gt;" in html
    assert 'id="valid_until-error"' in html and 'aria-describedby="valid_until-hint valid_until-error"' in html
    # Only the check in force can be taken back, behind a confirmation; its error opens it.
    assert html.count("/revocation") == 1 and 'name="confirm" value="yes"' in html
    # Each form under a key of its own: sent twice, the registry records it once.
    keys = re.findall(r'name="idempotency_key" value="([^"]+)"', html)
    assert len(keys) == 2 and len(set(keys)) == 2
    assert "<details open>" in html and 'id="revoke-c2-error"' in html
    assert "zurückgenommen" in html and "Versehentlich eingetragen" in html
    assert '<option value="staff-jana" selected>' in html
    assert "von der Koordination freigestellt" in html and 'href="/console/needs/n2"' in html
    # Initiative admins do not name contact persons; an erased volunteer gets no forms.
    admin = render("office_volunteer.html", is_coordinator=False, is_initiative_admin=True, staff=[])
    assert "/contact-person" not in admin and "/certificate-checks" in admin
    erased = domain.VolunteerDetails.from_json(
        {"volunteer_id": "v", "status": "erased"}, card({"volunteer_id": "v", "status": "erased"}), "de"
    )
    gone = render("office_volunteer.html", volunteer=erased, checks=[], history=None)
    assert "/certificate-checks" not in gone and "/contact-person" not in gone and "gelöscht" in gone


@pytest.mark.parametrize("language", pages.LANGUAGES)
def test_a_volunteer_reads_their_contact_person_and_certificates_on_the_overview(language: str) -> None:
    context = {
        **COMMON,
        "is_volunteer": True,
        "is_coordinator": False,
        "path": "/home",
        "profile": {"contact": {"display_name": "Maria"}, "status": "active"},
        "waiting": [],
        "engaged": [],
        "unread": 0,
        "where": None,
        "office": domain.OwnOffice.from_profile({**VOLUNTEER, "certificate_status": []}, language),
    }
    html = pages.render(language, "home.html", context)
    assert HOSTILE not in html and 'href="mailto:j@example.org"' in html
    police = pages.translate(
        language, "noch nicht geprüft — bitte zeigen Sie das Führungszeugnis der Koordinationsstelle"
    )
    assert police in html
