"""The office's need form (issue 16, item 3), pure: the initiative's form and parser serve both,
a coordinator chooses the need's organisation among the tenant's, the contract's certificate
kinds are offered, and a need read back into the form saves as the same need."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_contracts.events.values import CertificateKind
from lotse_portal import domain, pages, places
from tests.unit.portal.test_domain import need_form
from tests.unit.portal.test_pages import COMMON, FACTS, HOSTILE

BERLIN = "Europe/Berlin"
OURS, THEIRS = "6f1c2a3b-0000-4000-8000-000000000001", "6f1c2a3b-0000-4000-8000-000000000002"
ORGANISATIONS = {OURS: "Tafel Nord", THEIRS: HOSTILE}


def test_a_coordinator_chooses_the_organisation_among_the_tenants_and_nothing_else() -> None:
    need, errors = domain.read_need_form(
        need_form(organisation_id=THEIRS), organisation_id="", skills=[], timezone=BERLIN, organisations=ORGANISATIONS
    )
    assert errors == {} and need is not None and need.body["organisation_id"] == THEIRS
    for chosen in ("", "6f1c2a3b-0000-4000-8000-000000000099"):
        need, errors = domain.read_need_form(
            need_form(organisation_id=chosen), organisation_id=OURS, skills=[], timezone=BERLIN, organisations={}
        )
        assert need is None and errors == {"organisation_id": "Bitte wählen Sie die Organisation aus der Liste."}
    # Without choices (an initiative admin) the form's field is ignored: the need is their own.
    need, errors = domain.read_need_form(
        need_form(organisation_id=THEIRS), organisation_id=OURS, skills=[], timezone=BERLIN
    )
    assert need is not None and need.body["organisation_id"] == OURS


def test_every_certificate_kind_of_the_contract_may_be_required_and_no_other() -> None:
    assert set(domain.CERTIFICATES) == {kind.value for kind in CertificateKind}
    for kind in CertificateKind:
        need, errors = domain.read_need_form(
            need_form(certificate_required=kind.value), organisation_id=OURS, skills=[], timezone=BERLIN
        )
        assert need is not None and need.body["certificate_required"] == kind.value
    _, errors = domain.read_need_form(
        need_form(certificate_required="swimming_badge"), organisation_id=OURS, skills=[], timezone=BERLIN
    )
    assert "certificate_required" in errors


def _registry_need(schedule: dict[str, Any]) -> dict[str, Any]:
    return {
        "need_id": "n1",
        "organisation_id": THEIRS,
        "category": "tutoring",
        "description": "Hausaufgabenhilfe am Nachmittag",
        "required_skills": ["tutoring"],
        "languages": [{"language": "uk", "min_level": "b1"}],
        "place": {"point": {"lat": 51.96, "lon": 7.62}, "postcode": "48143", "district": "Mitte"},
        "schedule": schedule,
        "volunteers_needed": 3,
        "certificate_required": "extended_police_certificate",
        "household_ref": "H-17",
        "status": "open",
    }


@pytest.mark.parametrize("kind", ["one_off", "weekly"])
def test_a_need_read_into_the_form_saves_as_the_same_need(kind: str) -> None:
    zone = ZoneInfo(BERLIN)
    day = (datetime.now(zone) + timedelta(days=10)).replace(hour=14, minute=30, second=0, microsecond=0)
    if kind == "one_off":
        schedule: dict[str, Any] = {
            "kind": "one_off",
            "start": day.isoformat(),
            "end": (day + timedelta(hours=2)).isoformat(),
        }
    else:
        weekday = day.strftime("%A").lower()
        slot = {"weekday": weekday, "start": "14:30:00", "end": "16:30:00"}
        ends_on = (day + timedelta(days=60)).date().isoformat()
        schedule = {"kind": "weekly", "slots": [slot], "starts_on": day.date().isoformat(), "ends_on": ends_on}
    found = _registry_need(schedule)
    values, chosen = domain.need_form_values(found, BERLIN)
    assert "street" not in values  # the street is not stored (only its point): never filled
    assert chosen == ["tutoring"] and values["organisation_id"] == THEIRS
    form = domain.FormData([*values.items(), *(("skills", slug) for slug in chosen)])
    need, errors = domain.read_need_form(
        form, organisation_id="", skills=["tutoring"], timezone=BERLIN, organisations=ORGANISATIONS
    )
    assert errors == {} and need is not None
    assert need.postcode == "48143" and need.street == ""
    expected = {key: found[key] for key in need.body if key != "schedule"}
    assert {key: value for key, value in need.body.items() if key != "schedule"} == expected
    if kind == "one_off":
        assert datetime.fromisoformat(need.body["schedule"]["start"]) == day
        assert datetime.fromisoformat(need.body["schedule"]["end"]) == day + timedelta(hours=2)
    else:
        assert need.body["schedule"] == schedule


def _context(**extra: Any) -> dict[str, Any]:
    return {
        **COMMON,
        "facts": FACTS,
        "values": {"organisation_id": THEIRS},
        "chosen": [],
        "errors": {},
        "asked": places.PlaceDecision(),
        "categories": domain.NEED_CATEGORIES,
        "certificates": domain.CERTIFICATES,
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
        **extra,
    }


@pytest.mark.parametrize("language", pages.LANGUAGES)
def test_the_office_form_offers_the_organisations_and_the_edit_page_says_what_happens_to_proposals(
    language: str,
) -> None:
    html = pages.render(
        language, "need_new.html", _context(form_action="/console/needs/new", organisation_choices=ORGANISATIONS)
    )
    assert 'action="/console/needs/new"' in html and 'id="organisation_id"' in html
    assert f'<option value="{THEIRS}" selected>' in html and HOSTILE not in html
    for label in domain.CERTIFICATES.values():
        assert pages.translate(language, label) in html
    edit = pages.render(
        language,
        "need_new.html",
        _context(
            form_action="/console/needs/n1/edit",
            editing=True,
            errors={"organisation_id": "Bitte wählen Sie die Organisation aus der Liste."},
        ),
    )
    assert 'action="/console/needs/n1/edit"' in edit and 'id="organisation_id"' not in edit
    promise = (
        "Wenn Sie den Bedarf ändern, prüft Lotse die offenen Vorschläge neu: Wer nicht mehr passt (etwa wegen "
        "Sprache, Nachweis, Zeit oder Ort), dessen Vorschlag zieht Lotse zurück. Werden mehr "
        "Freiwillige gebraucht, fragt Lotse weitere passende Menschen. Wer schon zugesagt hat, bleibt dabei."
    )
    assert pages.translate(language, promise) in edit
    assert pages.translate(language, "Änderungen speichern") in edit
    # The street is not stored: said only where the form has a street field (an address search).
    street = pages.translate(
        language,
        "Die Straße wird nicht gespeichert, nur der Ort. Lassen Sie die Postleitzahl, wie sie ist, "
        "und die Straße leer, bleibt der Ort derselbe.",
    )
    assert street not in edit and 'id="street"' not in edit
    with_street = _context(
        form_action="/console/needs/n1/edit", editing=True, facts=replace(FACTS, address_search=True)
    )
    html = pages.render(language, "need_new.html", with_street)
    assert street in html and 'id="street"' in html


def test_the_initiatives_form_is_unchanged_by_the_office_s() -> None:
    html = pages.render("de", "need_new.html", _context())
    assert 'action="/organisation/needs/new"' in html and 'id="organisation_id"' not in html
    assert "Einen Bedarf melden" in html and "Änderungen speichern" not in html
