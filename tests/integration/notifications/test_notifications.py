# ruff: noqa: RUF001 - messages in several scripts are asserted on purpose
"""The notifications service on the real broker, database and SMTP sink.

One running service for the module (a consumer group join costs seconds on Tansu); every test
has its own tenant, and the service is told to serve only this module's tenants. Registry and
matching events are published here exactly as those services publish them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from lotse_contracts import (
    MatchFit,
    MatchProposed,
    MatchProposedSealed,
    MatchReason,
    NeedCancelled,
    PersonKeyIssued,
    VolunteerErased,
    new_event,
    parse_event,
)
from lotse_contracts.events.matching import ReasonCode
from lotse_contracts.events.values import QuietHours
from lotse_contracts.topics import DELIVERIES
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue
from lotse_notifications.app import CONSUMED_TOPICS, create_app
from lotse_runtime import i18n
from lotse_runtime.auth import Role
from lotse_runtime.sealed import key_encryption_key, new_data_key, plain_envelope, seal
from tests.integration.notifications.support import (
    Running,
    WebhookReceiver,
    answer_tokens,
    html_links_and_direction,
    mailed_answer_links,
    mails_to,
    need_opened,
    onboarded,
    organisation_registered,
    proposed,
    registered,
    service_settings,
    serving,
    wait_for_mail,
)
from tests.support.events import need_staffed, need_unstaffed
from tests.support.kafka import read_all, record_count
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Running]:
    prefix = f"n{uuid.uuid4().hex[:6]}"
    settings = service_settings(
        stack,
        smtp_sink,
        prefix,
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        delivery_max_attempts=4,
        delivery_timeout_seconds=3.0,
        reminder_before_hours=24,
        reminder_interval_seconds=0.3,
    )
    async with serving(Running, stack, settings, prefix) as running:
        yield running


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    started: list[WebhookReceiver] = []

    def make(secret: str, statuses: list[int], slow_first_seconds: float = 0.0) -> WebhookReceiver:
        receiver = WebhookReceiver(secret, tuple(statuses), slow_first_seconds).__enter__()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.release_first.set()
        receiver.__exit__()


async def test_a_proposal_is_emailed_in_arabic_right_to_left_with_links_signed_for_it(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant, language="ar")
    need = need_opened(tenant)
    proposal = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await service.publish(proposal)

    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    assert mail["headers"]["Content-Language"] == "ar"
    assert "طلب يناسبك" in mail["subject"]
    assert need.data.description in mail["text"]
    hrefs, directions = html_links_and_direction(mail["html"])
    # Signed for this proposal at send time, the same in the HTML links as in the text.
    accept, decline = mailed_answer_links(mail, proposal, service.settings)
    assert accept in hrefs and decline in hrefs
    assert directions and set(directions) == {"rtl"}
    assert '<html lang="ar" dir="rtl">' in mail["html"]
    assert f"office@{tenant}.example" in mail["text"]  # the coordination office as contact
    assert mail["headers"]["Reply-To"] == f"office@{tenant}.example"
    welcome = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "welcome")
    assert "erweitertes Führungszeugnis" in welcome["text"] and "التأمين" in welcome["text"]


async def test_a_sealed_proposal_opens_with_the_volunteers_key_for_the_mail_and_reaches_partners_as_before(
    service: Running, smtp_sink: SmtpSink, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    partner = receiver_factory(secret, [200])
    hook = {"url": partner.url, "secret": secret, "event_types": [MatchProposed.event_type], "fields": []}
    coordinator = service.auth(Role.COORDINATOR, tenant, subject=str(uuid.uuid4()))
    assert (await service.http.post("/webhooks", json=hook, headers=coordinator)).status_code == 201
    volunteer, need = registered(tenant), need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    volunteer_id = str(volunteer.data.volunteer_id)
    key_id, data_key = new_data_key()
    wrapped = key_encryption_key(service.settings.key_encryption_key).wrap(key_id, data_key)
    issued = PersonKeyIssued(person_id=volunteer_id, key_id=key_id, algorithm="A256GCM", wrapped_key=wrapped)
    reason = MatchReason(code=ReasonCode.DISTANCE, detail="about 2.5 km away")
    plain = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    data = plain.data
    fit = MatchFit(score=data.score, reasons=[reason], distance_km=2.5)
    sealed_fit = seal(fit, key_id=key_id, data_key=data_key, tenant=tenant, subject=plain.subject)
    sealed = plain_envelope(
        plain,
        MatchProposedSealed.model_validate(
            {**data.model_dump(include=set(MatchProposedSealed.model_fields)), "fit": sealed_fit}
        ),
    )
    await service.publish(
        new_event(data=issued, tenant=tenant, subject=volunteer_id, version=1, source="/lotse/registry")
    )
    await service.publish(sealed)

    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    label = catalogue.label(catalogue.REASON_LABELS, reason.code, "de", reason.detail)
    assert f"{label} ({i18n.format_number(2.5, 'de', decimals=1)} km)" in mail["text"], "opened: the fit in the mail"
    await eventually(lambda: _async(len(partner.calls) >= 1), what="the proposal at the partner")
    forwarded = json.loads(partner.calls[0].body)
    assert forwarded["type"] == MatchProposed.event_type and forwarded["id"] == str(sealed.id)
    assert forwarded["data"] == {
        "need_id": str(need.data.need_id),
        "organisation_id": str(data.organisation_id),
        "expires_at": forwarded["data"]["expires_at"],
    }


def _duplicates_suppressed() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "lotse_duplicates_suppressed"
        for sample in metric.samples
        if sample.name == "lotse_duplicates_suppressed_total"
    )


async def test_the_same_proposal_event_delivered_twice_sends_one_email_and_reports_it_sent(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer, other = registered(tenant), registered(tenant)
    need = need_opened(tenant)
    first = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    marker = proposed(tenant, need.data.need_id, other.data.volunteer_id, version=2)
    # The duplicate shares the need's key and partition, so once the marker's mail is out the
    # duplicate has been consumed too.
    await service.applied(tenant, onboarded(tenant), volunteer, other, need)
    suppressed_before = _duplicates_suppressed()
    await service.publish(first, first, marker)

    await wait_for_mail(smtp_sink, other.data.contact.email, "match_proposed")
    mails = await mails_to(smtp_sink, volunteer.data.contact.email, "match_proposed")
    assert len(mails) == 1
    assert _duplicates_suppressed() - suppressed_before == 1  # operators see the ignored duplicate
    assert "Eine Anfrage, die zu Ihnen passt" in mails[0]["subject"]
    sent = await service.deliveries(tenant, trigger_event_id=str(first.id), channel="email")
    assert [(d["status"], d["attempts"]) for d in sent] == [("sent", 1)]

    async def published_outcome() -> list[dict[str, Any]]:
        return await service.database.outbox.find(
            {"tenant": tenant, "type": "de.lotse.notifications.delivery.sent.v1", "published_at": {"$ne": None}}
        ).to_list()

    await eventually(published_outcome, what="NotificationSent events published")
    records = await read_all(
        service.bootstrap, DELIVERIES.name, expected=await record_count(service.bootstrap, [DELIVERIES.name])
    )
    events = [parse_event(record.value) for record in records if tenant.encode() in (record.key or b"")]
    mine = [e for e in events if str(e.data.trigger_event_id) == str(first.id) and e.data.channel == "email"]
    assert [(e.type, e.data.recipient_id) for e in mine] == [
        ("de.lotse.notifications.delivery.sent.v1", str(volunteer.data.volunteer_id))
    ]
    assert all(volunteer.data.contact.email.encode() not in record.value for record in records)
    metrics = (await service.http.get("/metrics")).text
    assert 'lotse_notification_delivery_attempts_total{channel="email",kind="match_proposed",outcome="sent"}' in metrics
    ready = await service.http.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok", "person_keys": "ok"}


async def test_a_proposal_read_before_the_volunteer_and_the_need_waits_for_them(
    service: Running, smtp_sink: SmtpSink
) -> None:
    """Topics are not ordered among each other (e.g. a consumer catching up after a restart)."""
    tenant = service.new_tenant()
    volunteer, need = registered(tenant, language="fa"), need_opened(tenant)
    proposal = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    await service.applied(tenant, onboarded(tenant))
    await service.publish(proposal)

    async def waiting() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, trigger_event_id=str(proposal.id), status="pending", waits={"$gte": 1})

    queued = await eventually(waiting, what="the proposal's deliveries to wait for the volunteer")
    assert {d["reason"] for d in queued} == {"no_contact"}
    await service.publish(volunteer, need)
    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    assert need.data.description in mail["text"] and 'dir="rtl"' in mail["html"]
    mailed_answer_links(mail, proposal, service.settings)


async def test_a_webhook_receiver_verifies_the_signature_and_gets_the_event_again_after_a_500(
    service: Running, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    receiver = receiver_factory(secret, [500, 200])
    coordinator = service.auth(Role.COORDINATOR, tenant)
    response = await service.http.post("/webhooks", json={"url": receiver.url, "secret": secret}, headers=coordinator)
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()
    other_tenant = service.auth(Role.COORDINATOR, service.new_tenant())
    assert (await service.http.get("/webhooks", headers=other_tenant)).json() == []
    hook_path = f"/webhooks/{response.json()['id']}"
    assert (await service.http.delete(hook_path, headers=other_tenant)).status_code == 404
    invalid = await service.http.post("/webhooks", json={"url": "not a url", "secret": "short"}, headers=coordinator)
    assert invalid.status_code == 422
    assert {error["field"] for error in invalid.json()["errors"]} == {"url", "secret"}
    need = need_opened(tenant)
    await service.applied(tenant, onboarded(tenant))
    await service.publish(need)

    await eventually(lambda: _async(len(receiver.calls) >= 2), what="the webhook to be called twice")
    first, second = receiver.calls[:2]
    assert first.signature_ok and second.signature_ok
    assert first.body == second.body
    assert first.headers["X-Lotse-Delivery"] == second.headers["X-Lotse-Delivery"]
    assert parse_event(second.body).id == need.id

    async def delivered() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, channel="webhook", status="sent")

    (delivery,) = await eventually(delivered, what="the webhook delivery to be marked sent")
    assert delivery["attempts"] == 2
    failed = await service.database.outbox.find(
        {"tenant": tenant, "type": "de.lotse.notifications.delivery.failed.v1"}
    ).to_list()
    assert [parse_event(bytes(f["value"])).data.will_retry for f in failed] == [True]


async def test_a_partner_gets_proposals_and_staffing_without_reasons_or_volunteer_ids_unless_it_opted_in(
    service: Running, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    plain, answering = receiver_factory(secret, [200]), receiver_factory(secret, [200])
    jana = str(uuid.uuid4())
    coordinator = service.auth(Role.COORDINATOR, tenant, subject=jana)
    matching_events = ["de.lotse.matching.proposal.proposed.v1", "de.lotse.matching.need.staffed.v1"]
    for receiver, fields in ((plain, []), (answering, ["volunteer_ids"])):
        hook = {"url": receiver.url, "secret": secret, "event_types": matching_events, "fields": fields}
        response = await service.http.post("/webhooks", json=hook, headers=coordinator)
        assert response.status_code == 201 and response.json()["fields"] == fields, response.text
    refused = {"url": plain.url, "secret": secret, "fields": ["reasons"]}
    answer = await service.http.post("/webhooks", json=refused, headers=coordinator)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "fields[0]"
    volunteer = registered(tenant)
    need = need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    proposal = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    staffed = need_staffed(tenant, need.data.need_id, version=2, volunteer_ids=[volunteer.data.volunteer_id])
    await service.publish(proposal, staffed)

    await eventually(
        lambda: _async(len(plain.calls) >= 2 and len(answering.calls) >= 2), what="both events at both partners"
    )
    received = {json.loads(call.body)["type"]: json.loads(call.body)["data"] for call in plain.calls}
    assert received == {
        proposal.type: {
            "need_id": str(need.data.need_id),
            "organisation_id": str(proposal.data.organisation_id),
            "expires_at": received[proposal.type]["expires_at"],
        },
        staffed.type: {"need_id": str(need.data.need_id), "volunteers_committed": 1},
    }
    volunteer_id, reason = str(volunteer.data.volunteer_id), proposal.data.reasons[0].detail
    assert all(volunteer_id not in call.body.decode() and reason not in call.body.decode() for call in plain.calls)
    # The partner that answers for its volunteers gets the ids it answers with, never the reasons.
    opted = {json.loads(call.body)["type"]: json.loads(call.body)["data"] for call in answering.calls}
    assert opted[proposal.type]["volunteer_id"] == volunteer_id and "reasons" not in opted[proposal.type]
    assert opted[staffed.type]["volunteer_ids"] == [volunteer_id]
    # The delivery log keeps what was sent, nothing more.
    logged = await service.deliveries(tenant, channel="webhook")
    assert len(logged) == 4 and all(reason not in delivery["payload"]["body"] for delivery in logged)
    assert sum(volunteer_id in delivery["payload"]["body"] for delivery in logged) == 2
    schemas = (await service.http.get("/webhooks/schemas", headers=coordinator)).json()
    staffed_schema = schemas[f"https://schemas.lotse.de/webhooks/{staffed.type}.json"]
    assert staffed_schema["required"] == ["need_id", "volunteers_committed"]
    # The audit trail names who registered and removed which webhook, and the volunteer-ids opt-in.
    hooks = (await service.http.get("/webhooks", headers=coordinator)).json()
    for hook in hooks:
        assert (await service.http.delete(f"/webhooks/{hook['id']}", headers=coordinator)).status_code == 204
    trail = await service.database["audit"].find({"tenant": tenant, "resource_type": "webhooks"}).to_list()
    assert sorted((entry["action"], entry["operation"]) for entry in trail) == [
        ("DELETE /webhooks/{webhook_id}", "delete"),
        ("DELETE /webhooks/{webhook_id}", "delete"),
        ("POST /webhooks", "create"),
        ("POST /webhooks", "create"),
    ]
    assert {entry["actor"] for entry in trail} == {jana}
    opt_ins = {entry["resource_id"]: "fields.volunteer_ids" in entry["fields"] for entry in trail}
    assert sorted(opt_ins.values()) == [False, True]
    assert not any(secret in json.dumps(entry, default=str) for entry in trail)


async def test_a_webhook_that_keeps_failing_is_dead_lettered_with_its_reason_and_does_not_block_email(
    service: Running, smtp_sink: SmtpSink, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    receiver = receiver_factory(secret, [503])
    coordinator = service.auth(Role.COORDINATOR, tenant)
    hook = {"url": receiver.url, "secret": secret, "event_types": ["de.lotse.registry.need.opened.v1"]}
    assert (await service.http.post("/webhooks", json=hook, headers=coordinator)).status_code == 201
    volunteer = registered(tenant)
    need = need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await service.publish(proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1))

    await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")

    async def dead() -> list[dict[str, Any]]:
        response = await service.http.get("/deliveries", params={"status": "dead"}, headers=coordinator)
        return response.json()

    (delivery,) = await eventually(dead, what="the webhook delivery to be dead-lettered")
    assert delivery["channel"] == "webhook" and delivery["attempts"] == service.settings.delivery_max_attempts
    assert delivery["reason"] == "webhook_http_503"
    assert len(receiver.calls) == service.settings.delivery_max_attempts  # only need.opened was forwarded

    # The log filters by kind and channel too.
    async def listed(**params: str) -> list[tuple[str, str]]:
        response = await service.http.get("/deliveries", params=params, headers=coordinator)
        assert response.status_code == 200, response.text
        return sorted((d["kind"], d["channel"]) for d in response.json())

    assert await listed(kind="webhook_event") == [("webhook_event", "webhook")]
    assert await listed(kind="match_proposed", channel="email") == [("match_proposed", "email")]
    refused = await service.http.get("/deliveries", params={"kind": "gossip"}, headers=coordinator)
    assert refused.status_code == 422 and "query.kind" in refused.text


async def test_a_hanging_webhook_endpoint_does_not_hold_up_email_and_is_retried_after_its_timeout(
    service: Running, smtp_sink: SmtpSink, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    receiver = receiver_factory(secret, [200], slow_first_seconds=30)
    coordinator = service.auth(Role.COORDINATOR, tenant)
    hook = {"url": receiver.url, "secret": secret, "event_types": ["de.lotse.registry.need.opened.v1"]}
    assert (await service.http.post("/webhooks", json=hook, headers=coordinator)).status_code == 201
    volunteer, need = registered(tenant), need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await eventually(lambda: _async(receiver.started == 1), what="the partner endpoint to hang on its first call")

    await service.publish(proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1))
    await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    assert receiver.calls == []  # the first webhook call still hangs while the email went out

    async def sent() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, channel="webhook", status="sent")

    (delivery,) = await eventually(sent, what="the webhook to be retried after its timeout")
    assert delivery["attempts"] == 2 and receiver.calls[0].signature_ok


async def test_a_webhook_redirect_is_not_followed_and_fails_for_good_and_the_host_stays_the_name(
    service: Running, receiver_factory: Any
) -> None:
    tenant = service.new_tenant()
    secret = "partner-secret-" + uuid.uuid4().hex
    receiver = receiver_factory(secret, [302])
    coordinator = service.auth(Role.COORDINATOR, tenant)
    # By name: the service resolves it and connects to a checked address, the request keeps the name.
    url = receiver.url.replace("127.0.0.1", "localhost")
    hook = {"url": url, "secret": secret, "event_types": ["de.lotse.registry.need.opened.v1"]}
    assert (await service.http.post("/webhooks", json=hook, headers=coordinator)).status_code == 201
    await service.publish(onboarded(tenant), need_opened(tenant))

    async def dead() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, channel="webhook", status="dead")

    (delivery,) = await eventually(dead, what="the redirected webhook delivery to fail")
    assert delivery["attempts"] == 1 and (delivery["reason"], delivery["error"]) == ("webhook_http_302", "http 302")
    assert len(receiver.calls) == 1 and receiver.calls[0].headers["Host"] == url.split("/")[2]


async def test_an_opted_out_channel_sends_nothing_and_the_in_app_inbox_gets_the_message(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant, language="uk", channels=("in_app",))
    need = need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await service.publish(proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1))
    me = service.auth(Role.VOLUNTEER, tenant, subject=str(volunteer.data.volunteer_id))

    async def inbox() -> list[dict[str, Any]]:
        messages = (await service.http.get("/me/messages", headers=me)).json()
        return messages if {m["kind"] for m in messages} >= {"welcome", "match_proposed"} else []

    messages = await eventually(inbox, what="welcome and proposal in the in-app inbox")
    proposal_message = next(m for m in messages if m["kind"] == "match_proposed")
    assert proposal_message["language"] == "uk" and "Запит, що вам підходить" in proposal_message["subject"]
    assert await mails_to(smtp_sink, volunteer.data.contact.email) == []
    skipped = await service.deliveries(tenant, channel="email")
    assert {(d["kind"], d["status"], d["reason"]) for d in skipped} == {
        ("welcome", "skipped", "opted_out"),
        ("match_proposed", "skipped", "opted_out"),
    }
    read = await service.http.post(f"/me/messages/{proposal_message['id']}/read", headers=me)
    assert read.status_code == 200 and read.json()["read"] is True
    stranger = service.auth(Role.VOLUNTEER, tenant, subject=str(uuid.uuid4()))
    assert (await service.http.post(f"/me/messages/{proposal_message['id']}/read", headers=stranger)).status_code == 404
    assert (await service.http.get("/me/messages")).status_code == 401


async def test_an_opted_out_kind_sends_nothing_and_an_email_in_quiet_hours_waits_for_the_window_to_end(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    local_now = datetime.now(ZoneInfo("Europe/Berlin"))  # the tenant's time zone (onboarded example)
    quiet_end = (local_now + timedelta(seconds=8)).replace(microsecond=0)
    window = QuietHours(start=(local_now - timedelta(minutes=1)).time().replace(microsecond=0), end=quiet_end.time())
    no_welcome = registered(tenant, opted_out_of=("welcome",))
    night_owl = registered(tenant, quiet_hours=window)
    need = need_opened(tenant)
    await service.applied(tenant, onboarded(tenant), no_welcome, night_owl, need)
    await service.publish(proposed(tenant, need.data.need_id, no_welcome.data.volunteer_id, version=1))

    # The opted-out welcome is skipped on every channel; a proposal cannot be opted out of.
    await wait_for_mail(smtp_sink, no_welcome.data.contact.email, "match_proposed")
    assert await mails_to(smtp_sink, no_welcome.data.contact.email, "welcome") == []
    welcomes = await service.deliveries(tenant, recipient_id=str(no_welcome.data.volunteer_id), kind="welcome")
    assert {(d["channel"], d["status"], d["reason"]) for d in welcomes} == {
        ("email", "skipped", "opted_out"),
        ("in_app", "skipped", "opted_out"),
    }

    # The night owl's welcome email waits for the end of the quiet window, without a failed attempt.
    owl = str(night_owl.data.volunteer_id)

    async def postponed() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, recipient_id=owl, channel="email", reason="quiet_hours")

    (waiting,) = await eventually(postponed, timeout=8, what="the welcome email to be postponed")
    assert waiting["status"] == "pending" and waiting.get("attempts", 0) == 0
    assert waiting["next_attempt_at"] == quiet_end.astimezone(UTC)
    await wait_for_mail(smtp_sink, night_owl.data.contact.email, "welcome")

    # The sink has the mail a moment before the worker records it as sent.
    async def recorded() -> list[dict[str, Any]]:
        return await service.deliveries(tenant, _id=waiting["_id"], status="sent")

    (sent,) = await eventually(recorded, what="the welcome email to be recorded as sent")
    assert sent["attempts"] == 1 and sent["sent_at"] >= quiet_end
    # Quiet hours hold back email only: the in-app welcome was there at once.
    (in_app,) = await service.deliveries(tenant, recipient_id=owl, channel="in_app")
    assert in_app["status"] == "sent" and in_app["sent_at"] < quiet_end


async def test_erasure_leaves_no_contact_data_anywhere_in_the_notifications_database(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant, name=f"Erika{uuid.uuid4().hex[:6]}")
    need = need_opened(tenant)
    proposal = proposed(tenant, need.data.need_id, volunteer.data.volunteer_id, version=1)
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await service.publish(proposal)
    mail = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "match_proposed")
    contact = volunteer.data.contact
    links = answer_tokens(mailed_answer_links(mail, proposal, service.settings))
    personal = [contact.email, contact.display_name, contact.phone, *links]
    before = await _database_text(service)
    assert contact.email in before and contact.display_name in before  # it was there

    # Our copy of the volunteer's key (as the keyring keeps it): the erasure alone, without the key
    # topic's tombstone, destroys it.
    key_id = f"{tenant}:{volunteer.data.volunteer_id}"
    await service.database.person_keys.insert_one({"_id": key_id, "wrapped_key": "wrapped", "destroyed": False})
    erased = new_event(
        data=VolunteerErased(volunteer_id=volunteer.data.volunteer_id, erased_at=proposal.time),
        tenant=tenant,
        subject=volunteer.data.volunteer_id,
        version=3,
        source="/lotse/registry",
    )
    await service.publish(erased)

    async def tombstone() -> Any:
        found = await service.database.contacts.find_one(
            {"tenant": tenant, "volunteer_id": str(volunteer.data.volunteer_id)}
        )
        return found and found.get("erased")

    await eventually(tombstone, what="the contact to be erased")
    text = await _database_text(service)
    for value in personal:
        assert value not in text
    log = await service.deliveries(tenant, recipient_id=str(volunteer.data.volunteer_id))
    assert log and all("payload" not in entry for entry in log)  # the log keeps ids and outcomes only
    key = await service.database.person_keys.find_one({"_id": key_id})
    assert key is not None and key["destroyed"] and "wrapped_key" not in key


async def test_an_unstaffed_need_is_escalated_and_the_weekly_digest_counts_open_and_unstaffed_needs(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    lonely, staffed, fresh = need_opened(tenant), need_opened(tenant), need_opened(tenant)
    staffed_event = need_staffed(tenant, staffed.data.need_id)
    await service.applied(tenant, onboarded(tenant), lonely, staffed, fresh)
    await service.publish(staffed_event, need_unstaffed(tenant, lonely.data.need_id, version=1))
    office = f"office@{tenant}.example"
    escalation = await wait_for_mail(smtp_sink, office, "need_unstaffed")
    assert lonely.data.description in escalation["text"] and "Alle Gefragten haben abgesagt" in escalation["text"]

    async def staffed_known() -> bool:
        # The staffed need's event is on another key (partition) than the escalated one's.
        need = await service.database["needs"].find_one({"_id": f"{tenant}:{staffed.data.need_id}"})
        return need is not None and need.get("status") == "staffed"

    await eventually(staffed_known, what="the staffed need in the read model")
    coordinator = service.auth(Role.COORDINATOR, tenant)
    response = await service.http.post("/digest", headers=coordinator)
    assert response.status_code == 202, response.text
    assert response.json()["digest"] | {"unstaffed_needs": []} == {
        "open": 2,
        "unstaffed": 1,
        "staffed": 1,
        "staffing_rate": 33,
        "unstaffed_needs": [],
    }
    digest = await wait_for_mail(smtp_sink, office, "weekly_digest")
    # The share as German writes it (Babel: a no-break space before the sign).
    assert "Besetzungsquote: 33\xa0%" in digest["text"] and lonely.data.description in digest["text"]
    again = await service.http.post("/digest", headers=coordinator)
    assert again.json()["already_planned"] is True
    assert (await service.http.post("/digest", headers=service.auth(Role.VOLUNTEER, tenant))).status_code == 403


async def test_a_staffed_need_is_announced_once_to_the_office_and_the_owner_in_the_tenants_language(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    need = need_opened(tenant)
    owner = organisation_registered(tenant, need.data.organisation_id)
    await service.applied(tenant, onboarded(tenant, default_language="uk"), owner, need)
    first = need_staffed(tenant, need.data.need_id, version=2)
    older = need_staffed(tenant, need.data.need_id, version=1)  # overtaken by the newer one
    # Same key and partition as the staffed events: once the marker is handled, so are they.
    marker = need_unstaffed(tenant, need.data.need_id, version=3)
    await service.publish(first, first, older, marker)

    office, initiative = f"office@{tenant}.example", owner.data.contact_email
    mail = await wait_for_mail(smtp_sink, office, "need_staffed")
    assert mail["subject"] == "Запит забезпечено: Супровід до установ"
    assert need.data.description in mail["text"] and "Погодилися: 1 з 1" in mail["text"]
    assert all(str(volunteer) not in mail["text"] for volunteer in first.data.volunteer_ids)
    await wait_for_mail(smtp_sink, initiative, "need_staffed")
    await wait_for_mail(smtp_sink, office, "need_unstaffed")

    queued = await service.deliveries(tenant, kind="need_staffed")
    assert sorted((d["trigger_event_id"], d["recipient_kind"]) for d in queued) == [
        (str(first.id), "organisation"),
        (str(first.id), "tenant"),
    ]
    assert len(await mails_to(smtp_sink, office, "need_staffed")) == 1
    assert len(await mails_to(smtp_sink, initiative, "need_staffed")) == 1


async def test_a_staffed_need_read_before_its_tenant_need_and_owner_waits_for_them_and_reaches_both(
    service: Running, smtp_sink: SmtpSink
) -> None:
    """As after a consumer restart, when the matching topic is read before the registry's topics."""
    tenant = service.new_tenant()
    need = need_opened(tenant)
    owner = organisation_registered(tenant, need.data.organisation_id)
    event = need_staffed(tenant, need.data.need_id, version=1)
    await service.publish(event)

    async def both_waiting() -> list[dict[str, Any]]:
        found = await service.deliveries(tenant, trigger_event_id=str(event.id), status="pending", waits={"$gte": 1})
        return found if len(found) == 2 else []

    queued = await eventually(both_waiting, what="the office's and the owner's deliveries to wait")
    assert sorted((d["recipient_kind"], d["reason"]) for d in queued) == [  # the owner is not known yet
        ("need_owner", "unknown_tenant"),
        ("tenant", "unknown_tenant"),
    ]
    await service.publish(onboarded(tenant), owner, need)

    office = await wait_for_mail(smtp_sink, f"office@{tenant}.example", "need_staffed")
    assert need.data.description in office["text"]
    await wait_for_mail(smtp_sink, owner.data.contact_email, "need_staffed")

    async def both_sent() -> list[tuple[str, str]]:
        sent = await service.deliveries(tenant, trigger_event_id=str(event.id), status="sent")
        return sorted((d["recipient_kind"], d["recipient_id"]) for d in sent) if len(sent) == 2 else []

    assert await eventually(both_sent, what="both deliveries marked sent") == [
        ("organisation", str(owner.data.organisation_id)),  # the owner, resolved once the need was read
        ("tenant", tenant),
    ]
    assert len(await mails_to(smtp_sink, owner.data.contact_email, "need_staffed")) == 1
    assert len(await mails_to(smtp_sink, f"office@{tenant}.example", "need_staffed")) == 1


