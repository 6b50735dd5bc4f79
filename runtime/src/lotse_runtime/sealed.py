"""Crypto-shredding: personal fields sealed per person on the topics (issue 18).

The registry gives each volunteer a 256-bit data key at registration and seals the personal fields
of the volunteer's events with it (AES-256-GCM, ``lotse_contracts.sealed.Sealed``). It keeps the
key in its database and publishes it on ``lotse.registry.person-keys.v1``, wrapped with the
platform's key-encryption key (``LOTSE_KEY_ENCRYPTION_KEY``), so that the topic alone opens
nothing. Consumers keep the wrapped keys they receive (``Keyring``) and open the sealed fields
when they apply an event. Erasure deletes the key in the registry and writes a tombstone; each
consumer deletes its copy on it. What is left of the person on any topic, in a dead letter or in
a consumer's backlog is then ciphertext nobody can open.

Matching seals a proposal's fit (score, reasons, distance: they describe the volunteer) with the
volunteer's key from its keyring (``Keyring.current_key``) before the proposal goes to its outbox.

A sealed event whose key has not arrived yet (the key topic and the volunteer topic are not
ordered with each other) waits for it outside any transaction (``KeyNotYetKnown``, a
``NotYetArrived`` of the consumer), then is dead-lettered. One whose key was destroyed is about an erased person: it is
applied without the personal data (``Keyring.opened`` returns None), never dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID, uuid4

import structlog
from aiokafka import ConsumerRecord
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from prometheus_client import Gauge
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from lotse_contracts import (
    Envelope,
    EventValidationError,
    MatchFit,
    MatchProposedSealed,
    PersonKeyIssued,
    VolunteerAvailabilityChangedSealed,
    VolunteerPersonalData,
    VolunteerProfile,
    VolunteerProfileUpdatedFullySealed,
    VolunteerProfileUpdatedSealed,
    VolunteerRegisteredFullySealed,
    VolunteerRegisteredSealed,
    VolunteerRegistration,
    parse_event,
    schema_url,
)
from lotse_contracts.base import EventData
from lotse_contracts.codec import envelope_model
from lotse_contracts.events.values import Availability
from lotse_contracts.sealed import SEALING_ALGORITHM, Sealed
from lotse_contracts.topics import PERSON_KEYS
from lotse_runtime.consumer import Delivery, EventHandler, NotYetArrived, consumer_options
from lotse_runtime.failures import is_transient
from lotse_runtime.secrets import MIN_SECRET_LENGTH, SecretsError, is_published

log = structlog.get_logger("lotse.sealed")

KEYRING_COLLECTION = "person_keys"
NONCE_BYTES = 12
# How long an event waits for its person's key to arrive on the key topic (another subscription,
# maybe far behind after a start) before it is dead-lettered. Waited outside any transaction.
KEY_PATIENCE_SECONDS = 30.0
# How often a rotating service looks for person keys not wrapped with the current key.
REWRAP_INTERVAL_SECONDS = 300.0

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class PersonKey:
    """A person's data key, unwrapped, and its id (for sealing)."""

    key_id: UUID
    data_key: bytes


class KeyDestroyed:
    """The person's key was destroyed: they are erased, nothing about them is to be sealed any more."""


KEY_DESTROYED = KeyDestroyed()


