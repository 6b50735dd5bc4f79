"""The coordination office's volunteers in a real browser, against the whole platform as `lotse up`
runs it, people signing in at the local OpenID provider (the helpers and the provider's accounts
are tests/e2e/test_portal_browser.py's and tests/e2e/test_console_browser.py's).

The coordinator finds volunteers by language (the right one and no other), records that they saw
a volunteer's extended police certificate, after which matching may propose the volunteer for a
need that requires one, and takes the check back again; enters themselves as a contact person and
becomes a volunteer's, which the volunteer reads on their overview with their checked
certificate; an initiative admin finds only their organisation's volunteers. The new pages are
checked with axe-core in all six languages on a 360 px phone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page

from lotse_cli.supervisor import Platform
from lotse_portal import pages
from lotse_portal.domain import LANGUAGES
from lotse_runtime import i18n
from tests.e2e.test_console_browser import signed_in
from tests.e2e.test_portal_browser import POSTCODES, Lotse, keep, onboarded, sign_up
from tests.support import waiting
from tests.support.browser import PHONE, assert_accessible, new_page, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-volunteers"  # on the browser modules' shared platform

POLICE = "extended_police_certificate"
IN_FIVE_YEARS = (datetime.now(UTC).date() + timedelta(days=5 * 365)).isoformat()
UNTIL_DE = i18n.format_date(date.fromisoformat(IN_FIVE_YEARS), "de")


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


@dataclass
class People:
    """Volunteers the office registered through the registry's API: three with the municipality,
    told apart by their Tigrinya (only Semhar speaks it at B2 or better), one of the initiative."""

    semhar: str
    yonas: str
    olena: str
    amal: str  # of the initiative "Portalia hilft"


@dataclass
class World:
    lotse: Lotse
    people: People


def register(lotse: Lotse, name: str, languages: list[tuple[str, str]], organisation_id: str | None = None) -> str:
    facts = lotse.http.get(f"{lotse.platform.url('registry')}/public/tenants/{TENANT}").raise_for_status().json()
    body: dict[str, Any] = {
        "contact": {
            "display_name": name,
            "email": f"{name.lower()}.{uuid.uuid4().hex[:6]}@{TENANT}.example",
            "preferred_language": "de",
            "channels": ["email"],
        },
        "skills": [],
        "languages": [{"language": code, "level": level} for code, level in languages],
        "home_area": {"postcode": POSTCODES[0][0]},
        "travel_radius_km": 10,
        "certificates": [],
        "consent": {"purposes": ["matching", "contact"], "text_version": facts["consent"]["version"]},
        "availability": {
            "weekly_slots": [
                {"weekday": day, "start": "08:00:00", "end": "12:00:00"}
                for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
            ],
            "max_concurrent_engagements": 2,
        },
        **({"organisation_id": organisation_id} if organisation_id else {}),
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/volunteers", "office", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["volunteer_id"])


@pytest.fixture(scope="module")
def world(browser_platform: Platform) -> World:
    lotse = onboarded(browser_platform, TENANT)
    people = People(
        semhar=register(lotse, "Semhar", [("ti", "c1"), ("de", "b1")]),
        yonas=register(lotse, "Yonas", [("ti", "a2"), ("de", "b2")]),
        olena=register(lotse, "Olena", [("uk", "native"), ("de", "b1")]),
        amal=register(lotse, "Amal", [("ar", "native"), ("de", "c1")], lotse.organisation_id),
    )
    return World(lotse, people)


async def call(lotse: Lotse, method: str, service: str, path: str, **kwargs: Any) -> Any:
    """An API call as the coordinator, off the event loop (the browser talks to it meanwhile)."""
    return await asyncio.to_thread(lotse.call, method, service, path, "office", **kwargs)


def report_need_requiring_the_certificate(lotse: Lotse) -> str:
    """A need in Tigrinya at B2 that requires an extended police certificate, on a weekday
    morning (when the volunteers here can)."""
    start = (datetime.now(UTC) + timedelta(days=6)).replace(hour=8, minute=0, second=0, microsecond=0)
    while start.weekday() > 4:
        start += timedelta(days=1)
    need = {
        "organisation_id": lotse.organisation_id,
        "category": "childcare",
        "description": "Kinderbetreuung während des Sprachkurses, auf Tigrinya.",
        "required_skills": [],
        "languages": [{"language": "ti", "min_level": "b2"}],
        "place": {"point": {"lat": POSTCODES[0][1], "lon": POSTCODES[0][2]}, "postcode": POSTCODES[0][0]},
        "schedule": {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        "volunteers_needed": 1,
        "certificate_required": POLICE,
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/needs", "office", json=need)
    assert response.status_code == 201, response.text
    return str(response.json()["need_id"])


async def proposable(lotse: Lotse, need_id: str, volunteer_id: str) -> bool:
    """Matching's view: the volunteer fits the need under its hard rules, or a round has proposed
    them meanwhile (the check reaches matching as an event)."""
    base = f"/tenants/{TENANT}/needs/{need_id}"
    staffing = await call(lotse, "GET", "matching", f"{base}/staffing")
    if staffing.status_code == 200 and volunteer_id in {p["volunteer_id"] for p in staffing.json()["proposals"]}:
        return True
    check = await call(lotse, "GET", "matching", f"{base}/candidates/{volunteer_id}")
    return check.status_code == 200 and check.json()["fits"] is True


async def certificate_rule_broken(lotse: Lotse, need_id: str, volunteer_id: str) -> bool:
    check = await call(lotse, "GET", "matching", f"/tenants/{TENANT}/needs/{need_id}/candidates/{volunteer_id}")
    return check.status_code == 200 and "certificate" in {rule["rule"] for rule in check.json()["broken_rules"]}


async def submit(page: Page, button: str) -> None:
    """Press a form's button and wait for the page that answers."""
    async with page.expect_navigation():
        await page.get_by_role("button", name=button).click()


