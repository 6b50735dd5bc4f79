"""The matching service's FastAPI app: the lifespan wires database, broker, relay and timer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from lotse_matching.api import router
from lotse_matching.handlers import subscribe
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.connections import ServiceConnections, operations_router
from lotse_runtime.health import api_document_urls
from lotse_runtime.http_guards import install_http_guards
from lotse_runtime.problems import install_problem_handlers

SERVICE = "lotse-matching"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connections = ServiceConnections(settings, SERVICE)
        store = Store(connections.client[settings.database])
        await store.ensure_indexes()
        relay = connections.relay(store.database, "matching")
        matching = Matching(settings, connections.client, store, wake=relay.wake)
        await matching.load()
        # make_broker refreshes topic metadata often enough that a tenant onboarded later has its
        # partner topic consumed by the pattern subscription within seconds.
        subscribe(connections.broker, matching, settings)
        app.state.matching, app.state.connections = matching, connections
        await connections.broker.start()
        relay.start()
        timer = asyncio.create_task(matching.run_timer(), name="matching-timer")
        try:
            yield
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            await connections.stop(relay)

    app = FastAPI(
        title="Lotse matching",
        version="1",
        lifespan=lifespan,
        **api_document_urls(settings.serves_api_docs()),
    )
    app.state.token_verifier = TokenVerifier(settings.auth_config())
    app.state.settings = settings
    install_problem_handlers(app)
    install_http_guards(app, settings)
    app.include_router(operations_router(app, settings))
    app.include_router(router)
    return app
