"""Tenant isolation of the notifications service on the real broker, database and SMTP sink.

Two municipalities side by side with near-identical data: the same person (one volunteer id in
both, as when one login registers in two municipalities), the same need id, the same events, each
with its own guidance, webhook and wording. Every email, in-app message and webhook call of one
must hold nothing of the other, and no token of one reaches the other's data.

One service and one world for the module; the message checks run before the API sweep.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import Envelope
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_runtime.auth import Role
from tests.integration.notifications.support import (
    Running,
    WebhookReceiver,
    mailed_answer_links,
    mails_to,
    need_opened,
    onboarded,
    proposed,
    registered,
    service_settings,
    serving,
    wait_for_mail,
)
from tests.support import tokens
from tests.support.events import need_staffed
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"n{uuid.uuid4().hex[:6]}"
OURS, THEIRS = f"{PREFIX}-ours", f"{PREFIX}-theirs"


@dataclass
class Municipality:
    """What one tenant put into the service; its secrets must never reach the other."""

    tenant: str
    marker: str  # in the volunteer's name, the need's description, the guidance and the wording
    hook: WebhookReceiver
    volunteer: Envelope[Any]
    events: list[Envelope[Any]] = field(default_factory=list)
    hook_id: str = ""
    hook_secret: str = ""
    accept_url: str = ""  # signed into its proposal mail when that was sent

    @property
    def office(self) -> str:
        return f"office@{self.tenant}.example"

    @property
    def secrets(self) -> list[str]:
        contact = self.volunteer.data.contact
        found = [self.tenant, self.marker, self.hook.url, self.hook_id, self.hook_secret, self.accept_url]
        return [value for value in (*found, contact.email, contact.display_name, contact.phone) if value]


@dataclass
class World:
    notifications: Running
    person: str  # the volunteer id both municipalities know
    ours: Municipality
    theirs: Municipality

    def headers(self, *roles: Role, tenant: str | None, subject: str | None = None) -> dict[str, str]:
        # An initiative admin's token always names its organisation (a token without one is refused).
        organisation = f"{tenant}-initiative" if Role.INITIATIVE_ADMIN in roles else None
        token = tokens.issue(subject or str(uuid.uuid4()), roles, tenant=tenant, organisation=organisation)
        return {"Authorization": f"Bearer {token}"}

    def pairs(self) -> list[tuple[Municipality, Municipality]]:
        return [(self.ours, self.theirs), (self.theirs, self.ours)]


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    with WebhookReceiver() as ours, WebhookReceiver() as theirs:
        yield ours, theirs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    stack: Stack, smtp_sink: SmtpSink, hooks: tuple[WebhookReceiver, WebhookReceiver]
) -> AsyncIterator[World]:
    settings = service_settings(stack, smtp_sink, PREFIX)
    person, need_id = uuid.uuid4(), uuid.uuid4()
    async with serving(Running, stack, settings, PREFIX) as notifications:
        world = World(notifications, str(person), *_municipalities(person, hooks))
        await _set_up(world, need_id)
        yield world


def _municipalities(person: uuid.UUID, hooks: tuple[WebhookReceiver, WebhookReceiver]) -> list[Municipality]:
    found = []
    for tenant, hook in zip((OURS, THEIRS), hooks, strict=True):
        marker = uuid.uuid4().hex[:10]
        found.append(Municipality(tenant, marker, hook, registered(tenant, volunteer_id=person, name=f"Lena{marker}")))
    return found


async def _set_up(world: World, need_id: uuid.UUID) -> None:
    """Each municipality's own wording, guidance and webhook, then the same story in both."""
    for town in (world.ours, world.theirs):
        coordinator = world.headers(Role.COORDINATOR, tenant=town.tenant)
        guidance = {"certificates": f"Nachweise im Bürgerbüro {town.marker}"}
        assert (
            await world.notifications.http.put("/guidance/de", json=guidance, headers=coordinator)
        ).status_code == 200
        town.hook_secret = town.hook.secret = f"secret-{uuid.uuid4().hex}"
        hook = {"url": town.hook.url, "secret": town.hook_secret}
        response = await world.notifications.http.post("/webhooks", json=hook, headers=coordinator)
        assert response.status_code == 201, response.text
        town.hook_id = response.json()["id"]
    # Only we word our welcome ourselves.
    wording = {"subject": f"Willkommen bei uns {world.ours.marker}", "text": "Hallo {{ recipient_name }}!"}
    coordinator = world.headers(Role.COORDINATOR, tenant=OURS)
    assert (
        await world.notifications.http.put("/templates/welcome/de", json=wording, headers=coordinator)
    ).status_code == 200

    for town in (world.ours, world.theirs):
        need = need_opened(town.tenant, need_id, description=f"Begleitung zum Jobcenter {town.marker}")
        proposal = proposed(town.tenant, need_id, uuid.UUID(world.person), version=1)
        town.events = [
            onboarded(town.tenant),
            town.volunteer,
            need,
            proposal,
            need_staffed(town.tenant, need_id, version=2),
        ]
        await world.notifications.publish(*town.events[:3])

    async def read() -> bool:
        needs = await world.notifications.database.needs.count_documents(
            {"need_id": str(need_id), "description": {"$exists": True}}
        )
        return (
            needs == 2
            and await world.notifications.database.contacts.count_documents({"volunteer_id": world.person}) == 2
        )

    # Matching only proposes people and needs the registry published long before.
    await eventually(read, timeout=60, what="both municipalities' registry events applied")
    for town in (world.ours, world.theirs):
        await world.notifications.publish(*town.events[3:])


