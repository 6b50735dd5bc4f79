"""Partner commands from every tenant's inbound topic (one pattern subscription) and matching's
outcomes, on the running registry with the real broker and database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lotse_contracts import (
    AcceptProposal,
    CancelNeed,
    DeadLetterInfo,
    Envelope,
    RegisterVolunteer,
    ReportNeed,
    UpdateNeed,
    dead_letter_topic,
    new_event,
    partner_inbound_topic,
    to_bytes,
    topics_for_tenants,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.topics import NEEDS, PROPOSALS
from lotse_devstack import ensure_topics
from lotse_runtime.auth import Role
from lotse_runtime.problems import PROBLEM_JSON
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import (
    add_organisation,
    need_body,
    onboard,
    tenant_events,
    volunteer_body,
)
from tests.support import events
from tests.support.kafka import produce, read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The pattern subscription sees a new topic after a metadata refresh and a rebalance.
NEW_TOPIC_TIMEOUT = 60.0


def command(
    tenant: str, data: Any, *, version: int = 1, system: str = "case-management", **extra: Any
) -> Envelope[Any]:
    return new_event(
        data=data,
        tenant=tenant,
        subject=data.external_ref,
        version=version,
        source=f"/partners/{tenant}/{system}",
        **extra,
    )


def report(tenant: str, org: str, ref: str, **overrides: Any) -> ReportNeed:
    return ReportNeed.model_validate({**need_body(org, **overrides), "external_ref": ref})


async def partner_topic(bootstrap: str, tenant: str) -> str:
    """Create the tenant's inbound topic and its dead-letter topic as the catalogue declares them."""
    await ensure_topics(bootstrap, topics_for_tenants([tenant]))
    return partner_inbound_topic(tenant)


async def send(bootstrap: str, topic: str, event: Envelope[Any]) -> None:
    await produce(bootstrap, topic, to_bytes(event), key=event.key)


async def need_of(registry: RunningRegistry, tenant: str, ref: str) -> dict[str, Any] | None:
    return await registry.database.needs.find_one({"tenant": tenant, "partner_ref": ref})


async def test_partner_commands_of_a_topic_created_after_start_are_applied_once(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    # The service is running already; this tenant's topic is created only now.
    topic = await partner_topic(kafka_bootstrap, tenant)
    reported = command(tenant, report(tenant, org, "case-1"))
    await send(kafka_bootstrap, topic, reported)
    await send(kafka_bootstrap, topic, reported)  # delivered twice
    need = await eventually(
        lambda: need_of(registry, tenant, "case-1"), timeout=NEW_TOPIC_TIMEOUT, what="the partner's need to be opened"
    )
    assert need["status"] == "open" and need["organisation_id"] == org

    updated = command(
        tenant, UpdateNeed.model_validate({**need_body(org, volunteers_needed=3), "external_ref": "case-1"}), version=3
    )
    stale = command(
        tenant, UpdateNeed.model_validate({**need_body(org, volunteers_needed=9), "external_ref": "case-1"}), version=2
    )
    cancelled = command(tenant, CancelNeed(external_ref="case-1", reason="solved_otherwise"), version=4)
    for event in (updated, updated, stale, cancelled, cancelled):
        await send(kafka_bootstrap, topic, event)

    async def cancelled_need() -> dict[str, Any] | None:
        found = await need_of(registry, tenant, "case-1")
        return found if found and found["status"] == "cancelled" else None

    final = await eventually(cancelled_need, what="the need to be cancelled")
    assert final["volunteers_needed"] == 3  # the stale update changed nothing
    assert await registry.database.needs.count_documents({"tenant": tenant}) == 1
    events = await tenant_events(kafka_bootstrap, NEEDS.name, tenant, expected=3, settle=1.0)
    assert [(e.type.split(".")[-2], e.version) for e in events] == [("opened", 1), ("updated", 2), ("cancelled", 3)]
    # Caused by the partner's commands, in the same business flow.
    assert [e.causationid for e in events] == [str(reported.id), str(updated.id), str(cancelled.id)]
    assert events[0].correlationid == reported.correlationid
    assert await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1, timeout=0.5) == []
    # The audit trail names as the author what the broker authenticated (the right to write to the
    # tenant's topic), and the partner system only as the event names it (any writer may set it).
    trail = await registry.database.audit.find({"tenant": tenant, "resource_id": need["_id"]}).to_list()
    assert {(entry["actor"], tuple(entry["roles"])) for entry in trail} == {(f"kafka:{topic}", ("partner",))}
    claimed = "from case-management (as the event names it)"
    assert {entry["action"] for entry in trail} >= {
        f"event {reported.type} {claimed}",
        f"event {cancelled.type} {claimed}",
    }


