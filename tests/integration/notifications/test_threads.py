"""Questions and answers (issue 16, item 5) on the real broker, database and SMTP sink: a
volunteer's question reaches the office's mailbox, the office's answer reaches the volunteer's
mail and in-app inbox (never the texts themselves), the contact person finds theirs under "mine",
bad input is refused naming the field, posting is limited per person, and erasure deletes it all."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from lotse_contracts import VolunteerContactPersonChanged, VolunteerErased
from lotse_contracts.events.values import QuietHours
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue
from lotse_notifications.api import subject_access
from lotse_runtime.auth import Role
from tests.integration.notifications.support import (
    Running,
    mails_to,
    onboarded,
    registered,
    service_settings,
    serving,
    wait_for_mail,
)
from tests.support import events, tokens
from tests.support.subject_access import collections_naming, sections_with_records
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

contact_person_changed = events.Builder(VolunteerContactPersonChanged, events.REGISTRY, "volunteer_id")
volunteer_erased = events.Builder(VolunteerErased, events.REGISTRY, "volunteer_id")
POST_LIMIT = 6
QUESTION = "Ich bin seit März ohne Aufenthaltstitel, darf ich trotzdem helfen?"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Running]:
    prefix = f"q{uuid.uuid4().hex[:6]}"
    settings = service_settings(
        stack, smtp_sink, prefix, portal_url="https://lotse.example.org", thread_post_limit=POST_LIMIT
    )
    async with serving(Running, stack, settings, prefix) as running:
        yield running


async def test_a_question_reaches_the_office_and_the_answer_the_volunteers_mail_and_inbox(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant, name="Amira Haddad", channels=("email", "in_app"))
    await service.applied(tenant, onboarded(tenant), volunteer)
    volunteer_id = str(volunteer.data.volunteer_id)
    me = service.auth(Role.VOLUNTEER, tenant, volunteer_id)
    staff_id = str(uuid.uuid4())
    coordinator = service.auth(Role.COORDINATOR, tenant, staff_id)

    asked = await service.http.post("/me/threads", json={"subject": "Darf ich helfen?", "text": QUESTION}, headers=me)
    assert asked.status_code == 201, asked.text
    thread = asked.json()
    assert (thread["state"], thread["message_count"], thread["messages"][0]["text"]) == ("open", 1, QUESTION)

    office_mail = await wait_for_mail(smtp_sink, f"office@{tenant}.example", catalogue.QUESTION_ASKED)
    assert office_mail["subject"] == "Neue Frage an die Koordinationsstelle: Darf ich helfen?"
    assert "Amira Haddad" in office_mail["text"]
    assert f"https://lotse.example.org/console/questions/{thread['id']}" in office_mail["text"]
    assert "Aufenthaltstitel" not in office_mail["text"] + office_mail["html"]

    listed = (await service.http.get("/threads", params={"state": "open"}, headers=coordinator)).json()
    assert [item["id"] for item in listed["items"]] == [thread["id"]] and listed["total"] == 1
    assert listed["items"][0]["volunteer_name"] == "Amira Haddad" and listed["items"][0]["mine"] is False
    assert (await service.http.get("/threads", params={"mine": "true"}, headers=coordinator)).json()["total"] == 0

    # The registry names the coordinator the volunteer's contact person: it is "mine" now.
    await service.publish(contact_person_changed(tenant, volunteer.data.volunteer_id, version=2, staff_id=staff_id))

    async def mine() -> list[dict[str, Any]]:
        found = (await service.http.get("/threads", params={"mine": "true"}, headers=coordinator)).json()
        items: list[dict[str, Any]] = found["items"]
        return items

    (item,) = await eventually(mine, what="the thread among the contact person's")
    assert item["mine"] is True and item["contact_person_id"] == staff_id

    answer = "Ja, das dürfen Sie. Kommen Sie gern am Dienstag vorbei."
    answered = await service.http.post(f"/threads/{thread['id']}/messages", json={"text": answer}, headers=coordinator)
    assert answered.status_code == 201, answered.text
    assert answered.json()["state"] == "answered"
    assert answered.json()["messages"][-1] | {"created_at": None} == {
        "id": answered.json()["messages"][-1]["id"],
        "author": "office",
        "author_id": staff_id,
        "text": answer,
        "created_at": None,
    }

    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, catalogue.QUESTION_ANSWERED)
    assert mail["subject"] == "Die Koordinationsstelle hat Ihnen geantwortet"
    assert f"https://lotse.example.org/questions/{thread['id']}" in mail["text"]
    assert "Dienstag" not in mail["text"] + mail["html"]

    async def inbox() -> list[dict[str, Any]]:
        messages = (await service.http.get("/me/messages", headers=me)).json()
        return [m for m in messages if m["kind"] == catalogue.QUESTION_ANSWERED]

    (in_app,) = await eventually(inbox, what="the answer's in-app message")
    assert "Darf ich helfen?" in in_app["text"]

    mine_view = (await service.http.get(f"/me/threads/{thread['id']}", headers=me)).json()
    assert [(m["author"], m["author_id"], m["text"]) for m in mine_view["messages"]] == [
        ("volunteer", None, QUESTION),
        ("office", None, answer),  # the volunteer reads "the office", not who of it
    ]
    closed = await service.http.post(f"/threads/{thread['id']}/closing", headers=coordinator)
    assert closed.json()["state"] == "closed"
    again = await service.http.post(f"/me/threads/{thread['id']}/messages", json={"text": "Danke!"}, headers=me)
    assert again.status_code == 201 and again.json()["state"] == "open"


async def test_the_questions_answers_and_the_offices_other_writes_are_in_the_audit_trail_for_its_officer_only(
    service: Running,
) -> None:
    """Who asked, answered, closed or reopened which question, who marked a message read, chose
    the office's mail or asked for the digest: field names only, never the texts."""
    tenant = service.new_tenant()
    volunteer = registered(tenant, name="Amira Haddad", channels=("email", "in_app"))
    await service.applied(tenant, onboarded(tenant), volunteer)
    volunteer_id, staff_id = str(volunteer.data.volunteer_id), str(uuid.uuid4())
    me, coordinator = (
        service.auth(Role.VOLUNTEER, tenant, volunteer_id),
        service.auth(Role.COORDINATOR, tenant, staff_id),
    )
    asked = await service.http.post("/me/threads", json={"subject": "Darf ich helfen?", "text": QUESTION}, headers=me)
    assert asked.status_code == 201, asked.text
    thread = asked.json()["id"]
    answer = {"text": "Ja, das dürfen Sie."}
    assert (await service.http.post(f"/threads/{thread}/messages", json=answer, headers=coordinator)).is_success
    assert (await service.http.post(f"/threads/{thread}/closing", headers=coordinator)).is_success
    assert (await service.http.post(f"/threads/{thread}/reopening", headers=coordinator)).is_success
    assert (await service.http.post(f"/me/threads/{thread}/messages", json={"text": "Danke!"}, headers=me)).is_success

    async def inbox() -> list[dict[str, Any]]:
        return list((await service.http.get("/me/messages", headers=me)).json())

    (message, *_) = await eventually(inbox, what="the answer's in-app message")
    assert (await service.http.post(f"/me/messages/{message['id']}/read", headers=me)).is_success
    choice = {"delivery": "daily_digest", "digest_time": "07:30"}
    assert (await service.http.put("/mail-preferences/office", json=choice, headers=coordinator)).is_success
    assert (await service.http.post("/digest", headers=coordinator)).status_code == 202

    officer = service.auth(Role.DATA_PROTECTION_OFFICER, tenant)
    trail = f"/tenants/{tenant}/audit"
    about = await service.http.get(trail, params={"subject": volunteer_id}, headers=officer)
    assert about.status_code == 200, about.text
    written = [
        (e["actor"], e["operation"], e["resource_type"], e["action"], e["fields"])
        for e in reversed(about.json()["items"])
    ]
    whole_message = ["last_activity_at", "last_from", "messages", "state"]
    assert written == [
        (volunteer_id, "create", "threads", "POST /me/threads", written[0][4]),
        (staff_id, "update", "threads", "POST /threads/{thread_id}/messages", whole_message),
        (staff_id, "update", "threads", "POST /threads/{thread_id}/closing", ["state"]),
        (staff_id, "update", "threads", "POST /threads/{thread_id}/reopening", ["state"]),
        (volunteer_id, "update", "threads", "POST /me/threads/{thread_id}/messages", whole_message),
        (volunteer_id, "update", "messages", "POST /me/messages/{message_id}/read", ["read_at"]),
    ]
    assert {"subject", "messages", "volunteer_id", "state"} <= set(written[0][4])
    assert QUESTION not in about.text and "dürfen" not in about.text, "field names, never the texts"
    office = await service.http.get(trail, params={"actor": staff_id, "resource": "mail_preferences"}, headers=officer)
    (preference,) = office.json()["items"]
    assert preference["action"] == "PUT /mail-preferences/office" and "delivery" in preference["fields"]
    digest = await service.http.get(trail, params={"resource": "deliveries"}, headers=officer)
    assert [(e["actor"], e["action"]) for e in digest.json()["items"]] == [(staff_id, "POST /digest")]

    exported = await service.http.get(f"{trail}.json", headers=officer)
    assert exported.status_code == 200 and len(exported.json()) == 8
    as_csv = await service.http.get(f"{trail}.csv", params={"subject": volunteer_id}, headers=officer)
    assert as_csv.status_code == 200 and as_csv.text.count("\r\n") == 7
    other_officer = service.auth(Role.DATA_PROTECTION_OFFICER, service.new_tenant())
    for who, status in ((other_officer, 404), (coordinator, 403), (me, 403)):
        for path in (trail, f"{trail}.csv", f"{trail}.json"):
            assert (await service.http.get(path, headers=who)).status_code == status, (path, status)


