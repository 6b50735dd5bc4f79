"""Hours in a real browser on a 360 px phone, against the whole platform as `lotse up` runs it,
people signing in at the local OpenID provider (the helpers and the provider's accounts are
tests/e2e/test_portal_browser.py's).

A volunteer accepts a proposal (the mail's button), logs hours from their engagements page ("Stunden eintragen"; a
time of nothing is named next to its field), the coordinator finds them on the console's page,
is told next to the field that a rejection needs a reason, confirms them, and the volunteer sees
the confirmed total, the year's confirmation list with the municipality's name, and the hours in
the download of their data. The new pages
are checked with axe-core in German and Arabic.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform
from lotse_portal import pages
from tests.e2e.journey import eventually
from tests.e2e.test_portal_browser import (
    PASSWORD,
    POSTCODES,
    Lotse,
    keep,
    onboarded,
    sign_in_at_provider,
    sign_up,
)
from tests.support import waiting
from tests.support.browser import PHONE, assert_accessible, new_page, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-hours"  # on the browser modules' shared platform

BERLIN = ZoneInfo("Europe/Berlin")
DESCRIPTION = "Hausaufgabenhilfe am Nachmittag, auf Arabisch und Deutsch."


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


@pytest.fixture(scope="module")
def lotse(browser_platform: Platform) -> Lotse:
    return onboarded(browser_platform, TENANT)


def weekly_need_from_today(lotse: Lotse) -> None:
    """A weekly need that starts today: its days are the volunteer's from the day they accept."""
    today = datetime.now(BERLIN).date()
    need = {
        "organisation_id": lotse.organisation_id,
        "category": "tutoring",
        "description": DESCRIPTION,
        "required_skills": [],
        "languages": [{"language": "ar", "min_level": "b1"}],
        "place": {"point": {"lat": POSTCODES[0][1], "lon": POSTCODES[0][2]}, "postcode": POSTCODES[0][0]},
        "schedule": {
            "kind": "weekly",
            "slots": [{"weekday": "wednesday", "start": "09:00:00", "end": "11:00:00"}],
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=60)).isoformat(),
        },
        "volunteers_needed": 1,
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/needs", "office", json=need)
    assert response.status_code == 201, response.text


async def checked(page: Page, url: str, languages: tuple[str, ...] = ("de", "ar")) -> None:
    """The page at ``url`` passes axe-core and fits the phone, in each language; left in German."""
    for language in languages:
        await page.goto(f"{url}{'&' if '?' in url else '?'}lang={language}")
        assert await page.get_attribute("html", "lang") == language
        assert await page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
        await assert_accessible(page)
        assert await scroll_width(page) <= PHONE.width, f"{url} in {language}"
    await page.goto(f"{url}{'&' if '?' in url else '?'}lang=de")