async def at(page: Page, path: str) -> None:
    """Wait until the page shows ``path`` (a redirect after a form may add a fragment)."""
    await page.wait_for_url(lambda url: urlsplit(url).path == path)


async def card_names(page: Page) -> list[str]:
    return [name.strip() for name in await page.locator(".vol-card h3").all_inner_texts()]


async def test_the_coordinator_finds_a_volunteer_by_language_checks_their_certificate_and_takes_it_back(
    world: World, browser: Browser
) -> None:
    lotse, people = world.lotse, world.people
    need_id = await asyncio.to_thread(report_need_requiring_the_certificate, lotse)
    office = await signed_in(lotse, browser, "office")
    await office.get_by_role("link", name=_("de", "Freiwillige"), exact=True).first.click()
    await office.wait_for_url("**/console/volunteers")
    assert {"Semhar", "Yonas", "Olena"} <= set(await card_names(office))

    # Tigrinya at B2 or better: Semhar (C1), not Yonas (A2), not Olena (none).
    await office.select_option("#language", "ti")
    await office.select_option("#level", "b2")
    await submit(office, _("de", "Suchen"))
    await office.wait_for_url(lambda url: "language=ti" in url)
    assert await card_names(office) == ["Semhar"]
    card = await office.inner_text(".vol-card")
    assert _("de", "Tigrinya") in card and _("de", "C1 – sehr gute Kenntnisse") in card  # noqa: RUF001
    await keep(office, "volunteers-search")

    # Matching keeps her out of the need while no certificate of hers is checked.
    await waiting.eventually(
        lambda: certificate_rule_broken(lotse, need_id, people.semhar), timeout=90, interval=1.0, what="need known"
    )

    await office.get_by_role("link", name="Semhar").click()
    await at(office, f"/console/volunteers/{people.semhar}")
    assert _("de", "Noch keine Prüfung eingetragen.") in await office.inner_text("#checks")
    # A last day before the day it was seen: said next to the field, nothing recorded.
    await office.select_option("#kind", POLICE)
    await office.fill("#seen_on", datetime.now(UTC).date().isoformat())
    await office.fill("#valid_until", "2020-01-01")
    await submit(office, _("de", "Prüfung eintragen"))
    assert await office.inner_text("#valid_until-error") == _(
        "de", "„Gültig bis“ muss am oder nach dem Tag liegen, an dem Sie den Nachweis gesehen haben."
    )
    assert await office.get_attribute("#valid_until", "aria-invalid") == "true"
    listed = await call(lotse, "GET", "registry", f"/tenants/{TENANT}/volunteers/{people.semhar}/certificate-checks")
    assert listed.json()["items"] == []

    await office.fill("#valid_until", IN_FIVE_YEARS)
    await submit(office, _("de", "Prüfung eintragen"))
    await at(office, f"/console/volunteers/{people.semhar}")
    main = await office.inner_text("main")
    assert (
        _("de", "Die Prüfung ist eingetragen. Für Einsätze, die diesen Nachweis verlangen, zählt sie ab jetzt.") in main
    )
    checked = await office.inner_text(".vol-check.in-force")
    assert _("de", "Gesehen von Ihnen") in checked
    assert _("de", "geprüft bis %(date)s") % {"date": UNTIL_DE} in await office.inner_text("#checks")
    listed = await call(lotse, "GET", "registry", f"/tenants/{TENANT}/volunteers/{people.semhar}/certificate-checks")
    (stored,) = listed.json()["items"]
    assert (stored["kind"], stored["valid_until"], stored["status"]) == (POLICE, IN_FIVE_YEARS, "in_force")
    await keep(office, "volunteer-checked")

    # Now matching may propose her for the need that requires the certificate.
    assert await waiting.eventually(
        lambda: proposable(lotse, need_id, people.semhar), timeout=90, interval=1.0, what="proposable after the check"
    )
    # The search finds her among the checked ones, and not among those without a check.
    await office.goto(f"{lotse.portal}/console/volunteers?certificate=checked:{POLICE}")
    assert await card_names(office) == ["Semhar"]
    await office.goto(f"{lotse.portal}/console/volunteers?certificate=unchecked&language=ti")
    assert await card_names(office) == ["Yonas"]

    # Taking the check back needs a confirmation; then the certificate counts no more.
    await office.goto(f"{lotse.portal}/console/volunteers/{people.semhar}")
    control = f"revoke-{stored['check_id']}"
    await office.locator(".vol-check.in-force details summary").click()
    await office.select_option(f"#{control}-reason", "recorded_in_error")
    await submit(office, _("de", "Zurücknehmen"))
    assert await office.inner_text(f"#{control}-error") == _(
        "de", "Bitte bestätigen Sie, dass Sie diese Prüfung zurücknehmen."
    )
    assert await office.locator(f"#{control}-confirm").is_visible(), "the form stays open at its error"
    await office.check(f"#{control}-confirm")
    await submit(office, _("de", "Zurücknehmen"))
    await at(office, f"/console/volunteers/{people.semhar}")
    assert await office.locator(".vol-check.in-force").count() == 0
    assert _("de", "Versehentlich eingetragen") in await office.inner_text("#checks")
    await waiting.eventually(
        lambda: certificate_rule_broken(lotse, need_id, people.semhar),
        timeout=90,
        interval=1.0,
        what="the certificate rule after the revocation",
    )
    await office.context.close()