async def test_bad_input_is_refused_naming_the_field_and_others_threads_are_not_found(service: Running) -> None:
    tenant = service.new_tenant()
    volunteer, other = registered(tenant), registered(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, other)
    me = service.auth(Role.VOLUNTEER, tenant, str(volunteer.data.volunteer_id))
    cases = [
        ({"subject": "", "text": "x"}, "subject"),
        ({"subject": "zwei\nZeilen", "text": "x"}, "subject"),
        ({"subject": "s" * 151, "text": "x"}, "subject"),
        ({"subject": "Frage", "text": "   "}, "text"),
        ({"subject": "Frage", "text": "t" * 2001}, "text"),
        ({"subject": "Frage", "text": "Glocke \x07"}, "text"),
        ({"subject": "Frage", "text": "x", "about_need_id": str(uuid.uuid4())}, "about_need_id"),
        ({"subject": "Frage", "text": "x", "html": "<b>"}, "html"),
    ]
    for body, field in cases:
        response = await service.http.post("/me/threads", json=body, headers=me)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [error["field"] for error in response.json()["errors"]], (body, response.json())
    assert (await service.http.get("/me/threads", headers=me)).json() == []

    thread = (await service.http.post("/me/threads", json={"subject": "Frage", "text": "x"}, headers=me)).json()
    them = service.auth(Role.VOLUNTEER, tenant, str(other.data.volunteer_id))
    attempts: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", f"/me/threads/{thread['id']}", None),
        ("GET", f"/me/threads/{thread['id']}/messages", None),
        ("POST", f"/me/threads/{thread['id']}/messages", {"text": "fremd"}),
    ]
    for method, path, sent in attempts:
        response = await service.http.request(method, path, json=sent, headers=them)
        assert response.status_code == 404, (method, path, response.text)
    # Initiative admins read no questions: the volunteer asked the coordination office.
    token = tokens.issue(str(uuid.uuid4()), [Role.INITIATIVE_ADMIN], tenant=tenant, organisation=str(uuid.uuid4()))
    admin = {"Authorization": f"Bearer {token}"}
    assert (await service.http.get("/threads", headers=admin)).status_code == 403
    assert (await service.http.get(f"/threads/{thread['id']}", headers=admin)).status_code == 403