async def test_a_volunteer_logs_hours_the_office_confirms_them_and_the_total_counts(
    lotse: Lotse, browser: Browser
) -> None:
    page = await new_page(browser, PHONE, locale="de-DE")
    volunteer = await sign_up(lotse, page)
    weekly_need_from_today(lotse)

    # The volunteer says yes through the proposal mail's button.
    def proposal_mail() -> list[dict[str, Any]]:
        return [m for m in lotse.mails_to(volunteer.email) if ACCEPT_LINK.search(m["text"] or "")]

    mail = eventually("the proposal mail", proposal_mail)[0]
    link = ACCEPT_LINK.search(mail["text"])
    assert link is not None
    await page.goto(f"{link.group(1)}?choice=accept")
    await page.locator("button[value=accept]").click()
    await page.wait_for_load_state()

    async def engaged() -> bool:
        await page.goto(f"{lotse.portal}/engagements")
        return DESCRIPTION in await page.inner_text("main")

    await waiting.eventually(engaged, timeout=90, interval=1.0, what="the engagement in the portal")

    # From the engagement to the hours form, the need chosen and today's date filled in.
    await page.get_by_role("link", name=_("de", "Stunden eintragen")).first.click()
    await page.wait_for_url("**/hours?need=*")
    today = datetime.now(BERLIN).date()
    assert await page.input_value("#date") == today.isoformat()
    assert DESCRIPTION[:30] in await page.locator("#need_id option:checked").inner_text()
    await checked(page, page.url.split("#")[0])

    # No time given: the message stands next to the duration, nothing is logged.
    await page.get_by_role("button", name=_("de", "Stunden eintragen")).click()
    assert await page.inner_text("#duration-error") == _("de", "Bitte geben Sie an, wie lange Sie geholfen haben.")
    await assert_accessible(page)
    await page.fill("#hours", "2")
    await page.fill("#minutes", "30")
    await page.fill("#note", "Mathe und Deutsch mit zwei Kindern")
    await page.get_by_role("button", name=_("de", "Stunden eintragen")).click()
    await page.wait_for_url("**/hours#entries")
    main = await page.inner_text("main")
    assert _("de", "Ihre Stunden sind eingetragen. Die Koordination oder Ihre Initiative bestätigt sie.") in main
    assert "2 Std. 30 Min." in main and _("de", "offen") in main
    # A second entry of the same day, to be corrected: its edit page too in German and Arabic.
    await page.fill("#minutes", "45")
    await page.get_by_role("button", name=_("de", "Stunden eintragen")).click()
    await page.wait_for_url("**/hours#entries")
    edit = page.locator("a[href$='/edit']").first
    edit_url = f"{lotse.portal}{await edit.get_attribute('href')}"
    await checked(page, edit_url)
    await page.fill("#minutes", "50")
    await page.get_by_role("button", name=_("de", "Änderung speichern")).click()
    await page.wait_for_url("**/hours#entries")
    assert "50 Min." in await page.inner_text("main")
    await keep(page, "hours")

    # The coordinator's page: a rejection without a reason is named next to its field.
    office = await new_page(browser, PHONE, locale="de-DE")
    await office.goto(f"{lotse.portal}/signin?next=/console/hours")
    await sign_in_at_provider(office, lotse.login("office"), PASSWORD)
    await office.wait_for_url("**/console/hours")
    assert await office.locator("nav .menu a[href='/console/hours']").count() == 1
    cards = office.locator("li.hours-entry")
    assert await cards.count() == 2
    first = cards.filter(has_text="2 Std. 30 Min.")
    assert "Anna" in await first.inner_text() and "Mathe und Deutsch" in await first.inner_text()
    await checked(office, f"{lotse.portal}/console/hours")
    first = office.locator("li.hours-entry").filter(has_text="2 Std. 30 Min.")
    await first.locator("summary").click()
    await first.get_by_role("button", name=_("de", "Ablehnen"), exact=True).click()
    await office.wait_for_url("**/console/hours/*/reject")
    missing = office.locator("li.hours-entry").filter(has_text="2 Std. 30 Min.")
    reason_error = missing.locator("p.error")
    assert await reason_error.inner_text() == _("de", "Bitte schreiben Sie, warum Sie die Stunden nicht bestätigen.")
    assert await missing.locator("textarea").get_attribute("aria-invalid") == "true"
    await assert_accessible(office)
    await keep(office, "hours-office")
    await missing.get_by_role("button", name=_("de", "Bestätigen")).click()
    await office.wait_for_url("**/console/hours")
    assert _("de", "Die Stunden sind bestätigt.") in await office.inner_text("main")
    assert await office.locator("li.hours-entry").count() == 1

    # The volunteer sees them confirmed and counted, and the year's list names the municipality.
    await page.goto(f"{lotse.portal}/hours")
    main = await page.inner_text("main")
    assert _("de", "bestätigt") in main
    assert _("de", "Bestätigt: %(duration)s") % {"duration": "2 Std. 30 Min."} in main
    assert _("de", "Noch offen: %(duration)s") % {"duration": "50 Min."} in main
    await page.get_by_role("link", name=_("de", "Bestätigungsliste %(year)s öffnen") % {"year": today.year}).click()
    await page.wait_for_url(f"**/hours/confirmation/{today.year}")
    listed = await page.inner_text("main")
    assert "Stadt Portalia" in listed and "Anna" in listed and "2 Std. 30 Min." in listed
    assert "50 Min." not in listed, "only confirmed hours are on the list"
    await keep(page, "hours-confirmation")
    await checked(page, f"{lotse.portal}/hours/confirmation/{today.year}")

    # The hours are the volunteer's data: in the download of everything Lotse holds about them.
    await page.goto(f"{lotse.portal}/my-data")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name=_("de", "Meine Daten herunterladen")).click()
    download = await download_info.value
    exported = json.loads(await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8"))
    assert sorted((e["minutes"], e["state"]) for e in exported["hours"]) == [(50, "pending"), (150, "confirmed")]
    await page.context.close()
    await office.context.close()