async def test_the_coordinator_becomes_a_volunteers_contact_person_whom_the_volunteer_sees(
    world: World, browser: Browser
) -> None:
    lotse = world.lotse
    volunteer = await new_page(browser, locale="de-DE")
    signed_up = await sign_up(lotse, volunteer)
    home = await volunteer.inner_text("main")
    assert _("de", "noch nicht geprüft — bitte zeigen Sie das Führungszeugnis der Koordinationsstelle") in home
    assert "Jana Weber" not in home
    volunteer_id = await asyncio.to_thread(volunteer_id_of, lotse, signed_up.email)

    office = await signed_in(lotse, browser, "office")
    await office.get_by_role("link", name=_("de", "Mein Eintrag als Ansprechperson")).first.click()
    await office.wait_for_url("**/console/staff/me")
    await office.fill("#name", "Jana Weber")
    await office.fill("#email", "kein Postfach")
    await submit(office, _("de", "Eintrag speichern"))
    assert await office.inner_text("#email-error") == _(
        "de", "Bitte geben Sie eine gültige E-Mail-Adresse an, z. B. name@example.org."
    )
    await office.fill("#email", f"jana.weber@{TENANT}.example")
    await office.fill("#phone", "+49 251 1234567")
    await submit(office, _("de", "Eintrag speichern"))
    await office.wait_for_url("**/console/staff/me")
    assert _("de", "Ihr Eintrag ist gespeichert. Sie können jetzt als Ansprechperson gewählt werden.") in (
        await office.inner_text("main")
    )
    staff = (await call(lotse, "GET", "registry", f"/tenants/{TENANT}/staff")).json()["items"]
    assert [(s["name"], s["email"], s["phone"]) for s in staff] == [
        ("Jana Weber", f"jana.weber@{TENANT}.example", "+492511234567")
    ]

    # The volunteer's page, found by name, names her as the contact person.
    await office.goto(f"{lotse.portal}/console/volunteers?name={signed_up.name}")
    await office.locator(f"a[href='/console/volunteers/{volunteer_id}']").click()
    await at(office, f"/console/volunteers/{volunteer_id}")
    await office.select_option("#staff_id", label=f"Jana Weber ({_('de', 'Sie')})")
    await submit(office, _("de", "Ansprechperson speichern"))
    await at(office, f"/console/volunteers/{volunteer_id}")
    assert "Jana Weber" in await office.inner_text("#contact-person")
    # And checks the certificate the volunteer showed.
    await office.select_option("#kind", POLICE)
    await office.fill("#valid_until", IN_FIVE_YEARS)
    await submit(office, _("de", "Prüfung eintragen"))
    await at(office, f"/console/volunteers/{volunteer_id}")
    await keep(office, "volunteer-contact-person")

    # The volunteer reads both on their overview.
    await volunteer.goto(f"{lotse.portal}/home")
    home = await volunteer.inner_text("main")
    assert "Jana Weber" in home and f"jana.weber@{TENANT}.example" in home and "+492511234567" in home
    assert _("de", "von der Koordinationsstelle geprüft bis %(date)s") % {"date": UNTIL_DE} in home
    await keep(volunteer, "home-contact-person")
    await volunteer.context.close()
    await office.context.close()


