"""A volunteer's profile after sign-up, in a real browser against the whole platform (issue 15,
finding 1, 2 and 4): they choose an initiative at sign-up, switch the form's language after a
field error without losing what they typed, change their postcode and times on /profile (and
matching measures from the new place), and withdraw their consent (and matching proposes them
nothing any more). The new and changed pages pass axe-core in all six languages on a 360 px phone.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page

from lotse_cli.supervisor import Platform
from lotse_matching.candidates import rough_distance_km
from lotse_portal.domain import LANGUAGES
from tests.e2e.test_portal_browser import (
    POSTCODES,
    Lotse,
    Volunteer,
    _,
    create_account,
    fill_profile,
    onboarded,
    soon,
)
from tests.support import waiting
from tests.support.browser import PHONE, assert_accessible, new_page, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-profile"  # on the browser modules' shared platform


@pytest.fixture(scope="module")
def lotse(browser_platform: Platform) -> Lotse:
    return onboarded(browser_platform, TENANT)


def volunteer_record(lotse: Lotse, email: str) -> dict[str, Any]:
    """The volunteer with this address as the registry shows them to whoever may see their
    contact: the office for its own volunteers, the initiative's admin for the initiative's."""
    base = f"/tenants/{TENANT}/volunteers"
    records = []
    for reader in ("office", "initiative"):
        listed = lotse.call("GET", "registry", base, reader, params={"limit": 200}).json()["items"]
        records += [lotse.call("GET", "registry", f"{base}/{item['volunteer_id']}", reader).json() for item in listed]
    found = list({r["volunteer_id"]: r for r in records if (r.get("contact") or {}).get("email") == email}.values())
    assert len(found) == 1, f"{email} is registered once"
    return found[0]


def need_in_pashto(lotse: Lotse, description: str) -> str:
    """A need at the centre of the first postcode on a weekday morning, in Pashto (only these
    volunteers speak it)."""
    start = soon()
    need = {
        "organisation_id": lotse.organisation_id,
        "category": "translation",
        "description": description,
        "required_skills": [],
        "languages": [{"language": "ps", "min_level": "b1"}],
        "place": {"point": {"lat": POSTCODES[0][1], "lon": POSTCODES[0][2]}, "postcode": POSTCODES[0][0]},
        "schedule": {"kind": "one_off", "start": start.isoformat(), "end": start.replace(hour=11).isoformat()},
        "volunteers_needed": 1,
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/needs", "office", json=need)
    assert response.status_code == 201, response.text
    need_id: str = response.json()["need_id"]
    return need_id


async def matching_check(lotse: Lotse, need_id: str, volunteer_id: str, probe: Any, what: str) -> dict[str, Any]:
    """Matching's dry run for the volunteer and the need, once ``probe`` holds for it."""

    async def checked() -> dict[str, Any] | None:
        path = f"/tenants/{TENANT}/needs/{need_id}/candidates/{volunteer_id}"
        response = lotse.call("GET", "matching", path, "office")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if probe(body) else None

    return await waiting.eventually(checked, timeout=90, interval=0.5, what=what)


async def distance_on_needs_page(lotse: Lotse, page: Page, expected: float) -> float:
    """The distance matching gives for the Pashto need on the volunteer's open needs, once it is
    ``expected`` (the rough distance: a multiple of 0.5 km)."""

    async def shown() -> tuple[float] | None:  # a tuple: 0.0 km is a distance, not a miss
        await page.goto(f"{lotse.portal}/needs?lang=de")
        text = await page.inner_text("main")
        found = re.search(r"Jobcenter.*?Entfernung: ([0-9]+),([0-9]) km", text, re.S)
        if found is None:
            return None
        km = float(f"{found.group(1)}.{found.group(2)}")
        return (km,) if abs(km - expected) <= 0.05 else None

    (km,) = await waiting.eventually(shown, timeout=90, interval=1.0, what=f"the need at {expected:.1f} km")
    return km


