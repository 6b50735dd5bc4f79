"""The coordination office's console in a real browser, against the whole platform as `lotse up`
runs it, people signing in at the local OpenID provider (the helpers and the provider's accounts
are tests/e2e/test_portal_browser.py's).

The coordinator lands on the console, edits the guidance in German and a volunteer reads it
(escaped, in paragraphs, German where their language has no text of the municipality's); the
statistics say "fewer than 5" where the services withhold a count, on the page and in the CSV; an
initiative admin sees only their organisation's figures; a volunteer gets the 403 page on every
console page. Every new page is checked with axe-core in all six languages on a 360 px phone.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from lotse_cli.supervisor import Platform
from lotse_portal import pages
from lotse_portal.domain import LANGUAGES
from lotse_runtime.auth import Role
from tests.e2e.test_portal_browser import (
    PASSWORD,
    POSTCODES,
    Lotse,
    keep,
    onboarded,
    sign_in_at_provider,
    sign_up,
)
from tests.support.browser import DESKTOP, PHONE, Viewport, assert_accessible, new_page, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-console"  # on the browser modules' shared platform

AUTHORITIES = (
    "Termine beim Bürgerbüro bitte online buchen.\nDie Wartenummer gilt einen Tag.\n\nZweiter Absatz <b>fett</b>"
)
INSURANCE = "Sie sind über die Sammelversicherung der Stadt Portalia versichert."
CONSOLE_PAGES = ["/console", "/console/guidance", "/console/guidance/de", "/console/statistics", "/console/hours"]


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


@pytest.fixture(scope="module")
def lotse(browser_platform: Platform) -> Lotse:
    """The module's tenant, a coordinator, initiative A (``initiative``, five translation needs in
    Kreuzviertel) and initiative B (``initiative-b``, four childcare needs in Mitte), so that one
    category is shown and the other withheld."""
    lotse = onboarded(browser_platform, TENANT)
    other = {"name": "Portalia liest vor", "kind": "initiative", "contact_email": f"liest@{TENANT}.example"}
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/organisations", "office", json=other)
    assert response.status_code == 201, response.text
    lotse.add_account("initiative-b", Role.INITIATIVE_ADMIN, org=response.json()["organisation_id"])
    for count, organisation_id, category, where in (
        (5, lotse.organisation_id, "translation", POSTCODES[1]),
        (4, response.json()["organisation_id"], "childcare", POSTCODES[0]),
    ):
        for _number in range(count):
            report_need(lotse, organisation_id, category, where)
    return lotse


def report_need(lotse: Lotse, organisation_id: str, category: str, where: tuple[str, float, float, str]) -> None:
    """A need nobody in these tests fits (Ukrainian at C2), so that no proposal changes the counts."""
    start = (datetime.now(UTC) + timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
    postcode, lat, lon, district = where
    need = {
        "organisation_id": organisation_id,
        "category": category,
        "description": "Ein Bedarf für die Statistik.",
        "required_skills": [],
        "languages": [{"language": "uk", "min_level": "c2"}],
        "place": {"point": {"lat": lat, "lon": lon}, "postcode": postcode, "district": district},
        "schedule": {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        "volunteers_needed": 1,
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/needs", "office", json=need)
    assert response.status_code == 201, response.text


async def signed_in(lotse: Lotse, browser: Browser, username: str, viewport: Viewport = DESKTOP) -> Page:
    """A page of ``username``, signed in through the provider; home is where the portal sends them."""
    page = await new_page(browser, viewport, locale="de-DE")
    await page.goto(f"{lotse.portal}/signin?next=/home")
    await sign_in_at_provider(page, lotse.login(username), PASSWORD)
    await page.wait_for_url(lambda url: "/signin" not in url and lotse.portal in url)
    return page


async def _section(page: Page, topic: str) -> str:
    return await page.inner_text(f"section[aria-labelledby='topic-{topic}']")


async def test_the_coordinator_edits_the_guidance_in_german_and_a_volunteer_reads_it(
    lotse: Lotse, browser: Browser
) -> None:
    office = await signed_in(lotse, browser, "office")
    assert office.url.endswith("/console")
    assert await office.inner_text("h1") == _("de", "Koordination")
    # Only pages that exist are in the menu, and each of them answers.
    menu = [await link.get_attribute("href") for link in await office.locator("nav .menu a").all()]
    assert menu == [
        "/console",
        "/console/volunteers",
        "/console/guidance",
        "/console/questions",
        "/console/statistics",
        "/console/hours",
    ]
    for path in menu:
        assert (await office.request.get(f"{lotse.portal}{path}")).status == 200, path
    await keep(office, "console")

    await office.get_by_role("link", name=_("de", "Leitfaden"), exact=True).first.click()
    await office.wait_for_url("**/console/guidance")
    await office.locator("a[href='/console/guidance/de']").click()
    await office.wait_for_url("**/console/guidance/de")
    await office.fill("#topic-authorities", AUTHORITIES)
    await office.fill("#topic-insurance", INSURANCE)
    await office.get_by_role("button", name=_("de", "Leitfaden speichern")).click()
    await office.wait_for_url("**/console/guidance")
    assert _("de", "Der Leitfaden ist gespeichert. Freiwillige sehen ihn ab jetzt so.") in await office.inner_text(
        "main"
    )
    stored = lotse.call("GET", "notifications", "/guidance/de", "office").json()
    assert stored["overridden"] == ["authorities", "insurance"] and stored["authorities"] == AUTHORITIES
    # Too long: the message stands next to the field, nothing is saved.
    await office.goto(f"{lotse.portal}/console/guidance/de")
    await office.fill("#topic-contact", "x" * 1001)
    await office.get_by_role("button", name=_("de", "Leitfaden speichern")).click()
    assert await office.inner_text("#topic-contact-error") == _(
        "de", "Bitte kürzen Sie den Text auf höchstens 1000 Zeichen."
    )
    assert await office.get_attribute("#topic-contact", "aria-invalid") == "true"
    assert "contact" not in lotse.call("GET", "notifications", "/guidance/de", "office").json()["overridden"]
    await keep(office, "guidance-edit")

    # A volunteer reads it from their home: escaped, a paragraph per blank line.
    volunteer = await new_page(browser, locale="de-DE")
    await sign_up(lotse, volunteer)
    await volunteer.get_by_role("link", name=_("de", "Leitfaden lesen")).click()
    await volunteer.wait_for_url("**/guidance")
    authorities = volunteer.locator("section[aria-labelledby='topic-authorities'] p")
    assert await authorities.count() == 2
    assert (
        await authorities.nth(0).inner_text()
        == "Termine beim Bürgerbüro bitte online buchen.\nDie Wartenummer gilt einen Tag."
    )
    assert await authorities.nth(1).inner_text() == "Zweiter Absatz <b>fett</b>"
    assert await volunteer.locator("main b").count() == 0
    assert INSURANCE in await _section(volunteer, "insurance")
    await keep(volunteer, "guidance")
    # In Persian: the municipality wrote no Persian text about the authorities, so its German one
    # (marked as German); the insurance text is Lotse's Persian default, as the German is the municipality's own.
    await volunteer.goto(f"{lotse.portal}/guidance?lang=fa")
    german = volunteer.locator("section[aria-labelledby='topic-authorities'] .guidance-text")
    assert await german.get_attribute("lang") == "de" and await german.get_attribute("dir") == "ltr"
    assert INSURANCE not in await _section(volunteer, "insurance")
    assert (
        await volunteer.locator("section[aria-labelledby='topic-insurance'] .guidance-text").get_attribute("lang")
        is None
    )

    # Back to the default: the volunteer reads Lotse's text again.
    await office.goto(f"{lotse.portal}/console/guidance/de")
    await office.check("#reset-insurance")
    await office.get_by_role("button", name=_("de", "Leitfaden speichern")).click()
    await office.wait_for_url("**/console/guidance")
    await volunteer.goto(f"{lotse.portal}/guidance?lang=de")
    assert INSURANCE not in await _section(volunteer, "insurance")
    assert "Bürgerbüro" in await _section(volunteer, "authorities")

    # The console is not the volunteer's: the 403 page, in their language.
    for path in [*CONSOLE_PAGES, "/console/statistics/volunteers.csv"]:
        response = await volunteer.goto(f"{lotse.portal}{path}")
        assert response is not None and response.status == 403, path
        assert await volunteer.inner_text("h1") == _("de", "Dafür fehlt Ihnen die Berechtigung"), path
    await volunteer.context.close()
    await office.context.close()


def _table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


async def _download(page: Page, slug: str) -> list[list[str]]:
    async with page.expect_download() as info:
        await page.locator(f"a[href='/console/statistics/{slug}.csv']").click()
    download = await info.value
    return _table(await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8"))


async def _row(page: Page, title: str, label: str) -> list[str]:
    table = page.locator("table.figures", has=page.locator("caption", has_text=title))
    row = table.locator("tbody tr", has=page.locator("th", has_text=label))
    return [cell.strip() for cell in await row.locator("th, td").all_inner_texts()]


async def test_statistics_withhold_small_counts_on_the_page_and_in_the_csv(lotse: Lotse, browser: Browser) -> None:
    office = await signed_in(lotse, browser, "office")
    await office.get_by_role("link", name=_("de", "Statistik"), exact=True).first.click()
    await office.wait_for_url("**/console/statistics")
    less = _("de", "weniger als 5")
    by_category = _("de", "Bedarfe nach Art der Hilfe")
    assert (await _row(office, by_category, _("de", "Übersetzen und Dolmetschen")))[:2] == [
        _("de", "Übersetzen und Dolmetschen"),
        "5",
    ]
    assert (await _row(office, by_category, _("de", "Kinderbetreuung")))[:2] == [_("de", "Kinderbetreuung"), less]
    by_district = _("de", "Bedarfe nach Stadtteil")
    assert (await _row(office, by_district, POSTCODES[1][3]))[:2] == [POSTCODES[1][3], "5"]
    assert (await _row(office, by_district, POSTCODES[0][3]))[:2] == [POSTCODES[0][3], less]
    # Nothing staffed yet: no time to staff is computed, and no hours are confirmed yet.
    assert _("de", "zu wenige für eine Auswertung") in await office.inner_text(
        "section[aria-labelledby='chart-time-to-staff']"
    )
    for chart in ("hours-by-month", "hours-by-category"):
        hours = await office.inner_text(f"section[aria-labelledby='chart-{chart}']")
        assert _("de", "Dazu gibt es noch keine Zahlen.") in hours, chart
    await keep(office, "statistics")

    rows = _table_by_label(await _download(office, "needs-by-category"))
    assert rows[_("de", "Übersetzen und Dolmetschen")][0] == "5"
    assert rows[_("de", "Kinderbetreuung")] == ["< 5", "< 5", "< 5"]
    volunteers = _table_by_label(await _download(office, "volunteers"))
    assert set(volunteers) >= {_("de", "registriert und aktiv"), _("de", "auf Wunsch gelöscht")}
    await office.context.close()

    # Initiative A sees its own five translation needs, nothing of initiative B's childcare needs.
    initiative = await signed_in(lotse, browser, "initiative")
    assert initiative.url.endswith("/console")
    menu = [await link.get_attribute("href") for link in await initiative.locator("nav .menu a").all()]
    assert menu == [
        "/console",
        "/console/volunteers",
        "/organisation",
        "/organisation/needs/new",
        "/console/statistics",
        "/console/hours",
    ]
    await initiative.goto(f"{lotse.portal}/console/statistics")
    assert _("de", "Die Zahlen Ihrer Initiative in Lotse, seit Beginn.") in await initiative.inner_text("main")
    categories = initiative.locator("table.figures", has=initiative.locator("caption", has_text=by_category))
    assert [t.strip() for t in await categories.locator("tbody th").all_inner_texts()] == [
        _("de", "Übersetzen und Dolmetschen")
    ]
    assert _("de", "Kinderbetreuung") not in await initiative.inner_text("main")
    own = _table_by_label(await _download(initiative, "needs-by-category"))
    assert list(own) == [_("de", "Übersetzen und Dolmetschen")] and own[_("de", "Übersetzen und Dolmetschen")][0] == "5"
    # Erasures keep no organisation: an initiative's volunteer figures have none.
    assert _("de", "auf Wunsch gelöscht") not in _table_by_label(await _download(initiative, "volunteers"))
    guidance = await initiative.goto(f"{lotse.portal}/console/guidance")
    assert guidance is not None and guidance.status == 403
    await initiative.context.close()

    # Initiative B has four needs: withheld for them too.
    other = await signed_in(lotse, browser, "initiative-b")
    rows = _table_by_label(await _download_at(other, lotse, "needs-by-category"))
    assert rows == {_("de", "Kinderbetreuung"): ["< 5", "< 5", "< 5"]}
    await other.context.close()


async def _download_at(page: Page, lotse: Lotse, slug: str) -> list[list[str]]:
    await page.goto(f"{lotse.portal}/console/statistics")
    return await _download(page, slug)


def _table_by_label(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in rows[1:]}


async def test_the_console_pages_are_accessible_in_every_language_and_fit_a_phone(
    lotse: Lotse, browser: Browser
) -> None:
    office = await signed_in(lotse, browser, "office", PHONE)
    initiative = await signed_in(lotse, browser, "initiative", PHONE)
    volunteer = await new_page(browser, PHONE, locale="de-DE")
    await sign_up(lotse, volunteer)
    failures: list[str] = []
    viewers: list[tuple[Page, list[str]]] = [
        (office, CONSOLE_PAGES),
        (initiative, ["/console", "/console/statistics", "/console/hours"]),
        (volunteer, ["/home", "/guidance"]),
    ]
    for language in LANGUAGES:
        direction = "rtl" if language in ("ar", "fa") else "ltr"
        for viewer, paths in viewers:
            for path in paths:
                response = await viewer.goto(f"{lotse.portal}{path}?lang={language}")
                assert response is not None and response.status == 200, (path, language)
                assert await viewer.get_attribute("html", "lang") == language, path
                assert await viewer.get_attribute("html", "dir") == direction, path
                await assert_accessible(viewer)
                if path == "/console/statistics" and viewer is office and language == "ar":
                    await keep(viewer, "statistics-phone-ar")
                width = await scroll_width(viewer)
                if width > PHONE.width:
                    failures.append(f"{path} in {language}: {width} px wide")
    assert failures == []
    for viewer, _paths in viewers:
        await viewer.context.close()


async def test_the_data_protection_officer_searches_and_downloads_the_audit_trail_and_sees_nothing_else(
    lotse: Lotse, browser: Browser
) -> None:
    lotse.add_account("dpo", Role.DATA_PROTECTION_OFFICER)
    officer = await signed_in(lotse, browser, "dpo", PHONE)
    assert officer.url.endswith("/console/audit")
    assert [await link.get_attribute("href") for link in await officer.locator("nav .menu a").all()] == [
        "/console/audit"
    ]
    # The office's writes of this module (the needs it reported) are in the trail, with field names.
    await officer.goto(f"{lotse.portal}/console/audit?resource=needs")
    table = await officer.inner_text("table")
    assert "POST /tenants/{tenant}/needs" in table and "description" in table
    assert "Ein Bedarf für die Statistik." not in table  # names of fields, never their values
    # One list of the three parts of Lotse, each entry naming its own: matching's copy of the needs too.
    parts = {await cell.inner_text() for cell in await officer.locator("tbody td:nth-child(2)").all()}
    assert parts == {_("de", "Stammdaten"), _("de", "Vermittlung")}
    # A write of the office in notifications is there as well, named as that part's.
    chosen = lotse.call("PUT", "notifications", "/mail-preferences/office", "office", json={"delivery": "each_event"})
    assert chosen.status_code == 200, chosen.text
    await officer.goto(f"{lotse.portal}/console/audit?resource=mail_preferences")
    assert "PUT /mail-preferences/office" in await officer.inner_text("table")
    assert await officer.inner_text("tbody td:nth-child(2)") == _("de", "Nachrichten")
    wrong = await officer.goto(f"{lotse.portal}/console/audit?from=gestern")
    assert wrong is not None and wrong.status == 422
    assert await officer.inner_text("#from-error") == _("de", "Bitte geben Sie ein Datum an, z. B. 2026-12-01.")
    download = await officer.request.get(f"{lotse.portal}/console/audit.csv?resource=needs")
    assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await download.text())))
    assert rows and {row["resource_type"] for row in rows} == {"needs"}
    exported = await officer.request.get(f"{lotse.portal}/console/audit.json?resource=needs")
    entries = await exported.json()
    assert exported.ok and len(entries) >= len(rows) and {entry["resource_type"] for entry in entries} == {"needs"}
    matchings = await officer.request.get(f"{lotse.portal}/console/audit.csv?service=matching&resource=needs")
    assert matchings.status == 200 and "lotse-audit-" in matchings.headers["content-disposition"]
    copies = list(csv.DictReader(io.StringIO(await matchings.text())))
    assert {row["resource_type"] for row in copies} == {"needs"} and "system" in {row["actor"] for row in copies}
    assert (await officer.request.get(f"{lotse.portal}/console")).status == 403
    failures = []
    for language in LANGUAGES:
        response = await officer.goto(f"{lotse.portal}/console/audit?lang={language}")
        assert response is not None and response.status == 200, language
        await assert_accessible(officer)
        width = await scroll_width(officer)
        if width > PHONE.width:
            failures.append(f"/console/audit in {language}: {width} px wide")
    assert failures == []
    await officer.context.close()
