"""One running service under test, the same record for every service.

``serving`` runs a service's app in process with its lifespan (its consumers, relay and workers
on the real broker and database) and yields a ``RunningService``: the app, an HTTP client on it,
its settings, the tenant prefix it serves, its database and a producer to publish events to it.
A service's test support subclasses the record only for what is its own (its readers, its
tokens) and calls ``serving`` with its app.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, to_bytes, topic_for
from lotse_devstack import Stack, TopicSpec, ensure_topics

Document = dict[str, Any]
READY_SECONDS = 60.0


class OwnSettings(Protocol):
    """What every service's settings say that the record needs: the database the service owns."""

    @property
    def database(self) -> str: ...


S = TypeVar("S", bound=OwnSettings)
R = TypeVar("R", bound="RunningService[Any]")


def own_settings(stack: Stack, service: str, name: str) -> dict[str, Any]:
    """The settings every service under test starts from: the test stack's broker and database,
    and a database and consumer group of its own (``<service>_<name>``, ``<service>-<name>``).
    The person keys too: a group shared with an earlier module would start after the keys that
    module kept in its own database, and every sealed event of those volunteers would wait for
    a key that never comes (ignored by services that read no keys)."""
    return {
        "kafka_bootstrap": stack.kafka_bootstrap,
        "mongo_url": stack.mongo_url,
        "database": f"{service}_{name}",
        "consumer_group": f"{service}-{name}",
        "person_keys_consumer_group": f"{service}-keys-{name}",
    }


@dataclass
class RunningService(Generic[S]):
    app: FastAPI
    http: httpx.AsyncClient
    settings: S
    prefix: str  # the slugs of the tenants this service under test is given start with it
    bootstrap: str
    mongo: AsyncMongoClient[Document]
    producer: AIOKafkaProducer
    _tenants: Iterator[int] = field(default_factory=lambda: itertools.count(1), kw_only=True, repr=False)

    @property
    def database(self) -> AsyncDatabase[Document]:
        """The service's own database (read and changed by the tests behind its back)."""
        return self.mongo[self.settings.database]

    def new_tenant(self) -> str:
        """A tenant slug no other test uses, of this service's prefix."""
        return f"{self.prefix}-{next(self._tenants)}"

    async def publish(self, *events: Envelope[Any], topic: str | None = None) -> None:
        """Publish events as their producers would: on their topic (or ``topic``), by their key."""
        for event in events:
            await self.producer.send_and_wait(
                topic or topic_for(event.type, event.tenant), to_bytes(event), key=event.key
            )


@asynccontextmanager
async def serving(
    record: type[R],
    stack: Stack,
    app: FastAPI,
    settings: Any,
    prefix: str,
    own_topics: Sequence[TopicSpec] = (),
    **extra: Any,
) -> AsyncIterator[R]:
    """``app`` running with its lifespan, as a ``record`` (``RunningService`` or a service's
    subclass, which ``extra`` completes), once it says it is ready; the service's database is
    dropped afterwards. ``own_topics``: topics of this service under test alone, created first."""
    await ensure_topics(stack.kafka_bootstrap, list(own_topics))
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            name = app.title.lower().replace(" ", "-")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as http:
                # Matching, for one, is ready once its consumer group has given it its tenants.
                await wait_until_ready(http)
                yield record(
                    app=app,
                    http=http,
                    settings=settings,
                    prefix=prefix,
                    bootstrap=stack.kafka_bootstrap,
                    mongo=mongo,
                    producer=producer,
                    **extra,
                )
    finally:
        await producer.stop()
        await mongo.drop_database(settings.database)
        await mongo.close()


async def wait_until_ready(http: httpx.AsyncClient, timeout: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while (answer := await http.get("/ready")).status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready within {timeout} s: {answer.text}")
        await asyncio.sleep(0.05)
