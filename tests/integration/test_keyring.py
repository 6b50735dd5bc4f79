"""A consumer's keyring (``lotse_runtime.sealed.Keyring``) on a real database: it keeps the keys
of the key topic, a tombstone or the erasure destroys one for good, and a key record that comes
after the erasure does not bring it back."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import PersonKeyIssued, new_event, to_bytes
from lotse_runtime.sealed import KeyEncryptionKey, Keyring, destroy_person_key, new_data_key

KEK = KeyEncryptionKey("a-key-encryption-key-of-thirty-two-chars")
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
