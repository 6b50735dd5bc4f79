"""The notifications service: FastAPI app whose lifespan runs the consumer, the outbox relay and
the delivery worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lotse_contracts.topics import NEEDS, ORGANISATIONS, PROPOSALS, TENANTS, VOLUNTEERS
from lotse_notifications.handlers import EventHandler
from lotse_notifications.routes import router
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store
from lotse_notifications.worker import DeliveryWorker
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.consumer import stop_consuming, subscribe_events
from lotse_runtime.health import health_router
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import connect
from lotse_runtime.outbox import OutboxRelay
from lotse_runtime.problems import install_problem_handlers

INBOX_CONSUMER = "notifications"
CONSUMED_TOPICS = [TENANTS.name, ORGANISATIONS.name, VOLUNTEERS.name, NEEDS.name, PROPOSALS.name]


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = connect(settings.mongo_url, "lotse-notifications")
        store = Store(client[settings.database])
        await store.ensure_indexes()
        broker = make_broker(settings, client_id="lotse-notifications")

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            await broker.publish(value, topic=topic, key=key, headers={"content-type": "application/cloudevents+json"})

        relay = OutboxRelay(store.db, publish, name="notifications")

        def wake() -> None:
            relay.wake()
            worker.wake()

        worker = DeliveryWorker(client, store, settings, on_commit=wake)
        handler = EventHandler(
            client, store, settings.consumer_group, on_commit=wake, tenant_pattern=settings.tenant_pattern
        )
        app.state.pipeline = subscribe_events(broker, handler, consumer=settings.consumer_group, topics=CONSUMED_TOPICS)
        app.state.client, app.state.store, app.state.worker, app.state.wake = client, store, worker, wake
        app.state.broker = broker
        await broker.start()
        relay.start()
        worker.start()
        try:
            yield
        finally:
            # Stop taking messages and deliveries; what is in hand finishes within the grace.
            await asyncio.gather(
                stop_consuming(broker), worker.stop(), relay.stop(grace_seconds=settings.shutdown_grace_seconds)
            )
            await broker.stop()
            await client.close()

    app = FastAPI(
        title="Lotse notifications",
        summary="Tells each person what they need, in their language, by email, webhook and in-app inbox",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth_config())
    install_problem_handlers(app)

    async def database_answers() -> bool:
        await app.state.client.admin.command("ping")
        return True

    async def broker_answers() -> bool:
        return bool(await app.state.broker.ping(timeout=2.0))

    app.include_router(health_router({"mongodb": database_answers, "kafka": broker_answers}))
    app.include_router(router())
    return app