async def test_posting_is_limited_per_person(service: Running) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer)
    me = service.auth(Role.VOLUNTEER, tenant, str(volunteer.data.volunteer_id))
    statuses = [
        (await service.http.post("/me/threads", json={"subject": f"Frage {n}", "text": "x"}, headers=me)).status_code
        for n in range(POST_LIMIT + 1)
    ]
    # A window may turn over between the posts: then the last one is allowed again.
    if statuses[-1] == 429:
        assert statuses == [201] * POST_LIMIT + [429]
        refused = await service.http.post("/me/threads", json={"subject": "noch eine", "text": "x"}, headers=me)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    else:
        assert statuses.count(201) == POST_LIMIT + 1
    created = (await service.http.get("/me/threads", headers=me)).json()
    assert len(created) == statuses.count(201)


async def test_erasure_deletes_the_volunteers_questions(service: Running, smtp_sink: SmtpSink) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer)
    me = service.auth(Role.VOLUNTEER, tenant, str(volunteer.data.volunteer_id))
    thread = (await service.http.post("/me/threads", json={"subject": "Frage", "text": "x"}, headers=me)).json()
    await service.publish(volunteer_erased(tenant, volunteer.data.volunteer_id, version=3))

    async def gone() -> bool:
        return await service.database.threads.count_documents({"tenant": tenant}) == 0

    await eventually(gone, what="the erased volunteer's threads deleted")
    coordinator = service.coordinator(tenant)
    assert (await service.http.get(f"/threads/{thread['id']}", headers=coordinator)).status_code == 404
    assert await service.database.post_counts.count_documents({"tenant": tenant}) == 0
    assert await mails_to(smtp_sink, volunteer.data.contact.email, catalogue.QUESTION_ANSWERED) == []


