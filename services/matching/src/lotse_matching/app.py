"""The matching service's FastAPI app: the lifespan wires database, broker, relay, timer
and the retention job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from lotse_matching.api import router
from lotse_matching.handlers import subscribe
from lotse_matching.retention import retention_job
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_runtime.connections import ServiceConnections, service_app
from lotse_runtime.http_guards import PublicRateLimit
from lotse_runtime.sealed import Keyring, key_encryption_key, rewrapping

SERVICE = "lotse-matching"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connections = ServiceConnections(settings, SERVICE)
        store = Store(connections.client[settings.database])
        await store.ensure_indexes()
        relay = connections.relay(store.database, "matching")
        # make_broker refreshes topic metadata often enough that a tenant onboarded later has its
        # partner topic consumed by the pattern subscription within seconds.
        kek = key_encryption_key(settings.key_encryption_key, settings.previous_key_encryption_keys)
        keyring = Keyring(store.database, kek)
        await keyring.ensure_indexes()
        await keyring.check_stored_keys()
        app.state.keyring = keyring  # /ready says when the person keys do not open
        # The keyring opens the volunteers' sealed events and seals the proposals' fit.
        matching = Matching(settings, connections.client, store, wake=relay.wake, person_keys=keyring)
        await matching.load()
        subscribe(connections.broker, matching, settings, keyring)
        app.state.matching, app.state.connections = matching, connections
        app.state.store = store  # reads no use case needs (the subject-access export)
        await connections.broker.start()
        relay.start()
        timer = asyncio.create_task(matching.run_timer(), name="matching-timer")
        app.state.retention = retention_job(store, settings)
        if settings.run_retention:
            app.state.retention.start()
        try:
            async with rewrapping(kek, keyring.rewrap_stored, "matching"):
                yield
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            await app.state.retention.stop()
            await connections.stop(relay)

    app = service_app(settings, lifespan, title="Lotse matching", version="1", routers=[router])
    app.state.commitment_rate_limit = PublicRateLimit(settings.commitment_rate_limit)
    return app
