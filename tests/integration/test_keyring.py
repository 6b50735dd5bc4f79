"""A consumer's keyring (``lotse_runtime.sealed.Keyring``) on a real database: it keeps the keys
of the key topic, a tombstone or the erasure destroys one for good, and a key record that comes
after the erasure does not bring it back; a service whose key-encryption key does not open the
registry's keys is not ready and says why."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import (
    MatchFit,
    MatchProposed,
    MatchProposedSealed,
    PersonKeyIssued,
    new_event,
    parse_event,
    to_bytes,
)
from lotse_contracts.topics import PERSON_KEYS
from lotse_registry.store import Store as RegistryStore
from lotse_runtime.connections import operations_router
from lotse_runtime.outbox import OUTBOX_COLLECTION
from lotse_runtime.sealed import (
    KeyDestroyed,
    KeyEncryptionKey,
    Keyring,
    PersonKey,
    SealingError,
    destroy_person_key,
    new_data_key,
    seal,
)
from lotse_runtime.settings import PlatformSettings

KEK_SECRET = "a-key-encryption-key-of-thirty-two-chars"
KEK = KeyEncryptionKey(KEK_SECRET)
TENANT = "musterstadt"


def _key_record(person_id: str) -> tuple[bytes, bytes, bytes]:
    """The key topic's record of a fresh key of ``person_id``: message key, value, the data key."""
    key_id, data_key = new_data_key()
    issued = PersonKeyIssued(
        person_id=person_id, key_id=key_id, algorithm="A256GCM", wrapped_key=KEK.wrap(key_id, data_key)
    )
    event = new_event(data=issued, tenant=TENANT, subject=person_id, version=1, source="/lotse/registry")
    return f"{TENANT}:{person_id}".encode(), to_bytes(event), data_key


async def test_a_remembered_key_opens_until_a_tombstone_destroys_it(database: AsyncDatabase[dict[str, Any]]) -> None:
    keyring = Keyring(database, KEK)
    person_id = str(uuid4())
    message_key, value, data_key = _key_record(person_id)

    await keyring.apply(message_key, value)
    stored = await keyring.collection.find_one({"_id": message_key.decode()})
    assert stored is not None and stored["wrapped_key"] and not stored["destroyed"]
    assert await keyring.data_key(TENANT, person_id, UUID(stored["key_id"]), wait=0) == data_key

    await keyring.apply(message_key, None)  # the tombstone
    stored = await keyring.collection.find_one({"_id": message_key.decode()})
    assert stored is not None and stored["destroyed"] and "wrapped_key" not in stored
    assert await keyring.data_key(TENANT, person_id, uuid4(), wait=0) is None

    # The key record read again (a replay, or the topic before compaction): the key stays destroyed.
    await keyring.apply(message_key, value)
    stored = await keyring.collection.find_one({"_id": message_key.decode()})
    assert stored is not None and stored["destroyed"] and "wrapped_key" not in stored


