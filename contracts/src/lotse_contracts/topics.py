"""The topic catalogue: every Kafka topic, what it carries and who uses it.

Every record is keyed `tenant:aggregate_id` (see `message_key`); the
aggregate is the envelope subject. Matching keys all its events by the need,
so one need's staffing stays in order on one partition.

Retention follows data protection: topics with personal data (volunteers,
needs, partner commands, dead letters) age out after days, because services
keep their own read models and erasure must reach everywhere; tenants and
organisations carry their full state in every event and are compacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.events.partner import RegisterVolunteer
from lotse_contracts.events.values import TENANT_PATTERN


class Service(StrEnum):
    REGISTRY = "registry"
    MATCHING = "matching"
    NOTIFICATIONS = "notifications"
    PARTNER = "partner"


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


class Topic(BaseModel):
    """One Kafka topic (or, for `{tenant}` names, a template of one per tenant)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    key: str
    partitions: int
    retention: timedelta | None  # None: kept forever (compacted topics)
    cleanup_policy: CleanupPolicy
    event_types: tuple[str, ...]
    producers: tuple[Service, ...]
    consumers: tuple[Service, ...]
    # For consumers that read only some of the topic's types (by consumer name).
    consumed_types: dict[Service, tuple[str, ...]] = {}
    # Types the topic still names (its writers may send them) but every reader refuses, with why
    # (``{tenant}`` for the topic's tenant): dead-lettered with their data redacted, never copied.
    refused_types: dict[str, str] = {}
    # Compaction timing of a compacted topic, where the broker's defaults (a week's segments, a
    # day's tombstones) would keep superseded or deleted records too long; None: the default.
    segment: timedelta | None = None
    min_compaction_lag: timedelta | None = None
    # The longest a record may stay uncompacted: the cleaner takes the segment then, however few
    # of its records are superseded (otherwise it waits for ``min_cleanable_dirty_ratio``).
    max_compaction_lag: timedelta | None = None
    min_cleanable_dirty_ratio: float | None = None
    delete_retention: timedelta | None = None
    # Carries events of other topics as they were published there (their home, where their
    # writers, readers and compatibility are judged), for one service's own use.
    forwarded: bool = False

    def __hash__(self) -> int:
        # consumed_types is a dict, so the generated frozen-model hash would fail.
        return hash(self.name)

    @property
    def retention_ms(self) -> int:
        """Kafka `retention.ms`; -1 means forever."""
        return -1 if self.retention is None else int(self.retention.total_seconds() * 1000)

    @property
    def configs(self) -> dict[str, str]:
        """The topic's Kafka configuration as the broker and Strimzi take it."""
        configs = {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy.value}
        for name, value in (
            ("segment.ms", self.segment),
            ("min.compaction.lag.ms", self.min_compaction_lag),
            ("max.compaction.lag.ms", self.max_compaction_lag),
            ("delete.retention.ms", self.delete_retention),
        ):
            if value is not None:
                configs[name] = str(int(value.total_seconds() * 1000))
        if self.min_cleanable_dirty_ratio is not None:
            configs["min.cleanable.dirty.ratio"] = str(self.min_cleanable_dirty_ratio)
        return configs

    @property
    def is_template(self) -> bool:
        return "{tenant}" in self.name

    def types_consumed_by(self, service: Service) -> tuple[str, ...]:
        if service not in self.consumers:
            return ()
        consumed = self.consumed_types.get(service, self.event_types)
        return tuple(event_type for event_type in consumed if event_type not in self.refused_types)

    @property
    def accepted_types(self) -> tuple[str, ...]:
        """What its writers may send and have processed: every type but the refused ones."""
        return tuple(event_type for event_type in self.event_types if event_type not in self.refused_types)

    def for_tenant(self, tenant: str) -> Topic:
        """The concrete topic of one tenant from a template."""
        if not re.fullmatch(TENANT_PATTERN, tenant):
            raise ValueError(f"not a tenant slug: {tenant!r}")
        return self.model_copy(update={"name": self.name.format(tenant=tenant)})


def _types(prefix: str) -> tuple[str, ...]:
    return tuple(name for name in EVENT_TYPES if name.startswith(prefix))


KEY_DESCRIPTION = "`<tenant>:<aggregate id>` (UTF-8), the aggregate id being the envelope subject"
PERSONAL_DATA_RETENTION = timedelta(days=14)
DEAD_LETTER_RETENTION = timedelta(days=14)

