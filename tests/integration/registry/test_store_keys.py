"""Each registry store seals with its own key-encryption key: one made without a key refuses to
seal, even when another store on the same database has one (the key is no global by database)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import TenantOnboarded, VolunteerRegistered
from lotse_registry import service
from lotse_registry.store import KEY_RING, Store, ensure_indexes, in_tenant
from lotse_runtime.sealed import KeyEncryptionKey, SealingError
from tests.integration.registry.support import organisation_body, tenant_body, volunteer_body


async def test_a_store_seals_with_its_own_key_and_one_without_a_key_seals_nothing(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    await ensure_indexes(database)
    kek = KeyEncryptionKey(secrets.token_urlsafe(32))
    keyed = Store(database.client, database, key_encryption_key=kek)
    keyless = Store(database.client, database)
    tenant = f"keys-{uuid.uuid4().hex[:8]}"
    settings = tenant_body(tenant)
    onboarding = TenantOnboarded.model_validate(
        {k: v for k, v in settings.items() if k in TenantOnboarded.model_fields}
    )

    async def onboard(scope: Any) -> Any:
        await service.onboard_tenant(scope, onboarding, {})
        return await service.register_organisation(scope, organisation_body())

    organisation = (await keyed.unit_of_work.run(in_tenant(tenant, onboard)))["_id"]

    def registering(volunteer_id: str) -> Any:
        body = volunteer_body(organisation)
        body["consent"] |= {"given_at": datetime.now(UTC).isoformat()}
        registration = VolunteerRegistered.model_validate({"volunteer_id": volunteer_id, **body})

        async def register(scope: Any) -> Any:
            return await service.register_volunteer(scope, volunteer_id, registration, registered_via="test")

        return in_tenant(tenant, register)

    with pytest.raises(RuntimeError, match="no key-encryption key"):
        await keyless.unit_of_work.run(registering(str(uuid.uuid4())))
    assert await database[KEY_RING].count_documents({}) == 0

    volunteer_id = str(uuid.uuid4())
    await keyed.unit_of_work.run(registering(volunteer_id))
    stored = await database[KEY_RING].find_one({"_id": volunteer_id})
    assert stored is not None
    assert len(kek.unwrap(UUID(stored["key_id"]), stored["wrapped_key"])) == 32
    with pytest.raises(SealingError):
        KeyEncryptionKey(secrets.token_urlsafe(32)).unwrap(UUID(stored["key_id"]), stored["wrapped_key"])
