"""The topic catalogue and the partner topic helpers."""

from __future__ import annotations

import re

import pytest

from lotse_contracts import (
    EVENT_TYPES,
    PARTNER_INBOUND_PATTERN,
    TOPICS,
    Service,
    dead_letter_topic,
    partner_inbound_topic,
    tenant_of_partner_topic,
    topic_for,
    topics_for_tenants,
)
from lotse_contracts.topics import ALL_TOPICS, MATCHING_WORK, PARTNER_INBOUND, PERSON_KEYS, refusal


def test_the_static_topics_are_the_published_ones() -> None:
    assert [topic.name for topic in TOPICS] == [
        "lotse.registry.tenants.v1",
        "lotse.registry.organisations.v1",
        "lotse.registry.volunteers.v1",
        "lotse.registry.person-keys.v1",
        "lotse.registry.needs.v1",
        "lotse.matching.proposals.v1",
        "lotse.notifications.deliveries.v1",
        "lotse.matching.work.v1",
    ]


def test_every_event_type_travels_on_exactly_one_topic() -> None:
    carried = [event_type for topic in ALL_TOPICS if not topic.forwarded for event_type in topic.event_types]

    assert sorted(carried) == sorted(EVENT_TYPES)


def test_matching_work_forwards_what_matching_reads_keyed_by_tenant_alone() -> None:
    homes = [topic for topic in ALL_TOPICS if not topic.forwarded and topic != PERSON_KEYS]
    read = {event_type for topic in homes for event_type in topic.types_consumed_by(Service.MATCHING)}

    assert [topic.name for topic in ALL_TOPICS if topic.forwarded] == ["lotse.matching.work.v1"]
    assert set(MATCHING_WORK.event_types) == read
    # Its events keep their home topic (who writes them, how they evolve).
    assert topic_for("de.lotse.partner.proposal.accept.v1", "musterstadt") == "lotse.partner.musterstadt.inbound.v1"
    assert topic_for("de.lotse.registry.need.opened.v1", "musterstadt") == "lotse.registry.needs.v1"


def test_the_partner_inbound_topic_is_per_tenant() -> None:
    topic = partner_inbound_topic("musterstadt")

    assert topic == "lotse.partner.musterstadt.inbound.v1"
    assert tenant_of_partner_topic(topic) == "musterstadt"
    assert re.match(PARTNER_INBOUND_PATTERN, topic)
    assert topic_for("de.lotse.partner.need.report.v1", "musterstadt") == topic


@pytest.mark.parametrize(
    "topic",
    ["lotse.partner.musterstadt.inbound.v1.dlq", "lotse.registry.needs.v1", "lotse.partner.Muster.inbound.v1"],
)
def test_other_topics_are_not_partner_inbound_topics(topic: str) -> None:
    assert tenant_of_partner_topic(topic) is None
    assert not re.match(PARTNER_INBOUND_PATTERN, topic)


def test_a_topic_name_cannot_be_smuggled_in_as_tenant() -> None:
    with pytest.raises(ValueError, match="not a tenant slug"):
        partner_inbound_topic("a.inbound.v1.b")


def test_matching_reads_only_answers_from_partners() -> None:
    assert PARTNER_INBOUND.types_consumed_by(Service.MATCHING) == (
        "de.lotse.partner.proposal.accept.v1",
        "de.lotse.partner.proposal.decline.v1",
    )
    assert "de.lotse.partner.proposal.accept.v1" not in PARTNER_INBOUND.types_consumed_by(Service.REGISTRY)


def test_volunteer_registrations_are_refused_on_the_partner_topic_and_read_by_nobody() -> None:
    """Issue 18: personal data from partners over HTTPS only; a Kafka topic is a log Lotse cannot
    erase a person from."""
    registration = "de.lotse.partner.volunteer.register.v1"

    assert PARTNER_INBOUND.types_consumed_by(Service.REGISTRY) == (
        "de.lotse.partner.need.report.v1",
        "de.lotse.partner.need.update.v1",
        "de.lotse.partner.need.cancel.v1",
    )
    assert registration in PARTNER_INBOUND.event_types and registration not in PARTNER_INBOUND.accepted_types
    assert refusal("lotse.partner.musterstadt.inbound.v1", registration) == (
        "personal data is accepted from partner systems over HTTPS only: "
        "POST /tenants/musterstadt/partner/volunteers/register; a Kafka topic is a log Lotse cannot erase a person from"
    )
    assert refusal("lotse.partner.musterstadt.inbound.v1", "de.lotse.partner.need.report.v1") is None
    assert refusal("lotse.registry.needs.v1", registration) is None


def test_topics_for_tenants_lists_every_concrete_topic_with_dead_letters() -> None:
    names = {topic.name for topic in topics_for_tenants(["musterstadt", "beispielheim", "musterstadt"])}

    assert "lotse.partner.musterstadt.inbound.v1" in names
    assert dead_letter_topic("lotse.partner.beispielheim.inbound.v1") == "lotse.partner.beispielheim.inbound.v1.dlq"
    assert "lotse.partner.beispielheim.inbound.v1.dlq" in names
    assert "lotse.matching.proposals.v1.dlq" in names
    # Nobody consumes deliveries, so nothing can be dead-lettered from there.
    assert "lotse.notifications.deliveries.v1.dlq" not in names
    assert not any("{tenant}" in name for name in names)
    # Two inbound topics, and the dead letters of the seven consumed static topics and of those two.
    assert len(names) == len(TOPICS) + 2 + 7 + 2


def test_personal_data_ages_out_and_state_topics_are_compacted() -> None:
    by_name = {topic.name: topic for topic in TOPICS}

    assert by_name["lotse.registry.volunteers.v1"].retention_ms == 14 * 24 * 3600 * 1000
    assert by_name["lotse.registry.tenants.v1"].retention_ms == -1
    assert by_name["lotse.registry.tenants.v1"].cleanup_policy == "compact"


def test_the_person_keys_topic_is_compacted_within_hours() -> None:
    """An erased volunteer's key (and its tombstone) must not stay on the broker for a week of
    segments or a day of tombstones (crypto-shredding, docs/architecture.md)."""
    configs = PERSON_KEYS.configs
    assert configs["cleanup.policy"] == "compact"
    assert int(configs["segment.ms"]) <= 3_600_000
    assert int(configs["min.compaction.lag.ms"]) == 0
    assert int(configs["delete.retention.ms"]) <= 3_600_000
    # Compacted within an hour or so of the segment rolling, however few keys were erased.
    assert int(configs["max.compaction.lag.ms"]) <= 3_600_000
    assert float(configs["min.cleanable.dirty.ratio"]) <= 0.05