async def signed_up(lotse: Lotse, page: Page, *, initiative: bool = False) -> Volunteer:
    volunteer = await create_account(lotse, page)
    await page.goto(f"{lotse.portal}/profile/new?lang=de")
    await fill_profile(page, volunteer)
    await page.fill("#postcode", POSTCODES[0][0])
    if initiative:
        await page.select_option("#organisation_id", lotse.organisation_id)
    await page.get_by_role("button", name="Profil anlegen").click()
    await page.wait_for_url("**/home")
    return volunteer


async def test_a_volunteer_chooses_an_initiative_and_switches_language_after_an_error_keeping_their_input(
    lotse: Lotse, browser: Any
) -> None:
    page = await new_page(browser, PHONE, locale="de-DE")
    volunteer = await create_account(lotse, page)
    await page.goto(f"{lotse.portal}/profile/new?lang=de")
    await fill_profile(page, volunteer)
    await page.fill("#postcode", "99999")
    await page.fill("#phone", "+49151 1234567")
    await page.select_option("#organisation_id", lotse.organisation_id)
    await page.get_by_role("button", name="Profil anlegen").click()
    assert await page.inner_text("#postcode-error") == _(
        "de", "Diese Postleitzahl kennen wir in Ihrer Kommune nicht. Bitte prüfen Sie sie."
    )

    # The form's own language button: the same form in Ukrainian, with everything typed kept.
    async with page.expect_navigation():
        await page.locator("form button[name=lang][value=uk]").click()
    assert await page.get_attribute("html", "lang") == "uk"
    assert await page.input_value("#email") == volunteer.email
    assert await page.input_value("#phone") == "+49151 1234567"
    assert await page.input_value("#postcode") == "99999"
    assert await page.input_value("#level_ps") == "b2"
    assert await page.is_checked("#slot-monday-morning") and await page.is_checked("#consent-matching")
    assert await page.input_value("#organisation_id") == lotse.organisation_id
    assert _("uk", "Profil anlegen") in await page.inner_text("form > button.button")

    await page.fill("#postcode", POSTCODES[0][0])
    await page.locator("form > button.button").click()
    await page.wait_for_url("**/home")
    record = volunteer_record(lotse, volunteer.email)
    assert record["organisation_id"] == lotse.organisation_id, "the registry records the chosen initiative"
    # The initiative admin reads them among their organisation's volunteers.
    listed = lotse.call("GET", "registry", f"/tenants/{TENANT}/volunteers", "initiative").json()["items"]
    assert record["volunteer_id"] in [item["volunteer_id"] for item in listed]
    await page.context.close()


