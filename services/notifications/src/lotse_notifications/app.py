"""The notifications service: FastAPI app whose lifespan runs the consumer, the outbox relay,
the delivery worker and the retention job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lotse_contracts.topics import NEEDS, ORGANISATIONS, PROPOSALS, TENANTS, VOLUNTEERS
from lotse_notifications.api import router
from lotse_notifications.handlers import event_handlers
from lotse_notifications.retention import retention_job
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store
from lotse_notifications.worker import DeliveryWorker
from lotse_runtime.connections import ServiceConnections, service_app
from lotse_runtime.consumer import subscribe_events
from lotse_runtime.destinations import Resolver, system_resolver
from lotse_runtime.sealed import Keyring, in_the_background, key_encryption_key, rewrapping, subscribe_person_keys
from lotse_runtime.unit_of_work import UnitOfWork

INBOX_CONSUMER = "notifications"
CONSUMED_TOPICS = [TENANTS.name, ORGANISATIONS.name, VOLUNTEERS.name, NEEDS.name, PROPOSALS.name]


def create_app(settings: NotificationSettings | None = None, *, resolver: Resolver = system_resolver) -> FastAPI:
    """``resolver`` turns webhook host names into addresses (tests make names resolve anywhere)."""
    settings = settings or NotificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connections = ServiceConnections(settings, "lotse-notifications")
        client = connections.client
        store = Store(client[settings.database])
        await store.ensure_indexes()
        relay = connections.relay(store.db, "notifications")
        # The relay wakes after a commit that appended events, the worker after one that queued deliveries.
        unit_of_work = UnitOfWork(client, store.db, wake=relay.wake)
        worker = DeliveryWorker(unit_of_work, store, settings, resolver=resolver)
        kek = key_encryption_key(settings.key_encryption_key, settings.previous_key_encryption_keys)
        keyring = Keyring(store.db, kek)
        await keyring.ensure_indexes()
        await keyring.check_stored_keys()
        app.state.keyring = keyring  # /ready says when the person keys do not open
        handlers = event_handlers(
            unit_of_work,
            store,
            settings.consumer_group,
            queued=worker.wake,
            tenant_pattern=settings.tenant_pattern,
            sms_gateway=settings.sms_gateway,
            keyring=keyring,
        )
        subscribe_person_keys(connections.broker, keyring, consumer=settings.person_keys_consumer_group)
        app.state.pipeline = subscribe_events(
            connections.broker, handlers, consumer=settings.consumer_group, topics=CONSUMED_TOPICS
        )
        app.state.client, app.state.store, app.state.worker = client, store, worker
        app.state.unit_of_work = unit_of_work  # the questions' routes change state with their deliveries
        app.state.connections = connections
        await connections.broker.start()
        relay.start()
        worker.start()
        app.state.retention = retention_job(store, settings)
        if settings.run_retention:
            app.state.retention.start()
        try:
            async with (
                rewrapping(kek, keyring.rewrap_stored, "notifications"),
                in_the_background(store.date_undated_ended_needs, "notifications: dating needs that ended before"),
            ):
                yield
        finally:
            # Deliveries stop too: what is being sent finishes within the grace.
            await app.state.retention.stop()
            await connections.stop(relay, worker.stop())

    app = service_app(
        settings,
        lifespan,
        title="Lotse notifications",
        version="0.1.0",
        summary="Tells each person what they need, in their language, by email, webhook and in-app inbox",
        routers=[router()],
    )
    app.state.resolver = resolver
    return app
