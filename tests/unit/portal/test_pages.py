"""Every page renders in every language, with its language and direction, and escapes what
people typed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lotse_portal import domain, pages
from lotse_portal.api.profile import choices
from lotse_portal.store import SignedInUser

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
    "status": "proposed",
    "distance_km": 3.4,
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
COMMON = {
    "user": USER,
    "csrf": "token",
    "path": "/home",
    "flash": None,
    "is_volunteer": True,
    "is_initiative_admin": False,
}
PAGES: dict[str, dict[str, Any]] = {
    "start.html": {"tenants": [{"slug": "lindenau", "name": "Lindenau"}], "user": None},
    "home.html": {
        "profile": {"contact": {"display_name": "Maria"}},
        "waiting": [PROPOSAL],
        "engaged": [PROPOSAL],
        "unread": 2,
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
        "facts": FACTS,
        "values": {"postcode": HOSTILE},
        "chosen": {},
        "errors": {"postcode": "Bitte geben Sie eine Postleitzahl mit fünf Ziffern an."},
        **choices(),
    },
    "organisation.html": {
        "organisation": {"name": "Lindenau hilft"},
        "volunteers": [{"contact": {"display_name": "Ali", "email": "a@example.org"}}],
        "needs": [{"category": "childcare", "description": "x", "status": "open"}],
    },
    "organisation_edit.html": {
        "values": {"name": HOSTILE, "districts": "Mitte, Nord"},
        "errors": {"contact_email": "Bitte prüfen Sie diese Angabe."},
    },
    "need_new.html": {
        "facts": FACTS,
        "values": {},
        "chosen": [],
        "errors": {},
        "categories": domain.NEED_CATEGORIES,
        "certificates": domain.CERTIFICATES,
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
    },
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
    on_disk = {path.name for path in (pages.HERE / "templates").glob("*.html")} - {"base.html", "macros.html"}
    assert on_disk == set(PAGES)


def test_a_field_error_sits_next_to_its_field_and_names_it_for_screen_readers() -> None:
    html = pages.render("de", "profile_new.html", {**COMMON, **PAGES["profile_new.html"]})
    assert 'id="postcode-error"' in html
    assert 'aria-describedby="postcode-hint postcode-error" aria-invalid="true"' in html