async def test_an_answer_in_the_volunteers_quiet_hours_waits_by_email_and_is_in_the_app_at_once(
    service: Running,
) -> None:
    tenant = service.new_tenant()
    local_now = datetime.now(ZoneInfo("Europe/Berlin"))  # the onboarded tenant's time zone
    quiet_end = (local_now + timedelta(hours=1)).replace(microsecond=0)
    window = QuietHours(start=(local_now - timedelta(minutes=1)).time().replace(microsecond=0), end=quiet_end.time())
    night_owl = registered(tenant, channels=("email", "in_app"), quiet_hours=window)
    await service.applied(tenant, onboarded(tenant), night_owl)
    me = service.auth(Role.VOLUNTEER, tenant, str(night_owl.data.volunteer_id))
    thread = (await service.http.post("/me/threads", json={"subject": "Spät", "text": "Noch wach?"}, headers=me)).json()
    answered = await service.http.post(
        f"/threads/{thread['id']}/messages", json={"text": "Morgen mehr."}, headers=service.coordinator(tenant)
    )
    assert answered.status_code == 201, answered.text
    owl = str(night_owl.data.volunteer_id)

    async def postponed() -> list[dict[str, Any]]:
        return await service.deliveries(
            tenant, recipient_id=owl, kind=catalogue.QUESTION_ANSWERED, channel="email", reason="quiet_hours"
        )

    (waiting,) = await eventually(postponed, what="the answer's email to wait for the end of the quiet hours")
    assert waiting["status"] == "pending" and waiting.get("attempts", 0) == 0
    assert waiting["next_attempt_at"] == quiet_end.astimezone(UTC)

    async def in_app() -> list[dict[str, Any]]:
        return await service.deliveries(
            tenant, recipient_id=owl, kind=catalogue.QUESTION_ANSWERED, channel="in_app", status="sent"
        )

    await eventually(in_app, what="the answer's in-app message at once")


async def plant_records_about(service: Running, tenant: str, volunteer_id: str) -> dict[str, set[str]]:
    """A record of each kind that names the volunteer without being sent to them (the office's
    unreachable mail, an organisation's need staffed, a daily digest, a mail about one of their
    proposals, a webhook's body, a digest item), and one about someone else; their ids."""
    proposal_id, someone_else, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(UTC)
    await service.database["proposals"].insert_one(
        {"_id": f"{tenant}:{proposal_id}", "tenant": tenant, "proposal_id": proposal_id, "volunteer_id": volunteer_id}
    )
    body = json.dumps({"type": "de.lotse.matching.proposal.accepted.v1", "data": {"volunteer_id": volunteer_id}})
    payloads = {
        "planted-unreachable": ("tenant", "volunteer_unreachable", "email", {"volunteer_id": volunteer_id}),
        "planted-staffed": ("organisation", "need_staffed", "email", {"volunteer_ids": [someone_else, volunteer_id]}),
        "planted-digest": ("tenant", "daily_digest", "email", {"items": [{"volunteer_ids": [volunteer_id]}]}),
        "planted-proposal": ("organisation", "proposal_accepted", "email", {"proposal_id": proposal_id}),
        "planted-webhook": ("partner", "webhook_event", "webhook", {"event_type": "x", "body": body}),
        "planted-other": ("tenant", "volunteer_unreachable", "email", {"volunteer_id": someone_else}),
    }
    await service.database["deliveries"].insert_many(
        [
            {"_id": f"{tenant}:{key}", "key": f"{tenant}:{key}", "tenant": tenant, "recipient_kind": recipient_kind}
            | {"recipient_id": tenant, "kind": kind}
            | {"channel": channel, "status": "sent", "payload": payload, "created_at": now}
            for key, (recipient_kind, kind, channel, payload) in payloads.items()
        ]
    )
    item: dict[str, Any] = {"tenant": tenant, "recipient_kind": "organisation", "recipient_id": tenant}
    item |= {"kind": "proposal_declined", "digest": "sent", "created_at": now}
    await service.database["digest_items"].insert_many(
        [
            item | {"_id": f"{tenant}:planted-item", "payload": {"proposal_id": proposal_id}},
            item | {"_id": f"{tenant}:planted-other-item", "payload": {"volunteer_id": someone_else}},
        ]
    )
    about, others = {*payloads, "planted-item"} - {"planted-other"}, {"planted-other", "planted-other-item"}
    return {"about": {f"{tenant}:{key}" for key in about}, "others": {f"{tenant}:{key}" for key in others}}


