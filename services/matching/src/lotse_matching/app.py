"""The matching service's FastAPI app: the lifespan wires database, broker, relay and timer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from lotse_contracts import CONTENT_TYPE
from lotse_matching import http_routes
from lotse_matching.kafka_handlers import subscribe
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.consumer import stop_consuming
from lotse_runtime.health import health_router
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import connect
from lotse_runtime.outbox import OutboxRelay
from lotse_runtime.problems import install_problem_handlers

SERVICE = "lotse-matching"


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    state: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = connect(settings.mongo_url, SERVICE)
        store = Store(client[settings.database])
        await store.ensure_indexes()
        matching = Matching(settings, client, store)
        await matching.load()
        # make_broker refreshes topic metadata often enough that a tenant onboarded later has its
        # partner topic consumed by the pattern subscription within seconds.
        broker = make_broker(settings, client_id=SERVICE)
        subscribe(broker, matching, settings)

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            await broker.publish(value, topic=topic, key=key, headers={"content-type": CONTENT_TYPE})

        relay = OutboxRelay(store.database, publish, name="matching")
        matching.committed = relay.wake
        app.state.matching = matching
        state.update(client=client, broker=broker)
        await broker.start()
        relay.start()
        timer = asyncio.create_task(matching.run_timer(), name="matching-timer")
        try:
            yield
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            # Stop taking messages; the message in hand and the relay's batch finish within the grace.
            await asyncio.gather(stop_consuming(broker), relay.stop(grace_seconds=settings.shutdown_grace_seconds))
            await broker.stop()
            await client.close()

    async def database_ready() -> bool:
        client = state.get("client")
        return client is not None and bool(await client.admin.command("ping"))  # type: ignore[attr-defined]

    async def broker_ready() -> bool:
        broker = state.get("broker")
        return broker is not None and bool(await broker.ping(timeout=2.0))  # type: ignore[attr-defined]

    app = FastAPI(title="Lotse matching", version="1", lifespan=lifespan)
    app.state.token_verifier = TokenVerifier(settings.auth_config())
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(health_router({"mongodb": database_ready, "kafka": broker_ready}))
    app.include_router(http_routes.router)
    return app
