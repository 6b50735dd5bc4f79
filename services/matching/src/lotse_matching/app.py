"""The matching service's FastAPI app: the lifespan wires database, broker, relay, timer
and the retention job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import FastAPI, Request, Response

from lotse_contracts.topics import MATCHING_WORK
from lotse_matching.api import router
from lotse_matching.forwarding import RETRY_AFTER_SECONDS, ToTheOwner
from lotse_matching.handlers import subscribe
from lotse_matching.ownership import NotOwner, Ownership
from lotse_matching.retention import retention_job
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_runtime.connections import ServiceConnections, service_app
from lotse_runtime.http_guards import PublicRateLimit
from lotse_runtime.kafka import client_security
from lotse_runtime.problems import problem_response
from lotse_runtime.sealed import Keyring, key_encryption_key, rewrapping
from lotse_runtime.topics import partitions_of

SERVICE = "lotse-matching"
log = structlog.get_logger("lotse.matching")
# A forwarded request waits for the owner as a direct one would (its unit of work, under the tenant's lock).
FORWARDING_TIMEOUT = httpx.Timeout(30.0, connect=2.0, pool=5.0)
FORWARDING_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


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
        # The keyring opens the volunteers' sealed events and seals the proposals' fit. The indexes
        # are built for the tenants of the work topic's partitions once the group assigns them.
        # The owner of a tenant is computed from the catalogue's partition count, the producer
        # partitions by the topic's own: they must agree, or events would reach nobody's tenants.
        found = await partitions_of(settings.kafka_bootstrap, settings.work_topic, client_security(settings))
        if found != MATCHING_WORK.partitions:
            raise RuntimeError(
                f"topic {settings.work_topic} has {found} partitions, matching needs {MATCHING_WORK.partitions}: "
                "create it as the catalogue declares it (lotse topics sync)"
            )
        if settings.replica_url is None and settings.env != "development":
            # Other replicas reach this one there: a loopback or wildcard address reaches nobody.
            log.warning(
                "LOTSE_REPLICA_URL is not set: other replicas forward to this one's listen address",
                url=settings.own_url,
            )
        ownership = Ownership(store.database, settings.own_url)
        app.state.ownership = ownership
        # Requests about another replica's tenants go there (forwarding.ToTheOwner).
        app.state.forwarding = httpx.AsyncClient(
            timeout=FORWARDING_TIMEOUT, limits=FORWARDING_LIMITS, follow_redirects=False
        )
        matching = Matching(
            settings, connections.client, store, wake=relay.wake, person_keys=keyring, ownership=ownership
        )
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
            await app.state.forwarding.aclose()
            await connections.stop(relay)

    async def work_partitions_taken() -> bool:
        # Ready once the work topic's group has given this replica its share (maybe none) and
        # the indexes of its tenants are built.
        return bool(app.state.ownership.joined)

    app = service_app(
        settings,
        lifespan,
        title="Lotse matching",
        version="1",
        routers=[router],
        readiness={"work_partitions": work_partitions_taken},
        middleware=[ToTheOwner],
    )

    @app.exception_handler(NotOwner)
    async def moved(request: Request, error: NotOwner) -> Response:
        # The tenant's partition moved while the request was on its way (ToTheOwner sent it here).
        answer = problem_response(503, "Service unavailable", "the tenant's matching is moving to another replica")
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer

    app.state.commitment_rate_limit = PublicRateLimit(settings.commitment_rate_limit)
    return app
