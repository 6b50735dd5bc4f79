"""Questions to the coordination office (issue 16, item 5) in a real browser, against the whole
platform as `lotse up` runs it, people signing in at the local OpenID provider (the helpers and
the provider's accounts are tests/e2e/test_portal_browser.py's).

A volunteer asks from their home page (a field left empty is named next to it first), the office's
mailbox hears of it, a coordinator answers in the console's "Fragen", the volunteer is mailed a
link (never the answer) and reads the answer on the question's page; the coordinator closes the
question. Every new page is checked with axe-core in all six languages on a 360 px phone.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from lotse_cli.supervisor import Platform
from lotse_portal import pages
from lotse_portal.domain import LANGUAGES
from tests.e2e.test_portal_browser import PASSWORD, Lotse, keep, onboarded, sign_in_at_provider, sign_up
from tests.support import waiting
from tests.support.browser import PHONE, assert_accessible, new_page, scroll_width

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(900)]

TENANT = "portalia-questions"  # on the browser modules' shared platform

SUBJECT = "Versicherung beim Fahrdienst <b>?</b>"
QUESTION = "Ich fahre nächste Woche eine Familie zur Ausländerbehörde.\nBin ich dabei versichert?"
ANSWER = "Ja, über die Sammelversicherung der Stadt.\nBitte melden Sie die Fahrt vorher kurz bei uns."


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


@pytest.fixture(scope="module")
def lotse(browser_platform: Platform) -> Lotse:
    return onboarded(browser_platform, TENANT)


async def signed_in(lotse: Lotse, browser: Browser, username: str) -> Page:
    page = await new_page(browser, PHONE, locale="de-DE")
    await page.goto(f"{lotse.portal}/signin?next=/home")
    await sign_in_at_provider(page, lotse.login(username), PASSWORD)
    await page.wait_for_url(lambda url: "/signin" not in url and lotse.portal in url)
    return page


async def mail_of(lotse: Lotse, address: str, template: str) -> dict[str, Any]:
    async def probe() -> list[dict[str, Any]]:
        found = await asyncio.to_thread(lotse.mails_to, address)
        return [mail for mail in found if mail["headers"].get("X-Lotse-Template") == template]

    (mail, *_rest) = await waiting.eventually(probe, timeout=60, interval=0.5, what=f"a {template} mail to {address}")
    return mail


def name_contact_person(lotse: Lotse, coordinator: str) -> None:
    """The coordinator enters themselves as staff and becomes the one asking volunteer's contact person."""
    me = {"name": "Jana Weber", "email": f"j.weber@{TENANT}.example"}
    staff = lotse.call("PUT", "registry", f"/tenants/{TENANT}/staff/me", coordinator, json=me)
    assert staff.status_code == 200, staff.text
    (thread,) = lotse.call("GET", "notifications", "/threads", coordinator).json()["items"]
    path = f"/tenants/{TENANT}/volunteers/{thread['volunteer_id']}/contact-person"
    named = lotse.call("PUT", "registry", path, coordinator, json={"staff_id": staff.json()["staff_id"]})
    assert named.status_code == 200, named.text


async def accessible_in_every_language(page: Page, path: str) -> None:
    for language in LANGUAGES:
        await page.goto(f"{path}?lang={language}" if "?" not in path else f"{path}&lang={language}")
        assert await page.get_attribute("html", "dir") == ("rtl" if language in ("ar", "fa") else "ltr")
        await assert_accessible(page)
        assert await scroll_width(page) <= PHONE.width, f"{path} in {language}"
    await page.goto(f"{path}?lang=de" if "?" not in path else f"{path}&lang=de")


