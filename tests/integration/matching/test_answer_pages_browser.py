"""The answer-link pages in a real Chromium, served by the real matching service on the real
broker and database: the volunteer's language, the confirming button, every page language
(right to left for Arabic and Persian), accessibility (axe-core) and a phone's width."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from lotse_contracts import Envelope, TenantOnboarded, VolunteerRegistered, topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_matching import pages
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from tests.integration.matching.support import (
    WEEK,
    RunningMatching,
    answer_path,
    opened,
    registry_event,
    service_settings,
    serving,
    tenant_event,
    volunteer_data,
)
from tests.support.browser import PHONE, assert_accessible, scroll_width, served
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROPOSALS = "lotse.matching.proposals.v1"
RIGHT_TO_LEFT = {"ar", "fa"}
DESCRIPTION = "Begleitung zum Termin bei der Ausländerbehörde"


def texts(language: str, *message_ids: str) -> list[str]:
    gettext = pages.CATALOGUES.translations(language).gettext
    return [gettext(message_id) for message_id in message_ids]


def volunteer(tenant: str, language: str) -> Envelope[Any]:
    """A volunteer who fits the need below, reading in ``language``."""
    volunteer_id = str(uuid.uuid4())
    data = volunteer_data(volunteer_id)
    data["contact"]["preferred_language"] = language
    availability = {"weekly_slots": WEEK, "periods": [], "unavailable": [], "max_concurrent_engagements": 2}
    return registry_event(VolunteerRegistered, tenant, volunteer_id, 1, {**data, "availability": availability})


@dataclass
class World:
    base_url: str
    settings: MatchingSettings
    store: Store
    tenant: str
    links: dict[str, str]  # the preferred language of each volunteer -> the path of their answer link
    proposals: dict[str, str]  # the same -> their proposal id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    tenant = f"b{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([tenant]))
    # Every test opens pages of the same links from the same address: more than the default 30 a minute.
    settings = service_settings(stack, f"browser-{uuid.uuid4().hex[:8]}", public_rate_limit="600/minute")
    async with serving(RunningMatching, stack, settings, [PROPOSALS], tenant) as matching:
        app, reader, store, publish = matching.app, matching.reader, matching.store, matching.publish
        # The municipality speaks German; the volunteers Ukrainian and Persian.
        await publish(tenant_event(tenant, "de"))
        await eventually(partial(store.tenant, tenant), timeout=60, what="the tenant onboarded")
        volunteers = {language: volunteer(tenant, language) for language in ("uk", "fa")}
        for event in volunteers.values():
            await publish(event)
        for event in volunteers.values():
            await eventually(partial(store.volunteer, tenant, event.subject), what="the volunteer known")
        need = opened(tenant, needed=2, description=DESCRIPTION)
        await publish(need)

        async def both_proposed() -> list[Envelope[Any]] | None:
            found = [e for e in reader.events(tenant, need.subject) if e.type.endswith(".proposed.v1")]
            return found if len(found) == 2 else None

        proposed = await eventually(both_proposed, what="both volunteers proposed")
        language_of = {str(event.data.volunteer_id): language for language, event in volunteers.items()}
        links = {language_of[str(e.data.volunteer_id)]: answer_path(settings, e) for e in proposed}
        proposals = {language_of[str(e.data.volunteer_id)]: str(e.data.proposal_id) for e in proposed}
        async with served(app) as base_url:
            yield World(base_url, settings, store, tenant, links, proposals)


async def test_the_accept_link_asks_in_the_volunteers_language_and_the_button_answers(
    world: World, phone_page: Page
) -> None:
    # The Ukrainian volunteer of a German-speaking municipality opens the link from their mail.
    await phone_page.goto(f"{world.base_url}{world.links['uk']}?choice=accept")
    assert await phone_page.get_attribute("html", "lang") == "uk"
    title, accept = texts("uk", "Anfrage annehmen?", "Ich sage zu")
    await phone_page.get_by_role("heading", level=1, name=title).wait_for()
    assert DESCRIPTION in await phone_page.inner_text("main")
    reason = texts("uk", pages.REASON_LABELS["language"])[0]
    assert reason in await phone_page.inner_text("main")
    opened = await world.store.proposal(world.tenant, world.proposals["uk"])
    assert opened is not None and opened["status"] == "open", "opening the page must not answer"

    await phone_page.get_by_role("button", name=accept).click()

    thanks, done = texts(
        "uk",
        "Vielen Dank!",
        "Sie haben zugesagt. Die Bestätigung mit allen Einzelheiten kommt per E-Mail oder als Nachricht in "
        "Lotse, und einen Tag vor dem Termin erinnern wir Sie.",
    )
    await phone_page.get_by_role("heading", level=1, name=thanks).wait_for()
    main = await phone_page.inner_text("main")
    assert done in main
    # Whom to ask: the need's organisation is not known here, so the municipality's office.
    office = TenantOnboarded.example()
    assert f"{office.name}, {office.coordination_email}" in main
    assert await phone_page.get_attribute("html", "lang") == "uk"

    async def accepted() -> bool:
        proposal = await world.store.proposal(world.tenant, world.proposals["uk"])
        return proposal is not None and proposal["status"] == "accepted"

    await eventually(accepted, what="the proposal accepted")
    await assert_accessible(phone_page)


async def test_the_language_switcher_shows_the_same_page_in_another_language(world: World, phone_page: Page) -> None:
    # Without a choice of their own, the Persian volunteer reads Persian, right to left.
    await phone_page.goto(f"{world.base_url}{world.links['fa']}?choice=decline")
    assert await phone_page.get_attribute("html", "lang") == "fa"
    assert await phone_page.get_attribute("html", "dir") == "rtl"

    await phone_page.get_by_role("link", name="English").click()
    await phone_page.get_by_role("heading", level=1, name=texts("en", "Anfrage ablehnen?")[0]).wait_for()
    assert await phone_page.get_attribute("html", "dir") == "ltr"
    # Still the same link and choice, and still unanswered.
    assert world.links["fa"] in phone_page.url and "choice=decline" in phone_page.url
    proposal = await world.store.proposal(world.tenant, world.proposals["fa"])
    assert proposal is not None and proposal["status"] == "open"


@pytest.mark.parametrize("language", pages.LANGUAGES)
async def test_every_page_language_is_accessible_fits_a_phone_and_runs_in_its_direction(
    world: World, phone_page: Page, language: str
) -> None:
    confirmation = f"{world.base_url}{world.links['fa']}?choice=decline&lang={language}"
    broken = f"{world.base_url}/answers/not.ours?choice=accept&lang={language}"
    for url, title_id in ((confirmation, "Anfrage ablehnen?"), (broken, "Link ungültig")):
        await phone_page.goto(url)
        assert await phone_page.get_attribute("html", "lang") == language
        expected = "rtl" if language in RIGHT_TO_LEFT else "ltr"
        assert await phone_page.get_attribute("html", "dir") == expected
        await phone_page.get_by_role("heading", level=1, name=texts(language, title_id)[0]).wait_for()
        await assert_accessible(phone_page)
        assert phone_page.viewport_size == {"width": PHONE.width, "height": PHONE.height}
        assert await scroll_width(phone_page) <= PHONE.width, f"{url} is wider than a phone"
        # The stylesheet arrived (the content security policy allows styles from self only).
        assert await phone_page.evaluate("() => getComputedStyle(document.body).marginTop") == "0px"