async def test_foreign_and_invalid_partner_events_are_dead_lettered_with_their_reason(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    tenant, other = await onboard(registry), await onboard(registry)
    org = await add_organisation(registry, tenant)
    other_org = await add_organisation(registry, other)
    topic = await partner_topic(kafka_bootstrap, tenant)
    await partner_topic(kafka_bootstrap, other)

    foreign = command(other, report(other, other_org, "sneaky"))  # another tenant's command on this topic
    unknown_org = command(tenant, report(tenant, str(uuid.uuid4()), "case-x"))
    unknown_skill = command(tenant, report(tenant, org, "case-y", required_skills=["juggling"]))
    unknown_ref = command(tenant, CancelNeed(external_ref="never-reported", reason="duplicate"))
    answer = new_event(
        data=AcceptProposal.example(),
        tenant=tenant,
        subject=AcceptProposal.example().proposal_id,
        version=1,
        source=f"/partners/{tenant}/portal",
    )
    good = command(tenant, report(tenant, org, "case-ok"))
    for event in (foreign, unknown_org, unknown_skill, unknown_ref, answer, good):
        await send(kafka_bootstrap, topic, event)

    await eventually(
        lambda: need_of(registry, tenant, "case-ok"),
        timeout=NEW_TOPIC_TIMEOUT,
        what="the valid command behind the bad ones",
    )
    dead = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=4)
    reasons = {Envelope.model_validate_json(r.value).id: DeadLetterInfo.from_headers(r.headers.items()) for r in dead}
    assert {event_id: info.reason for event_id, info in reasons.items()} == {
        foreign.id: DeadLetterReason.TENANT_MISMATCH,
        unknown_org.id: DeadLetterReason.INVALID_DATA,
        unknown_skill.id: DeadLetterReason.INVALID_DATA,
        unknown_ref.id: DeadLetterReason.INVALID_DATA,
    }
    assert "juggling" in reasons[unknown_skill.id].error
    assert await registry.database.needs.count_documents({"tenant": other}) == 0
    assert await registry.database.needs.count_documents({"tenant": tenant}) == 1  # nothing half-applied


def registration(org: str, ref: str) -> RegisterVolunteer:
    """A partner's registration of a volunteer, with personal values a test can look for."""
    body = {k: v for k, v in volunteer_body(org).items() if k != "consent"}
    contact = {**body["contact"], "display_name": "Wilhelmine Kafkaesk", "email": "wilhelmine.kafkaesk@example.org"}
    return RegisterVolunteer.model_validate(
        {
            **body,
            "contact": {**contact, "phone": "+4915199988877"},
            "external_ref": ref,
            "consent": {"purposes": ["matching"], "text_version": "2026-01", "given_at": "2026-11-20T09:30:00+01:00"},
            "consent_proof": {
                "method": "signed_form",
                "reference": "forms/kafkaesk-1",
                "recorded_at": "2026-11-20T09:31:00+01:00",
            },
        }
    )


PERSONAL_VALUES = (b"Wilhelmine", b"Kafkaesk", b"kafkaesk@example.org", b"+4915199988877", b"forms/kafkaesk-1")


async def test_a_volunteer_registration_on_kafka_is_refused_and_its_dead_letter_copies_no_personal_data(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    """Issue 18: a partner's registration on the inbound topic would stay readable after the
    volunteer's erasure (Lotse cannot remove a record from a log), so it goes over HTTPS only. On
    Kafka it is refused, in a batch with a good command as well, and so is an invalid one or one on
    another tenant's topic; no dead letter copies a personal value."""
    tenant, other = await onboard(registry), await onboard(registry)
    org = await add_organisation(registry, tenant)
    topic = await partner_topic(kafka_bootstrap, tenant)
    await partner_topic(kafka_bootstrap, other)

    refused = command(tenant, registration(org, "vol-1"), system="portal")
    foreign = command(other, registration(org, "vol-2"), system="portal")  # on this tenant's topic
    invalid = command(tenant, registration(org, "vol-3"), system="portal")
    invalid_value = to_bytes(invalid).replace(b'"travel_radius_km":10', b'"travel_radius_km":-1')
    assert invalid_value != to_bytes(invalid)
    good = command(tenant, report(tenant, org, "case-ok"))
    await send(kafka_bootstrap, topic, refused)
    await send(kafka_bootstrap, topic, foreign)
    await produce(kafka_bootstrap, topic, invalid_value, key=invalid.key)
    await send(kafka_bootstrap, topic, good)

    await eventually(
        lambda: need_of(registry, tenant, "case-ok"), timeout=NEW_TOPIC_TIMEOUT, what="the good command behind them"
    )
    dead = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=3, settle=0.5)
    assert len(dead) == 3
    for record in dead:
        leaked = [value for value in PERSONAL_VALUES if value in record.value]
        assert leaked == [], f"the dead letter copies {leaked}"
    letters = {json.loads(record.value)["id"]: record for record in dead}
    infos = {event_id: DeadLetterInfo.from_headers(record.headers.items()) for event_id, record in letters.items()}
    assert {event_id: (info.reason, info.redacted) for event_id, info in infos.items()} == {
        str(refused.id): (DeadLetterReason.NOT_ALLOWED, True),
        str(foreign.id): (DeadLetterReason.NOT_ALLOWED, True),
        str(invalid.id): (DeadLetterReason.INVALID_DATA, True),
    }
    assert infos[str(refused.id)].error == (
        f"{refused.type} refused: personal data is accepted from partner systems over HTTPS only: "
        f"POST /tenants/{tenant}/partner/volunteers/register; a Kafka topic is a log Lotse cannot erase a person from"
    )
    # The partner learns which message was refused and what it held, field by field.
    letter = json.loads(letters[str(refused.id)].value)
    assert letter["data"] == sorted(RegisterVolunteer.model_fields)
    assert (letter["type"], letter["subject"], letter["source"]) == (refused.type, "vol-1", refused.source)
    assert letters[str(refused.id)].key == refused.key
    assert await registry.database.volunteers.count_documents({"tenant": {"$in": [tenant, other]}}) == 0
    assert await registry.database.partner_refs.count_documents({"kind": "volunteer", "external_ref": "vol-1"}) == 0
    assert await registry.database.needs.count_documents({"tenant": tenant}) == 1