class KeyNotYetKnown(NotYetArrived):
    """A sealed value whose person's key has not arrived yet: the pipeline waits for it outside the
    transaction (``NotYetArrived``), up to ``KEY_PATIENCE_SECONDS``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, patience=KEY_PATIENCE_SECONDS)


class SealingError(Exception):
    """A sealed value that does not open with its key: tampered with, or sealed for another subject."""


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _wrapped_bytes(key_id: UUID, wrapped: str) -> bytes:
    try:
        return _decode(wrapped)
    except ValueError as error:  # not base64url: a damaged record opens with no key either
        raise SealingError(f"person key {key_id} is not a wrapped key") from error


def _derived(secret: str) -> AESGCM:
    return AESGCM(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lotse person keys v1").derive(secret.encode())
    )


class KeyEncryptionKey:
    """The platform's key that wraps the person keys on the topic and in the databases; derived
    (HKDF-SHA256) from the ``LOTSE_KEY_ENCRYPTION_KEY`` secret, which all services share.

    ``previous``: the secrets of keys this one replaced (a rotation, see ``PersonKeySettings``).
    What they wrapped still opens, and is wrapped again with this key (``rewrapped``) until no
    copy needs them any more and they are removed from the settings: from then on every wrapping
    made with them, wherever it was copied to, opens with nothing."""

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        self._aead = _derived(secret)
        self._previous = tuple(_derived(old) for old in previous)

    @property
    def rotating(self) -> bool:
        """Whether keys it replaced are still given (stored wrappings may need wrapping again)."""
        return bool(self._previous)

    def wrap(self, key_id: UUID, data_key: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return _encode(nonce + self._aead.encrypt(nonce, data_key, key_id.bytes))

    def unwrap(self, key_id: UUID, wrapped: str) -> bytes:
        raw = _wrapped_bytes(key_id, wrapped)
        for aead in (self._aead, *self._previous):
            try:
                return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], key_id.bytes)
            except InvalidTag:
                continue
        raise SealingError(f"person key {key_id} does not open with this key-encryption key")

    def rewrapped(self, key_id: UUID, wrapped: str) -> str | None:
        """The person key wrapped with this key if a previous one wrapped it, None if this one did
        (nothing to do); ``SealingError`` if none of them opens it."""
        raw = _wrapped_bytes(key_id, wrapped)
        try:
            self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], key_id.bytes)
            return None
        except InvalidTag:
            return self.wrap(key_id, self.unwrap(key_id, wrapped))


class PersonKeySettings(BaseSettings):
    """Mixed into the settings of the services that seal or open personal fields (prefix ``LOTSE_``)."""

    # A refused previous key must not be echoed with the others in the error.
    model_config = SettingsConfigDict(env_prefix="LOTSE_", extra="ignore", hide_input_in_errors=True)

    key_encryption_key: SecretStr | None = Field(
        None,
        description=(
            "Key that wraps each person's data key on the topic and in the databases (crypto-shredding); "
            "the same in registry, matching and notifications"
        ),
    )
    previous_key_encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description=(
            "Keys LOTSE_KEY_ENCRYPTION_KEY replaced, as a JSON list (a rotation): the person keys they wrapped still "
            "open, and every service wraps its copies again with the new key (the registry also publishes them "
            "anew); remove them once lotse_person_keys_on_previous_kek is 0 in every service"
        ),
    )

    @field_validator("previous_key_encryption_keys")
    @classmethod
    def _strong(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            if len(key.get_secret_value()) < MIN_SECRET_LENGTH or is_published(key.get_secret_value()):
                raise ValueError(f"a previous key-encryption key is shorter than {MIN_SECRET_LENGTH} or published")
        return keys


def key_encryption_key(secret: SecretStr | None, previous: Sequence[SecretStr] = ()) -> KeyEncryptionKey:
    """The key of the ``key_encryption_key`` setting (filled in or refused by the settings' secrets),
    with the keys it replaced."""
    if secret is None:
        raise SecretsError("LOTSE_KEY_ENCRYPTION_KEY is not set")
    return KeyEncryptionKey(secret.get_secret_value(), [old.get_secret_value() for old in previous])


# Stored person keys not wrapped with the current key-encryption key after a rotation's pass: the
# operators remove the previous keys from the settings once this is 0 in every service.
ON_PREVIOUS_KEK = Gauge(
    "lotse_person_keys_on_previous_kek",
    "Stored person keys still wrapped with a previous key-encryption key",
    ["store"],
)


@contextlib.asynccontextmanager
async def rewrapping(kek: KeyEncryptionKey, rewrap: Callable[[], Awaitable[int]], store: str) -> AsyncIterator[None]:
    """While the service runs and its key is rotating, ``rewrap`` (its stored person keys wrapped
    again with the current key-encryption key) runs beside it every ``REWRAP_INTERVAL_SECONDS``;
    the gauge says how many are not wrapped with the current key after each pass. In the
    background: a large keyring must not delay the start."""
    if not kek.rotating:
        ON_PREVIOUS_KEK.labels(store).set(0)
        yield
        return

    async def rewrap_and_count_while_running() -> None:
        # Again and again, not once: a replica still on the settings before the rotation may wrap
        # keys with the previous key until it is replaced, and the gauge must say so.
        while True:
            left = await rewrap()
            ON_PREVIOUS_KEK.labels(store).set(left)
            log.info("person keys wrapped with the current key-encryption key", store=store, not_current=left)
            await asyncio.sleep(REWRAP_INTERVAL_SECONDS)

    async with in_the_background(rewrap_and_count_while_running, f"{store}: wrapping the person keys again"):
        yield


@contextlib.asynccontextmanager
async def in_the_background(work: Callable[[], Awaitable[object]], what: str) -> AsyncIterator[None]:
    """``work`` (idempotent) once beside the service while it runs, tried again while the
    database is away, cancelled at shutdown (it starts over at the next start)."""

    async def until_done() -> None:
        pause = 1.0
        while True:
            try:
                await work()
                return
            except Exception as error:  # noqa: BLE001 - the database away: try again, it is idempotent
                if not is_transient(error):
                    log.error("background work failed", what=what, error=repr(error))
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)

    task = asyncio.create_task(until_done(), name=what)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def new_data_key() -> tuple[UUID, bytes]:
    """A fresh person key and its id."""
    return uuid4(), AESGCM.generate_key(bit_length=256)


def _context(tenant: str, subject: str) -> bytes:
    # Bound to the message key: a sealed value copied into another person's event does not open.
    return f"{tenant}:{subject}".encode()


def seal(value: P, *, key_id: UUID, data_key: bytes, tenant: str, subject: str) -> Sealed[P]:
    """``value`` sealed with the person's key, for an event of ``tenant`` about ``subject``."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, value.model_dump_json().encode(), _context(tenant, subject))
    sealed_type = cast(type[Sealed[P]], Sealed[type(value)])  # type: ignore[misc]
    return sealed_type(key_id=key_id, algorithm=SEALING_ALGORITHM, nonce=_encode(nonce), ciphertext=_encode(ciphertext))


def unseal(sealed: Sealed[Any], model: type[P], *, data_key: bytes, tenant: str, subject: str) -> P:
    try:
        plain = AESGCM(data_key).decrypt(_decode(sealed.nonce), _decode(sealed.ciphertext), _context(tenant, subject))
    except InvalidTag as error:
        raise SealingError(f"sealed value of {tenant}:{subject} does not open with key {sealed.key_id}") from error
    return model.model_validate_json(plain)


async def destroy_person_key(
    database: AsyncDatabase[dict[str, Any]],
    tenant: str,
    person_id: str,
    session: AsyncClientSession | None = None,
) -> None:
    """Replace a consumer's copy of the person's key by a marker without key material. On the
    key topic's tombstone, and in the consumer's own handling of ``volunteer.erased`` (in its
    unit of work): a consumer that missed the tombstone (kept an hour after compaction) would
    otherwise keep a key that opens every sealed copy of the person."""
    await database[KEYRING_COLLECTION].update_one(
        {"_id": f"{tenant}:{person_id}"},
        {
            "$set": {"tenant": tenant, "person_id": person_id, "destroyed": True, "updated_at": datetime.now(UTC)},
            "$unset": {"wrapped_key": "", "key_id": ""},
        },
        upsert=True,
        session=session,
    )


class Keyring:
    """A consumer's copies of the person keys (collection ``person_keys``, wrapped as on the topic).

    A destroyed key leaves a marker without key material, so that an event of the erased person
    that comes late is recognised as such instead of waiting for a key that never comes."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]], kek: KeyEncryptionKey) -> None:
        self.collection = database[KEYRING_COLLECTION]
        self.kek = kek
        # Keys seen by this process that its key-encryption key does not open: a service started
        # with another LOTSE_KEY_ENCRYPTION_KEY than the registry's. It is not ready (``/ready``)
        # and says why, instead of dead-lettering every sealed event without a word.
        self.unopenable = 0

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("tenant", ASCENDING), ("person_id", ASCENDING)])

    async def check_stored_keys(self) -> None:
        """At start: the newest key kept by an earlier run opens with this key-encryption key
        (the key topic is read on from where the last run stopped, so a wrong key would
        otherwise go unnoticed until a sealed event fails)."""
        newest = await self.collection.find_one(
            {"destroyed": False, "wrapped_key": {"$exists": True}}, sort=[("updated_at", -1)]
        )
        if newest is not None:
            self._check_opens(UUID(newest["key_id"]), newest["wrapped_key"], newest["_id"])

    def opens_every_key(self) -> bool:
        return self.unopenable == 0

    async def rewrap_stored(self) -> int:
        """Wrap every kept key again with the current key-encryption key where a previous one
        wrapped it (a rotation); the number of keys not wrapped with the current one afterwards
        (those that open with none of the keys given)."""
        left = 0
        query = {"destroyed": False, "wrapped_key": {"$exists": True}}
        async for document in self.collection.find(query, {"key_id": 1, "wrapped_key": 1}):
            try:
                rewrapped = self.kek.rewrapped(UUID(document["key_id"]), document["wrapped_key"])
            except SealingError:
                left += 1
                continue
            if rewrapped is not None:  # unless a newer record or the erasure came meanwhile
                await self.collection.update_one(
                    {"_id": document["_id"], "wrapped_key": document["wrapped_key"]},
                    {"$set": {"wrapped_key": rewrapped}},
                )
        return left

    def _check_opens(self, key_id: UUID, wrapped: str, message_key: str) -> None:
        try:
            self.kek.unwrap(key_id, wrapped)
        except SealingError:
            self.unopenable += 1
            log.error(
                "a person key does not open with this service's key-encryption key: "
                "LOTSE_KEY_ENCRYPTION_KEY differs from the registry's, sealed events will fail",
                key=message_key,
                unopenable=self.unopenable,
            )

    async def remember(self, issued: Envelope[PersonKeyIssued]) -> None:
        """Keep the key, unless it was destroyed: the erasure event may have come before this
        record (another subscription), and nothing brings an erased person's key back. A key that
        does not open is kept too: it opens once the service runs with the right key-encryption key."""
        data = issued.data
        self._check_opens(data.key_id, data.wrapped_key, issued.key.decode())
        try:
            await self._remember(issued, data)
        except DuplicateKeyError:
            return  # a destroyed marker has this id: the filter did not match it, the insert collided

    async def _remember(self, issued: Envelope[PersonKeyIssued], data: PersonKeyIssued) -> None:
        wrapped, kept = data.wrapped_key, {"_id": issued.key.decode(), "destroyed": {"$ne": True}}
        try:
            # During a rotation a record of the registry may still come wrapped with the previous key.
            wrapped = self.kek.rewrapped(data.key_id, data.wrapped_key) or wrapped
        except SealingError:
            # Kept as it came (it opens once the right key is given), but never in place of a copy
            # of the same key that opens (a replica on other settings in the middle of a rotation).
            kept["key_id"] = {"$ne": str(data.key_id)}
        await self.collection.update_one(
            kept,
            {
                "$set": {
                    "tenant": issued.tenant,
                    "person_id": str(data.person_id),
                    "key_id": str(data.key_id),
                    "wrapped_key": wrapped,
                    "destroyed": False,
                    "updated_at": datetime.now(UTC),
                }
            },
            upsert=True,
        )

    async def destroy(self, message_key: str) -> None:
        tenant, _, person_id = message_key.partition(":")
        await destroy_person_key(self.collection.database, tenant, person_id)

    async def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the key topic: a key, or (no value) the tombstone of an erased person's key."""
        if key is None:
            log.warning("person key record without a key ignored")
            return
        if value is None:
            await self.destroy(key.decode())
            return
        try:
            event = parse_event(value)
        except EventValidationError as error:
            log.warning("unreadable person key record ignored", key=key.decode(), error=str(error))
            return
        if isinstance(event.data, PersonKeyIssued):
            await self.remember(event)

    async def data_key(self, tenant: str, subject: str, key_id: UUID, *, wait: float = 0.0) -> bytes | None:
        """The person's key, None if it was destroyed; waits up to ``wait`` seconds for it to
        arrive, then raises ``KeyNotYetKnown``."""
        deadline = asyncio.get_running_loop().time() + wait
        pause = 0.05
        while True:
            document = await self.collection.find_one({"_id": f"{tenant}:{subject}"})
            if document is not None and document.get("destroyed"):
                return None
            if document is not None and document.get("key_id") == str(key_id):
                return self.kek.unwrap(key_id, document["wrapped_key"])
            if asyncio.get_running_loop().time() >= deadline:
                raise KeyNotYetKnown(f"the key {key_id} of {tenant}:{subject} has not arrived (yet)")
            await asyncio.sleep(pause)  # the key topic is read by another subscription, maybe another replica
            pause = min(pause * 2, 0.5)

    async def current_keys(self, tenant: str, person_ids: Collection[str]) -> dict[str, PersonKey | KeyDestroyed]:
        """The keys to seal with now of these people, in one read and without waiting; a person
        this keyring never received a key of is left out (see ``lotse_matching.sealing``)."""
        found: dict[str, PersonKey | KeyDestroyed] = {}
        ids = [f"{tenant}:{person_id}" for person_id in person_ids]
        async for document in self.collection.find({"_id": {"$in": ids}}):
            person_id = document["_id"].partition(":")[2]
            if document.get("destroyed"):
                found[person_id] = KEY_DESTROYED
                continue
            key_id = UUID(document["key_id"])
            found[person_id] = PersonKey(key_id=key_id, data_key=self.kek.unwrap(key_id, document["wrapped_key"]))
        return found

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        """A sealed event as its plain predecessor (same id, type ``...v1``), or None if the key of
        the person it is about was destroyed (the person is erased)."""
        part = sealed_part(event)
        if part is None:
            return None
        person, sealed = part
        data_key = await self.data_key(event.tenant, person, sealed.key_id)
        if data_key is None:
            return None
        return open_sealed(event, data_key)


def sealed_part(event: Envelope[Any]) -> tuple[str, Sealed[Any]] | None:
    """Whose key opens a sealed event (the person's id), and its sealed value; None for a proposal
    without a fit (its volunteer's key was gone when matching proposed them)."""
    data = event.data
    match data:
        case VolunteerRegisteredSealed() | VolunteerProfileUpdatedSealed():
            return event.subject, data.personal
        case VolunteerRegisteredFullySealed() | VolunteerProfileUpdatedFullySealed():
            return event.subject, data.profile
        case VolunteerAvailabilityChangedSealed():
            return event.subject, data.availability
        case MatchProposedSealed():
            return None if data.fit is None else (str(data.volunteer_id), data.fit)
    raise TypeError(f"not a sealed event: {event.type}")


def open_sealed(event: Envelope[Any], data_key: bytes) -> Envelope[Any]:
    """A sealed event opened with its person's key: as its plain predecessor, with the same id. The
    additional data is always the event's message key."""
    part = sealed_part(event)
    if part is None:
        raise TypeError(f"nothing sealed in {event.type} {event.id}")
    opening = functools.partial(unseal, part[1], data_key=data_key, tenant=event.tenant, subject=event.subject)
    data = event.data
    match data:
        case VolunteerRegisteredSealed() | VolunteerProfileUpdatedSealed():
            return plain_envelope(event, data.unsealed(opening(VolunteerPersonalData)))
        case VolunteerRegisteredFullySealed():
            return plain_envelope(event, data.unsealed(opening(VolunteerRegistration)))
        case VolunteerProfileUpdatedFullySealed():
            return plain_envelope(event, data.unsealed(opening(VolunteerProfile)))
        case VolunteerAvailabilityChangedSealed():
            return plain_envelope(event, data.unsealed(opening(Availability)))
        case MatchProposedSealed():
            return plain_envelope(event, data.unsealed(opening(MatchFit)))
    raise TypeError(f"not a sealed event: {event.type}")


def plain_envelope(event: Envelope[Any], data: EventData) -> Envelope[Any]:
    """``event`` carrying ``data`` of another type (its id, and so its inbox record, stay the same),
    as the envelope model of that type: a copy of the old envelope would serialise the new data by
    the old type's fields (a sealed proposal would go to the outbox without its sealed fit)."""
    attributes = {name: getattr(event, name) for name in Envelope.model_fields}
    attributes.update(type=data.event_type, dataschema=schema_url(data.event_type), data=data)
    return envelope_model(data.event_type).model_validate(attributes)


class SealedSource(Protocol):
    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None: ...


class NoKeyring:
    """For dispatch tables built without keys (tests of plain ``v1`` events): a sealed event fails."""

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        raise RuntimeError(f"{event.type} is sealed, and this consumer has no keyring")


def unsealing(keyring: SealedSource, handle: EventHandler, erased: EventHandler) -> EventHandler:
    """A handler of a sealed event: ``handle`` gets it opened; ``erased`` gets the sealed event
    itself when the person's key is gone (nothing personal left to apply)."""

    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        opened = await keyring.opened(event)
        await (erased(event, delivery) if opened is None else handle(opened, delivery))

    return handler


def subscribe_person_keys(broker: KafkaBroker, keyring: Keyring, *, consumer: str) -> None:
    """Keep the keys of ``lotse.registry.person-keys.v1`` in ``keyring``. Tombstones have no value,
    which the event pipeline would dead-letter, so this topic has a subscription of its own; its
    records are idempotent (the latest per key wins), so it needs no inbox."""
    subscriber = broker.subscriber(
        PERSON_KEYS.name,
        group_id=consumer,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        batch=True,
        max_records=100,
        session_timeout_ms=consumer_options(broker).session_timeout_ms,
        heartbeat_interval_ms=consumer_options(broker).heartbeat_interval_ms,
    )

    @subscriber
    async def receive(message: KafkaMessage) -> None:
        records = cast(tuple[ConsumerRecord[Any, Any], ...], message.raw_message)
        for record in records:
            await _with_patience(functools.partial(keyring.apply, record.key, record.value))
        await message.ack()


async def _with_patience(work: Callable[[], Awaitable[None]]) -> None:
    """``work`` until it succeeds: the database away is waited out, as the event pipeline does."""
    tries = 0
    while True:
        try:
            await work()
            return
        except Exception as error:
            if not is_transient(error):
                raise
            tries += 1
            log.warning("person key not stored, the database is away: waiting", tries=tries, error=repr(error))
            await asyncio.sleep(min(0.2 * 2**tries, 5.0))