def volunteer_id_of(lotse: Lotse, email: str) -> str:
    """The id of the volunteer with this e-mail address, as the coordinator reads them."""
    base = f"/tenants/{TENANT}/volunteers"
    listed = lotse.call("GET", "registry", base, "office", params={"limit": 200}).json()["items"]
    for item in listed:
        found = lotse.call("GET", "registry", f"{base}/{item['volunteer_id']}", "office").json()
        if (found.get("contact") or {}).get("email") == email:
            return str(found["volunteer_id"])
    raise AssertionError(f"no volunteer with {email}")


async def test_an_initiative_admin_finds_only_their_organisations_volunteers(world: World, browser: Browser) -> None:
    lotse, people = world.lotse, world.people
    initiative = await signed_in(lotse, browser, "initiative")
    await initiative.goto(f"{lotse.portal}/console/volunteers")
    assert await card_names(initiative) == ["Amal"]
    # No name search for initiatives; a language filter keeps to their volunteers as well.
    assert await initiative.locator("#name").count() == 0
    await initiative.goto(f"{lotse.portal}/console/volunteers?language=de")
    assert await card_names(initiative) == ["Amal"]
    await initiative.goto(f"{lotse.portal}/console/volunteers?language=ti")
    assert await card_names(initiative) == []
    assert _("de", "Niemand passt zu allen diesen Filtern.") in await initiative.inner_text("main")

    await initiative.goto(f"{lotse.portal}/console/volunteers/{people.amal}")
    assert await initiative.inner_text("h1") == "Amal"
    assert await initiative.locator("#staff_id").count() == 0, "contact persons are the office's to name"
    assert await initiative.locator("#kind").count() == 1, "the initiative checks its own volunteers' certificates"
    for other in (people.semhar, people.olena):
        response = await initiative.goto(f"{lotse.portal}/console/volunteers/{other}")
        assert response is not None and response.status == 404
        assert "Semhar" not in await initiative.inner_text("main")
    await initiative.context.close()