async def test_a_partner_registers_a_volunteer_with_consent_proof_over_https(registry: RunningRegistry) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    partner = {**registry.auth(Role.PARTNER, tenant=tenant, subject="portal"), "Idempotency-Key": "vol-1"}
    body = registration(org, "vol-1").model_dump(mode="json")

    first = await registry.http.post(f"/tenants/{tenant}/partner/volunteers/register", json=body, headers=partner)
    again = await registry.http.post(f"/tenants/{tenant}/partner/volunteers/register", json=body, headers=partner)

    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert first.json()["external_ref"] == "vol-1" and first.json()["status"] == "active"
    volunteer = await registry.database.volunteers.find_one({"tenant": tenant})
    assert volunteer is not None and volunteer["_id"] == first.json()["volunteer_id"]
    assert volunteer["registered_via"] == "partner:portal" and volunteer["status"] == "active"
    consent = await registry.database.consents.find_one({"tenant": tenant, "volunteer_id": volunteer["_id"]})
    assert consent is not None and consent["proof"]["reference"] == "forms/kafkaesk-1"


async def test_partner_commands_over_http_with_an_idempotency_key(registry: RunningRegistry) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    partner = {**registry.auth(Role.PARTNER, tenant=tenant, subject="portal"), "Idempotency-Key": "cmd-1"}
    body = report(tenant, org, "http-1").model_dump(mode="json")
    first = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=partner)
    second = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=partner)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await registry.database.needs.count_documents({"tenant": tenant}) == 1
    # Without a key a repeat is refused rather than applied twice.
    plain = registry.auth(Role.PARTNER, tenant=tenant, subject="portal")
    repeat = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=plain)
    assert repeat.status_code == 409
    cancel = {"external_ref": "http-1", "reason": "duplicate"}
    done = await registry.http.post(f"/tenants/{tenant}/partner/needs/cancel", json=cancel, headers=plain)
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    denied = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=coordinator)
    assert denied.status_code == 403


async def test_a_partner_changes_only_the_needs_it_reported_itself(registry: RunningRegistry) -> None:
    """Two partner systems of one municipality: over HTTP each is its token's subject, and one may
    not update or cancel what the other reported (even knowing its reference)."""
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    case_management = registry.auth(Role.PARTNER, tenant=tenant, subject="case-management")
    accommodation = registry.auth(Role.PARTNER, tenant=tenant, subject="accommodation")
    body = report(tenant, org, "case-7").model_dump(mode="json")
    reported = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=case_management)
    assert reported.status_code == 201

    update = UpdateNeed.model_validate({**need_body(org, volunteers_needed=5), "external_ref": "case-7"})
    cancel = {"external_ref": "case-7", "reason": "duplicate"}
    for path, command_body in (("update", update.model_dump(mode="json")), ("cancel", cancel)):
        refused = await registry.http.post(
            f"/tenants/{tenant}/partner/needs/{path}", json=command_body, headers=accommodation
        )
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert "external_ref" in refused.json()["detail"]
    need = await need_of(registry, tenant, "case-7")
    assert need is not None
    assert (need["status"], need["volunteers_needed"], need["version"]) == ("open", 1, 1)
    assert need["reported_by"] == {"system": "case-management", "channel": "http"}

    # A reference nobody reported is still unknown, not forbidden.
    unknown = await registry.http.post(
        f"/tenants/{tenant}/partner/needs/cancel", json={**cancel, "external_ref": "case-8"}, headers=accommodation
    )
    assert unknown.status_code == 422
    # The reporting system itself may.
    done = await registry.http.post(f"/tenants/{tenant}/partner/needs/cancel", json=cancel, headers=case_management)
    assert done.status_code == 200 and done.json()["status"] == "cancelled"


