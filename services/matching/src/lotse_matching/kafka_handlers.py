"""Kafka: the registry's events into the read model, and partners' answers to proposals."""

from __future__ import annotations

from typing import Any

import structlog
from faststream.kafka import KafkaBroker

from lotse_contracts import (
    PARTNER_INBOUND_PATTERN,
    AcceptProposal,
    DeclineProposal,
    Envelope,
    tenant_of_partner_topic,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.events.matching import AnswerChannel
from lotse_contracts.topics import NEEDS, ORGANISATIONS, TENANTS, VOLUNTEERS
from lotse_matching.rounds import Outcome
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_runtime.consumer import Delivery, RejectEvent, RetryPolicy, subscribe_events

log = structlog.get_logger("lotse.matching")
APPLIED = (Outcome.ACCEPTED, Outcome.DECLINED, Outcome.DUPLICATE)
REGISTRY_TOPICS = (TENANTS.name, ORGANISATIONS.name, VOLUNTEERS.name, NEEDS.name)


def subscribe(broker: KafkaBroker, matching: Matching, settings: MatchingSettings) -> None:
    async def registry_event(event: Envelope[Any], delivery: Delivery) -> None:
        await matching.apply_registry_event(event)

    # An update may overtake the registration on another partition or after a replay: retry briefly.
    patience = RetryPolicy(
        attempts=settings.unknown_retry_attempts,
        first_backoff_seconds=settings.unknown_retry_backoff_seconds,
        max_backoff_seconds=max(2.0, settings.unknown_retry_backoff_seconds),
    )
    subscribe_events(broker, registry_event, consumer=settings.consumer_group, topics=REGISTRY_TOPICS, retry=patience)

    async def partner_command(event: Envelope[Any], delivery: Delivery) -> None:
        data = event.data
        if not isinstance(data, AcceptProposal | DeclineProposal):
            return  # need and volunteer commands are the registry's
        topic_tenant = tenant_of_partner_topic(delivery.topic)
        if topic_tenant != event.tenant:
            raise RejectEvent(
                DeadLetterReason.TENANT_MISMATCH, f"event of tenant {event.tenant!r} on the topic of {topic_tenant!r}"
            )
        outcome = await matching.answer(
            event.tenant,
            str(data.proposal_id),
            "accept" if isinstance(data, AcceptProposal) else "decline",
            AnswerChannel.PARTNER,
            volunteer_id=str(data.volunteer_id),
            need_id=str(data.need_id),
            reason=data.reason if isinstance(data, DeclineProposal) else None,
            cause=event,
        )
        if outcome is Outcome.NOT_FOUND:
            raise RejectEvent(DeadLetterReason.NOT_ALLOWED, "no such proposal for this volunteer and need")
        if outcome not in APPLIED:
            # Not an error of the message (already answered, staffed, expired, limit): nothing changes.
            log.info(
                "partner answer changed nothing", tenant=event.tenant, event_id=str(event.id), outcome=outcome.value
            )

    subscribe_events(broker, partner_command, consumer=settings.partner_consumer_group, pattern=PARTNER_INBOUND_PATTERN)
