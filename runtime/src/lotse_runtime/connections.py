"""What every service connects to: its MongoDB client and its Kafka broker, an outbox relay that
publishes through that broker, readiness checks on both, the order in which they stop, and the
app that serves it all (``service_app``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from starlette.types import ASGIApp

from lotse_contracts import CONTENT_TYPE
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.consumer import stop_consuming
from lotse_runtime.health import ReadinessCheck, api_document_urls, health_router, metrics_port, metrics_router
from lotse_runtime.http_guards import HttpGuardSettings, install_http_guards
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import connect
from lotse_runtime.outbox import OutboxRelay
from lotse_runtime.problems import install_problem_handlers
from lotse_runtime.sealed import Keyring
from lotse_runtime.settings import PlatformSettings


class ServiceConnections:
    """Created in a service's lifespan (never at import) and kept at ``app.state.connections``."""

    def __init__(self, settings: PlatformSettings, service: str) -> None:
        self.settings = settings
        self.client: AsyncMongoClient[dict[str, Any]] = connect(settings.mongo_url, service)
        self.broker = make_broker(settings, client_id=service)

    def relay(self, database: AsyncDatabase[dict[str, Any]], name: str, **options: Any) -> OutboxRelay:
        async def send(topic: str, key: bytes, value: bytes | None) -> Awaitable[object]:
            # Handed to the producer's buffer; the relay awaits the acknowledgements together. A
            # keyed None is a tombstone: FastStream hands it to the producer as a null value.
            headers = {"content-type": CONTENT_TYPE} if value is not None else {}
            return await self.broker.publish(value, topic=topic, key=key, headers=headers, no_confirm=True)

        return OutboxRelay(database, send, name=name, **options)

    async def stop(self, relay: OutboxRelay, *also: Awaitable[None]) -> None:
        """Stop taking messages; the message in hand, the relay's batch (and whatever else is in
        ``also``) finish within the grace; then close the broker and the database client."""
        await asyncio.gather(
            stop_consuming(self.broker), relay.stop(grace_seconds=self.settings.shutdown_grace_seconds), *also
        )
        await self.broker.stop()
        await self.client.close()


def operations_router(
    app: FastAPI, settings: PlatformSettings, readiness: Mapping[str, ReadinessCheck] | None = None
) -> APIRouter:
    """``/health`` and ``/ready``, which asks the database and the broker of the app's connections
    (not ready before its lifespan has made them), whether the person keys open with the
    service's key-encryption key, and the service's own ``readiness`` checks; ``/metrics`` on the
    API port and on a port of its own as the settings say (the latter opened and closed with the
    app's lifespan)."""

    async def database_answers() -> bool:
        connections: ServiceConnections = app.state.connections
        return bool(await connections.client.admin.command("ping"))

    async def broker_answers() -> bool:
        connections: ServiceConnections = app.state.connections
        return bool(await connections.broker.ping(timeout=2.0))

    async def person_keys_open() -> bool:
        # Services that read sealed events keep a keyring (``lotse_runtime.sealed``) in app.state.
        keyring: Keyring | None = getattr(app.state, "keyring", None)
        return keyring is None or keyring.opens_every_key()

    @asynccontextmanager
    async def serve_metrics_port(_: Any) -> AsyncIterator[None]:
        if settings.metrics_port is None:
            yield
            return
        async with metrics_port(settings.metrics_host, settings.metrics_port):
            yield

    router = APIRouter(lifespan=serve_metrics_port)
    checks = {
        "mongodb": database_answers,
        "kafka": broker_answers,
        "person_keys": person_keys_open,
        **(readiness or {}),
    }
    router.include_router(health_router(checks))
    if settings.serves_metrics_on_api_port():
        router.include_router(metrics_router())
    return router


class ServiceSettings(PlatformSettings, HttpGuardSettings):
    """What every service's settings class extends: the platform's connections and the HTTP guards."""


def service_app(
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    title: str,
    version: str,
    summary: str | None = None,
    routers: Sequence[APIRouter] = (),
    readiness: Mapping[str, ReadinessCheck] | None = None,
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
) -> FastAPI:
    """A service's FastAPI app, built the same way in every service: its settings and token verifier
    in ``app.state``, problem+json errors, the HTTP guards, ``/health``, ``/ready`` and ``/metrics``,
    then the service's own routers."""
    app = FastAPI(
        title=title,
        version=version,
        summary=summary,
        lifespan=lifespan,
        **api_document_urls(settings.serves_api_docs()),
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings.auth_config())
    install_problem_handlers(app)
    # The service's own middleware runs inside the guards (body limit, headers, access log).
    for each in middleware:
        app.add_middleware(each)
    install_http_guards(app, settings)
    app.include_router(operations_router(app, settings, readiness))
    for router in routers:
        app.include_router(router)
    return app
