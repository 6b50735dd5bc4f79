"""The registry application: HTTP API, partner and outcome consumers, outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from lotse_contracts import CONTENT_TYPE
from lotse_contracts.topics import PROPOSALS
from lotse_registry.api import install_domain_errors, router
from lotse_registry.outcomes import outcome_handler
from lotse_registry.partner import partner_handler
from lotse_registry.settings import RegistrySettings
from lotse_registry.store import Registry, ensure_indexes, scrub_erased_outbox
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.consumer import stop_consuming, subscribe_events
from lotse_runtime.health import health_router
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import connect
from lotse_runtime.outbox import OutboxRelay
from lotse_runtime.problems import install_problem_handlers

SERVICE = "lotse-registry"


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = connect(settings.mongo_url, SERVICE)
        database = client[settings.database]
        await ensure_indexes(database)
        await scrub_erased_outbox(database)  # an erasure may have been cut short by a crash
        broker = make_broker(settings, client_id=SERVICE)

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            await broker.publish(value, topic=topic, key=key, headers={"content-type": CONTENT_TYPE})

        relay = OutboxRelay(database, publish, name="registry", poll_interval=settings.relay_poll_seconds)
        registry = Registry(client, database, on_commit=relay.wake)
        app.state.registry, app.state.relay, app.state.broker = registry, relay, broker
        app.state.pipelines = {}
        if settings.run_consumers:
            partner_group = f"{settings.consumer_group}.partner"
            outcome_group = f"{settings.consumer_group}.outcomes"
            app.state.pipelines["partner"] = subscribe_events(
                broker,
                partner_handler(registry, partner_group),
                consumer=partner_group,
                pattern=settings.partner_topic_pattern,
            )
            app.state.pipelines["outcomes"] = subscribe_events(
                broker, outcome_handler(registry, outcome_group), consumer=outcome_group, topics=[PROPOSALS.name]
            )
        await broker.start()
        if settings.run_relay:
            relay.start()
        try:
            yield
        finally:
            # Stop taking messages; the message in hand and the relay's batch finish within the grace.
            await asyncio.gather(stop_consuming(broker), relay.stop(grace_seconds=settings.shutdown_grace_seconds))
            await broker.stop()
            await client.close()

    app = FastAPI(
        title="Lotse registry",
        version="1.0.0",
        summary="Tenants, organisations, volunteers and needs of the municipalities on Lotse",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth_config())
    install_problem_handlers(app)
    install_domain_errors(app)

    async def database_ready() -> bool:
        registry: Registry = app.state.registry
        await registry.database.command("ping")
        return True

    async def broker_ready() -> bool:
        broker: Any = app.state.broker
        return bool(await broker.ping(timeout=2.0))

    app.include_router(health_router({"mongodb": database_ready, "kafka": broker_ready}))
    app.include_router(router)
    return app
