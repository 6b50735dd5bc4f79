"""What templates may do, on the real broker, database and SMTP sink. They cannot stall the
service: hostile tenant overrides are refused at upload, one that got stored anyway fails its
delivery with a reason, and the service keeps answering while a template renders. And text the
municipality did not write never becomes a link in its mails."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import VolunteerPickedNeed, VolunteerRegistered
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications.templates import TemplateSource
from tests.integration.notifications.support import (
    Running,
    html_links_and_direction,
    need_opened,
    onboarded,
    proposed,
    registered,
    service_settings,
    serving,
    wait_for_mail,
)
from tests.support import events
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

POWER = "{{ 9 ** 9 ** 9 }}"
NESTED_RANGES = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
# Allowed ranges, a billion iterations, no output: only the time limit stops it.
SILENT_LOOPS = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Running]:
    prefix = f"t{uuid.uuid4().hex[:6]}"
    # A render limit long enough that a request surely arrives while the render is under way.
    settings = service_settings(
        stack, smtp_sink, prefix, template_render_seconds=5.0, retry_base_seconds=0.2, retry_max_seconds=1.0
    )
    async with serving(Running, stack, settings, prefix) as running:
        yield running


def _checking_a_template() -> bool:
    """Some thread is inside the upload check of a template right now."""
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            if frame.f_code.co_name == "check_source" and frame.f_code.co_filename.endswith("templates.py"):
                return True
            frame = frame.f_back
    return False


async def test_hostile_overrides_are_refused_at_upload_naming_the_part(service: Running) -> None:
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    coordinator = service.coordinator(tenant)
    for template in (POWER, NESTED_RANGES):
        response = await service.http.put(
            "/templates/welcome/de", json={"subject": "Hallo", "text": template}, headers=coordinator
        )
        assert response.status_code == 422, (template, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [error["field"] for error in response.json()["errors"]] == ["text"]
    too_long = await service.http.put(
        "/templates/welcome/de", json={"subject": "Hallo", "text": "x" * 20_001}, headers=coordinator
    )
    assert too_long.status_code == 422 and [e["field"] for e in too_long.json()["errors"]] == ["text"]
    shown = await service.http.get("/templates/welcome/de", headers=coordinator)
    assert shown.json()["source"] == "default"


async def test_health_answers_while_a_template_renders_and_the_render_is_stopped(service: Running) -> None:
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    upload = asyncio.create_task(
        service.http.put(
            "/templates/welcome/de",
            json={"subject": "Hallo", "text": SILENT_LOOPS},
            headers=service.coordinator(tenant),
        )
    )

    async def rendering() -> bool:
        return _checking_a_template()

    await eventually(rendering, what="the template to be rendered")
    health = await service.http.get("/health")
    assert health.status_code == 200
    assert _checking_a_template()  # answered during the render, not after it

    refused = await upload
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["field"] == "text" and "took longer than 5 s" in error["message"]


async def test_a_stored_override_that_cannot_render_fails_its_delivery_with_the_reason(
    service: Running,
) -> None:
    """An override stored before these limits: the delivery is aborted and recorded, not sent."""
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    store = service.app.state.store
    await store.save_template_override(tenant, "welcome", "de", TemplateSource("Hallo", POWER))
    await service.publish(onboarded(tenant), registered(tenant, channels=("email",)))

    async def dead() -> list[dict[str, Any]]:
        response = await service.http.get("/deliveries", params={"status": "dead"}, headers=service.coordinator(tenant))
        return response.json()

    (delivery,) = await eventually(dead, what="the welcome to fail")
    assert delivery["kind"] == "welcome" and delivery["reason"] == "render_failed"
    assert delivery["error"] == "text: SecurityError (details only when the override is saved again)"
    assert (await service.http.get("/health")).status_code == 200


async def test_a_render_error_quoting_an_answer_link_keeps_the_link_out_of_the_delivery_log(
    service: Running,
) -> None:
    """A template can make its error quote the message's data: the dict lookup's error names the key,
    here the volunteer's accept link. The log (a database, read by the coordinator) keeps the kind of
    error only, so the link stays in the mail alone."""
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    store = service.app.state.store
    await store.save_template_override(tenant, "match_proposed", "de", TemplateSource("Hallo", "{{ {}[accept_url] }}"))
    volunteer = registered(tenant, channels=("email",))
    need = need_opened(tenant)
    await service.publish(onboarded(tenant), volunteer, need)
    await service.publish(proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1))

    async def dead() -> list[dict[str, Any]]:
        response = await service.http.get(
            "/deliveries",
            params={"status": "dead", "kind": "match_proposed"},
            headers=service.coordinator(tenant),
        )
        return response.json()

    (delivery,) = await eventually(dead, what="the proposal mail to fail")
    assert delivery["reason"] == "render_failed"
    assert delivery["error"] == "text: UndefinedError (details only when the override is saved again)"
    stored = await service.database.deliveries.find({"tenant": tenant}).to_list()
    assert stored and "/answers/" not in str(stored)


async def test_links_in_a_need_description_are_not_clickable_in_the_proposal_mail(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    volunteer = registered(tenant, channels=("email",))
    description = "Bitte vorher https://evil.example/login ausfüllen, Infos auf www.evil.example."
    need = need_opened(tenant, description=description)
    await service.publish(onboarded(tenant), volunteer, need)
    await service.publish(proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1))

    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    for part in ("text", "html"):
        assert "evil.example" not in mail[part] and "https://evil" not in mail[part], mail[part]
        assert not re.search(r"(https?://|www\.)[^\s<]*evil", mail[part], re.IGNORECASE)
        # Readable still, in the documented defanged form.
        assert "https[:]//evil[.]example/login" in mail[part] and "www[.]evil[.]example" in mail[part]
    hrefs, _ = html_links_and_direction(mail["html"])
    # The municipality's own links, accept and decline, are links still; nothing else is.
    assert len(hrefs) == 2 and all("/answers/" in href for href in hrefs), hrefs
    assert all(href in mail["text"] for href in hrefs)


async def test_what_volunteers_and_initiatives_typed_is_escaped_and_never_a_link_in_the_offices_mails(
    service: Running, smtp_sink: SmtpSink
) -> None:
    """A name and a mailbox the contract's patterns let through (``www.evil.example/x@evil.zz`` is a
    valid address to them) are shown in the staffed mail and the volunteer's confirmation, but escaped
    in the HTML part and defanged in both, so no mail client makes a link of them."""
    tenant = f"{service.prefix}-{uuid.uuid4().hex[:6]}"
    owner = events.organisation_registered(
        tenant, name="<i>Hilfe</i> www.evil.example", contact_email="https://evil.example/login@evil.example"
    )
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | {
        "display_name": "<b>Eve</b> https://evil.example/x",
        "email": "www.evil.example/x@evil.zz",
        "channels": ["email"],
    }
    consent = example.consent.model_dump(mode="json") | {"purposes": ["contact", "share_with_organisation"]}
    hostile = events.volunteer_registered(tenant, contact=contact, consent=consent)
    need = events.need_opened(tenant, organisation_id=owner.data.organisation_id)
    await service.applied(tenant, onboarded(tenant), owner, hostile, need)
    await service.publish(events.need_staffed(tenant, need.data.need_id, volunteer_ids=[hostile.data.volunteer_id]))
    picked = events.event(
        VolunteerPickedNeed,
        tenant,
        need.data.need_id,
        source=events.MATCHING,
        need_id=need.data.need_id,
        volunteer_id=hostile.data.volunteer_id,
        version=2,
    )
    await service.publish(picked)

    staffed = await wait_for_mail(smtp_sink, f"office@{tenant}.example", "need_staffed")
    confirmation = await wait_for_mail(smtp_sink, "www.evil.example/x@evil.zz", "proposal_accepted")
    for mail in (staffed, confirmation):
        for part in ("text", "html"):
            assert not re.search(r"https?://evil|www\.evil|evil\.example", mail[part]), mail[part]
        assert "<b>" not in mail["html"] and "<i>" not in mail["html"]
        hrefs, _ = html_links_and_direction(mail["html"])
        assert not any("evil" in href for href in hrefs), hrefs
    assert "&lt;b&gt;Eve&lt;/b&gt; https[:]//evil[.]example/x" in staffed["html"]
    assert "www[.]evil[.]example/x@evil[.]zz" in staffed["text"]
    assert "&lt;i&gt;Hilfe&lt;/i&gt; www[.]evil[.]example" in confirmation["html"]
