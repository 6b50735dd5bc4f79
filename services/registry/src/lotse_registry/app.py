"""The registry application: HTTP API, partner and outcome consumers, outbox relay, and the
timer of the certificate expiry notices, and the retention job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lotse_contracts.topics import PROPOSALS
from lotse_registry.api import install_domain_errors, router
from lotse_registry.handlers import outcome_handlers, partner_handlers
from lotse_registry.places import Geocoder
from lotse_registry.reminders import ExpiryNotices
from lotse_registry.retention import retention_job
from lotse_registry.settings import RegistrySettings
from lotse_registry.store import Store, ensure_indexes, scrub_erased_outbox
from lotse_runtime.connections import ServiceConnections, service_app
from lotse_runtime.consumer import subscribe_events
from lotse_runtime.destinations import Resolver, system_resolver
from lotse_runtime.http_guards import PublicRateLimit
from lotse_runtime.sealed import in_the_background, key_encryption_key, rewrapping

SERVICE = "lotse-registry"


def create_app(settings: RegistrySettings | None = None, *, resolver: Resolver = system_resolver) -> FastAPI:
    """``resolver`` turns the geocoder's host name into addresses (tests make names resolve anywhere)."""
    settings = settings or RegistrySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connections = ServiceConnections(settings, SERVICE)
        database = connections.client[settings.database]
        await ensure_indexes(database)
        await scrub_erased_outbox(database)  # an erasure may have been cut short by a crash
        broker = connections.broker
        relay = connections.relay(database, "registry", poll_interval=settings.relay_poll_seconds)
        kek = key_encryption_key(settings.key_encryption_key, settings.previous_key_encryption_keys)
        registry = Store(connections.client, database, wake=relay.wake, key_encryption_key=kek)
        app.state.registry, app.state.relay, app.state.connections = registry, relay, connections
        app.state.pipelines = {}
        if settings.geocoder_url:
            app.state.geocoder = Geocoder(
                settings.geocoder_url,
                settings.env,
                resolver,
                timeout=settings.geocoder_timeout_seconds,
                max_bytes=settings.geocoder_max_response_bytes,
            )
        if settings.run_consumers:
            partner_group = f"{settings.consumer_group}.partner"
            outcome_group = f"{settings.consumer_group}.outcomes"
            app.state.pipelines["partner"] = subscribe_events(
                broker,
                partner_handlers(registry, partner_group),
                consumer=partner_group,
                pattern=settings.partner_topic_pattern,
            )
            app.state.pipelines["outcomes"] = subscribe_events(
                broker, outcome_handlers(registry, outcome_group), consumer=outcome_group, topics=[PROPOSALS.name]
            )
        await broker.start()
        if settings.run_relay:
            relay.start()
        app.state.notices = ExpiryNotices(registry, settings.notice_interval_seconds)
        timer = asyncio.create_task(app.state.notices.run(), name="registry-notices") if settings.run_timer else None
        app.state.retention = retention_job(registry, settings)
        if settings.run_retention:
            app.state.retention.start()
        try:
            async with (
                rewrapping(kek, registry.rewrap_person_keys, "registry"),
                in_the_background(registry.issue_missing_person_keys, "registry: keys for volunteers without one"),
            ):
                yield
        finally:
            if timer is not None:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            await app.state.retention.stop()
            if app.state.geocoder is not None:
                await app.state.geocoder.close()
            await connections.stop(relay)

    app = service_app(
        settings,
        lifespan,
        title="Lotse registry",
        version="1.0.0",
        summary="Tenants, organisations, volunteers and needs of the municipalities on Lotse",
        routers=[router],
    )
    app.state.geocoder = None
    # Its own allowance beside the public routes': each search sends an address to the outside geocoder.
    app.state.geocoder_rate_limit = PublicRateLimit(settings.geocoder_rate_limit)
    install_domain_errors(app)
    return app