async def _mails(sink: SmtpSink, address: str, kinds: set[str]) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        found = await mails_to(sink, address)
        return found if {mail["headers"].get("X-Lotse-Template") for mail in found} >= kinds else []

    return await eventually(probe, what=f"{sorted(kinds)} mails to {address}")


def _leaks(text: str, other: Municipality) -> list[str]:
    return [secret for secret in other.secrets if secret in text]


async def test_emails_in_app_messages_and_webhook_calls_hold_only_their_own_municipality(
    world: World, smtp_sink: SmtpSink
) -> None:
    for town in (world.ours, world.theirs):
        mail = await wait_for_mail(smtp_sink, town.volunteer.data.contact.email, "match_proposed")
        town.accept_url = mailed_answer_links(mail, town.events[3], world.notifications.settings)[0]
    for town, other in world.pairs():
        marker = town.marker
        volunteer_mails = await _mails(smtp_sink, town.volunteer.data.contact.email, {"welcome", "match_proposed"})
        office_mails = await _mails(smtp_sink, town.office, {"need_staffed"})
        for mail in volunteer_mails + office_mails:
            assert not _leaks(json.dumps(mail, ensure_ascii=False), other), (town.tenant, mail["subject"])
        proposal_mail = next(m for m in volunteer_mails if m["headers"]["X-Lotse-Template"] == "match_proposed")
        assert f"Jobcenter {marker}" in proposal_mail["text"] and town.accept_url in proposal_mail["text"]
        assert f"Jobcenter {marker}" in office_mails[0]["text"]
        welcome = next(m for m in volunteer_mails if m["headers"]["X-Lotse-Template"] == "welcome")
        if town is world.ours:
            assert welcome["subject"] == f"Willkommen bei uns {marker}"
        else:
            assert f"Bürgerbüro {marker}" in welcome["text"] and "Willkommen bei uns" not in welcome["subject"]

        me = world.headers(Role.VOLUNTEER, tenant=town.tenant, subject=world.person)

        async def inbox(headers: dict[str, str] = me) -> list[dict[str, Any]]:
            messages = (await world.notifications.http.get("/me/messages", headers=headers)).json()
            return messages if {m["kind"] for m in messages} >= {"welcome", "match_proposed"} else []

        messages = await eventually(inbox, what=f"the in-app messages of {town.tenant}")
        assert sorted(m["kind"] for m in messages) == ["match_proposed", "welcome"]
        assert not _leaks(json.dumps(messages, ensure_ascii=False), other)
        assert any(f"Jobcenter {marker}" in m["text"] for m in messages)

        forwarded = {
            str(event.id)
            for event in town.events
            if event.type.startswith(("de.lotse.registry.need.", "de.lotse.matching."))
        }

        async def all_forwarded(hook: WebhookReceiver = town.hook, expected: int = len(forwarded)) -> bool:
            return len(hook.bodies) >= expected

        await eventually(all_forwarded, what=f"the webhook calls of {town.tenant}")
        # Partners receive projections of the events (issue 18), CloudEvents with their own schema.
        calls = [json.loads(body) for body in list(town.hook.bodies)]
        assert {call["id"] for call in calls} == forwarded and {call["tenant"] for call in calls} == {town.tenant}
        assert not _leaks(b"".join(town.hook.bodies).decode(), other)
        assert all(call.signature_ok for call in town.hook.calls)  # signed with this municipality's secret

    # The queue agrees: no delivery to one municipality's webhook was ever made of the other's events.
    for town in (world.ours, world.theirs):
        queued = await world.notifications.database.deliveries.find({"recipient_id": town.hook_id}).to_list()
        assert {d["trigger_event_id"] for d in queued} <= {str(e.id) for e in town.events}
        assert {d["tenant"] for d in queued} == {town.tenant}


