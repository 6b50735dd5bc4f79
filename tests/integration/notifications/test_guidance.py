"""The guidance texts through the notifications API, on the real database: a coordinator reads
the topics with their defaults and overrides them per language (a topic left out is the default
again), everyone of the tenant reads them as volunteers do (their language, else German), and
another municipality's tokens see and change nothing of ours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue
from lotse_runtime.auth import Role
from tests.integration.notifications.support import Running, service_settings, serving
from tests.support import tokens

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOPICS = ["insurance", "certificates", "authorities", "contact"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Running]:
    prefix = f"g{uuid.uuid4().hex[:6]}"
    async with serving(Running, stack, service_settings(stack, smtp_sink, prefix), prefix) as running:
        yield running


def headers(*roles: Role, tenant: str | None, organisation: str | None = None) -> dict[str, str]:
    token = tokens.issue(str(uuid.uuid4()), roles, tenant=tenant, organisation=organisation)
    return {"Authorization": f"Bearer {token}"}


async def test_a_coordinator_overrides_topics_and_a_topic_left_out_is_the_default_again(service: Running) -> None:
    tenant = service.new_tenant()
    office = headers(Role.COORDINATOR, tenant=tenant)
    fresh = (await service.http.get("/guidance/de", headers=office)).json()
    assert fresh["topics"] == TOPICS and fresh["overridden"] == []
    assert fresh["defaults"] == catalogue.guidance("de") and "authorities" not in fresh["defaults"]
    assert fresh["insurance"] == catalogue.guidance("de")["insurance"]

    texts = {"insurance": "Versichert über die Stadt.", "authorities": "Das Bürgerbüro öffnet um 8 Uhr."}
    saved = await service.http.put("/guidance/de", json=texts, headers=office)
    assert saved.status_code == 200, saved.text
    shown = (await service.http.get("/guidance/de", headers=office)).json()
    assert shown["overridden"] == ["authorities", "insurance"] and shown["insurance"] == texts["insurance"]
    assert shown["defaults"]["insurance"] == catalogue.guidance("de")["insurance"]

    # Saving without the insurance text resets it to the default.
    assert (await service.http.put("/guidance/de", json={"authorities": "Neu."}, headers=office)).status_code == 200
    again = (await service.http.get("/guidance/de", headers=office)).json()
    assert again["overridden"] == ["authorities"] and again["insurance"] == catalogue.guidance("de")["insurance"]

    too_long = await service.http.put("/guidance/de", json={"contact": "x" * 1001}, headers=office)
    assert too_long.status_code == 422 and "contact" in too_long.text
    unknown = await service.http.put("/guidance/de", json={"weather": "sunny"}, headers=office)
    assert unknown.status_code == 422 and "weather" in unknown.text


async def test_volunteers_read_their_language_else_the_tenants_german_text(service: Running) -> None:
    tenant = service.new_tenant()
    office = headers(Role.COORDINATOR, tenant=tenant)
    german = {"authorities": "Termine beim Jobcenter bitte früh buchen.", "contact": "Fragen Sie Frau Demir."}
    assert (await service.http.put("/guidance/de", json=german, headers=office)).status_code == 200
    volunteer = headers(Role.VOLUNTEER, tenant=tenant)

    persian = (await service.http.get("/me/guidance/fa", headers=volunteer)).json()
    assert persian["language"] == "fa"
    found = {item["topic"]: item for item in persian["topics"]}
    assert [item["topic"] for item in persian["topics"]] == TOPICS
    # No Persian text of the tenant: the Persian default where there is one, else the tenant's German.
    assert found["insurance"] == {
        "topic": "insurance",
        "text": catalogue.guidance("fa")["insurance"],
        "language": "fa",
        "source": "default",
    }
    assert found["authorities"] == {
        "topic": "authorities",
        "text": german["authorities"],
        "language": "de",
        "source": "tenant",
    }
    assert found["contact"]["language"] == "fa" and found["contact"]["source"] == "default"

    farsi = {"authorities": "نوبت جاب‌سنتر را زود رزرو کنید."}
    assert (await service.http.put("/guidance/fa", json=farsi, headers=office)).status_code == 200
    persian = (await service.http.get("/me/guidance/fa", headers=volunteer)).json()
    authorities = next(item for item in persian["topics"] if item["topic"] == "authorities")
    assert (authorities["text"], authorities["language"]) == (farsi["authorities"], "fa")

    # A language Lotse has no catalogue for: German throughout.
    other = (await service.http.get("/me/guidance/pl", headers=volunteer)).json()
    assert {item["language"] for item in other["topics"]} == {"de"}
    assert next(i for i in other["topics"] if i["topic"] == "contact")["text"] == german["contact"]

    # A tenant that wrote nothing has no authorities topic to show.
    empty = (
        await service.http.get("/me/guidance/de", headers=headers(Role.VOLUNTEER, tenant=service.new_tenant()))
    ).json()
    assert [item["topic"] for item in empty["topics"]] == ["insurance", "certificates", "contact"]


async def test_who_may_read_and_write_the_guidance(service: Running) -> None:
    tenant = service.new_tenant()
    for role, organisation in ((Role.VOLUNTEER, None), (Role.COORDINATOR, None), (Role.INITIATIVE_ADMIN, "org-1")):
        caller = headers(role, tenant=tenant, organisation=organisation)
        assert (await service.http.get("/me/guidance/de", headers=caller)).status_code == 200, role
    for role, organisation in ((Role.VOLUNTEER, None), (Role.INITIATIVE_ADMIN, "org-1"), (Role.PARTNER, None)):
        caller = headers(role, tenant=tenant, organisation=organisation)
        assert (await service.http.get("/guidance/de", headers=caller)).status_code == 403, role
        assert (await service.http.put("/guidance/de", json={}, headers=caller)).status_code == 403, role
    partner = headers(Role.PARTNER, tenant=tenant)
    assert (await service.http.get("/me/guidance/de", headers=partner)).status_code == 403
    assert (await service.http.get("/me/guidance/de")).status_code == 401
    no_tenant = headers(Role.PLATFORM_ADMIN, Role.VOLUNTEER, tenant=None)
    assert (await service.http.get("/me/guidance/de", headers=no_tenant)).status_code == 403
    bad = await service.http.get("/me/guidance/deu", headers=headers(Role.VOLUNTEER, tenant=tenant))
    assert bad.status_code == 422 and "language" in bad.text


async def test_another_municipalitys_tokens_see_and_change_nothing_of_ours(service: Running) -> None:
    ours, theirs = service.new_tenant(), service.new_tenant()
    marker = f"Bürgerbüro {uuid.uuid4().hex}"
    our_office = headers(Role.COORDINATOR, tenant=ours)
    assert (await service.http.put("/guidance/de", json={"authorities": marker}, headers=our_office)).status_code == 200

    their_office = headers(Role.COORDINATOR, tenant=theirs)
    intruders = [
        their_office,
        headers(Role.VOLUNTEER, tenant=theirs),
        headers(Role.INITIATIVE_ADMIN, tenant=theirs, organisation="org-1"),
        headers(*(role for role in Role if role != Role.PLATFORM_ADMIN), tenant=theirs, organisation="org-1"),
    ]
    for caller in intruders:
        for path in ("/guidance/de", "/me/guidance/de"):
            response = await service.http.get(path, headers=caller)
            assert response.status_code in (200, 403) and marker not in response.text, path
    # Their coordinator writes their own text; ours stays.
    assert (
        await service.http.put("/guidance/de", json={"authorities": "bei ihnen"}, headers=their_office)
    ).status_code == 200
    mine = (await service.http.get("/me/guidance/de", headers=headers(Role.VOLUNTEER, tenant=ours))).json()
    assert next(i for i in mine["topics"] if i["topic"] == "authorities")["text"] == marker
