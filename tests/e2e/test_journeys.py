"""End to end, with the services as separate processes: the path a municipality uses."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from pymongo import MongoClient

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform
from lotse_contracts import DeadLetterInfo, dead_letter_topic, partner_inbound_topic, topics_for_tenants
from lotse_contracts.topics import PERSON_KEYS, PROPOSALS, VOLUNTEERS
from lotse_runtime.auth import Role
from tests.e2e.journey import Municipality, eventually
from tests.support.kafka import read_all, read_to_end


def municipality(platform: Platform) -> Municipality:
    town = Municipality(platform, f"e2e-{uuid.uuid4().hex[:8]}")
    town.onboard()
    return town


def test_a_partner_need_is_proposed_by_email_accepted_by_link_and_staffed(platform: Platform) -> None:
    town = municipality(platform)
    _, email, _ = town.register_volunteer("Amira", "ar")

    town.publish(town.need_command("case-1"))

    proposal = eventually(
        "the proposal email", lambda: [m for m in town.mails_to(email) if ACCEPT_LINK.search(m["text"] or "")]
    )[0]
    assert 'dir="rtl"' in proposal["html"]
    accept_link = ACCEPT_LINK.search(proposal["text"])
    assert accept_link is not None
    link = accept_link.group(1)
    page = town.http.get(link, params={"choice": "accept"})
    assert page.status_code == 200 and "<form" in page.text
    confirmed = town.http.post(link, data={"choice": "accept"})
    assert confirmed.status_code == 200

    need = eventually(
        "the need to be staffed in the registry", lambda: [n for n in town.needs() if n["status"] == "staffed"]
    )[0]
    assert need["volunteers_needed"] == 1
    told = eventually("the coordination office to be told", lambda: town.mails_to(town.office_email))
    assert any("besetzt" in mail["subject"].lower() for mail in told), [mail["subject"] for mail in told]
    # The same link a second time changes nothing.
    again = town.http.post(link, data={"choice": "accept"})
    assert again.status_code in (200, 409, 410)
    assert [n["status"] for n in town.needs()] == ["staffed"]


def _personal_data_in(platform: Platform, needles: list[str]) -> list[str]:
    found = []
    client: MongoClient[dict[str, Any]] = MongoClient(platform.stack.mongo_url)
    try:
        for database in ("registry", "matching", "notifications"):
            for collection in client[database].list_collection_names():
                for document in client[database][collection].find():
                    text = repr(document)
                    found += [f"{database}.{collection}: {needle}" for needle in needles if needle in text]
    finally:
        client.close()
    return found


def _personal_data_on_topics(platform: Platform, tenant: str, needles: list[str]) -> list[str]:
    """Every record of every topic of the catalogue (the tenant's inbound and the dead-letter
    topics included), read from the beginning with a plain consumer, searched for ``needles``."""
    topics = [topic.name for topic in topics_for_tenants([tenant])]
    records = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, topics, timeout=60))
    return [
        f"{record.topic}@{record.offset}: {needle}"
        for record in records
        for needle in needles
        if needle.encode() in (record.value or b"")
    ]


def _wrapped_keys_of(platform: Platform, person_id: str) -> list[str]:
    """The services' databases (the portal's too) that hold a key of the person that still works."""
    found = []
    client: MongoClient[dict[str, Any]] = MongoClient(platform.stack.mongo_url)
    try:
        for database in ("registry", "matching", "notifications", "portal"):
            for collection in client[database].list_collection_names():
                for document in client[database][collection].find({"wrapped_key": {"$exists": True}}):
                    if person_id in repr(document):
                        found.append(f"{database}.{collection}")
    finally:
        client.close()
    return found


def _latest_key_record(platform: Platform, tenant: str, person_id: str) -> bytes | None:
    """The value of the last record of the person's key on the key topic (b"" for a tombstone)."""
    records = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [PERSON_KEYS.name], timeout=60))
    mine = [record for record in records if record.key == f"{tenant}:{person_id}".encode()]
    return mine[-1].value if mine else None


# What describes a volunteer and singles them out only in combination (with the need they were
# proposed for): the profile's and the proposal's fields that must not be readable on a topic.
PROFILE_AND_FIT_FIELDS = (
    "contact",
    "home_area",
    "skills",
    "languages",
    "travel_radius_km",
    "certificates",
    "consent",
    "availability",
    "organisation_id",
    "score",
    "reasons",
    "distance_km",
)


def _readable_fields_about(platform: Platform, tenant: str, volunteer_id: str) -> tuple[int, list[str]]:
    """How many records of the volunteer and proposal topics are about the volunteer, and which
    of them carry a profile or fit field in readable form (as the raw JSON has it)."""
    records = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [VOLUNTEERS.name, PROPOSALS.name], timeout=60))
    about, readable = 0, []
    for record in records:
        event = json.loads(record.value) if record.value else {}
        data = event.get("data") or {}
        if event.get("tenant") != tenant or data.get("volunteer_id") != volunteer_id:
            continue
        about += 1
        # An organisation id is the need's on a proposal, not something about the volunteer; a
        # field that holds a sealed value (`availability_changed.v2`) is not readable.
        fields = [
            name
            for name in PROFILE_AND_FIT_FIELDS
            if name in data
            and not (isinstance(data[name], dict) and "ciphertext" in data[name])
            and not (record.topic == PROPOSALS.name and name == "organisation_id")
        ]
        readable += [f"{record.topic}@{record.offset} {event['type']}: {name}" for name in fields]
    return about, readable