async def test_the_volunteer_pages_are_accessible_in_every_language_and_fit_a_phone(
    world: World, browser: Browser
) -> None:
    lotse, people = world.lotse, world.people
    office = await signed_in(lotse, browser, "office", PHONE)
    initiative = await signed_in(lotse, browser, "initiative", PHONE)
    volunteer = await new_page(browser, PHONE, locale="de-DE")
    await sign_up(lotse, volunteer)
    viewers: list[tuple[Page, list[str]]] = [
        (
            office,
            [
                "/console/volunteers",
                "/console/volunteers?language=ti&level=b2&postcode=48143&radius=5&weekday=monday&at=09:00",
                "/console/volunteers?postcode=1&at=25:00",  # errors next to their fields
                f"/console/volunteers/{people.semhar}",
                "/console/staff/me",
            ],
        ),
        (initiative, ["/console/volunteers", f"/console/volunteers/{people.amal}"]),
        (volunteer, ["/home"]),
    ]
    failures: list[str] = []
    for language in LANGUAGES:
        direction = "rtl" if language in ("ar", "fa") else "ltr"
        for viewer, paths in viewers:
            for path in paths:
                joined = "&" if "?" in path else "?"
                response = await viewer.goto(f"{lotse.portal}{path}{joined}lang={language}")
                assert response is not None and response.status == 200, (path, language)
                assert await viewer.get_attribute("html", "lang") == language, path
                assert await viewer.get_attribute("html", "dir") == direction, path
                await assert_accessible(viewer)
                if language == "ar" and path.startswith("/console/volunteers/"):
                    await keep(viewer, f"volunteer-phone-ar-{'office' if viewer is office else 'initiative'}")
                width = await scroll_width(viewer)
                if width > PHONE.width:
                    failures.append(f"{path} in {language}: {width} px wide")
    assert failures == []
    for viewer, _paths in viewers:
        await viewer.context.close()


async def test_the_office_produces_the_persons_export_on_their_written_request(world: World, browser: Browser) -> None:
    """Issue 18, item 6: the volunteer's download holds what every service keeps about them (secrets
    named, not shown), and /my-data says what it holds; the office produces the same for the person
    only after confirming a written request and its date (refusals next to their fields), and the
    file names who produced it."""
    lotse = world.lotse
    volunteer = await new_page(browser, locale="de-DE")
    signed_up = await sign_up(lotse, volunteer)
    volunteer_id = await asyncio.to_thread(volunteer_id_of, lotse, signed_up.email)
    await volunteer.goto(f"{lotse.portal}/my-data")
    assert _("de", "Ihren Kalender-Link und Ihre Anmeldungen im Portal") in await volunteer.inner_text("main")
    await assert_accessible(volunteer)
    own = await (await volunteer.request.get(f"{lotse.portal}/my-data/export")).json()
    held = own["held_by_service"]
    assert {held[name]["service"] for name in ("registry", "matching", "notifications")} == {
        "registry",
        "matching",
        "notifications",
    }
    assert held["registry"]["volunteer"]["records"][0]["contact"]["email"] == signed_up.email
    assert held["registry"]["consents"]["records"], "the consent given at sign-up"
    sessions = held["portal"]["sessions"]["records"]
    assert sessions and all(s["user"]["access_token"] == "(withheld)" for s in sessions)
    assert all(s["user"]["volunteer_id"] == volunteer_id for s in sessions)

    office = await signed_in(lotse, browser, "office")
    await office.goto(f"{lotse.portal}/console/volunteers/{volunteer_id}")
    button = _("de", "Auskunftsdatei erstellen")
    await submit(office, button)
    assert await office.inner_text("#written_request-error") == _(
        "de", "Bitte bestätigen Sie, dass ein schriftlicher Antrag der Person vorliegt."
    )
    assert await office.inner_text("#request_date-error") == _(
        "de", "Bitte geben Sie an, wann der Antrag eingegangen ist, z. B. 2026-12-01."
    )
    await assert_accessible(office)
    received = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    await office.check("#written_request")
    await office.fill("#request_date", received)
    async with office.expect_download() as started:
        await office.get_by_role("button", name=button).click()
    download = await started.value
    produced = json.loads(await asyncio.to_thread((await download.path()).read_text, "utf-8"))
    assert produced["volunteer_id"] == volunteer_id
    assert produced["produced_by"]["request_received_on"] == received and produced["produced_by"]["name"]
    assert produced["produced_by"]["staff_id"] != volunteer_id
    assert produced["held_by_service"]["registry"]["volunteer"] == held["registry"]["volunteer"]
    assert produced["held_by_service"]["registry"]["consents"] == held["registry"]["consents"]
    await volunteer.context.close()
    await office.context.close()