async def test_the_subject_access_export_holds_every_collection_about_the_volunteer(service: Running) -> None:
    """Contact, questions, inbox, the delivery log and the post counts, for the volunteer and the
    office only; no collection naming the volunteer is left out."""
    tenant = service.new_tenant()
    volunteer = registered(tenant, name="Amira Haddad", channels=("email", "in_app"))
    await service.applied(tenant, onboarded(tenant), volunteer)
    volunteer_id = str(volunteer.data.volunteer_id)
    coordinator_id = str(uuid.uuid4())
    me, coordinator = (
        service.auth(Role.VOLUNTEER, tenant, volunteer_id),
        service.auth(Role.COORDINATOR, tenant, coordinator_id),
    )
    asked = await service.http.post("/me/threads", json={"subject": "Darf ich helfen?", "text": QUESTION}, headers=me)
    assert asked.status_code == 201, asked.text
    answer = {"text": "Ja, das dürfen Sie."}
    assert (
        await service.http.post(f"/threads/{asked.json()['id']}/messages", json=answer, headers=coordinator)
    ).is_success

    async def inbox() -> list[dict[str, Any]]:
        return list((await service.http.get("/me/messages", headers=me)).json())

    await eventually(inbox, what="the answer's in-app message")
    planted = await plant_records_about(service, tenant, volunteer_id)
    path = f"/tenants/{tenant}/volunteers/{volunteer_id}/subject-access"
    mine = await service.http.get(path, headers=me)
    assert mine.status_code == 200, mine.text
    export = mine.json()
    assert (export["service"], export["tenant"], export["volunteer_id"]) == ("notifications", tenant, volunteer_id)
    assert {"contact", "messages", "threads", "post_counts", "deliveries", "audit"} <= sections_with_records(export)
    assert {entry["actor"] for entry in export["audit"]["records"]} == {volunteer_id, coordinator_id}
    assert export["contact"]["records"][0]["email"] == volunteer.data.contact.email
    assert QUESTION in mine.text and "Ja, das dürfen Sie." in mine.text
    delivered = {(d["recipient_kind"], d["kind"]) for d in export["deliveries"]["records"]}
    # The office's mail about the question names the person (its payload holds their id).
    assert ("volunteer", "question_answered") in delivered and ("tenant", "question_asked") in delivered
    shown = {record["_id"] for name in ("deliveries", "digest_items") for record in export[name]["records"]}
    assert planted["about"] <= shown, "a record naming the volunteer is missing"
    assert not planted["others"] & shown, "a record about someone else is shown"
    held = await collections_naming(service.database, volunteer_id)
    assert {"contacts", "messages", "threads", "deliveries"} <= held
    assert held <= {*subject_access.COLLECTIONS.values(), *subject_access.NOT_SECTIONS}, "a collection is missing"

    unstated = await service.http.get(path, headers=coordinator)
    assert unstated.status_code == 422 and unstated.json()["errors"][0]["field"] == "query.request_date"
    stated = {"request_date": datetime.now(UTC).date().isoformat(), "reason": "Art. 15"}
    assert (await service.http.get(path, params=stated, headers=coordinator)).json()["threads"] == export["threads"]
    # The office received the volunteer's contact data: a read in the trail, naming the request.
    officer = service.auth(Role.DATA_PROTECTION_OFFICER, tenant)
    reads = await service.http.get(
        f"/tenants/{tenant}/audit", params={"resource": f"volunteers/{volunteer_id}"}, headers=officer
    )
    (read,) = reads.json()["items"]
    assert (read["operation"], read["actor"], read["subject_id"]) == ("read", coordinator_id, volunteer_id)
    assert "subject-access export on the written request" in read["action"] and "contact" in read["fields"]
    admin = tokens.issue(str(uuid.uuid4()), [Role.INITIATIVE_ADMIN], tenant=tenant, organisation=str(uuid.uuid4()))
    refused = {
        "another volunteer": service.auth(Role.VOLUNTEER, tenant, str(uuid.uuid4())),
        "an initiative's admin": {"Authorization": f"Bearer {admin}"},
        "another tenant's coordinator": service.auth(Role.COORDINATOR, service.new_tenant()),
    }
    answers = {name: (await service.http.get(path, headers=caller)).status_code for name, caller in refused.items()}
    assert answers == {"another volunteer": 404, "an initiative's admin": 403, "another tenant's coordinator": 404}