async def test_tokens_of_the_other_municipality_see_and_change_nothing_of_ours(world: World) -> None:
    ours = world.ours
    our_messages = (
        await world.notifications.http.get(
            "/me/messages", headers=world.headers(Role.VOLUNTEER, tenant=OURS, subject=world.person)
        )
    ).json()
    our_deliveries = await world.notifications.database.deliveries.find({"tenant": OURS}).to_list()
    assert our_messages and our_deliveries
    secrets = [*ours.secrets, *(m["id"] for m in our_messages), *(d["_id"] for d in our_deliveries)]
    intruders = {
        "their coordinator": world.headers(Role.COORDINATOR, tenant=THEIRS),
        "their initiative admin": world.headers(Role.INITIATIVE_ADMIN, tenant=THEIRS),
        "their partner": world.headers(Role.PARTNER, tenant=THEIRS),
        "the same person as theirs": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.person),
        "every tenant role of theirs": world.headers(
            *(role for role in Role if role != Role.PLATFORM_ADMIN), tenant=THEIRS, subject=world.person
        ),
        "a platform admin": world.headers(Role.PLATFORM_ADMIN, tenant=None),
        "a platform admin as coordinator and volunteer without a tenant": world.headers(
            Role.PLATFORM_ADMIN, Role.COORDINATOR, Role.VOLUNTEER, tenant=None, subject=world.person
        ),
    }
    endpoints: list[tuple[str, str, Any]] = [
        ("GET", "/templates/welcome/de", None),
        ("DELETE", "/templates/welcome/de", None),
        ("GET", "/guidance/de", None),
        ("GET", "/webhooks", None),
        ("DELETE", f"/webhooks/{ours.hook_id}", None),
        ("GET", "/deliveries", None),
        ("GET", "/deliveries?status=sent", None),
        ("POST", "/digest", None),
        ("GET", "/me/messages", None),
        *(("POST", f"/me/messages/{message['id']}/read", None) for message in our_messages),
    ]
    outbox_before = await world.notifications.database.outbox.count_documents({"tenant": OURS})
    deliveries_before = await world.notifications.database.deliveries.count_documents({"tenant": OURS})

    for name, headers in intruders.items():
        for method, url, body in endpoints:
            response = await world.notifications.http.request(method, url, json=body, headers=headers)
            # Reads and the digest answer with the caller's own municipality; all else is refused.
            allowed = {200, 202, 403} if method == "GET" or url == "/digest" else {403, 404}
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            leaked = [secret for secret in secrets if secret in response.text.replace(url, "")]
            assert not leaked, (name, method, url, leaked)

    # Their coordinator writes their own wording, guidance and webhook: ours stay as they were.
    theirs = world.headers(Role.COORDINATOR, tenant=THEIRS)
    wording = {"subject": "Willkommen bei ihnen", "text": "Hallo {{ recipient_name }}"}
    assert (
        await world.notifications.http.put("/templates/welcome/de", json=wording, headers=theirs)
    ).status_code == 200
    assert (
        await world.notifications.http.put("/guidance/de", json={"certificates": "bei ihnen"}, headers=theirs)
    ).status_code == 200
    hook = {"url": "http://127.0.0.1:9/theirs", "secret": "their-other-secret-123"}
    assert (await world.notifications.http.post("/webhooks", json=hook, headers=theirs)).status_code == 201

    coordinator = world.headers(Role.COORDINATOR, tenant=OURS)
    template = (await world.notifications.http.get("/templates/welcome/de", headers=coordinator)).json()
    assert template["source"] == "tenant" and template["subject"].startswith("Willkommen bei uns")
    guidance = (await world.notifications.http.get("/guidance/de", headers=coordinator)).json()
    assert guidance["certificates"] == f"Nachweise im Bürgerbüro {ours.marker}"
    assert [h["id"] for h in (await world.notifications.http.get("/webhooks", headers=coordinator)).json()] == [
        ours.hook_id
    ]
    me = world.headers(Role.VOLUNTEER, tenant=OURS, subject=world.person)
    assert not any(m["read"] for m in (await world.notifications.http.get("/me/messages", headers=me)).json())
    assert await world.notifications.database.deliveries.count_documents({"tenant": OURS}) == deliveries_before
    assert await world.notifications.database.outbox.count_documents({"tenant": OURS}) == outbox_before


