"""Every write publishes exactly its events, in order per aggregate; the outbox survives a relay
that dies between commit and publish; consent withdrawal and erasure."""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient

from lotse_contracts import Envelope, parse_event
from lotse_contracts.topics import NEEDS, ORGANISATIONS, PERSON_KEYS, TENANTS, VOLUNTEERS
from lotse_devstack import Stack
from lotse_registry.app import create_app
from lotse_runtime.auth import Role
from lotse_runtime.consumer import Delivery, subscribe_events
from lotse_runtime.inbox import ensure_inbox_index, record_once
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import in_transaction
from lotse_runtime.settings import PlatformSettings
from tests.integration.registry.conftest import RunningRegistry, registry_settings
from tests.integration.registry.support import (
    add_organisation,
    need_body,
    onboard,
    opened,
    organisation_body,
    tenant_body,
    tenant_events,
    volunteer_body,
)
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def summary(events: list[Envelope[Any]]) -> dict[str, list[tuple[str, int]]]:
    """Per aggregate, the event types (last name part) and versions in topic order."""
    out: dict[str, list[tuple[str, int]]] = {}
    for event in events:
        out.setdefault(event.subject, []).append((event.type.split(".")[-2], event.version))
    return out


async def test_every_write_publishes_exactly_its_events_in_order_per_aggregate(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    http, tenant = registry.http, await onboard(registry)
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    org = await add_organisation(registry, tenant)
    await http.put(f"/tenants/{tenant}/organisations/{org}", json=organisation_body(name="Neu"), headers=coordinator)

    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    base = f"/tenants/{tenant}/volunteers/{volunteer_id}"
    body = volunteer_body(org)
    assert (await http.post(f"/tenants/{tenant}/volunteers", json=body, headers=me)).status_code == 201
    profile = {k: v for k, v in body.items() if k not in {"consent", "availability", "organisation_id"}}
    assert (await http.put(f"{base}/profile", json={**profile, "travel_radius_km": 5}, headers=me)).status_code == 200
    availability = {**body["availability"], "max_concurrent_engagements": 1}
    assert (await http.put(f"{base}/availability", json=availability, headers=me)).status_code == 200
    assert (await http.post(f"{base}/withdrawal", json={}, headers=me)).status_code == 200
    # Refused commands publish nothing.
    assert (await http.put(f"{base}/availability", json=availability, headers=me)).status_code == 409

    needs = []
    for _ in range(2):
        created = await http.post(f"/tenants/{tenant}/needs", json=need_body(org), headers=coordinator)
        needs.append(created.json()["need_id"])
    first, second = needs
    await http.put(f"/tenants/{tenant}/needs/{first}", json=need_body(org, volunteers_needed=2), headers=coordinator)
    await http.post(f"/tenants/{tenant}/needs/{first}/cancellation", json={"reason": "duplicate"}, headers=coordinator)
    await http.post(f"/tenants/{tenant}/needs/{second}/closing", json={"outcome": "fulfilled"}, headers=coordinator)
    refused = await http.post(
        f"/tenants/{tenant}/needs/{second}/cancellation", json={"reason": "duplicate"}, headers=coordinator
    )
    assert refused.status_code == 409

    read = {
        topic.name: await tenant_events(kafka_bootstrap, topic.name, tenant, expected=count, settle=1.0)
        for topic, count in ((TENANTS, 1), (ORGANISATIONS, 2), (VOLUNTEERS, 4), (NEEDS, 5))
    }
    assert summary(read[TENANTS.name]) == {tenant: [("onboarded", 1)]}
    assert summary(read[ORGANISATIONS.name]) == {org: [("registered", 1), ("updated", 2)]}
    assert summary(read[VOLUNTEERS.name]) == {
        volunteer_id: [("registered", 1), ("profile_updated", 2), ("availability_changed", 3), ("withdrawn", 4)]
    }
    assert summary(read[NEEDS.name]) == {
        first: [("opened", 1), ("updated", 2), ("cancelled", 3)],
        second: [("opened", 1), ("closed", 2)],
    }
    for events in read.values():
        for event in events:
            assert event.tenant == tenant and event.source == "/lotse/registry"
    withdrawn = read[VOLUNTEERS.name][-1].data
    assert withdrawn.reason == "consent_withdrawn" and withdrawn.erasure_requested is False
    assert await registry.database.outbox.count_documents({"tenant": tenant, "published_at": None}) == 0


async def test_quiet_hours_and_opt_outs_are_stored_and_published_with_the_contact(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    http, tenant = registry.http, await onboard(registry)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    body = volunteer_body()
    body["contact"] |= {"quiet_hours": {"start": "21:00:00", "end": "07:00:00"}, "opted_out_of": ["welcome"]}
    assert (await http.post(f"/tenants/{tenant}/volunteers", json=body, headers=me)).status_code == 201
    profile = {k: v for k, v in body.items() if k not in {"consent", "availability", "organisation_id"}}
    profile["contact"] = {**body["contact"], "quiet_hours": None, "opted_out_of": ["proposal_reminder"]}
    base = f"/tenants/{tenant}/volunteers/{volunteer_id}"
    assert (await http.put(f"{base}/profile", json=profile, headers=me)).status_code == 200
    shown = (await http.get(base, headers=me)).json()["contact"]
    assert shown["quiet_hours"] is None and shown["opted_out_of"] == ["proposal_reminder"]
    empty_window = {**body["contact"], "quiet_hours": {"start": "22:00:00", "end": "22:00:00"}}
    assert (await http.put(f"{base}/profile", json={**profile, "contact": empty_window}, headers=me)).status_code == 422
    sealed = await tenant_events(kafka_bootstrap, VOLUNTEERS.name, tenant, expected=2)
    registered, updated = [await opened(registry, event) for event in sealed]
    assert registered.data.contact.quiet_hours is not None
    assert registered.data.contact.quiet_hours.model_dump(mode="json") == {"start": "21:00:00", "end": "07:00:00"}
    assert registered.data.contact.opted_out_of == ["welcome"]
    assert updated.data.contact.quiet_hours is None and updated.data.contact.opted_out_of == ["proposal_reminder"]


async def test_only_the_volunteer_id_is_readable_on_the_topic_the_rest_opens_with_their_key(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    http, tenant = registry.http, await onboard(registry)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    body = volunteer_body()
    assert (await http.post(f"/tenants/{tenant}/volunteers", json=body, headers=me)).status_code == 201
    profile = {k: v for k, v in body.items() if k not in {"consent", "availability", "organisation_id"}}
    profile["skills"] = ["driving"]
    base = f"/tenants/{tenant}/volunteers/{volunteer_id}"
    assert (await http.put(f"{base}/profile", json=profile, headers=me)).status_code == 200
    availability = {**body["availability"], "max_concurrent_engagements": 1}
    assert (await http.put(f"{base}/availability", json=availability, headers=me)).status_code == 200

    records = await read_all(
        kafka_bootstrap, VOLUNTEERS.name, expected=3, timeout=30.0, key_prefix=f"{tenant}:".encode()
    )
    records = sorted(records, key=lambda record: record.offset)  # one key, one partition
    raw = [json.loads(record.value) for record in records]
    assert [event["type"] for event in raw] == [
        "de.lotse.registry.volunteer.registered.v3",
        "de.lotse.registry.volunteer.profile_updated.v3",
        "de.lotse.registry.volunteer.availability_changed.v2",
    ]
    # Skills, languages, availability, consent, certificates: nothing about the person but the id.
    assert [sorted(event["data"]) for event in raw[:2]] == [["profile", "volunteer_id"]] * 2
    assert sorted(raw[2]["data"]["availability"]) == ["algorithm", "ciphertext", "key_id", "nonce"]
    plain_words = ("bicycle_repair", '"ar"', "tuesday", "max_concurrent_engagements")
    assert not any(word in record.value.decode() for record in records for word in plain_words)
    registered, updated, changed = [await opened(registry, parse_event(record.value)) for record in records]
    assert changed.type == "de.lotse.registry.volunteer.availability_changed.v1"
    assert changed.data.availability.max_concurrent_engagements == 1
    assert (
        registered.type == "de.lotse.registry.volunteer.registered.v1"
        and registered.id == parse_event(records[0].value).id
    )
    assert [skill.language for skill in registered.data.languages] == ["de", "ar"]
    assert registered.data.skills == ["driving", "bicycle_repair"]
    assert registered.data.availability.max_concurrent_engagements == 2
    assert registered.data.consent.text_version == "2026-01"
    assert str(registered.data.volunteer_id) == volunteer_id
    assert updated.type == "de.lotse.registry.volunteer.profile_updated.v1" and updated.data.skills == ["driving"]


async def test_consent_withdrawal_keeps_the_volunteer_registered_but_never_proposed(
    registry: RunningRegistry,
) -> None:
    tenant = await onboard(registry)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    await registry.http.post(f"/tenants/{tenant}/volunteers", json=volunteer_body(), headers=me)
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    withdrawn = await registry.http.post(
        f"/tenants/{tenant}/volunteers/{volunteer_id}/withdrawal", json={}, headers=coordinator
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    consent = await registry.database.consents.find_one({"tenant": tenant, "volunteer_id": volunteer_id})
    assert consent is not None and consent["withdrawn_at"] is not None and consent["text_version"] == "2026-01"
    active = await registry.http.get(f"/tenants/{tenant}/volunteers?status=active", headers=coordinator)
    assert volunteer_id not in active.text
    # The statistics withhold counts below five; the database shows what they count.
    volunteers = registry.database.volunteers
    assert await volunteers.count_documents({"tenant": tenant, "status": "withdrawn"}) == 1
    assert await volunteers.count_documents({"tenant": tenant, "status": "active"}) == 0


# --- erasure ------------------------------------------------------------------------------------

PERSONAL_TEXT = [
    "Zoryana Erasetest",
    "zoryana.erasetest@example.org",
    "+4917012398765",
    "99887",
    "form-submission/424242",
    "vol-erase-77",
]
PERSONAL_FLOATS = [51.123457, 7.654321]


async def test_erasure_leaves_no_personal_data_in_any_collection(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    http, tenant = registry.http, await onboard(registry)
    org = await add_organisation(registry, tenant)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    body = volunteer_body(org)
    body["contact"] = {
        "display_name": PERSONAL_TEXT[0],
        "email": PERSONAL_TEXT[1],
        "phone": PERSONAL_TEXT[2],
        "preferred_language": "uk",
        "channels": ["email", "sms"],
    }
    body["home_area"] = {"point": {"lat": PERSONAL_FLOATS[0], "lon": PERSONAL_FLOATS[1]}, "postcode": PERSONAL_TEXT[3]}
    # The idempotency record keeps the response, contact data and all.
    registered = await http.post(
        f"/tenants/{tenant}/volunteers", json=body, headers={**me, "Idempotency-Key": "erase-me-1"}
    )
    assert registered.status_code == 201
    profile = {k: v for k, v in body.items() if k not in {"consent", "availability", "organisation_id"}}
    assert (await http.put(f"/tenants/{tenant}/volunteers/{volunteer_id}/profile", json=profile, headers=me)).is_success
    # A second one, registered by a partner with a consent proof, is erased by the coordinator on
    # request; a third one stays.
    partner = registry.auth(Role.PARTNER, tenant=tenant, subject="portal")
    by_partner = {k: v for k, v in body.items() if k != "consent"}
    by_partner.update(
        external_ref=PERSONAL_TEXT[5],
        consent={"purposes": ["matching"], "text_version": "2026-01", "given_at": "2026-11-20T09:30:00+01:00"},
        consent_proof={
            "method": "online_form",
            "reference": PERSONAL_TEXT[4],
            "recorded_at": "2026-11-20T09:31:00+01:00",
        },
    )
    response = await http.post(f"/tenants/{tenant}/partner/volunteers/register", json=by_partner, headers=partner)
    assert response.status_code == 201, response.text
    partner_volunteer = response.json()["volunteer_id"]
    staying = str(uuid.uuid4())
    stay_headers = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=staying)
    assert (await http.post(f"/tenants/{tenant}/volunteers", json=volunteer_body(org), headers=stay_headers)).is_success

    # The relay has published the registration and the profile update: the outbox holds them.
    await eventually(
        lambda: _published(registry, tenant, volunteer_id, 2), what="the volunteer's events to be published"
    )
    assert await _mentions(registry, PERSONAL_TEXT[1]), "the test must start with the e-mail address stored"

    erased = await http.post(f"/tenants/{tenant}/volunteers/{volunteer_id}/erasure", headers=me)
    assert erased.status_code == 200
    assert erased.json() == {"volunteer_id": volunteer_id, "status": "erased", "version": 4}
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    on_request = await http.post(f"/tenants/{tenant}/volunteers/{partner_volunteer}/erasure", headers=coordinator)
    assert on_request.status_code == 200 and on_request.json()["status"] == "erased"

    for value in PERSONAL_TEXT:
        assert not await _mentions(registry, value), value
    for number in PERSONAL_FLOATS:
        assert not await _mentions_float(registry, number), number
    assert await _mentions(registry, "maria@example.org"), "erasure must not touch other volunteers"

    # The statistics withhold counts below five; the database shows what they count.
    assert await registry.database.volunteers.count_documents({"tenant": tenant, "status": "active"}) == 1
    assert await registry.database.volunteers.count_documents({"tenant": tenant, "status": "erased"}) == 2
    counters = await registry.database.counters.find_one({"_id": f"{tenant}:volunteers"})
    assert counters is not None and counters["erased"] == 2
    again = await http.get(f"/tenants/{tenant}/volunteers/{volunteer_id}", headers=coordinator)
    assert again.json() == {"volunteer_id": volunteer_id, "status": "erased", "version": 4}
    replay = await http.post(
        f"/tenants/{tenant}/volunteers", json=body, headers={**me, "Idempotency-Key": "erase-me-1"}
    )
    assert PERSONAL_TEXT[1] not in replay.text

    events = await tenant_events(kafka_bootstrap, VOLUNTEERS.name, tenant, expected=8, settle=1.0)
    erasure = [e for e in events if e.subject == volunteer_id][-2:]
    assert [(e.type.split(".")[-2], e.version) for e in erasure] == [("withdrawn", 3), ("erased", 4)]
    assert erasure[0].data.erasure_requested is True
    assert PERSONAL_TEXT[1] not in erasure[1].model_dump_json()
    # Crypto-shredding: on the topic the contact and home area were sealed (registration, profile),
    # and the key that opens them is gone from the database and tombstoned on the key topic.
    on_topic = "".join(event.model_dump_json() for event in events if event.subject == volunteer_id)
    assert [value for value in PERSONAL_TEXT[:4] if value in on_topic] == []
    assert repr(PERSONAL_FLOATS[0]) not in on_topic
    assert await registry.database.person_keys.count_documents({"_id": volunteer_id}) == 0
    key = f"{tenant}:{volunteer_id}".encode()
    keys = await read_all(kafka_bootstrap, PERSON_KEYS.name, expected=2, key_prefix=key, timeout=30)
    assert [record.value != b"" for record in keys] == [True, False]  # the key, then its tombstone


async def _published(registry: RunningRegistry, tenant: str, subject: str, count: int) -> bool:
    query = {"key": f"{tenant}:{subject}", "published_at": {"$ne": None}}
    return await registry.database.outbox.count_documents(query) >= count


async def _all_documents(registry: RunningRegistry) -> AsyncIterator[tuple[str, bytes]]:
    database = registry.database
    for name in await database.list_collection_names():
        async for document in database[name].find({}):
            yield name, bson.encode(document)


async def _mentions(registry: RunningRegistry, text: str) -> list[str]:
    """Collections whose documents hold ``text`` as a value: a BSON string, or a JSON string inside
    stored event bytes. (Whole values, so that a postcode is not found inside a timestamp.)"""
    value = text.encode()
    forms = (struct.pack("<i", len(value) + 1) + value + b"\x00", b'"' + value + b'"')
    return [name async for name, raw in _all_documents(registry) if any(form in raw for form in forms)]


async def _mentions_float(registry: RunningRegistry, number: float) -> list[str]:
    """Collections holding ``number`` as a BSON double or as a JSON number inside event bytes."""
    forms = (struct.pack("<d", number), b":" + repr(number).encode())
    return [name async for name, raw in _all_documents(registry) if any(form in raw for form in forms)]


# --- the outbox relay dies between commit and publish ------------------------------------------


async def test_a_relay_killed_before_publishing_publishes_after_restart_and_the_consumer_applies_once(
    stack: Stack, kafka_bootstrap: str
) -> None:
    prefix = "o" + uuid.uuid4().hex[:8]
    settings = registry_settings(stack, prefix, run_consumers=False)
    tenant = f"{prefix}-1"

    # A consumer of the needs topic that applies each event once (inbox in the same transaction).
    mongo_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    effects = mongo_client[f"effects_{prefix}"]
    await ensure_inbox_index(effects)
    broker = make_broker(PlatformSettings(kafka_bootstrap=kafka_bootstrap), client_id="test-effects")
    deliveries: list[str] = []

    async def apply(event: Envelope[Any], delivery: Delivery) -> None:
        if event.tenant != tenant:
            return
        deliveries.append(str(event.id))

        async def once(session: Any) -> None:
            if await record_once(effects, session, consumer="effects", event_id=str(event.id), tenant=tenant):
                await effects.applied.insert_one({"event_id": str(event.id)}, session=session)

        await in_transaction(mongo_client, once)

    subscribe_events(broker, apply, consumer=f"effects-{prefix}", topics=[NEEDS.name])
    await broker.start()
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app), _client(app) as http:
            await http.post("/tenants", json=tenant_body(tenant), headers=_auth(app, Role.PLATFORM_ADMIN))
            org = (
                await http.post(
                    f"/tenants/{tenant}/organisations",
                    json=organisation_body(),
                    headers=_auth(app, Role.COORDINATOR, tenant),
                )
            ).json()["organisation_id"]
            await eventually(lambda: _pending(app, tenant, 0), what="the set-up events to be published")
            # The relay process dies; the next commit stays in the outbox.
            await app.state.relay.stop()
            created = await http.post(
                f"/tenants/{tenant}/needs", json=need_body(org), headers=_auth(app, Role.COORDINATOR, tenant)
            )
            assert created.status_code == 201
            assert await _pending(app, tenant, 1)
            assert await tenant_events(kafka_bootstrap, NEEDS.name, tenant, expected=1, timeout=1.5) == []

            # A new relay publishes it but dies before marking it as published.
            relay = app.state.relay
            real_send = relay.send

            async def acknowledged_then_die(acknowledgement: Awaitable[object]) -> None:
                await acknowledgement
                raise asyncio.CancelledError

            async def send_then_die(topic: str, key: bytes, value: bytes) -> Awaitable[object]:
                return acknowledged_then_die(await real_send(topic, key, value))

            relay.send = send_then_die
            relay.start()
            await eventually(lambda: _done(relay), what="the relay to die after publishing")
            assert await _pending(app, tenant, 1)

        # The service restarts: its relay finds the event still pending and publishes it again.
        restarted = create_app(settings)
        async with restarted.router.lifespan_context(restarted):
            await eventually(lambda: _pending(restarted, tenant, 0), what="the pending event to be published")
            events = await tenant_events(kafka_bootstrap, NEEDS.name, tenant, expected=2)
            assert len(events) == 2 and events[0].id == events[1].id
            await eventually(lambda: _count(deliveries, 2), what="both deliveries to reach the consumer")
            assert await effects.applied.count_documents({}) == 1
            await restarted.state.registry.client.drop_database(settings.database)
    finally:
        await broker.stop()
        await mongo_client.drop_database(f"effects_{prefix}")
        await mongo_client.close()


def _client(app: Any) -> Any:
    import httpx

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry")


def _auth(app: Any, role: Role, tenant: str | None = None) -> dict[str, str]:
    from tests.support import tokens

    token = tokens.issue(str(uuid.uuid4()), [role], tenant=tenant)
    return {"Authorization": f"Bearer {token}"}


async def _pending(app: Any, tenant: str, count: int) -> bool:
    return await app.state.registry.database.outbox.count_documents({"tenant": tenant, "published_at": None}) == count


async def _done(relay: Any) -> bool:
    return relay._task is not None and relay._task.done()


async def _count(items: list[str], count: int) -> bool:
    return len(items) >= count