async def test_an_erasure_destroys_the_key_without_the_tombstone_and_a_late_key_does_not_return(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    keyring = Keyring(database, KEK)
    erased, kept = str(uuid4()), str(uuid4())
    for person_id in (erased, kept):
        await keyring.apply(*_key_record(person_id)[:2])

    await destroy_person_key(database, TENANT, erased)  # what the consumers' volunteer.erased does
    assert await keyring.collection.count_documents({"wrapped_key": {"$exists": True}}) == 1
    (left,) = await keyring.collection.find({"wrapped_key": {"$exists": True}}).to_list()
    assert left["person_id"] == kept

    # The erasure came before the key (the two topics are not ordered): the key is not kept.
    late = str(uuid4())
    await destroy_person_key(database, TENANT, late)
    await keyring.apply(*_key_record(late)[:2])
    stored = await keyring.collection.find_one({"_id": f"{TENANT}:{late}"})
    assert stored is not None and stored["destroyed"] and "wrapped_key" not in stored


async def test_a_service_with_another_key_encryption_key_says_so_and_is_not_ready(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A consumer started with another LOTSE_KEY_ENCRYPTION_KEY than the registry's would dead-letter
    every sealed event; it finds out from the first key record, or at start from the keys it kept."""
    wrong = Keyring(database, KeyEncryptionKey("another-key-encryption-key-of-32-chars"))
    person_id = str(uuid4())
    await wrong.apply(*_key_record(person_id)[:2])
    assert not wrong.opens_every_key()
    # Kept all the same: it opens once the service runs with the right key.
    right = Keyring(database, KEK)
    stored = await right.collection.find_one({"_id": f"{TENANT}:{person_id}"})
    assert stored is not None
    assert await right.data_key(TENANT, person_id, UUID(stored["key_id"]), wait=0) is not None

    # A restart reads the key topic on from where it stopped: the check of the kept keys finds it.
    restarted_wrong = Keyring(database, KeyEncryptionKey("another-key-encryption-key-of-32-chars"))
    assert restarted_wrong.opens_every_key()
    await restarted_wrong.check_stored_keys()
    assert not restarted_wrong.opens_every_key()
    await right.check_stored_keys()
    assert right.opens_every_key()


async def test_ready_says_when_the_person_keys_do_not_open(database: AsyncDatabase[dict[str, Any]]) -> None:
    app = FastAPI()
    app.include_router(operations_router(app, PlatformSettings()))
    keyring = Keyring(database, KeyEncryptionKey("another-key-encryption-key-of-32-chars"))
    app.state.keyring = keyring
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as http:
        assert (await http.get("/ready")).json()["checks"]["person_keys"] == "ok"
        await keyring.apply(*_key_record(str(uuid4()))[:2])  # wrapped with the registry's KEK
        ready = await http.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["person_keys"] == "unavailable"


async def test_the_current_key_seals_a_proposal_that_opens_with_the_volunteers_key_and_not_once_erased(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    keyring = Keyring(database, KEK)
    volunteer_id, never_sealed = str(uuid4()), str(uuid4())
    message_key, value, data_key = _key_record(volunteer_id)
    await keyring.apply(message_key, value)

    found = await keyring.current_keys(TENANT, [volunteer_id, never_sealed])
    assert list(found) == [volunteer_id], "no key ever issued: nothing to seal with"
    current = found[volunteer_id]
    assert isinstance(current, PersonKey) and current.data_key == data_key
    plain = MatchProposed.example().model_copy(update={"volunteer_id": UUID(volunteer_id)})
    fit = MatchFit(score=plain.score, reasons=plain.reasons, distance_km=plain.distance_km)
    need_id = str(plain.need_id)
    sealed = MatchProposedSealed(
        need_id=plain.need_id,
        volunteer_id=plain.volunteer_id,
        proposal_id=plain.proposal_id,
        organisation_id=plain.organisation_id,
        fit=seal(fit, key_id=current.key_id, data_key=current.data_key, tenant=TENANT, subject=need_id),
        expires_at=plain.expires_at,
    )
    event = new_event(data=sealed, tenant=TENANT, subject=need_id, version=1, source="/lotse/matching")

    opened = await keyring.opened(event)
    assert opened is not None and opened.data == plain, "looked up by the volunteer, not the event's subject"

    await keyring.apply(message_key, None)  # the volunteer's erasure
    assert isinstance((await keyring.current_keys(TENANT, [volunteer_id]))[volunteer_id], KeyDestroyed)
    assert await keyring.opened(event) is None, "the erased volunteer's proposal: applied without its fit"


# --- rotation of the key-encryption key ---------------------------------------------------------

NEW_KEK_SECRET = "the-key-encryption-key-that-replaces-it-42"


async def test_a_rotation_wraps_every_kept_key_again_so_the_previous_key_can_go(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    before = Keyring(database, KEK)
    people = [str(uuid4()), str(uuid4())]
    data_keys = {}
    for person_id in people:
        message_key, value, data_keys[person_id] = _key_record(person_id)
        await before.apply(message_key, value)

    rotating = Keyring(database, KeyEncryptionKey(NEW_KEK_SECRET, previous=[KEK_SECRET]))
    assert rotating.kek.rotating
    assert await rotating.rewrap_stored() == 0
    # A record the registry published before it was given the new key comes late: kept rewrapped.
    late = str(uuid4())
    message_key, value, data_keys[late] = _key_record(late)
    await rotating.apply(message_key, value)

    # The previous key is gone from the settings: every kept key still opens, with the new one alone.
    after = Keyring(database, KeyEncryptionKey(NEW_KEK_SECRET))
    for person_id in [*people, late]:
        stored = await after.collection.find_one({"_id": f"{TENANT}:{person_id}"})
        assert stored is not None
        opened = await after.data_key(TENANT, person_id, UUID(stored["key_id"]), wait=0)
        assert opened == data_keys[person_id]
    await after.check_stored_keys()
    assert after.opens_every_key()
    # ... and the old key opens none of them any more (every copy it wrapped is gone).
    for stored in await database["person_keys"].find({}).to_list():
        with pytest.raises(SealingError):
            KEK.unwrap(UUID(stored["key_id"]), stored["wrapped_key"])


async def test_the_registry_wraps_its_person_keys_again_and_publishes_each_anew(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    person_id, key_id, data_key = str(uuid4()), *new_data_key()
    wrapped = KEK.wrap(key_id, data_key)
    await database["person_keys"].insert_one(
        {"_id": person_id, "tenant": TENANT, "key_id": str(key_id), "wrapped_key": wrapped}
    )
    await database["volunteers"].insert_one({"_id": person_id, "tenant": TENANT, "version": 4})
    rotating = KeyEncryptionKey(NEW_KEK_SECRET, previous=[KEK_SECRET])
    registry = RegistryStore(mongo_client, database, key_encryption_key=rotating)

    assert await registry.rewrap_person_keys() == 0
    assert await registry.rewrap_person_keys() == 0  # again (a restart, another replica): nothing new

    stored = await database["person_keys"].find_one({"_id": person_id})
    assert stored is not None and KeyEncryptionKey(NEW_KEK_SECRET).unwrap(key_id, stored["wrapped_key"]) == data_key
    published = await database[OUTBOX_COLLECTION].find({"topic": PERSON_KEYS.name}).to_list()
    assert len(published) == 1, published
    event = parse_event(bytes(published[0]["value"]))
    assert isinstance(event.data, PersonKeyIssued) and event.version == 4
    assert event.data.wrapped_key == stored["wrapped_key"] and event.data.key_id == key_id


async def test_active_volunteers_registered_before_sealing_get_a_key_each_once(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    """Without a key their proposals would go out unsealed until their next change. Withdrawn and
    erased volunteers are never proposed: they get none (an erased one must never get one back)."""
    older, withdrawn, erased, sealed_already = (str(uuid4()) for _ in range(4))
    await database["volunteers"].insert_many(
        [
            {"_id": older, "tenant": TENANT, "status": "active", "version": 3},
            {"_id": withdrawn, "tenant": TENANT, "status": "withdrawn", "version": 5},
            {"_id": erased, "tenant": TENANT, "status": "erased", "version": 7},
            {"_id": sealed_already, "tenant": TENANT, "status": "active", "version": 2},
        ]
    )
    key_id, data_key = new_data_key()
    existing = {
        "_id": sealed_already,
        "tenant": TENANT,
        "key_id": str(key_id),
        "wrapped_key": KEK.wrap(key_id, data_key),
    }
    await database["person_keys"].insert_one(existing)
    registry = RegistryStore(mongo_client, database, key_encryption_key=KEK)

    assert await registry.issue_missing_person_keys() == 1
    assert await registry.issue_missing_person_keys() == 0  # the next start: marked done

    keys = {document["_id"]: document async for document in database["person_keys"].find()}
    assert set(keys) == {older, sealed_already}
    assert keys[sealed_already]["wrapped_key"] == existing["wrapped_key"]  # untouched
    (published,) = [parse_event(bytes(row["value"])) async for row in database[OUTBOX_COLLECTION].find()]
    assert (published.subject, published.version) == (older, 3)
    assert isinstance(published.data, PersonKeyIssued)
    assert published.data.wrapped_key == keys[older]["wrapped_key"]
    assert len(KEK.unwrap(published.data.key_id, keys[older]["wrapped_key"])) == 32


async def test_a_replica_on_the_old_settings_keeps_its_copy_that_opens(database: AsyncDatabase[dict[str, Any]]) -> None:
    """In the middle of a rotation a replica still on the old key receives a key the rotated
    registry wrapped with the new one: it does not replace the copy it can open with one it cannot."""
    old_settings = Keyring(database, KEK)
    person_id = str(uuid4())
    message_key, value, data_key = _key_record(person_id)
    await old_settings.apply(message_key, value)
    stored = await old_settings.collection.find_one({"_id": message_key.decode()})
    assert stored is not None
    key_id = UUID(stored["key_id"])

    rewrapped = KeyEncryptionKey(NEW_KEK_SECRET).wrap(key_id, data_key)
    issued = PersonKeyIssued(person_id=person_id, key_id=key_id, algorithm="A256GCM", wrapped_key=rewrapped)
    event = new_event(data=issued, tenant=TENANT, subject=person_id, version=2, source="/lotse/registry")
    await old_settings.apply(message_key, to_bytes(event))

    assert await old_settings.data_key(TENANT, person_id, key_id) == data_key


async def test_two_registry_replicas_starting_at_once_issue_and_rewrap_each_key_once(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    """The start's one-off key issue and a rotation's rewrap run in every replica, side by side:
    each volunteer still gets one key and one key event from each."""
    volunteers = [str(uuid4()) for _ in range(12)]
    await database["volunteers"].insert_many(
        [{"_id": volunteer, "tenant": TENANT, "status": "active", "version": 1} for volunteer in volunteers]
    )
    replicas = [RegistryStore(mongo_client, database, key_encryption_key=KEK) for _ in range(2)]
    await asyncio.gather(*(replica.issue_missing_person_keys() for replica in replicas))
    assert await database["person_keys"].count_documents({}) == len(volunteers)
    assert await database[OUTBOX_COLLECTION].count_documents({"topic": PERSON_KEYS.name}) == len(volunteers)

    rotating = KeyEncryptionKey(NEW_KEK_SECRET, previous=[KEK_SECRET])
    replicas = [RegistryStore(mongo_client, database, key_encryption_key=rotating) for _ in range(2)]
    assert await asyncio.gather(*(replica.rewrap_person_keys() for replica in replicas)) == [0, 0]
    assert await database[OUTBOX_COLLECTION].count_documents({"topic": PERSON_KEYS.name}) == 2 * len(volunteers)
    async for stored in database["person_keys"].find():
        rotating.unwrap(UUID(stored["key_id"]), stored["wrapped_key"])
        with pytest.raises(SealingError):
            KEK.unwrap(UUID(stored["key_id"]), stored["wrapped_key"])