async def test_a_proposal_close_to_expiry_is_reminded_once_and_a_cancelled_need_is_announced(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    volunteer = registered(tenant, language="tr")
    need = need_opened(tenant)
    proposal = proposed(
        tenant, need.data.need_id, volunteer.data.volunteer_id, version=1, expires_in=timedelta(hours=2)
    )
    await service.applied(tenant, onboarded(tenant), volunteer, need)
    await service.publish(proposal)
    address = volunteer.data.contact.email
    reminder = await wait_for_mail(smtp_sink, address, "proposal_reminder")
    assert "Hatırlatma" in reminder["subject"]
    mailed_answer_links(reminder, proposal, service.settings)

    cancelled = new_event(
        data=NeedCancelled(need_id=need.data.need_id, reason="no_longer_needed"),
        tenant=tenant,
        subject=need.data.need_id,
        version=2,
        source="/lotse/registry",
    )
    await service.publish(cancelled)
    notice = await wait_for_mail(smtp_sink, address, "need_cancelled")
    assert "Talep iptal edildi" in notice["subject"]
    assert len(await mails_to(smtp_sink, address, "proposal_reminder")) == 1


async def test_a_template_override_is_refused_unless_it_renders_and_is_used_once_saved(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    coordinator = service.auth(Role.COORDINATOR, tenant)
    broken = {"subject": "Hallo {{ recipient_nam }}", "text": "{{ guidance.insurance }}"}
    refused = await service.http.put("/templates/welcome/de", json=broken, headers=coordinator)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["field"] == "subject" and "recipient_nam" in refused.json()["detail"]
    syntax = {"subject": "Hallo", "text": "{% if %}"}
    assert (await service.http.put("/templates/welcome/de", json=syntax, headers=coordinator)).status_code == 422
    assert (await service.http.put("/templates/welcome/de", json=broken)).status_code == 401
    volunteer_token = service.auth(Role.VOLUNTEER, tenant)
    assert (await service.http.put("/templates/welcome/de", json=broken, headers=volunteer_token)).status_code == 403

    good = {
        "subject": "Herzlich willkommen in {{ tenant_name }}, {{ recipient_name }}",
        "text": "Hallo {{ recipient_name }}!\n\n{{ guidance.certificates }}\n",
    }
    saved = await service.http.put("/templates/welcome/de", json=good, headers=coordinator)
    assert saved.status_code == 200, saved.text
    guidance = {"certificates": "Bitte bringen Sie Ihr Führungszeugnis ins Bürgerbüro Nord."}
    assert (await service.http.put("/guidance/de", json=guidance, headers=coordinator)).status_code == 200
    volunteer = registered(tenant)
    await service.applied(tenant, onboarded(tenant))
    await service.publish(volunteer)
    welcome = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "welcome")
    assert welcome["subject"] == f"Herzlich willkommen in Stadt {tenant}, {volunteer.data.contact.display_name}"
    assert "Bürgerbüro Nord" in welcome["text"]

    shown = (await service.http.get("/templates/welcome/de", headers=coordinator)).json()
    assert shown["source"] == "tenant" and shown["subject"] == good["subject"]
    other = service.auth(Role.COORDINATOR, service.new_tenant())
    assert (await service.http.get("/templates/welcome/de", headers=other)).json()["source"] == "default"
    assert (await service.http.delete("/templates/welcome/de", headers=coordinator)).status_code == 204
    assert (await service.http.get("/templates/welcome/de", headers=coordinator)).json()["source"] == "default"
    assert (await service.http.get("/templates/birthday/de", headers=coordinator)).status_code == 404
    guidance_shown = (await service.http.get("/guidance/de", headers=coordinator)).json()
    assert guidance_shown["overridden"] == ["certificates"] and "versichert" in guidance_shown["insurance"]
    # The audit trail names who changed which text (field names; the texts themselves stay out).
    trail = await service.database["audit"].find({"tenant": tenant}).to_list()
    changed = sorted((entry["action"], entry["operation"], entry["resource_id"]) for entry in trail)
    assert changed == [
        ("DELETE /templates/{kind}/{language}", "delete", f"{tenant}:welcome:de"),
        ("PUT /guidance/{language}", "update", f"{tenant}:de"),
        ("PUT /templates/{kind}/{language}", "update", f"{tenant}:welcome:de"),
    ]
    (guidance_entry,) = [entry for entry in trail if entry["resource_type"] == "guidance"]
    assert guidance_entry["fields"] == ["texts.certificates"] and guidance_entry["actor"] != "system"
    assert not any("Bürgerbüro" in json.dumps(entry, default=str) for entry in trail)


async def _database_text(service: Running) -> str:
    """Everything in the service's database, as one text to search."""
    chunks = []
    for name in await service.database.list_collection_names():
        async for document in service.database[name].find({}):
            chunks.append(json.dumps(document, default=_bytes_as_text, ensure_ascii=False))
    return "\n".join(chunks)


def _bytes_as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


async def _async(value: Any) -> Any:
    return value


async def test_a_consumer_that_replays_every_event_from_the_start_sends_nothing_twice(
    service: Running, smtp_sink: SmtpSink
) -> None:
    """As after a crash that lost every committed offset: a new consumer group reads all topics
    from the beginning, and the inbox and the delivery keys turn every event into a no-op."""
    mails_before = len(await _sink_listing(smtp_sink))
    deliveries_before = await service.database.deliveries.count_documents({})
    assert deliveries_before > 0
    records = await record_count(service.bootstrap, CONSUMED_TOPICS)
    settings = service.settings.model_copy(update={"consumer_group": service.settings.consumer_group + "-replay"})
    replay = create_app(settings)
    async with replay.router.lifespan_context(replay):
        pipeline = replay.state.pipeline

        async def replayed() -> bool:
            return pipeline.stats.processed + pipeline.stats.dead_lettered >= records

        await eventually(replayed, timeout=90, what=f"all {records} records to be replayed")
    assert await service.database.deliveries.count_documents({}) == deliveries_before
    assert len(await _sink_listing(smtp_sink)) == mails_before


async def _sink_listing(sink: SmtpSink) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sink.http_url) as http:
        return (await http.get("/messages")).json()
