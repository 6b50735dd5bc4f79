"""Registry events as the registry would publish them, a reader of the matching topics, and a
matching service to run them against (``serving``: a ``RunningService`` with that reader)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer

from lotse_contracts import (
    Envelope,
    NeedOpened,
    VolunteerRegistered,
    parse_event,
)
from lotse_contracts.base import EventData
from lotse_contracts.topics import MATCHING_WORK
from lotse_devstack import Stack, TopicSpec
from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_runtime import answer_links
from tests.support import events
from tests.support.kafka import from_beginning
from tests.support.running import RunningService, own_settings
from tests.support.running import serving as serving_app

REGISTRY = "/lotse/registry"
CENTRE = (52.52, 13.405)
KM_LAT = 1 / 111.195  # degrees of latitude per km
WEEK = [
    {"weekday": day, "start": "08:00:00", "end": "20:00:00"}
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
]
ORGANISATION = "3f2b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e01"
# Set explicitly, as an operator would; notifications signs with the same key.
ANSWER_LINK_SECRET = secrets.token_urlsafe(32)


def tenant_event(tenant: str, language: str = "de") -> Envelope[Any]:
    return events.tenant_onboarded(tenant, default_language=language, supported_languages=["de", language])


def volunteer_data(
    volunteer_id: str,
    *,
    km_north: float = 1.0,
    radius: int = 10,
    languages: tuple[tuple[str, str], ...] = (("de", "native"), ("ar", "c1")),
    skills: tuple[str, ...] = ("accompaniment",),
) -> dict[str, Any]:
    return {
        "volunteer_id": volunteer_id,
        "contact": {
            "display_name": "Maria",
            "email": "maria@example.org",
            "preferred_language": "de",
            "channels": ["email"],
        },
        "skills": list(skills),
        "languages": [{"language": code, "level": level} for code, level in languages],
        "home_area": {"point": {"lat": CENTRE[0] + km_north * KM_LAT, "lon": CENTRE[1]}},
        "travel_radius_km": radius,
        "certificates": [],
    }


def registered(tenant: str, volunteer_id: str | None = None, **profile: Any) -> Envelope[Any]:
    """A volunteer available all week, ``km_north`` of the needs' place."""
    volunteer_id = volunteer_id or str(uuid.uuid4())
    availability = {"weekly_slots": WEEK, "periods": [], "unavailable": [], "max_concurrent_engagements": 2}
    return registry_event(
        VolunteerRegistered,
        tenant,
        volunteer_id,
        1,
        {**volunteer_data(volunteer_id, **profile), "availability": availability},
    )


def registry_event(
    model: type[EventData], tenant: str, subject: str, version: int, data: dict[str, Any]
) -> Envelope[Any]:
    """The contract's example of ``model`` with ``data`` in place of its fields, as the registry publishes it."""
    return events.event(model, tenant, subject, version=version, source=REGISTRY, **data)


def need_details(
    *,
    languages: tuple[tuple[str, str], ...] = (("ar", "b2"),),
    skills: tuple[str, ...] = ("accompaniment",),
    needed: int = 1,
    schedule: dict[str, Any] | None = None,
    description: str = "Begleitung zur Ausländerbehörde",
) -> dict[str, Any]:
    return {
        "organisation_id": ORGANISATION,
        "category": "accompaniment_to_authorities",
        "description": description,
        "required_skills": list(skills),
        "languages": [{"language": code, "min_level": level} for code, level in languages],
        "place": {"point": {"lat": CENTRE[0], "lon": CENTRE[1]}, "district": "Mitte"},
        "schedule": schedule
        or {
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
            "starts_on": "2026-12-01",
        },
        "volunteers_needed": needed,
        "certificate_required": None,
    }


def opened(tenant: str, need_id: str | None = None, **details: Any) -> Envelope[Any]:
    need_id = need_id or str(uuid.uuid4())
    return registry_event(NeedOpened, tenant, need_id, 1, {"need_id": need_id, **need_details(**details)})


@dataclass(frozen=True)
class Seen:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def event(self) -> Envelope[Any]:
        return parse_event(self.value)


class TopicReader:
    """Reads topics from the beginning in the background (no consumer group, so no join wait)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.seen: list[Seen] = []
        self._task: asyncio.Task[None] | None = None
        self._exit = contextlib.AsyncExitStack()

    async def start(self) -> None:
        consumer = await self._exit.enter_async_context(from_beginning(self.bootstrap, self.topics))
        self._task = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                # A tombstone (no value) reads as empty bytes.
                self.seen.extend(Seen(r.topic, r.key, r.value or b"", dict(r.headers)) for r in batch)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._exit.aclose()

    def events(self, tenant: str, need_id: str | None = None) -> list[Envelope[Any]]:
        """Matching events of one tenant (and need), in the order of their partition."""
        prefix = f"{tenant}:{need_id or ''}".encode()
        return [
            s.event()
            for s in list(self.seen)
            if s.topic == "lotse.matching.proposals.v1" and (s.key or b"").startswith(prefix)
        ]

    def dead_letters(self, topic: str, tenant: str) -> list[Seen]:
        """The tenant's dead letters on ``topic``: keyed ``<tenant>:…`` as their topic was, or by the
        tenant alone (the work topic's)."""
        return [
            s
            for s in list(self.seen)
            if s.topic == topic and (s.key == tenant.encode() or (s.key or b"").startswith(f"{tenant}:".encode()))
        ]


def answer_path(settings: MatchingSettings, proposed: Envelope[Any]) -> str:
    """The path of the answer link notifications would mail for a MatchProposed (the choice is a
    query parameter of the request)."""
    secret = answer_links.secret_value(settings.answer_link_secret)
    data = proposed.data
    return "/answers/" + answer_links.sign(secret, str(data.proposal_id), proposed.tenant, data.expires_at)


def service_settings(stack: Stack, name: str, **overrides: Any) -> MatchingSettings:
    """A matching service under test with its own database and consumer groups."""
    values: dict[str, Any] = {
        **own_settings(stack, "matching", name),
        "partner_consumer_group": f"matching-partner-{name}",
        # A work topic and group of its own: the modules share the broker.
        "work_topic": f"{MATCHING_WORK.name}.{name}",
        "work_consumer_group": f"matching-work-{name}",
        "answer_link_secret": ANSWER_LINK_SECRET,
        "unknown_retry_backoff_seconds": 0.2,
    }
    return MatchingSettings(**{**values, **overrides})


def work_topics(settings: MatchingSettings) -> list[TopicSpec]:
    """The work topic of a matching under test, with the catalogue's partitions."""
    return [TopicSpec(settings.work_topic, MATCHING_WORK.partitions)]


@dataclass
class RunningMatching(RunningService[MatchingSettings]):
    """A matching service under test, and a reader of the topics its test reads."""

    reader: TopicReader = field(kw_only=True)

    @property
    def store(self) -> Store:
        return cast(Store, self.app.state.matching.store)


M = TypeVar("M", bound=RunningMatching)


@asynccontextmanager
async def serving(
    record: type[M], stack: Stack, settings: MatchingSettings, read: list[str], prefix: str
) -> AsyncIterator[M]:
    """The app with its consumers and relay running as a ``record`` (``RunningMatching`` or a
    test's subclass), reading the ``read`` topics from the beginning; its tenants' slugs start
    with ``prefix``. The database is dropped afterwards."""
    reader = TopicReader(stack.kafka_bootstrap, read)
    await reader.start()
    try:
        async with serving_app(
            record, stack, create_app(settings), settings, prefix, own_topics=work_topics(settings), reader=reader
        ) as running:
            yield running
    finally:
        await reader.stop()