async def test_a_volunteer_changes_place_and_times_then_withdraws_consent_and_is_proposed_nothing(
    lotse: Lotse, browser: Any
) -> None:
    page = await new_page(browser, PHONE, locale="de-DE")
    volunteer = await signed_up(lotse, page)
    volunteer_id = volunteer_record(lotse, volunteer.email)["volunteer_id"]
    need_id = need_in_pashto(lotse, "Übersetzen beim Jobcenter, Paschtu und Deutsch.")
    # Before committing, a volunteer reads the rough distance (issue 18): to the need's ~1 km cell, in 0.5 km steps.
    at_home = rough_distance_km((POSTCODES[0][1], POSTCODES[0][2]), (POSTCODES[0][1], POSTCODES[0][2]))
    assert await distance_on_needs_page(lotse, page, at_home) == pytest.approx(at_home, abs=0.05)

    # /profile: the sign-up form, filled from the registry's record.
    await page.get_by_role("link", name="Profil bearbeiten").first.click()
    await page.wait_for_url("**/profile")
    assert await page.input_value("#email") == volunteer.email
    assert await page.input_value("#postcode") == POSTCODES[0][0]
    assert await page.input_value("#level_ps") == "b2"
    assert await page.is_checked("#slot-friday-evening") and await page.is_checked("#channel-email")
    assert await page.locator("#consent-matching").count() == 0, "consent is not asked again on an edit"
    await page.fill("#postcode", POSTCODES[1][0])
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday"):
        await page.uncheck(f"#slot-{day}-evening")
    await page.fill("#max_concurrent_engagements", "3")
    await page.get_by_role("button", name="Änderungen speichern").click()
    await page.wait_for_url("**/home")
    assert _("de", "Ihr Profil ist gespeichert.") in await page.inner_text("main")
    record = volunteer_record(lotse, volunteer.email)
    assert record["home_area"]["postcode"] == POSTCODES[1][0]
    assert len(record["availability"]["weekly_slots"]) == 10
    assert record["availability"]["max_concurrent_engagements"] == 3

    # Matching measures from the new postcode.
    moved = rough_distance_km((POSTCODES[1][1], POSTCODES[1][2]), (POSTCODES[0][1], POSTCODES[0][2]))
    assert moved != at_home, "the second postcode lies in another rough distance"
    assert await distance_on_needs_page(lotse, page, moved) == pytest.approx(moved, abs=0.05)

    # A field error on /profile stands next to the field, the rest stays as typed.
    await page.goto(f"{lotse.portal}/profile")
    await page.fill("#travel_radius_km", "500")
    await page.get_by_role("button", name="Änderungen speichern").click()
    assert await page.inner_text("#travel_radius_km-error") == _("de", "Bitte eine Zahl von 0 bis 200.")
    async with page.expect_navigation():
        await page.locator("form button[name=lang][value=ar]").click()
    assert await page.get_attribute("html", "dir") == "rtl"
    assert await page.input_value("#travel_radius_km") == "500"
    assert await page.input_value("#postcode") == POSTCODES[1][0]

    # Withdrawing consent: a confirmation first, then no more proposals.
    await page.goto(f"{lotse.portal}/my-data?lang=de")
    await page.get_by_role("button", name="Einwilligung widerrufen").click()
    assert await page.inner_text("#withdraw-error") == _(
        "de", "Bitte bestätigen Sie, dass Sie Ihre Einwilligung widerrufen möchten."
    )
    assert volunteer_record(lotse, volunteer.email)["status"] == "active", "nothing happens unconfirmed"
    await page.check("#withdraw")
    await page.get_by_role("button", name="Einwilligung widerrufen").click()
    await page.wait_for_url("**/home")
    assert _("de", "Ihre Einwilligung ist widerrufen") in await page.inner_text("main")
    assert volunteer_record(lotse, volunteer.email)["status"] == "withdrawn"
    withdrawn = await matching_check(
        lotse, need_id, volunteer_id, lambda body: not body["fits"], "matching no longer proposing the volunteer"
    )
    assert "consent" in [rule["rule"] for rule in withdrawn["broken_rules"]]
    # A new need that fits them as well as before proposes nobody to them.
    later = need_in_pashto(lotse, "Übersetzen im Rathaus, Paschtu und Deutsch.")
    refused = await matching_check(lotse, later, volunteer_id, lambda body: True, "matching knowing the new need")
    assert not refused["fits"]
    # The edit form is gone for a withdrawn profile (the registry changes it no more).
    await page.goto(f"{lotse.portal}/profile")
    await page.wait_for_url("**/home")
    await page.context.close()


async def test_the_profile_pages_are_accessible_in_every_language_on_a_phone(lotse: Lotse, browser: Any) -> None:
    page = await new_page(browser, PHONE, locale="de-DE")
    newcomer = await new_page(browser, PHONE, locale="de-DE")
    await signed_up(lotse, page, initiative=True)
    await create_account(lotse, newcomer)
    failures: list[str] = []
    for language in LANGUAGES:
        for viewer, path in ((newcomer, "/profile/new"), (page, "/profile"), (page, "/my-data"), (page, "/home")):
            await viewer.goto(f"{lotse.portal}{path}?lang={language}")
            assert await viewer.get_attribute("html", "lang") == language, path
            await assert_accessible(viewer)
            if await scroll_width(viewer) > PHONE.width:
                failures.append(f"{path} in {language}")
        # With a field error and the language switched inside the form.
        await page.goto(f"{lotse.portal}/profile?lang=de")
        await page.fill("#travel_radius_km", "")
        await page.get_by_role("button", name="Änderungen speichern").click()
        async with page.expect_navigation():
            await page.locator(f"form button[name=lang][value={language}]").click()
        assert await page.get_attribute("html", "lang") == language
        await assert_accessible(page)
        if await scroll_width(page) > PHONE.width:
            failures.append(f"/profile with an error in {language}")
    assert failures == []
    await page.context.close()
    await newcomer.context.close()