def test_erasure_leaves_no_personal_data_in_any_database_or_topic(platform: Platform) -> None:
    town = municipality(platform)
    volunteer_id, email, phone = town.register_volunteer("Leyla", "de")
    token = town.token(Role.VOLUNTEER, subject=volunteer_id)
    # A profile update with a home of their own (the registration's point is the town centre, where
    # the needs are too): its coordinates as text are personal values to look for.
    new_phone, home = f"+49160{volunteer_id[-8:].translate(str.maketrans('abcdef', '123456'))}", "51.9712345"
    profile = {
        "contact": {
            "display_name": f"Leyla K {volunteer_id[:8]}",
            "email": email,
            "phone": new_phone,
            "preferred_language": "de",
            "channels": ["email", "in_app"],
        },
        "skills": ["accompaniment"],
        "languages": [{"language": "ar", "level": "native"}, {"language": "de", "level": "b2"}],
        "home_area": {"point": {"lat": float(home), "lon": 7.6254321}, "postcode": "48143"},
        "travel_radius_km": 10,
    }
    path = f"/tenants/{town.slug}/volunteers/{volunteer_id}"
    updated = town.call("PUT", "registry", f"{path}/profile", token, json=profile)
    assert updated.status_code == 200, updated.text
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    slots = [{"weekday": day, "start": "08:00:00", "end": "20:00:00"} for day in weekdays]
    availability = {"weekly_slots": slots, "max_concurrent_engagements": 3}
    changed = town.call("PUT", "registry", f"{path}/availability", token, json=availability)
    assert changed.status_code == 200, changed.text
    town.publish(town.need_command("case-erasure"))
    eventually("the proposal email", lambda: town.mails_to(email))
    needles = [email, f"Leyla {volunteer_id[:8]}", f"Leyla K {volunteer_id[:8]}", phone, new_phone, home, "7.6254321"]
    # Matching and notifications read the sealed events: they opened them with the key.
    eventually("the new phone number in notifications", lambda: _personal_data_in(platform, [new_phone]))
    assert _personal_data_in(platform, needles), "the volunteer's data should be there before the erasure"
    # The key that opens the sealed copies: kept by the registry, and by each consumer that opened them.
    eventually("the key in every keyring", lambda: len(_wrapped_keys_of(platform, volunteer_id)) == 3)
    assert sorted(_wrapped_keys_of(platform, volunteer_id)) == [
        "matching.person_keys",
        "notifications.person_keys",
        "registry.person_keys",
    ]

    response = town.call("POST", "registry", f"{path}/erasure", token)
    assert response.status_code in (200, 202), response.text

    eventually("no personal data left anywhere", lambda: not _personal_data_in(platform, needles), timeout=120)
    assert _personal_data_on_topics(platform, town.slug, needles) == []
    # No copy of the key that would open what is left on the topics, and the key topic ends with
    # the tombstone (compaction keeps the latest record per key).
    eventually("no key of the person left", lambda: _wrapped_keys_of(platform, volunteer_id) == [], timeout=60)
    assert _latest_key_record(platform, town.slug, volunteer_id) == b""
    # Languages, skills, availability and the proposal's reasons went sealed too: nothing left on
    # the topics says what the erased volunteer speaks, can or why they were proposed.
    about, readable = _readable_fields_about(platform, town.slug, volunteer_id)
    assert about >= 4, "registered, profile_updated, availability_changed and a proposal about the volunteer"
    assert readable == []


def test_malformed_and_foreign_partner_events_are_dead_lettered_and_change_nothing(platform: Platform) -> None:
    town = municipality(platform)
    other = municipality(platform)
    before = town.needs()

    town.publish(b'{"specversion": "1.0", "type": ', key=b"broken")
    town.publish(other.need_command("foreign-1"), key=b"foreign")

    topic = dead_letter_topic(partner_inbound_topic(town.slug))

    def reasons(key: bytes) -> set[str]:
        # Each service that reads the partner topic dead-letters what it cannot read (the registry
        # and matching both read a malformed event), so wait for each key rather than a count.
        letters = asyncio.run(read_all(platform.stack.kafka_bootstrap, topic, expected=1, timeout=90, key_prefix=key))
        return {DeadLetterInfo.from_headers(record.headers.items()).reason.value for record in letters}

    assert reasons(b"broken") == {"malformed_json"}
    assert reasons(b"foreign") == {"tenant_mismatch"}
    assert town.needs() == before
    assert other.needs() == []