async def test_a_volunteer_asks_a_coordinator_answers_in_the_console_and_the_volunteer_reads_it(
    lotse: Lotse, browser: Browser
) -> None:
    page = await new_page(browser, PHONE, locale="de-DE")
    volunteer = await sign_up(lotse, page)
    await page.get_by_role("link", name=_("de", "Eine Frage stellen")).click()
    await page.wait_for_url("**/questions")
    assert await page.inner_text("h1") == _("de", "Fragen an die Koordinationsstelle")
    await accessible_in_every_language(page, f"{lotse.portal}/questions")

    # The text left empty: the form comes back with the message next to the field, the subject kept.
    await page.fill("#subject", SUBJECT)
    await page.eval_on_selector("#text", "element => element.removeAttribute('required')")
    await page.get_by_role("button", name=_("de", "Frage senden")).click()
    assert await page.inner_text("#text-error") == _("de", "Bitte füllen Sie dieses Feld aus.")
    assert await page.get_attribute("#text", "aria-invalid") == "true"
    assert await page.input_value("#subject") == SUBJECT
    await assert_accessible(page)

    await page.fill("#text", QUESTION)
    await page.get_by_role("button", name=_("de", "Frage senden")).click()
    await page.wait_for_url(re.compile(r".*/questions/[0-9a-f-]{36}$"))
    question_url = page.url
    assert await page.inner_text("h1") == SUBJECT  # typed markup stays text
    assert QUESTION in await page.inner_text("main")
    await keep(page, "question")
    await accessible_in_every_language(page, question_url)

    office_mail = await mail_of(lotse, f"office@{TENANT}.example", "question_asked")
    assert volunteer.name in office_mail["text"] and "Ausländerbehörde" not in office_mail["text"]
    console_url = question_url.replace("/questions/", "/console/questions/")
    assert console_url in office_mail["text"]

    office = await signed_in(lotse, browser, "office")
    await office.get_by_role("link", name=_("de", "Fragen"), exact=True).first.click()
    await office.wait_for_url("**/console/questions")
    open_list = await office.inner_text("section#open")
    assert SUBJECT in open_list and volunteer.name in open_list
    await keep(office, "console-questions")
    await accessible_in_every_language(office, f"{lotse.portal}/console/questions")
    await accessible_in_every_language(office, f"{lotse.portal}/console/questions?mine=1")
    # Nobody named the coordinator this volunteer's contact person: not among "mine" yet.
    assert SUBJECT not in await office.inner_text("main")
    name_contact_person(lotse, "office")

    async def among_mine() -> bool:
        await office.goto(f"{lotse.portal}/console/questions?mine=1")
        return SUBJECT in await office.inner_text("main")

    await waiting.eventually(among_mine, timeout=60, interval=0.5, what="the question among the contact person's")
    assert _("de", "Sie sind die Ansprechperson") in await office.inner_text("section#open")
    await office.goto(f"{lotse.portal}/console/questions")
    await office.get_by_role("link", name=SUBJECT).click()
    await office.wait_for_url(console_url)
    await accessible_in_every_language(office, console_url)
    await office.fill("#text", ANSWER)
    await office.get_by_role("button", name=_("de", "Antwort senden")).click()
    await office.wait_for_url(console_url)
    assert _("de", "Ihre Antwort ist gespeichert. Die freiwillige Person bekommt Bescheid.") in await office.inner_text(
        "main"
    )
    assert _("de", "Beantwortet") in await office.inner_text("main")
    await keep(office, "console-question")

    # The volunteer's mail says there is an answer and links to it; the answer stays in Lotse.
    answered = await mail_of(lotse, volunteer.email, "question_answered")
    assert question_url in answered["text"] and "Sammelversicherung" not in answered["text"]
    await page.goto(question_url)
    messages = await page.locator("ol.thread-messages > li").all_inner_texts()
    assert len(messages) == 2 and _("de", "Koordinationsstelle") in messages[1]
    assert "Sammelversicherung der Stadt.\nBitte melden" in messages[1]  # its line breaks kept
    await page.goto(f"{lotse.portal}/questions")
    assert _("de", "Beantwortet") in await page.inner_text("ul.question-list")
    assert "Jana Weber" in await page.inner_text("main")  # their contact person, by name

    # The question and the answer are the volunteer's data: in their download.
    export = await (await page.request.get(f"{lotse.portal}/my-data/export")).json()
    (exported,) = export["questions"]
    assert exported["subject"] == SUBJECT
    assert [m["text"] for m in exported["messages"]] == [QUESTION, ANSWER]

    # Done: the coordinator closes it; the volunteer reads that writing again opens it.
    await office.get_by_role("button", name=_("de", "Als erledigt markieren")).click()
    await office.wait_for_url(console_url)
    assert await office.get_by_role("button", name=_("de", "Wieder öffnen")).count() == 1
    await page.goto(question_url)
    assert _("de", "Erledigt") in await page.inner_text("main")
    await page.context.close()
    await office.context.close()


async def test_another_volunteer_and_an_initiative_reach_no_question(lotse: Lotse, browser: Browser) -> None:
    owner = await new_page(browser, PHONE, locale="de-DE")
    await sign_up(lotse, owner)
    await owner.goto(f"{lotse.portal}/questions")
    await owner.fill("#subject", "Nur für die Koordinationsstelle")
    await owner.fill("#text", "Eine Frage.")
    await owner.get_by_role("button", name=_("de", "Frage senden")).click()
    await owner.wait_for_url(re.compile(r".*/questions/[0-9a-f-]{36}$"))
    question_url = owner.url

    other = await new_page(browser, PHONE, locale="de-DE")
    await sign_up(lotse, other)
    response = await other.goto(question_url)
    assert response is not None and response.status == 404
    assert "Nur für die Koordinationsstelle" not in await other.inner_text("body")

    # Every form carries the session's token: without it nothing is asked, written or closed.
    question_path = question_url.removeprefix(lotse.portal)
    forms: list[tuple[str, dict[str, str | float | bool]]] = [
        ("/questions", {"subject": "ohne Token", "text": "x"}),
        (f"{question_path}/messages", {"text": "x"}),
    ]
    for path, form in forms:
        refused = await owner.request.post(f"{lotse.portal}{path}", form=form, max_redirects=0)
        assert refused.status == 400, path
    office = await signed_in(lotse, browser, "office")
    refused = await office.request.post(f"{lotse.portal}/console{question_path}/closing", form={}, max_redirects=0)
    assert refused.status == 400
    listed = lotse.call("GET", "notifications", "/threads", "office").json()["items"]
    (asked,) = [item for item in listed if item["subject"] == "Nur für die Koordinationsstelle"]
    assert (asked["state"], asked["message_count"]) == ("open", 1)
    assert not any(item["subject"] == "ohne Token" for item in listed)

    initiative = await signed_in(lotse, browser, "initiative")
    for path in ("/console/questions", question_url.replace("/questions/", "/console/questions/")):
        response = await initiative.goto(path if path.startswith("http") else f"{lotse.portal}{path}")
        assert response is not None and response.status == 403, path
    for page in (owner, other, office, initiative):
        await page.context.close()
