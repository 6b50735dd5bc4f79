"""The portal's own decisions: reading the sign-up and need forms, where a sign-in may return to,
which language a page is in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lotse_portal import maps
from lotse_portal.domain import (
    UNKNOWN_POSTCODE,
    FormData,
    FormResult,
    pick_language,
    read_need_form,
    read_volunteer_form,
    registry_field,
    safe_next,
)

GOOD_VOLUNTEER = [
    ("display_name", "Maria"),
    ("email", "maria@example.org"),
    ("phone", "+49 151 1234567"),
    ("preferred_language", "uk"),
    ("channels", "email"),
    ("channels", "in_app"),
    ("level_de", "c1"),
    ("level_uk", "native"),
    ("level_ar", ""),
    ("skills", "driving"),
    ("postcode", "04109"),
    ("travel_radius_km", "12"),
    ("slot", "monday:morning"),
    ("slot", "saturday:evening"),
    ("max_concurrent_engagements", "2"),
    ("quiet_start", "21:00"),
    ("quiet_end", "07:00"),
    ("consent", "matching"),
    ("consent", "contact"),
]


def test_a_complete_sign_up_form_is_the_registrys_registration_body() -> None:
    result = read_volunteer_form(FormData(GOOD_VOLUNTEER), skills=["driving", "translation"], consent_version="2026-01")
    assert result.errors == {}
    assert result.body == {
        "contact": {
            "display_name": "Maria",
            "email": "maria@example.org",
            "phone": "+491511234567",
            "preferred_language": "uk",
            "channels": ["email", "in_app"],
            "quiet_hours": {"start": "21:00:00", "end": "07:00:00"},
        },
        "skills": ["driving"],
        "languages": [{"language": "de", "level": "c1"}, {"language": "uk", "level": "native"}],
        "home_area": {"postcode": "04109"},
        "travel_radius_km": 12,
        "availability": {
            "weekly_slots": [
                {"weekday": "monday", "start": "08:00:00", "end": "12:00:00"},
                {"weekday": "saturday", "start": "17:00:00", "end": "21:00:00"},
            ],
            "max_concurrent_engagements": 2,
        },
        "consent": {"purposes": ["matching", "contact"], "text_version": "2026-01"},
    }


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("display_name", "", "display_name"),
        ("email", "maria-at-example", "email"),
        ("phone", "0151 123", "phone"),
        ("preferred_language", "xx", "preferred_language"),
        ("postcode", "4109", "postcode"),
        ("travel_radius_km", "500", "travel_radius_km"),
        ("max_concurrent_engagements", "0", "max_concurrent_engagements"),
        ("level_de", "fluent", "level_de"),
        ("skills", "hacking", "skills"),
        ("quiet_start", "25:00", "quiet_hours"),
    ],
)
def test_each_bad_answer_is_named_by_its_field(name: str, value: str, field: str) -> None:
    items = [(key, value if key == name else old) for key, old in GOOD_VOLUNTEER]
    result = read_volunteer_form(FormData(items), skills=["driving"], consent_version="2026-01")
    assert field in result.errors, result.errors
    assert result.body == {}


def test_without_the_two_required_consents_nothing_is_registered() -> None:
    items = [item for item in GOOD_VOLUNTEER if item != ("consent", "contact")]
    result = read_volunteer_form(FormData(items), skills=["driving"], consent_version="2026-01")
    assert set(result.errors) == {"consent"}


def test_no_time_and_no_language_are_both_asked_for() -> None:
    items = [(k, v) for k, v in GOOD_VOLUNTEER if k != "slot" and not k.startswith("level_")]
    result = read_volunteer_form(FormData(items), skills=["driving"], consent_version="2026-01")
    assert {"slots", "languages"} <= set(result.errors)


def test_registry_fields_lead_to_the_form_fields() -> None:
    assert registry_field("home_area.postcode") == "postcode"
    assert registry_field("home_area.point.lat") == "home_point"
    assert registry_field("contact.email") == "email"
    assert registry_field("languages[0].level") == "languages"
    assert registry_field("something.else") == "form"


@pytest.mark.parametrize(
    ("asked", "returned"),
    [
        ("/proposals", "/proposals"),
        ("/needs?x=1", "/needs?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("javascript:alert(1)", "/"),
        ("/.//evil.example", "/"),
        ("/a//evil.example", "/"),
        ("/../../etc", "/"),
        ("/home\r\nSet-Cookie: x", "/"),
    ],
)
def test_a_sign_in_returns_only_to_the_portal_itself(asked: str | None, returned: str) -> None:
    assert safe_next(asked) == returned


def test_the_language_is_the_choice_then_the_browsers_then_german() -> None:
    assert pick_language("fa", accept_language="de-DE,de;q=0.9") == "fa"
    assert pick_language(None, accept_language="uk-UA,uk;q=0.9,en;q=0.8") == "uk"
    assert pick_language("xx", accept_language="fr-FR,fr") == "de"


def need_form(**changes: str) -> FormData:
    start = datetime.now(UTC) + timedelta(days=3)
    values = {
        "category": "accompaniment_to_authorities",
        "description": "Begleitung zur Ausländerbehörde, Termin um 10 Uhr",
        "postcode": "04109",
        "date": start.date().isoformat(),
        "start": "09:00",
        "end": "12:00",
        "volunteers_needed": "1",
        "language": "ar",
        "language_level": "b2",
        **changes,
    }
    return FormData(values.items())


def test_a_reported_need_is_the_registrys_need_body_with_its_postcode() -> None:
    organisation = "6f1c2a3b-0000-4000-8000-000000000001"
    need, errors = read_need_form(need_form(), organisation_id=organisation, skills=[], timezone="Europe/Berlin")
    assert errors == {}
    assert need is not None
    assert need.postcode == "04109"
    assert need.body["schedule"]["kind"] == "one_off"
    assert need.body["schedule"]["start"].endswith(("+01:00", "+02:00"))
    assert need.body["languages"] == [{"language": "ar", "min_level": "b2"}]
    assert need.body["organisation_id"] == organisation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": "weapons"}, "category"),
        ({"description": "kurz"}, "description"),
        ({"description": "Bitte Frau K. anrufen: 0151 2345678, danke"}, "description"),
        ({"description": "Kontakt über familie@example.org aufnehmen bitte"}, "description"),
        ({"end": "08:00"}, "schedule"),
        ({"date": "2020-01-01"}, "schedule"),
        ({"volunteers_needed": "0"}, "volunteers_needed"),
        ({"language_level": "fluent"}, "language"),
        ({"street": "ab"}, "street"),
        ({"street": "Marktstraße " * 12}, "street"),
    ],
)
def test_a_bad_need_form_names_its_field(changes: dict[str, str], field: str) -> None:
    need, errors = read_need_form(need_form(**changes), organisation_id="x", skills=[], timezone="Europe/Berlin")
    assert need is None
    assert field in errors, errors


def test_tenant_facts_come_in_the_persons_language_with_the_defaults_as_fallback() -> None:
    from lotse_portal.domain import TenantFacts

    data = {
        "slug": "lindenau",
        "name": "Lindenau",
        "default_language": "de",
        "timezone": "Europe/Berlin",
        "consent": {
            "version": "v3",
            "texts": {
                "de": {"intro": "Einwilligung", "purposes": {"matching": "Vorschläge"}},
                "uk": {"intro": "Згода", "purposes": {"matching": "Пропозиції"}},
            },
        },
        "skills": [{"slug": "driving", "labels": {"de": "Fahren", "uk": "Водіння"}}, {"slug": "music", "labels": {}}],
    }
    ukrainian = TenantFacts.from_json(data, "uk")
    assert (ukrainian.consent_intro, ukrainian.consent_version) == ("Згода", "v3")
    assert [(skill.label, skill.language) for skill in ukrainian.skills] == [("Водіння", "uk"), ("music", "de")]
    assert TenantFacts.from_json(data, "fa").consent_language == "de"
    assert TenantFacts.from_json(data, "fa").consent_intro == "Einwilligung"
    required = {purpose.value for purpose in ukrainian.consent_purposes if purpose.required}
    assert required == {"matching", "contact"}


def test_an_engagement_reads_when_and_where_in_the_persons_language() -> None:
    from lotse_portal.domain import EngagementView

    weekly = {
        "need_id": "n",
        "category": "tutoring",
        "description": "Lernhilfe",
        "schedule": {
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
            "starts_on": "2026-12-01",
        },
        "place": {"point": {"lat": 51.96, "lon": 7.62}, "postcode": "48143", "district": "Mitte"},
    }
    view = EngagementView.from_json(weekly, "en", "Europe/Berlin", lambda text: {"Dienstag": "Tuesday"}.get(text, text))
    assert view.when.startswith("Tuesday 4:00")
    assert (view.postcode, view.district) == ("48143", "Mitte")
    # The point stays on the device: a geo: URI for the person's map app, no map site's address.
    assert view.geo_uri == "geo:51.960000,7.620000"
    one_off = {
        **weekly,
        "schedule": {"kind": "one_off", "start": "2026-12-03T08:00:00Z", "end": "2026-12-03T10:00:00Z"},
    }
    assert "09:00" in EngagementView.from_json(one_off, "de", "Europe/Berlin", str).when  # in the tenant's zone


def test_an_initiatives_details_are_read_with_its_kind_kept() -> None:
    from lotse_portal.domain import read_organisation_form

    good = read_organisation_form(
        FormData([("name", "Portalia hilft"), ("contact_email", "hilft@example.org"), ("districts", "Mitte, Nord ,")]),
        "initiative",
    )
    assert good.body == {
        "name": "Portalia hilft",
        "kind": "initiative",
        "contact_email": "hilft@example.org",
        "districts": ["Mitte", "Nord"],
    }
    bad = read_organisation_form(FormData([("name", ""), ("contact_email", "nope")]), "initiative")
    assert set(bad.errors) == {"name", "contact_email"} and bad.body == {}


def test_outside_development_the_session_cookie_is_secure_and_host_bound(tmp_path: object) -> None:
    from lotse_portal.settings import PortalSettings

    production = PortalSettings.model_construct(env="production", cookie_secure=None)
    development = PortalSettings.model_construct(env="development", cookie_secure=None)
    assert production.secure_cookie() and not development.secure_cookie()


def test_a_giant_field_is_cut_before_any_check_reads_it() -> None:
    from lotse_portal.domain import MAX_FIELD_LENGTH

    hostile = "a@" + "a." * 32_000 + " "
    form = FormData([*((key, value) for key, value in GOOD_VOLUNTEER if key != "email"), ("email", hostile)])
    assert len(form["email"]) <= MAX_FIELD_LENGTH
    result = read_volunteer_form(form, skills=["driving"], consent_version="2026-01")
    assert "email" in result.errors and result.body == {}


def test_a_weekly_need_repeats_on_the_first_dates_weekday_until_its_end() -> None:
    first = datetime.now(UTC).date() + timedelta(days=10)
    until = first + timedelta(days=60)
    form = need_form(date=first.isoformat(), repeat="weekly", until=until.isoformat(), start="16:00", end="18:00")
    need, errors = read_need_form(form, organisation_id="o", skills=[], timezone="Europe/Berlin")
    assert errors == {} and need is not None
    weekday = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][first.weekday()]
    assert need.body["schedule"] == {
        "kind": "weekly",
        "slots": [{"weekday": weekday, "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": first.isoformat(),
        "ends_on": until.isoformat(),
    }
    backwards = need_form(date=first.isoformat(), repeat="weekly", until=(first - timedelta(days=1)).isoformat())
    assert "schedule" in read_need_form(backwards, organisation_id="o", skills=[], timezone="Europe/Berlin")[1]


@pytest.mark.parametrize("repeat", ["once", "weekly"])
def test_a_reported_need_is_what_the_contract_accepts(repeat: str) -> None:
    from lotse_contracts.events.needs import NeedDetails

    organisation = "6f1c2a3b-0000-4000-8000-000000000001"
    need, _ = read_need_form(
        need_form(repeat=repeat), organisation_id=organisation, skills=[], timezone="Europe/Berlin"
    )
    assert need is not None
    place = {"point": {"lat": 51.96, "lon": 7.62}, "postcode": need.postcode}
    NeedDetails.model_validate({**need.body, "place": place})


# --- the home area with a map: a point, a postcode, or both ---------------------------------------

FRAME = maps.MapFrame.around([maps.PostcodePoint("04109", "Zentrum", 51.34, 12.37)])
TABLE = {"04109", "04229"}


def volunteer_with(**home: str) -> FormData:
    return FormData([*[(k, v) for k, v in GOOD_VOLUNTEER if k != "postcode"], *home.items()])


def read_with_map(form: FormData) -> FormResult:
    return read_volunteer_form(form, skills=["driving"], consent_version="2026-01", frame=FRAME, postcodes=TABLE)


def test_with_a_map_the_point_the_postcode_or_both_are_the_home_area() -> None:
    point = {"lat": 51.341, "lon": 12.372}
    only_point = read_with_map(volunteer_with(home_lat="51.341", home_lon="12.372"))
    assert only_point.errors == {} and only_point.body["home_area"] == {"point": point}
    both = read_with_map(volunteer_with(home_lat="51.341", home_lon="12.372", postcode="04229"))
    assert both.errors == {} and both.body["home_area"] == {"point": point, "postcode": "04229"}
    only_postcode = read_with_map(volunteer_with(postcode="04109"))
    assert only_postcode.errors == {} and only_postcode.body["home_area"] == {"postcode": "04109"}


def test_with_a_map_neither_a_point_nor_a_known_postcode_is_told_next_to_the_field() -> None:
    neither = read_with_map(volunteer_with())
    assert neither.errors == {
        "postcode": "Bitte geben Sie eine Postleitzahl an oder wählen Sie einen Punkt auf der Karte."
    }
    # With a point the registry keeps a postcode as given: the portal checks it against the table.
    unknown = read_with_map(volunteer_with(home_lat="51.341", home_lon="12.372", postcode="10115"))
    assert unknown.errors == {"postcode": UNKNOWN_POSTCODE}
    malformed = read_with_map(volunteer_with(home_lat="51.341", home_lon="12.372", postcode="1011"))
    assert set(malformed.errors) == {"postcode"}
    # A point off the map (a tampered or stale form) is refused, not moved.
    elsewhere = read_with_map(volunteer_with(home_lat="52.52", home_lon="13.40", postcode="04109"))
    assert set(elsewhere.errors) == {"home_point"} and elsewhere.body == {}
    # Without a map the hidden fields mean nothing and the postcode is required, as before.
    plain = read_volunteer_form(
        volunteer_with(home_lat="51.341", home_lon="12.372"), skills=["driving"], consent_version="2026-01"
    )
    assert set(plain.errors) == {"postcode"}


def test_a_need_form_keeps_the_street_and_the_place_choice_for_the_search() -> None:
    form = need_form(street="  Prinzipalmarkt   10 ", place_choice="centre", searched="Prinzipalmarkt 10")
    need, errors = read_need_form(form, organisation_id="x", skills=[], timezone="Europe/Berlin")
    assert errors == {} and need is not None
    assert (need.street, need.place_choice, need.searched) == ("Prinzipalmarkt 10", "centre", "Prinzipalmarkt 10")
    assert need.address == "Prinzipalmarkt 10, 04109"
    assert "street" not in need.body and "place" not in need.body


def test_tenant_facts_say_whether_a_map_and_an_address_search_are_offered() -> None:
    from lotse_portal.domain import TenantFacts

    base = {"slug": "x", "consent": {"version": "1", "texts": {}}}
    assert (TenantFacts.from_json(base, "de").map_offered, TenantFacts.from_json(base, "de").address_search) == (
        False,
        False,
    )
    offered = TenantFacts.from_json({**base, "map_offered": True, "address_search": True}, "de")
    assert (offered.map_offered, offered.address_search) == (True, True)
