"""The office's dashboard and a need's page in a real browser, against the whole platform as
`lotse up` runs it, the coordinator signing in at the local OpenID provider (the helpers and the
provider's accounts are tests/e2e/test_portal_browser.py's and test_console_browser.py's).

A need is reported, matching proposes three volunteers with reasons; the dashboard lists the need
as waiting for answers with its next step; on the need's page the office records a yes given by
phone (matching keeps it as answered via the coordination office, recorded by the coordinator),
a stale form for another proposal is refused next to it, the office releases the volunteer (after
confirming) and Lotse asks the next ones, starts a new round (a form sent twice starts one), and
proposes a chosen volunteer after the check page; a volunteer who breaks a hard rule is named with
the rule and cannot be proposed, not even by a forged form. Another organisation's admin gets the
404 page; a second need is cancelled. Dashboard, need, choice and check pages pass axe-core in all
six languages on a 360 px phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from lotse_cli.supervisor import Platform
from lotse_portal import domain, pages
from lotse_portal.domain import LANGUAGES
from lotse_runtime.auth import Role
from tests.e2e.test_console_browser import signed_in
from tests.e2e.test_portal_browser import POSTCODES, Lotse, keep, onboarded
from tests.support import waiting
from tests.support.browser import PHONE, assert_accessible, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-office"  # on the browser modules' shared platform

# Six volunteers fit the need (Arabic at B1 or better, near, free on weekdays); matching asks three
# at a time. Carla speaks no Arabic: she breaks a hard rule.
FITTING = ("Amira Haddad", "Bilal Nasser", "Dana Saleh", "Elif Yilmaz", "Farid Karimi", "Ghada Mansour")
NOT_FITTING = "Carla Conti"
PROPOSALS_PER_ROUND = 3


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


@dataclass
class Office:
    """The platform, the coordinator's account, the volunteers by name and the needs."""

    lotse: Lotse
    subject: str
    volunteers: dict[str, str] = field(default_factory=dict)  # name -> id
    need_id: str = ""
    other_need_id: str = ""

    def name_of(self, volunteer_id: str) -> str:
        return next(name for name, known in self.volunteers.items() if known == volunteer_id)

    def staffing(self) -> dict[str, Any]:
        response = self.lotse.call("GET", "matching", f"/tenants/{TENANT}/needs/{self.need_id}/staffing", "office")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def open_proposals(self) -> list[dict[str, Any]]:
        return [p for p in self.staffing()["proposals"] if p["state"] == "proposed"]


@pytest.fixture(scope="module")
def office(browser_platform: Platform) -> Office:
    lotse = onboarded(browser_platform, TENANT)
    other = {"name": "Portalia liest vor", "kind": "initiative", "contact_email": f"liest@{TENANT}.example"}
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/organisations", "office", json=other)
    assert response.status_code == 201, response.text
    lotse.add_account("initiative-b", Role.INITIATIVE_ADMIN, org=response.json()["organisation_id"])
    found = Office(lotse, lotse.accounts.read().account(lotse.login("office")).sub)
    for number, name in enumerate((*FITTING, NOT_FITTING)):
        found.volunteers[name] = register(lotse, name, number, arabic=name != NOT_FITTING)
    return found


@pytest.fixture(scope="module")
def need_id(office: Office) -> str:
    """The need the office staffs (each test may come first: pytest-randomly orders them)."""
    office.need_id = report_need(office.lotse, "Übersetzen beim Elternabend, Arabisch und Deutsch.")
    return office.need_id