TENANTS = Topic(
    name="lotse.registry.tenants.v1",
    description="Municipalities onboarded, with their settings.",
    key="`<tenant>:<tenant>`",
    partitions=1,
    retention=None,
    cleanup_policy=CleanupPolicy.COMPACT,
    event_types=_types("de.lotse.registry.tenant."),
    producers=(Service.REGISTRY,),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS),
)
ORGANISATIONS = Topic(
    name="lotse.registry.organisations.v1",
    description="Coordination offices, initiatives and round tables, full state per event.",
    key="`<tenant>:<organisation_id>`",
    partitions=3,
    retention=None,
    cleanup_policy=CleanupPolicy.COMPACT,
    event_types=_types("de.lotse.registry.organisation."),
    producers=(Service.REGISTRY,),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS),
)
VOLUNTEERS = Topic(
    name="lotse.registry.volunteers.v1",
    description="Volunteer lifecycle: registration, profile, availability, withdrawal, erasure.",
    key="`<tenant>:<volunteer_id>`",
    partitions=6,
    retention=PERSONAL_DATA_RETENTION,
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=_types("de.lotse.registry.volunteer."),
    producers=(Service.REGISTRY,),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS),
)
PERSON_KEYS = Topic(
    name="lotse.registry.person-keys.v1",
    description=(
        "Each volunteer's data key, wrapped with the platform's key-encryption key; it opens the sealed "
        "personal fields of the volunteer's events. Erasure writes a tombstone (no value), and "
        "compaction removes the key within hours (crypto-shredding)."
    ),
    key="`<tenant>:<volunteer_id>`, the key of the volunteer's own events",
    partitions=3,
    retention=None,
    cleanup_policy=CleanupPolicy.COMPACT,
    event_types=_types("de.lotse.registry.person_key."),
    producers=(Service.REGISTRY,),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS),
    # Segments roll hourly so that an erased key's records become compactable soon. The cleaner
    # compacts a log only once enough of it is superseded (``min.cleanable.dirty.ratio``, 0.5 by
    # default): one erasure among thousands of live keys would never get there, so a low ratio,
    # and a maximum lag that makes a segment due an hour after it rolled whatever its ratio. The
    # tombstone itself goes an hour after compaction has removed what it deletes.
    segment=timedelta(hours=1),
    min_compaction_lag=timedelta(0),
    max_compaction_lag=timedelta(hours=1),
    min_cleanable_dirty_ratio=0.01,
    delete_retention=timedelta(hours=1),
)
NEEDS = Topic(
    name="lotse.registry.needs.v1",
    description="Need lifecycle: opened, updated, cancelled, closed.",
    key="`<tenant>:<need_id>`",
    partitions=6,
    retention=PERSONAL_DATA_RETENTION,
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=_types("de.lotse.registry.need."),
    producers=(Service.REGISTRY,),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS),
)
PROPOSALS = Topic(
    name="lotse.matching.proposals.v1",
    description="Everything about staffing a need: proposals, answers, staffed and unstaffed.",
    key="`<tenant>:<need_id>`",
    partitions=6,
    retention=timedelta(days=30),
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=_types("de.lotse.matching."),
    producers=(Service.MATCHING,),
    consumers=(Service.REGISTRY, Service.NOTIFICATIONS),
)
DELIVERIES = Topic(
    name="lotse.notifications.deliveries.v1",
    description="Outcome of each notification delivery (no addresses).",
    key="`<tenant>:<delivery_id>`",
    partitions=3,
    retention=timedelta(days=30),
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=_types("de.lotse.notifications."),
    producers=(Service.NOTIFICATIONS,),
    consumers=(),
)
# Why a partner's volunteer registration is refused on Kafka (issue 18): erasure must reach every
# copy, and Lotse can seal what it publishes but not what partners write in plaintext.
PERSONAL_DATA_OVER_HTTPS_ONLY = (
    "personal data is accepted from partner systems over HTTPS only: "
    "POST /tenants/{tenant}/partner/volunteers/register; "
    "a Kafka topic is a log Lotse cannot erase a person from"
)

PARTNER_INBOUND = Topic(
    name="lotse.partner.{tenant}.inbound.v1",
    description=(
        "Commands of one municipality's partner systems. Each tenant has its own topic and "
        "credentials; the tenant in the topic must equal the tenant in the event. Volunteer "
        "registrations are refused here (" + PERSONAL_DATA_OVER_HTTPS_ONLY + "): they are "
        "dead-lettered with their data reduced to its field names."
    ),
    key="`<tenant>:<external_ref>` for need and volunteer commands, `<tenant>:<proposal_id>` for answers",
    partitions=3,
    retention=timedelta(days=7),
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=_types("de.lotse.partner."),
    producers=(Service.PARTNER,),
    consumers=(Service.REGISTRY, Service.MATCHING),
    consumed_types={
        Service.REGISTRY: _types("de.lotse.partner.need."),
        Service.MATCHING: _types("de.lotse.partner.proposal."),
    },
    refused_types={RegisterVolunteer.event_type: PERSONAL_DATA_OVER_HTTPS_ONLY},
)

