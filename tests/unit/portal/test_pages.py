"""Every page renders in every language, with its language and direction, and escapes what
people typed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_matching.store import ProposalStatus
from lotse_portal import domain, guidance, maps, pages, places, statistics
from lotse_portal.api.access import language_path
from lotse_portal.api.maps import TenantMap, home_map_view
from lotse_portal.api.profile import choices
from lotse_portal.app import create_app
from lotse_portal.settings import PortalSettings
from lotse_portal.store import SignedInUser
from tests.unit.portal.audit_pages import AUDIT_PAGES
from tests.unit.portal.hours_pages import HOURS_PAGES
from tests.unit.portal.question_pages import QUESTION_PAGES
from tests.unit.portal.test_office_volunteers import VOLUNTEER_PAGES

USER = SignedInUser(
    subject="s",
    volunteer_id="v",
    tenant="lindenau",
    roles=("volunteer",),
    organisation=None,
    name="Maria",
    access_token="a",
    refresh_token=None,
    id_token="i",
    expires_at=datetime.now(UTC),
)
HOSTILE = "<script>alert(1)</script>"
PROPOSAL = {
    "proposal_id": "p1",
    "need_id": "n1",
    "category": "translation",
    "description": HOSTILE,
    "status": ProposalStatus.OPEN.value,  # matching's status of a proposal waiting for an answer
    "distance_km": 3.4,
    "district": "Mitte",
    "place": None,  # matching sends the exact place only once the proposal is accepted
    "reasons": [{"code": "language", "detail": "speaks ar"}],
}
FACTS = domain.TenantFacts.from_json(
    {
        "slug": "lindenau",
        "name": "Lindenau",
        "default_language": "de",
        "timezone": "Europe/Berlin",
        "consent": {
            "version": "2026-01",
            "texts": {"de": {"intro": HOSTILE, "purposes": {"matching": "Vorschläge", "contact": "Kontakt"}}},
        },
        "skills": [{"slug": "driving", "labels": {"de": "Fahren", "en": "Driving"}}],
    },
    "de",
)
# The tenant's postcode table and the geocoder's labels are other people's data: escaped wherever shown.
TABLE = (
    maps.PostcodePoint("48143", HOSTILE, 51.9625, 7.627),
    maps.PostcodePoint("48147", "Kreuzviertel", 51.972, 7.618),
)
FRAME = maps.MapFrame.around(TABLE)
HOME_MAP = home_map_view(TenantMap(TABLE, FRAME, maps.render(FRAME, TABLE)), maps.Point(51.966, 7.629))
WITH_MAP_AND_SEARCH = replace(FACTS, map_offered=True, address_search=True)
ASKED = places.PlaceDecision(
    candidates=(places.AddressCandidate(HOSTILE, maps.Point(51.96, 7.62), "48143"),),
    error=places.SEVERAL,
    centre=TABLE[0],
)
WHERE = places.PlaceInWords("48143", HOSTILE, at_centre=False)
COMMON = {
    "user": USER,
    "csrf": "token",
    "path": "/home",
    "flash": None,
    "is_volunteer": True,
    "is_initiative_admin": False,
    "is_coordinator": False,
}
# The office's dashboard (on the console's start page) and a need's page (test_office_needs.py has more).
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_NEED = {
    "need_id": "n1",
    "organisation_id": "o1",
    "category": "translation",
    "description": HOSTILE,
    "status": "open",
    "schedule": {
        "kind": "weekly",
        "slots": [{"weekday": "monday", "start": "09:00:00", "end": "11:00:00"}],
        "starts_on": "2026-12-07",
    },
    "place": {"postcode": "48143", "district": HOSTILE},
    "volunteers_needed": 2,
    "languages": [{"language": "ar", "min_level": "b1"}],
    "household_ref": HOSTILE,
}
OFFICE_SUMMARY = {
    "need_id": "n1",
    "organisation_id": "o1",
    "category": "translation",
    "description": HOSTILE,
    "district": HOSTILE,
    "schedule_kind": "weekly",
    "starts_at": "2026-12-07T08:00:00Z",
    "volunteers_needed": 2,
    "committed": 1,
    "open_proposals": 1,
    "next_expiry": "2026-12-05T08:00:00Z",
    "next_step": "call_volunteer",
}
OFFICE_PROPOSAL = {
    "proposal_id": "p1",
    "volunteer_id": "v1",
    "kind": "proposal",
    "state": "proposed",
    "reasons": [{"code": "language", "detail": HOSTILE}],
    "distance_km": 2.5,
    "proposed_at": "2026-12-01T08:00:00Z",
    "expires_at": "2026-12-04T08:00:00Z",
    "proposed_by": {"subject": "s", "role": "coordinator"},
}
OFFICE_PEOPLE = {
    "v1": domain.VolunteerContact("v1", HOSTILE, HOSTILE, HOSTILE),
    "v2": domain.VolunteerContact("v2", HOSTILE, HOSTILE, ""),
}
OFFICE_STAFFING = {
    "need": OFFICE_SUMMARY,
    "proposals": [
        OFFICE_PROPOSAL,
        {
            **OFFICE_PROPOSAL,
            "proposal_id": "p2",
            "volunteer_id": "v2",
            "state": "declined",
            "decline_reason": "too_far",
            "answered_at": "2026-12-02T08:00:00Z",
            "answered_via": "coordination_office",
            "recorded_by": {"subject": "x", "role": "coordinator"},
        },
    ],
    "committed": [{"volunteer_id": "v2", "kind": "pick", "committed_at": "2026-12-02T08:00:00Z"}],
    "round_started_at": "2026-12-01T08:00:00Z",
    "round_started_by": {"subject": "x", "role": "coordinator"},
}
OFFICE_PAGES: dict[str, dict[str, Any]] = {
    "office_need.html": {
        "is_coordinator": True,
        "need": domain.NeedFacts.from_json(OFFICE_NEED, "de", BERLIN, str, {}),
        "organisation": HOSTILE,
        "staffing": domain.StaffingView.from_json(
            OFFICE_STAFFING,
            OFFICE_PEOPLE,
            language="de",
            zone=BERLIN,
            me="s",
            staff={"x": HOSTILE},
            organisations={},
        ),
        "errors": {"answer-p1": domain.OFFICE_REFUSALS["expired"], "cancel": domain.REFUSED_OTHERWISE},
        "form_key": domain.new_form_key,
        "decline_reasons": domain.OFFICE_DECLINE_REASONS,
        "cancellation_reasons": domain.CANCELLATION_REASONS,
        "outcomes": domain.NEED_OUTCOMES,
        "proposal_states": domain.OFFICE_PROPOSAL_STATES,
    },
    "office_propose.html": {
        "is_coordinator": True,
        "need_id": "n1",
        "category": "translation",
        "name": HOSTILE,
        "people": list(OFFICE_PEOPLE.values()),
        "searched": True,
        "errors": {"name": "Bitte geben Sie mindestens zwei Buchstaben des Namens an."},
    },
    "office_check.html": {
        "need_id": "n1",
        "category": "translation",
        "person": OFFICE_PEOPLE["v1"],
        "result": domain.CandidateCheck(
            "v1", False, (domain.ReasonLine(domain.BROKEN_RULES["distance"], HOSTILE),), (), ""
        ),
        "refusal": domain.OFFICE_REFUSALS["broken_rules"],
        "form_key": domain.new_form_key,
    },
}
# The coordination office's console and the guidance (tests/unit/portal/test_console.py has more).
CONSOLE_PAGES: dict[str, dict[str, Any]] = {
    "console.html": {
        "is_coordinator": True,
        "sections": domain.dashboard_sections(
            {
                "waiting_for_answers": [OFFICE_SUMMARY],
                "expiring_proposals": [{"proposal_id": "p1", "need_id": "n1", "expires_at": "2026-12-05T08:00:00Z"}],
            },
            "de",
            BERLIN,
            {"o1": HOSTILE},
        ),
        "filters": domain.DashboardFilters(organisation_id="o1", district=HOSTILE),
        "filter_errors": {"starts_from": "Bitte ein Datum angeben, z. B. 2026-12-03."},
        "organisations": {"o1": HOSTILE},
        "districts": [HOSTILE],
        "window_hours": 48,
        "categories_offered": domain.NEED_CATEGORIES,
    },
    "console_guidance.html": {"rows": [{"code": "ar", "name": "العربية", "own": 1}], "topics": 4},
    "console_guidance_edit.html": {
        "language": {"code": "fa", "name": "فارسی", "direction": "rtl"},
        "topics": [
            guidance.TopicText("insurance", HOSTILE, HOSTILE, True),
            guidance.TopicText("authorities", "", "", False),
        ],
        "values": {"insurance": HOSTILE},
        "errors": {"insurance": guidance.TOO_LONG},
        "max_length": guidance.MAX_LENGTH,
    },
    "console_statistics.html": {
        "charts": statistics.charts(
            {
                "needs_by_category": {"translation": {"open": 7, "staffed": None, "unstaffed": None}},
                "needs_by_district": [{"district": HOSTILE, "open": 5, "staffed": None, "unstaffed": None}],
                "volunteers": {"active": 12, "engaged": None, "withdrawn": None, "erased": None},
                "organisation_id": None,
            },
            {
                "time_to_staff": {"staffed_needs": None},
                "proposals": {"proposals": 9, "accepted": 5, "proposals_per_acceptance": 1.8},
            },
        ),
        "organisation_only": False,
        "minimum": 5,
    },
    "guidance.html": {
        "topics": [
            {
                "topic": "authorities",
                "label": guidance.TOPICS["authorities"],
                "paragraphs": [HOSTILE, "Zweiter Absatz"],
                "language": "de",
                "direction": "ltr",
            },
        ]
    },
}
PAGES: dict[str, dict[str, Any]] = {
    "start.html": {"tenants": [{"slug": "lindenau", "name": "Lindenau"}], "user": None},
    "home.html": {
        "profile": {"contact": {"display_name": "Maria"}, "status": "active"},
        "waiting": [PROPOSAL],
        "engaged": [PROPOSAL],
        "unread": 2,
        "where": WHERE,
        "office": domain.OwnOffice.from_profile({"certificate_status": [], "contact_person": None}, "de"),
    },
    "home_other.html": {},
    "proposals.html": {
        "waiting": [PROPOSAL],
        "answered": [{**PROPOSAL, "status": "declined"}],
        "decline_reasons": {"no_time": "Ich habe zu der Zeit keine Zeit."},
    },
    "needs.html": {"needs": [PROPOSAL]},
    "engagements.html": {
        "engagements": [
            domain.EngagementView.from_json(
                {
                    "need_id": "n1",
                    "category": "translation",
                    "description": HOSTILE,
                    "schedule": {
                        "kind": "one_off",
                        "start": "2026-12-03T09:00:00+01:00",
                        "end": "2026-12-03T11:00:00+01:00",
                    },
                    "place": {"point": {"lat": 51.9, "lon": 7.6}, "postcode": "48143", "district": "Mitte"},
                },
                "de",
                "Europe/Berlin",
                str,
            )
        ],
        "feed": {"exists": True},
        "feed_url": "http://127.0.0.1:8000/calendar-feeds/abc.ics",
        "stepping_back": None,
        "errors": {},
    },
    "messages.html": {
        "messages": [
            {
                "id": "e:v:in_app",
                "subject": HOSTILE,
                "text": "Hallo",
                "read": False,
                "language": "uk",
                "direction": "ltr",
            }
        ]
    },
    "my_data.html": {"profile": {}, "errors": {"confirm": "Bitte bestätigen Sie, dass Sie Ihr Konto löschen möchten."}},
    "deleted.html": {},
    "error.html": {"problem": "unavailable"},
    "profile_new.html": {
        "facts": WITH_MAP_AND_SEARCH,
        "values": {"postcode": HOSTILE, "home_lat": HOSTILE},
        "chosen": {},
        "errors": {"postcode": "Bitte geben Sie eine Postleitzahl mit fünf Ziffern an."},
        "home_map": HOME_MAP,
        "action": "/profile/new",
        "editing": False,
        "initiatives": [],
        "own_initiative": None,
        **choices(),
    },
    "organisation.html": {
        "organisation": {"name": "Lindenau hilft"},
        "volunteers": [{"contact": {"display_name": "Ali", "email": "a@example.org"}}],
        "needs": [{"category": "childcare", "description": "x", "status": "open", "where": WHERE}],
        "reported": {"description": HOSTILE, "where": WHERE},
    },
    "organisation_edit.html": {
        "values": {"name": HOSTILE, "districts": "Mitte, Nord"},
        "errors": {"contact_email": "Bitte prüfen Sie diese Angabe."},
    },
    "need_new.html": {
        "facts": WITH_MAP_AND_SEARCH,
        "values": {"street": HOSTILE, "searched": HOSTILE},
        "chosen": [],
        "errors": {"street": places.SEVERAL},
        "asked": ASKED,
        "categories": domain.NEED_CATEGORIES,
        "certificates": domain.CERTIFICATES,
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
    },
    **CONSOLE_PAGES,
    **OFFICE_PAGES,
    **HOURS_PAGES,
    **QUESTION_PAGES,
    **VOLUNTEER_PAGES,
    **AUDIT_PAGES,
}


@pytest.mark.parametrize("language", pages.LANGUAGES)
@pytest.mark.parametrize("template", sorted(PAGES))
def test_every_page_renders_in_every_language(template: str, language: str) -> None:
    html = pages.render(language, template, {**COMMON, **PAGES[template]})
    direction = "rtl" if language in ("ar", "fa") else "ltr"
    assert f'<html lang="{language}" dir="{direction}">' in html
    assert '<meta name="viewport"' in html
    assert HOSTILE not in html


def test_every_template_is_tested() -> None:
    on_disk = {path.name for path in (pages.HERE / "templates").glob("*.html")} - {
        "base.html",
        "macros.html",
        "hours_form.html",
        "_question_macros.html",
        "office_volunteer_macros.html",
        "_form_languages.html",
    }
    assert on_disk == set(PAGES)


def test_a_field_error_sits_next_to_its_field_and_names_it_for_screen_readers() -> None:
    without_map = {**COMMON, **PAGES["profile_new.html"], "facts": FACTS, "home_map": None}
    html = pages.render("de", "profile_new.html", without_map)
    assert 'id="postcode-error"' in html
    assert 'aria-describedby="postcode-hint postcode-error" aria-invalid="true"' in html
    # With a map the postcode field also points to the sentence saying which place is used.
    html = pages.render("de", "profile_new.html", {**COMMON, **PAGES["profile_new.html"]})
    assert 'aria-describedby="postcode-hint postcode-error place-used" aria-invalid="true"' in html


def test_the_profile_form_says_which_place_is_used_and_keeps_the_point_in_the_form() -> None:
    context = {**COMMON, **PAGES["profile_new.html"], "values": {"postcode": "48143", "home_lat": "51.966"}}
    html = pages.render("de", "profile_new.html", context)
    assert 'type="image"' in html and f'src="{HOME_MAP.image_url.replace("&", "&amp;")}"' in html
    assert 'formaction="/profile/new#home_point"' in html
    assert 'name="home_lat" value="51.966"' in html
    assert "Lotse nutzt Ihren Punkt auf der Karte" in html and "Postleitzahl wird nur dazu gespeichert" in html
    assert "Ihr Punkt liegt etwa 0,4 km nördlich der Mitte von Postleitzahl 48143" in html
    # Without a point the postcode's centre is used, and the form says so; the first button saves.
    empty = {**context, "values": {}, "home_map": replace(HOME_MAP, point=None, words=None)}
    html = pages.render("de", "profile_new.html", empty)
    assert "nutzt Lotse die Mitte Ihrer Postleitzahl" in html and 'value="start"' in html
    assert html.index('class="default-submit"') < html.index('type="image"')
    # Where the tenant offers no map, only the postcode, as before.
    plain = {**context, "facts": FACTS, "home_map": None}
    html = pages.render("de", "profile_new.html", plain)
    assert 'type="image"' not in html and "default-submit" not in html and 'required autocomplete="postal-code"' in html


def test_the_need_form_offers_the_street_only_with_an_address_search_and_says_what_is_used_without() -> None:
    context = {**COMMON, **PAGES["need_new.html"], "values": {}, "errors": {}, "asked": places.PlaceDecision()}
    assert 'id="street"' in pages.render("de", "need_new.html", context)
    html = pages.render("de", "need_new.html", {**context, "facts": FACTS})
    assert 'id="street"' not in html and "Als Ort des Einsatzes nutzt Lotse die Mitte der Postleitzahl." in html
    # Not found: the postcode's centre is offered, not chosen for the person.
    asked = places.PlaceDecision(error=places.NOT_FOUND, centre=TABLE[1])
    html = pages.render("de", "need_new.html", {**context, "asked": asked, "errors": {"street": places.NOT_FOUND}})
    assert 'type="checkbox" id="place-centre" name="place_choice" value="centre">' in html
    assert "Mitte der Postleitzahl 48147 (Kreuzviertel)" in html and 'id="street-error"' in html


# Text people typed, right to left, in a left-to-right page: isolated so that it does not reorder
# the words around it (Unicode bidi), by <bdi> inside a sentence or dir="auto" on its own element.
ARABIC_NAME = "مريم"
ARABIC_TEXT = "مرافقة إلى مكتب الأجانب"
ARABIC_DISTRICT = "الحي الشمالي"


def _engagement(need_id: str, description: str) -> domain.EngagementView:
    return domain.EngagementView.from_json(
        {
            "need_id": need_id,
            "category": "translation",
            "description": description,
            "schedule": {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T11:00:00+01:00"},
            "place": {"point": {"lat": 51.9625, "lon": 7.627}, "postcode": "48143", "district": ARABIC_DISTRICT},
        },
        "de",
        "Europe/Berlin",
        str,
    )


def test_text_people_typed_is_isolated_for_right_to_left_in_a_german_page() -> None:
    profile = {"status": "active", "contact": {"display_name": ARABIC_NAME}}
    home = pages.render("de", "home.html", {**COMMON, **PAGES["home.html"], "profile": profile})
    assert f"Hallo <bdi>{ARABIC_NAME}</bdi>!" in home
    proposal = {**PROPOSAL, "description": ARABIC_TEXT}
    proposals = pages.render("de", "proposals.html", {**COMMON, **PAGES["proposals.html"], "waiting": [proposal]})
    assert f'<p dir="auto">{ARABIC_TEXT}</p>' in proposals  # the need's summary
    assert f"<bdi>{ARABIC_TEXT}</bdi>" in proposals  # in the buttons' names
    arabic = [_engagement("n1", ARABIC_TEXT)]
    engagements = pages.render("de", "engagements.html", {**COMMON, **PAGES["engagements.html"], "engagements": arabic})
    assert f'<p dir="auto">{ARABIC_TEXT}</p>' in engagements
    assert f"Postleitzahl 48143 (<bdi>{ARABIC_DISTRICT}</bdi>)" in engagements
    organisation = pages.render(
        "de",
        "organisation.html",
        {
            **COMMON,
            **PAGES["organisation.html"],
            "volunteers": [{"contact": {"display_name": ARABIC_NAME, "email": "m@example.org"}}],
            "needs": [
                {
                    "category": "childcare",
                    "description": ARABIC_TEXT,
                    "status": "open",
                    "where": places.PlaceInWords("48143", ARABIC_DISTRICT, at_centre=False),
                }
            ],
        },
    )
    assert f'<td dir="auto">{ARABIC_NAME}</td>' in organisation
    assert f'<td dir="auto">{ARABIC_TEXT}</td>' in organisation
    assert f"Postleitzahl 48143 (<bdi>{ARABIC_DISTRICT}</bdi>)" in organisation


def test_repeated_buttons_name_their_proposal_or_engagement() -> None:
    first = {**PROPOSAL, "proposal_id": "p1", "description": "Begleitung zum Amt"}
    second = {**PROPOSAL, "proposal_id": "p2", "description": "Lernhilfe Deutsch"}
    html = pages.render("de", "proposals.html", {**COMMON, **PAGES["proposals.html"], "waiting": [first, second]})
    for description in ("Begleitung zum Amt", "Lernhilfe Deutsch"):
        hidden = f'<span class="visually-hidden"> (Übersetzen und Dolmetschen: <bdi>{description}</bdi>)</span>'
        assert f"Zusagen{hidden}</button>" in html and f"Absagen{hidden}</button>" in html
    engagements = [_engagement("n1", "Begleitung zum Amt"), _engagement("n2", "Lernhilfe Deutsch")]
    html = pages.render("de", "engagements.html", {**COMMON, **PAGES["engagements.html"], "engagements": engagements})
    assert 'Zurücktreten<span class="visually-hidden"> (<bdi>Begleitung zum Amt</bdi>, ' in html
    assert 'Zurücktreten<span class="visually-hidden"> (<bdi>Lernhilfe Deutsch</bdi>, ' in html


def test_open_needs_and_proposals_say_the_district_and_the_distance() -> None:
    for template in ("needs.html", "proposals.html"):
        html = pages.render("de", template, {**COMMON, **PAGES[template]})
        assert "Stadtteil: <bdi>Mitte</bdi>" in html and "Entfernung: 3,4 km" in html, template


def test_an_engagements_place_is_in_words_and_its_point_only_for_the_devices_map_app() -> None:
    html = pages.render("de", "engagements.html", {**COMMON, **PAGES["engagements.html"]})
    assert "openstreetmap" not in html and "https://" not in html.split("<footer")[0].split("</header>")[1]
    assert '<a href="geo:51.900000,7.600000">In der Karten-App öffnen</a>' in html
    assert "Postleitzahl 48143 (<bdi>Mitte</bdi>)" in html


def test_stepping_back_without_the_tick_shows_that_form_open_with_the_message_at_its_checkbox() -> None:
    engagements = [_engagement("n1", "Begleitung zum Amt"), _engagement("n2", "Lernhilfe Deutsch")]
    context = {
        **COMMON,
        **PAGES["engagements.html"],
        "engagements": engagements,
        "stepping_back": "n2",
        "errors": {"confirm": "Bitte bestätigen Sie, dass Sie zurücktreten möchten."},
    }
    html = pages.render("de", "engagements.html", context)
    assert html.count("<details open>") == 1 and html.count("<details>") == 1
    assert html.index("<details open>") > html.index("Lernhilfe Deutsch")  # the second engagement's
    assert '<p class="error" id="confirm-n2-error">Bitte bestätigen Sie, dass Sie zurücktreten möchten.</p>' in html
    invalid = 'aria-invalid="true" aria-describedby="confirm-n2-error"'
    assert f'id="confirm-n2" name="confirm" value="yes" required {invalid}' in html
    assert 'id="confirm-n1" name="confirm" value="yes" required>' in html


def test_the_language_links_of_a_page_answering_a_form_lead_to_a_page() -> None:
    """A language link is a GET; on a page answering a POST it would GET the form's address,
    which takes only POST (405). Every form address of the portal: its links lead to a page."""
    import importlib
    import pkgutil

    from fastapi.routing import APIRoute
    from starlette.requests import Request
    from starlette.routing import Match

    from lotse_portal import api

    app = create_app(PortalSettings(jwt_issuer="http://127.0.0.1:9", mongo_url="mongodb://127.0.0.1:9"))

    def request(method: str, path: str) -> Request:
        return Request({"type": "http", "method": method, "path": path, "root_path": "", "app": app, "headers": []})

    def is_page(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "app": app, "headers": []}
        return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)

    routes = [
        route
        for module in pkgutil.iter_modules(api.__path__)
        for route in getattr(importlib.import_module(f"lotse_portal.api.{module.name}"), "router", api.router).routes
        if isinstance(route, APIRoute)
    ]
    forms = [route for route in routes if "POST" in (route.methods or ()) and not is_page(route.path)]
    assert len(forms) > 10 and any(route.path == "/my-data/delete" for route in forms)
    for route in forms:
        path = route.path_format.replace("{", "").replace("}", "")  # a value for each parameter
        target = language_path(request("POST", path))
        assert is_page(target), (route.path, target)
    assert language_path(request("POST", "/engagements/calendar-feed")) == "/engagements"
    assert language_path(request("POST", "/engagements/n1/step-back")) == "/engagements"
    assert language_path(request("POST", "/my-data/delete")) == "/my-data"
    assert language_path(request("GET", "/engagements")) == ""  # the page itself: "?lang=xx"