async def test_a_kafka_source_cannot_pose_as_a_partner_that_reported_over_http(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    """The envelope's source is not authenticated: a command on the topic naming the HTTP partner's
    system does not touch the need that partner reported with its token."""
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    topic = await partner_topic(kafka_bootstrap, tenant)
    partner = registry.auth(Role.PARTNER, tenant=tenant, subject="case-management")
    body = report(tenant, org, "case-9").model_dump(mode="json")
    reported = await registry.http.post(f"/tenants/{tenant}/partner/needs/report", json=body, headers=partner)
    assert reported.status_code == 201

    posing = command(tenant, CancelNeed(external_ref="case-9", reason="duplicate"), system="case-management")
    await send(kafka_bootstrap, topic, posing)
    dead = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1, timeout=NEW_TOPIC_TIMEOUT)
    (info,) = [DeadLetterInfo.from_headers(record.headers.items()) for record in dead]
    assert info.reason == DeadLetterReason.NOT_ALLOWED and "http" in info.error
    need = await need_of(registry, tenant, "case-9")
    assert need is not None and need["status"] == "open"


# --- outcomes from matching ----------------------------------------------------------------------


async def test_matching_outcomes_show_staffing_and_engagements_once_and_in_order(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    await registry.http.post(f"/tenants/{tenant}/volunteers", json=volunteer_body(org), headers=me)
    need_id = (await registry.http.post(f"/tenants/{tenant}/needs", json=need_body(org), headers=coordinator)).json()[
        "need_id"
    ]
    proposal = str(uuid.uuid4())
    accepted: Envelope[Any] = events.proposal_accepted(
        tenant, need_id, version=2, volunteer_id=volunteer_id, proposal_id=proposal, answered_via="volunteer_app"
    )
    staffed = events.need_staffed(tenant, need_id, version=3, volunteer_ids=[volunteer_id])
    late_unstaffed = events.need_unstaffed(
        tenant,
        need_id,
        version=1,
        organisation_id=org,
        reason="no_candidates",
        volunteers_committed=0,
        volunteers_needed=1,
    )
    for event in (accepted, staffed, staffed, late_unstaffed):
        await produce(kafka_bootstrap, PROPOSALS.name, to_bytes(event), key=event.key)

    async def need_state(status: str) -> dict[str, Any] | None:
        found = await registry.database.needs.find_one({"tenant": tenant, "_id": need_id})
        return found if found and found["status"] == status and found["staffing_version"] >= 3 else None

    need = await eventually(lambda: need_state("staffed"), timeout=NEW_TOPIC_TIMEOUT, what="the need to be staffed")
    assert need["committed"] == [volunteer_id] and need["unstaffed"] is False  # the older escalation was ignored
    mine = (await registry.http.get(f"/tenants/{tenant}/volunteers/{volunteer_id}", headers=me)).json()
    assert mine["engagements"] == [need_id]
    assert (await registry.http.get(f"/tenants/{tenant}/needs/{need_id}", headers=me)).status_code == 200

    stepped_back: Envelope[Any] = events.volunteer_stepped_back(tenant, need_id, version=4, volunteer_id=volunteer_id)
    unstaffed = events.need_unstaffed(
        tenant,
        need_id,
        version=5,
        organisation_id=org,
        reason="volunteer_stepped_back",
        volunteers_committed=0,
        volunteers_needed=1,
    )
    for event in (stepped_back, unstaffed, stepped_back):
        await produce(kafka_bootstrap, PROPOSALS.name, to_bytes(event), key=event.key)

    async def escalated() -> dict[str, Any] | None:
        found = await registry.database.needs.find_one({"tenant": tenant, "_id": need_id})
        return found if found and found["unstaffed"] else None

    need = await eventually(escalated, what="the need to be flagged unstaffed")
    assert need["status"] == "open" and need["committed"] == []
    mine = (await registry.http.get(f"/tenants/{tenant}/volunteers/{volunteer_id}", headers=me)).json()
    assert mine["engagements"] == []
    # One need is counted, and withheld: a count below five singles it out.
    stats = (await registry.http.get(f"/tenants/{tenant}/statistics", headers=coordinator)).json()
    withheld = {"open": None, "staffed": None, "unstaffed": None}
    assert stats["needs_by_category"]["accompaniment_to_authorities"] == withheld
    assert datetime.now(UTC) - need["created_at"] < timedelta(minutes=5)
