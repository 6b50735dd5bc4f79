"""Person keys for the sealed events of a consumer batch, read at once (issue 17).

``Keyring.opened`` reads the person's key for every sealed event: a round trip per proposal mail
on the partner need's path. Here the first sealed event of a tenant in a consumer batch reads the
keys of all the batch's sealed events of that tenant in one round trip, and the others open with
them. Kept for the batch only (a few milliseconds), so no replica serves a key from memory that
another destroyed long ago: the read is as fresh as the per-event read was, which also happened
outside the batch's transaction.

Whatever the batch read did not settle goes to the keyring as before: a key not kept yet (or
another key than the event's), which the keyring waits for (``KeyNotYetKnown``: the consumer
waits for data not yet arrived), and a key this service's key-encryption key does not open.
"""

from __future__ import annotations

import weakref
from typing import Any

import structlog

from lotse_contracts import Envelope
from lotse_runtime.sealed import KeyDestroyed, Keyring, PersonKey, SealingError, open_sealed, sealed_part
from lotse_runtime.unit_of_work import Batch, current_batch

log = structlog.get_logger("lotse.notifications")

Keys = dict[str, PersonKey | KeyDestroyed]  # by person id


def _sealed_people(events: list[Envelope[Any]], tenant: str) -> set[str]:
    """Whose keys open the sealed events of ``tenant`` among ``events``."""
    people = set()
    for event in events:
        if event.tenant != tenant:
            continue
        try:
            part = sealed_part(event)
        except TypeError:  # not a sealed event
            continue
        if part is not None:
            people.add(part[0])
    return people


class BatchKeys:
    """A ``SealedSource`` that opens the sealed events of a consumer batch with keys read once per
    batch and tenant; outside a batch (or for what that read did not settle) ``keyring`` opens."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._read: weakref.WeakKeyDictionary[Batch, dict[str, Keys]] = weakref.WeakKeyDictionary()

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        batch = current_batch()
        part = sealed_part(event)
        if batch is None or part is None:
            return await self.keyring.opened(event)
        person, sealed = part
        key = (await self._keys(batch, event.tenant)).get(person)
        if isinstance(key, KeyDestroyed):
            return None  # the person is erased, as ``Keyring.opened`` says it
        if isinstance(key, PersonKey) and key.key_id == sealed.key_id:
            return open_sealed(event, key.data_key)
        return await self.keyring.opened(event)

    async def _keys(self, batch: Batch, tenant: str) -> Keys:
        read = self._read.setdefault(batch, {})
        if tenant not in read:
            try:
                read[tenant] = await self.keyring.current_keys(tenant, _sealed_people(batch.events, tenant))
            except SealingError as error:
                # One key that does not open must not fail the others: each event reads its own.
                log.warning("a person key of the batch does not open, reading them one by one", error=str(error))
                read[tenant] = {}
        return read[tenant]