def register(lotse: Lotse, name: str, number: int, *, arabic: bool) -> str:
    """A volunteer the office registers for the municipality (no organisation: the office sees
    their contact data), living in Mitte, free on weekdays."""
    languages = [{"language": "de", "level": "native"}]
    if arabic:
        languages.append({"language": "ar", "level": "b2"})
    body = {
        "contact": {
            "display_name": name,
            "email": f"{name.split()[0].lower()}@{TENANT}.example",
            "phone": f"+49151000000{number:02d}",
            "preferred_language": "de",
            "channels": ["email"],
        },
        "skills": [],
        "languages": languages,
        "home_area": {"point": {"lat": POSTCODES[0][1], "lon": POSTCODES[0][2]}, "postcode": POSTCODES[0][0]},
        "travel_radius_km": 10,
        "consent": {"purposes": ["matching", "contact"], "text_version": "lotse-default-1"},
        "availability": {
            "weekly_slots": [
                {"weekday": day, "start": "08:00:00", "end": "20:00:00"}
                for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
            ],
            "max_concurrent_engagements": 2,
        },
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/volunteers", "office", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["volunteer_id"])


def report_need(lotse: Lotse, description: str, *, days_ahead: int = 6) -> str:
    """A translation need in Mitte on a weekday morning, Arabic at B1: one volunteer needed."""
    start = (datetime.now(UTC) + timedelta(days=days_ahead)).replace(hour=8, minute=0, second=0, microsecond=0)
    while start.weekday() > 4:
        start += timedelta(days=1)
    need = {
        "organisation_id": lotse.organisation_id,
        "category": "translation",
        "description": description,
        "required_skills": [],
        "languages": [{"language": "ar", "min_level": "b1"}],
        "place": {
            "point": {"lat": POSTCODES[0][1], "lon": POSTCODES[0][2]},
            "postcode": POSTCODES[0][0],
            "district": POSTCODES[0][3],
        },
        "schedule": {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        "volunteers_needed": 1,
    }
    response = lotse.call("POST", "registry", f"/tenants/{TENANT}/needs", "office", json=need)
    assert response.status_code == 201, response.text
    return str(response.json()["need_id"])


async def _proposed(office: Office, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        response = office.lotse.call("GET", "matching", f"/tenants/{TENANT}/needs/{office.need_id}/staffing", "office")
        if response.status_code != 200:
            return None  # matching has not seen the need yet
        found = [p for p in response.json()["proposals"] if p["state"] == "proposed"]
        return found if len(found) >= count else None

    return await waiting.eventually(enough, timeout=90, interval=0.5, what=f"{count} open proposals")


def _card(page: Page, section: str, need_id: str) -> Any:
    return page.locator(f"section#{section} li.need-card", has=page.locator(f"a[href='/console/needs/{need_id}']"))


async def _form_fields(page: Page, form: str) -> dict[str, str | float | bool]:
    """The hidden fields of a form on the page (its CSRF token and its key), to send it again."""
    fields: dict[str, str | float | bool] = {}
    for hidden in await page.locator(f"{form} input[type=hidden]").all():
        fields[str(await hidden.get_attribute("name"))] = str(await hidden.get_attribute("value"))
    return fields


async def test_the_office_staffs_a_need_from_the_dashboard_through_its_page(
    office: Office, need_id: str, browser: Browser
) -> None:
    lotse = office.lotse
    first = await _proposed(office, PROPOSALS_PER_ROUND)
    asked = {p["volunteer_id"] for p in first}
    assert asked <= {office.volunteers[name] for name in FITTING}

    # The dashboard: the need waits for answers (three asked, one needed, days to go).
    page = await signed_in(lotse, browser, "office")
    assert page.url.endswith("/console")
    card = _card(page, "waiting_for_answers", office.need_id)
    assert await card.count() == 1
    text = await card.inner_text()
    assert _("de", "Übersetzen und Dolmetschen") in text and POSTCODES[0][3] in text
    assert _("de", "Gebraucht: %(count)s") % {"count": 1} in text
    assert _("de", "Warten auf Antwort: %(count)s") % {"count": 3} in text
    assert _("de", domain.NEXT_STEPS["wait_for_answers"]) in await card.locator(".next-step").inner_text()
    assert await _card(page, "not_fully_proposed", office.need_id).count() == 0
    assert _("de", "Nichts zu tun: Kein Bedarf beginnt bald ohne genug Leute.") in await page.inner_text(
        "section#starting_soon"
    )
    await keep(page, "office-dashboard")
    # Filtered by another kind of help: not there; by its own: there.
    await page.select_option("#category", "childcare")
    await page.get_by_role("button", name=_("de", "Filtern")).click()
    await page.wait_for_url("**/console?*category=childcare*")
    assert await _card(page, "waiting_for_answers", office.need_id).count() == 0
    assert _("de", "Nichts zu tun: Kein Vorschlag wartet auf eine Antwort.") in await page.inner_text(
        "section#waiting_for_answers"
    )
    await page.goto(f"{lotse.portal}/console?category=translation&district={POSTCODES[0][3]}&starts_from=2020-01-01")
    assert await _card(page, "waiting_for_answers", office.need_id).count() == 1
    # A date that is none: said next to the field.
    await page.goto(f"{lotse.portal}/console?starts_until=31.12.2026")
    assert await page.inner_text("#starts_until-error") == _("de", "Bitte ein Datum angeben, z. B. 2026-12-03.")

    # The need's page: the three proposals with their reasons.
    await page.goto(f"{lotse.portal}/console")
    await _card(page, "waiting_for_answers", office.need_id).locator("h4 a").click()
    await page.wait_for_url(f"**/console/needs/{office.need_id}")
    waiting_heading = _("de", "Warten auf Antwort") + " (3)"
    assert await page.inner_text("#state-proposed") == waiting_heading
    for proposal in first:
        item = page.locator(f"#proposal-{proposal['proposal_id']}")
        assert await item.locator("h4").inner_text() == office.name_of(proposal["volunteer_id"])
        assert _("de", domain.OFFICE_REASONS["language"]) in await item.locator(".reasons").inner_text()
    await keep(page, "office-need")

    # A second tab keeps the page as it is now (its forms go stale).
    stale = await page.context.new_page()
    await stale.goto(page.url)

    # A yes given by phone, recorded by the office.
    chosen, other = first[0], first[1]
    await (
        page.locator(f"#proposal-{chosen['proposal_id']} form", has=page.locator("input[value=accept]"))
        .locator("button")
        .click()
    )
    await page.wait_for_url(f"**/console/needs/{office.need_id}")
    assert _("de", "Die Zusage ist eingetragen.") in await page.inner_text(".flash")
    recorded = next(p for p in office.staffing()["proposals"] if p["proposal_id"] == chosen["proposal_id"])
    assert recorded["state"] == "accepted" and recorded["answered_via"] == "coordination_office"
    assert recorded["recorded_by"] == {"subject": office.subject, "role": "coordinator"}
    accepted = page.locator(f"#proposal-{chosen['proposal_id']}")
    assert "eingetragen von Ihnen am" in await accepted.inner_text()
    name = office.name_of(chosen["volunteer_id"])
    committed = page.locator("section[aria-labelledby=committed-heading] li.card")
    assert await committed.locator("h3").all_inner_texts() == [name]
    # The office registered them for the municipality: it may reach them.
    assert await committed.locator("a[href^='tel:']").inner_text() == f"+49151000000{FITTING.index(name):02d}"
    assert await committed.locator("a[href^='mailto:']").count() == 1

    # The stale tab answers for another proposal, withdrawn since the need is staffed: said next to it.
    await (
        stale.locator(f"#proposal-{other['proposal_id']} form", has=stale.locator("input[value=accept]"))
        .locator("button")
        .click()
    )
    error = stale.locator(f"#answer-{other['proposal_id']}-error")
    assert await error.inner_text() == _("de", domain.OFFICE_REFUSALS["no_longer_needed"])
    assert await stale.inner_text("h1") == _("de", "Übersetzen und Dolmetschen")
    await stale.close()

    # Releasing the volunteer asks for a confirmation first.
    release = page.locator(f"form[action$='/committed/{chosen['volunteer_id']}/release']")
    await page.locator("section[aria-labelledby=committed-heading] details summary").click()
    await release.locator("button").click()
    assert await page.inner_text(f"#release-{chosen['volunteer_id']}-error") == _(
        "de", "Bitte bestätigen Sie, dass Sie die Person von diesem Einsatz freistellen."
    )
    assert office.staffing()["committed"] != []
    await release.locator("input[name=confirm]").check()
    await release.locator("button").click()
    await page.wait_for_url(f"**/console/needs/{office.need_id}")
    assert _(
        "de", "Die Person ist freigestellt. Lotse fragt jetzt die nächsten Freiwilligen."
    ) in await page.inner_text(".flash")
    released = next(p for p in office.staffing()["proposals"] if p["proposal_id"] == chosen["proposal_id"])
    assert released["state"] == "stepped_back" and released["released_by"]["subject"] == office.subject
    assert office.staffing()["committed"] == []
    assert "Freigestellt von Ihnen am" in await page.inner_text(f"#proposal-{chosen['proposal_id']}")
    assert await page.inner_text("#state-released") == _("de", "Von der Koordination freigestellt") + " (1)"

    # Lotse asks the next ones: the three it had not asked yet.
    second = await _proposed(office, PROPOSALS_PER_ROUND)
    assert {p["volunteer_id"] for p in second}.isdisjoint(asked)
    await page.reload()
    assert await page.inner_text("#state-proposed") == waiting_heading
    for proposal in second:
        assert await page.locator(f"#proposal-{proposal['proposal_id']} h4").inner_text() == office.name_of(
            proposal["volunteer_id"]
        )

    # A new round, sent twice (a double click, a reload): started once.
    fields = await _form_fields(page, "form[action$='/rounds']")
    await page.get_by_role("button", name=_("de", "Neue Vorschlagsrunde starten")).click()
    await page.wait_for_url(f"**/console/needs/{office.need_id}")
    started = office.staffing()["round_started_at"]
    assert started is not None
    again = await page.request.post(f"{lotse.portal}/console/needs/{office.need_id}/rounds", form=fields)
    assert again.ok
    assert office.staffing()["round_started_at"] == started
    assert "gestartet am" in await page.inner_text("section[aria-labelledby=staffing-heading]")

    # The office proposes someone the first round asked and the need's staffing withdrew.
    withdrawn = next(
        p["volunteer_id"]
        for p in first
        if p["proposal_id"] != chosen["proposal_id"]
        and p["volunteer_id"] not in {q["volunteer_id"] for q in office.open_proposals()}
    )
    await page.get_by_role("link", name=_("de", "Freiwillige vorschlagen")).click()
    await page.wait_for_url("**/propose")
    await page.fill("#name", office.name_of(withdrawn).split()[0])
    await page.get_by_role("button", name=_("de", "Suchen")).click()
    await page.wait_for_url("**/propose?name=*")
    assert await page.locator(".person-name").all_inner_texts() == [office.name_of(withdrawn)]
    await page.locator(f"a[href$='/propose/{withdrawn}']").click()
    await page.wait_for_url(f"**/propose/{withdrawn}")
    assert await page.inner_text("#check-heading") == _("de", "Die Person erfüllt alle Regeln für Vorschläge")
    assert _("de", domain.OFFICE_REASONS["language"]) in await page.inner_text(".reasons")
    await keep(page, "office-check")
    await page.get_by_role("button", name=_("de", "Jetzt vorschlagen")).click()
    await page.wait_for_url(f"**/console/needs/{office.need_id}")
    assert _(
        "de", "Der Vorschlag ist verschickt. Die Person entscheidet selbst, ob sie zusagt."
    ) in await page.inner_text(".flash")
    theirs = next(p for p in office.open_proposals() if p["volunteer_id"] == withdrawn)
    assert theirs["proposed_by"] == {"subject": office.subject, "role": "coordinator"}
    assert "von Ihnen" in await page.inner_text(f"#proposal-{theirs['proposal_id']} .meta")

    # Carla speaks no Arabic: the rule is named, and there is nothing to press.
    carla = office.volunteers[NOT_FITTING]
    await page.goto(f"{lotse.portal}/console/needs/{office.need_id}/propose?name=Carla")
    await page.locator(f"a[href$='/propose/{carla}']").click()
    await page.wait_for_url(f"**/propose/{carla}")
    assert await page.inner_text("#check-heading") == _("de", "Diese Person kann nicht vorgeschlagen werden")
    assert _("de", domain.BROKEN_RULES["languages"]) in await page.inner_text(".reasons")
    assert await page.locator("main form[method=post]").count() == 0
    # A forged form (the page's token and a key) is refused by matching: the rule, next to it.
    forged_fields: dict[str, str | float | bool] = {
        "csrf_token": await _csrf(page),
        "idempotency_key": domain.new_form_key(),
    }
    forged = await page.request.post(
        f"{lotse.portal}/console/needs/{office.need_id}/propose/{carla}", form=forged_fields
    )
    assert forged.status == 422
    body = await forged.text()
    assert _("de", domain.OFFICE_REFUSALS["broken_rules"]) in body and _("de", domain.BROKEN_RULES["languages"]) in body
    assert carla not in {p["volunteer_id"] for p in office.staffing()["proposals"]}
    # Who was released is not asked again for this need.
    await page.goto(f"{lotse.portal}/console/needs/{office.need_id}/propose/{chosen['volunteer_id']}")
    assert _("de", domain.BROKEN_RULES["stepped_back"]) in await page.inner_text(".reasons")

    # Another organisation's admin: the need is not theirs.
    other_admin = await signed_in(lotse, browser, "initiative-b")
    response = await other_admin.goto(f"{lotse.portal}/console/needs/{office.need_id}")
    assert response is not None and response.status == 404
    assert await other_admin.inner_text("h1") == _("de", "Diese Seite gibt es nicht")
    await other_admin.goto(f"{lotse.portal}/console")
    assert await other_admin.locator(f"a[href='/console/needs/{office.need_id}']").count() == 0
    await other_admin.context.close()
    # The need's own initiative sees its page, but not the names of volunteers it does not look
    # after (the office registered them): the registry shows them by reference only.
    own_admin = await signed_in(lotse, browser, "initiative")
    response = await own_admin.goto(f"{lotse.portal}/console/needs/{office.need_id}")
    assert response is not None and response.status == 200
    names = await own_admin.locator("li.card h4").all_inner_texts()
    assert names and all(name not in " ".join(names) for name in office.volunteers)
    assert _("de", "Freiwillige Person %(ref)s") % {"ref": theirs["volunteer_id"][:8]} in names
    await own_admin.context.close()
    await page.context.close()


async def _csrf(page: Page) -> str:
    return str(await page.locator("input[name=csrf_token]").first.get_attribute("value"))


async def test_the_office_cancels_a_need_after_confirming(office: Office, browser: Browser) -> None:
    lotse = office.lotse
    need_id = report_need(lotse, "Ein doppelt gemeldeter Bedarf.", days_ahead=8)
    page = await signed_in(lotse, browser, "office")
    await page.goto(f"{lotse.portal}/console/needs/{need_id}")
    cancel = page.locator("form[action$='/cancellation']")
    await page.get_by_text(_("de", "Bedarf absagen"), exact=True).first.click()
    await cancel.locator("select").select_option("duplicate")
    await cancel.locator("button").click()
    assert await page.inner_text("#cancel-error") == _("de", "Bitte bestätigen Sie, dass Sie den Bedarf absagen.")
    await cancel.locator("input[name=confirm]").check()
    await cancel.locator("select").select_option("duplicate")
    await cancel.locator("button").click()
    await page.wait_for_url(f"**/console/needs/{need_id}")
    stored = lotse.call("GET", "registry", f"/tenants/{TENANT}/needs/{need_id}", "office").json()
    assert stored["status"] == "cancelled" and stored["cancellation_reason"] == "duplicate"
    meta = await page.inner_text("main p.meta")
    assert _("de", "abgesagt") in meta and _("de", "Doppelt gemeldet") in meta
    assert await page.locator("main form[method=post]").count() == 0
    await page.context.close()


async def test_the_office_pages_are_accessible_in_every_language_and_fit_a_phone(
    office: Office, need_id: str, browser: Browser
) -> None:
    await _proposed(office, PROPOSALS_PER_ROUND)  # the need's page with its proposals
    page = await signed_in(office.lotse, browser, "office", PHONE)
    carla = office.volunteers[NOT_FITTING]
    paths = [
        "/console",
        "/console?category=cooking",
        f"/console/needs/{office.need_id}",
        f"/console/needs/{office.need_id}/propose?name=a",
        f"/console/needs/{office.need_id}/propose/{carla}",
        f"/console/needs/{office.need_id}/propose/{office.volunteers[FITTING[0]]}",
    ]
    failures: list[str] = []
    for language in LANGUAGES:
        direction = "rtl" if language in ("ar", "fa") else "ltr"
        for path in paths:
            joiner = "&" if "?" in path else "?"
            response = await page.goto(f"{office.lotse.portal}{path}{joiner}lang={language}")
            assert response is not None and response.status == 200, (path, language)
            assert await page.get_attribute("html", "lang") == language, path
            assert await page.get_attribute("html", "dir") == direction, path
            await assert_accessible(page)
            if language == "ar" and re.fullmatch(r"/console/needs/[^/]+", path):
                await keep(page, "office-need-phone-ar")
            width = await scroll_width(page)
            if width > PHONE.width:
                failures.append(f"{path} in {language}: {width} px wide")
    assert failures == []
    await page.context.close()