async def test_questions_of_one_municipality_stay_out_of_reach_of_the_others_tokens(world: World) -> None:
    """Every route of the questions and answers (issue 16, item 5): the same person asks in ours;
    their tokens, that person's included, neither read nor answer nor close it, and their lists
    hold only their own."""
    me = world.headers(Role.VOLUNTEER, tenant=OURS, subject=world.person)
    question = {"subject": f"Frage {world.ours.marker}", "text": f"Wer hilft mir {world.ours.marker}?"}
    asked = await world.notifications.http.post("/me/threads", json=question, headers=me)
    assert asked.status_code == 201, asked.text
    ours = asked.json()
    secrets = [*world.ours.secrets, ours["id"], ours["messages"][0]["id"]]
    intruders = {
        "their coordinator": world.headers(Role.COORDINATOR, tenant=THEIRS),
        "their initiative admin": world.headers(Role.INITIATIVE_ADMIN, tenant=THEIRS),
        "the same person as theirs": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.person),
        "every tenant role of theirs": world.headers(
            *(role for role in Role if role != Role.PLATFORM_ADMIN), tenant=THEIRS, subject=world.person
        ),
        "a platform admin": world.headers(Role.PLATFORM_ADMIN, tenant=None),
    }
    thread = f"/threads/{ours['id']}"
    # (method, path, body, what an intruder may get: their own lists, else nothing of ours)
    endpoints: list[tuple[str, str, Any, set[int]]] = [
        ("GET", "/me/threads", None, {200, 403}),
        ("GET", "/me/threads?include=messages", None, {200, 403}),
        ("GET", f"/me{thread}", None, {403, 404}),
        ("GET", f"/me{thread}/messages", None, {403, 404}),
        ("POST", f"/me{thread}/messages", {"text": "von außen"}, {403, 404}),
        ("GET", "/threads", None, {200, 403}),
        ("GET", "/threads?state=open&mine=true", None, {200, 403}),
        ("GET", thread, None, {403, 404}),
        ("POST", f"{thread}/messages", {"text": "von außen"}, {403, 404}),
        ("POST", f"{thread}/closing", None, {403, 404}),
        ("POST", f"{thread}/reopening", None, {403, 404}),
    ]

    async def mailed() -> bool:  # our own question's mail, and the outcome it publishes, first
        sent = {"tenant": OURS, "kind": "question_asked", "status": "sent"}
        return await world.notifications.database.deliveries.count_documents(sent) == 1

    await eventually(mailed, what="our question mailed to our office")
    outbox_before = await world.notifications.database.outbox.count_documents({"tenant": OURS})
    deliveries_before = await world.notifications.database.deliveries.count_documents({"tenant": OURS})
    for name, headers in intruders.items():
        for method, url, body, allowed in endpoints:
            response = await world.notifications.http.request(method, url, json=body, headers=headers)
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            leaked = [secret for secret in secrets if secret in response.text.replace(url, "")]
            assert not leaked, (name, method, url, leaked)

    # Their volunteer (the same person) asks in theirs: our office's list does not show it.
    them = world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.person)
    theirs = (await world.notifications.http.post("/me/threads", json=question, headers=them)).json()
    coordinator = world.headers(Role.COORDINATOR, tenant=OURS)
    listed = (await world.notifications.http.get("/threads", headers=coordinator)).json()
    assert [item["id"] for item in listed["items"]] == [ours["id"]]
    assert (await world.notifications.http.get(f"/threads/{theirs['id']}", headers=coordinator)).status_code == 404
    unchanged = (await world.notifications.http.get(thread, headers=coordinator)).json()
    assert (unchanged["state"], unchanged["message_count"]) == ("open", 1)
    mine = (await world.notifications.http.get("/me/threads", headers=me)).json()
    assert [item["id"] for item in mine] == [ours["id"]]
    # Their question was mailed to their office only; nothing of ours was queued by them.
    assert await world.notifications.database.deliveries.count_documents({"tenant": OURS}) == deliveries_before
    assert await world.notifications.database.outbox.count_documents({"tenant": OURS}) == outbox_before