# Matching's own topic (issue 19): what a tenant's matching applies, keyed by the tenant alone, so
# that one partition, and so one replica of matching, holds all of a tenant's work in order.
MATCHING_WORK = Topic(
    name="lotse.matching.work.v1",
    description=(
        "Matching's work, one tenant per partition: the registry's events and partners' answers to "
        "proposals as they were published, forwarded by whichever replica read them to the replica "
        "that owns the tenant (the consumer group's assignment decides). Volunteer events stay sealed."
    ),
    key="`<tenant>` (UTF-8)",
    partitions=12,
    retention=PERSONAL_DATA_RETENTION,
    cleanup_policy=CleanupPolicy.DELETE,
    event_types=(
        *TENANTS.event_types,
        *ORGANISATIONS.event_types,
        *VOLUNTEERS.event_types,
        *NEEDS.event_types,
        *_types("de.lotse.partner.proposal."),
    ),
    producers=(Service.MATCHING,),
    consumers=(Service.MATCHING,),
    forwarded=True,
)

TOPICS: tuple[Topic, ...] = (
    TENANTS,
    ORGANISATIONS,
    VOLUNTEERS,
    PERSON_KEYS,
    NEEDS,
    PROPOSALS,
    DELIVERIES,
    MATCHING_WORK,
)
ALL_TOPICS: tuple[Topic, ...] = (*TOPICS, PARTNER_INBOUND)

_PARTNER_NAME = re.compile(r"^lotse\.partner\.(?P<tenant>[a-z][a-z0-9-]{1,39})\.inbound\.v1$")
# For a Kafka pattern subscription; anchored, so the `.dlq` topics do not match.
PARTNER_INBOUND_PATTERN = r"^lotse\.partner\.[a-z][a-z0-9-]{1,39}\.inbound\.v1$"


def partner_inbound_topic(tenant: str) -> str:
    """The inbound topic of one tenant's partner systems."""
    return PARTNER_INBOUND.for_tenant(tenant).name


def tenant_of_partner_topic(topic: str) -> str | None:
    """The tenant whose partner inbound topic this is, or None for any other topic."""
    match = _PARTNER_NAME.match(topic)
    return match["tenant"] if match else None


def refusal(topic: str, event_type: str) -> str | None:
    """Why every reader of the concrete ``topic`` refuses ``event_type``; None if it is not refused."""
    tenant = tenant_of_partner_topic(topic)
    entry = PARTNER_INBOUND if tenant is not None else next((t for t in TOPICS if t.name == topic), None)
    why = entry.refused_types.get(event_type) if entry is not None else None
    return why.format(tenant=tenant) if why is not None and tenant is not None else why


def dead_letter_topic(topic: str) -> str:
    """Where a consumer of `topic` puts what it cannot process."""
    return f"{topic}.dlq"


def topic_for(event_type: str, tenant: str) -> str:
    """The concrete topic an event of this type is published to."""
    for topic in ALL_TOPICS:
        if event_type in topic.event_types and not topic.forwarded:
            return topic.for_tenant(tenant).name if topic.is_template else topic.name
    raise KeyError(f"no topic carries {event_type!r}")


def topics_for_tenants(tenants: Iterable[str]) -> list[Topic]:
    """Every concrete topic to create on a broker: static ones, each tenant's inbound, and the DLQs."""
    concrete = list(TOPICS) + [PARTNER_INBOUND.for_tenant(tenant) for tenant in sorted(set(tenants))]
    return concrete + [dead_letter_of(topic) for topic in concrete if topic.consumers]


def dead_letter_of(topic: Topic) -> Topic:
    """The dead-letter topic of a consumed topic, as a catalogue entry."""
    return Topic(
        name=dead_letter_topic(topic.name),
        description=(
            f"Records of {topic.name} that a consumer could not process; original bytes and key"
            + (" (a refused type's data reduced to its field names)." if topic.refused_types else ".")
        ),
        key="the original record's key, unchanged",
        partitions=1,
        retention=DEAD_LETTER_RETENTION,
        cleanup_policy=CleanupPolicy.DELETE,
        event_types=(),
        producers=topic.consumers,
        consumers=(),
    )
