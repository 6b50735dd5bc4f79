"""The proposal mail's HTML part in a real Chromium, as a phone's mail app shows it: the answer
buttons are large enough to tap, nothing is wider than the phone, and axe-core finds no serious
or critical violation (the buttons' contrast included), in every language."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from lotse_notifications import catalogue
from lotse_notifications.catalogue import LANGUAGES
from lotse_notifications.templates import MessageFacts, render, sample_facts
from tests.support.browser import PHONE, assert_accessible, scroll_width

pytestmark = pytest.mark.asyncio(loop_scope="module")

LINK = "https://matching.example/answers/eyJwIjoiMSJ9.c2lnbmF0dXJl?choice="


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_answer_buttons_of_the_proposal_mail_fit_a_phone_and_are_accessible(
    phone_page: Page, language: str
) -> None:
    facts = sample_facts(catalogue.MATCH_PROPOSED)
    payload = dict(facts.payload) | {"accept_url": f"{LINK}accept", "decline_url": f"{LINK}decline"}
    rendered = render(catalogue.MATCH_PROPOSED, [language], MessageFacts(**(facts.__dict__ | {"payload": payload})))
    await phone_page.set_content(rendered.html)

    buttons = phone_page.locator("a.button")
    assert [await button.get_attribute("href") for button in await buttons.all()] == [f"{LINK}accept", f"{LINK}decline"]
    for button in await buttons.all():
        box = await button.bounding_box()
        assert box is not None and box["height"] >= 44, f"{await button.inner_text()!r} is too small to tap: {box}"
    assert await scroll_width(phone_page) <= PHONE.width
    await assert_accessible(phone_page)
