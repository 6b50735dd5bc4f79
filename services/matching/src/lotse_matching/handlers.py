"""Kafka: the registry's events into the read model, and partners' answers to proposals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from faststream.kafka import KafkaBroker

from lotse_contracts import (
    PARTNER_INBOUND_PATTERN,
    AcceptProposal,
    DeclineProposal,
    Envelope,
    NeedCancelled,
    NeedClosed,
    NeedOpened,
    NeedUpdated,
    OrganisationRegistered,
    OrganisationUpdated,
    TenantOnboarded,
    VolunteerAvailabilityChanged,
    VolunteerAvailabilityChangedSealed,
    VolunteerCertificateChecked,
    VolunteerCertificateCheckRevoked,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerProfileUpdatedFullySealed,
    VolunteerProfileUpdatedSealed,
    VolunteerRegistered,
    VolunteerRegisteredFullySealed,
    VolunteerRegisteredSealed,
    VolunteerWithdrawn,
    tenant_of_partner_topic,
)
from lotse_contracts.base import EventData
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.envelope import PARTNER_SOURCE_PREFIX
from lotse_contracts.events.matching import AnswerChannel
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.topics import NEEDS, ORGANISATIONS, TENANTS, VOLUNTEERS
from lotse_matching.domain import Outcome
from lotse_matching.service import Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Transaction
from lotse_runtime.audit import SYSTEM, Actor, act_as, partner_on_kafka
from lotse_runtime.consumer import Delivery, Dispatch, HandlerTable, RejectEvent, RetryPolicy, subscribe_events
from lotse_runtime.sealed import Keyring, NoKeyring, SealedSource, subscribe_person_keys, unsealing

log = structlog.get_logger("lotse.matching")
APPLIED = (Outcome.ACCEPTED, Outcome.DECLINED, Outcome.DUPLICATE)
REGISTRY_TOPICS = (TENANTS.name, ORGANISATIONS.name, VOLUNTEERS.name, NEEDS.name)
E = TypeVar("E", bound=EventData)


def subscribe(broker: KafkaBroker, matching: Matching, settings: MatchingSettings, keyring: Keyring) -> None:
    # An update may overtake the registration on another partition or after a replay: retry briefly.
    patience = RetryPolicy(
        attempts=settings.unknown_retry_attempts,
        first_backoff_seconds=settings.unknown_retry_backoff_seconds,
        max_backoff_seconds=max(2.0, settings.unknown_retry_backoff_seconds),
    )
    subscribe_person_keys(broker, keyring, consumer=settings.person_keys_consumer_group)
    subscribe_events(
        broker,
        registry_handlers(matching, keyring),
        consumer=settings.consumer_group,
        topics=REGISTRY_TOPICS,
        retry=patience,
    )
    subscribe_events(
        broker, partner_handlers(matching), consumer=settings.partner_consumer_group, pattern=PARTNER_INBOUND_PATTERN
    )


def registry_handlers(matching: Matching, keyring: SealedSource = NoKeyring()) -> Dispatch:
    """Each registry event into the read model, once (events matching has no use for are only
    recorded in the inbox). Sealed volunteer events are opened with the volunteer's key; one of
    an erased volunteer (key destroyed) records the erasure, so that their later events change
    nothing rather than wait for a registration that never opens (the erasure follows or came before)."""

    def applying(
        change: Callable[[Envelope[E], Transaction], Awaitable[None]],
    ) -> Callable[[Envelope[E], Delivery], Awaitable[None]]:
        async def handle(event: Envelope[E], delivery: Delivery) -> None:
            act_as(Actor(SYSTEM.subject, (), f"event {event.type}"))  # the audit trail's actor, as in the registry
            await matching.apply(event, change)

        return handle

    return Dispatch(
        {
            TenantOnboarded: applying(matching.tenant_onboarded),
            OrganisationRegistered: applying(matching.organisation_changed),
            OrganisationUpdated: applying(matching.organisation_changed),
            VolunteerRegistered: applying(matching.volunteer_registered),
            VolunteerProfileUpdated: applying(matching.volunteer_profile_updated),
            VolunteerRegisteredSealed: unsealing(
                keyring, applying(matching.volunteer_registered), applying(matching.volunteer_key_destroyed)
            ),
            VolunteerProfileUpdatedSealed: unsealing(
                keyring, applying(matching.volunteer_profile_updated), applying(matching.volunteer_key_destroyed)
            ),
            VolunteerRegisteredFullySealed: unsealing(
                keyring, applying(matching.volunteer_registered), applying(matching.volunteer_key_destroyed)
            ),
            VolunteerProfileUpdatedFullySealed: unsealing(
                keyring, applying(matching.volunteer_profile_updated), applying(matching.volunteer_key_destroyed)
            ),
            VolunteerAvailabilityChanged: applying(matching.volunteer_availability_changed),
            VolunteerAvailabilityChangedSealed: unsealing(
                keyring, applying(matching.volunteer_availability_changed), applying(matching.volunteer_key_destroyed)
            ),
            VolunteerCertificateChecked: applying(matching.volunteer_certificates_checked),
            VolunteerCertificateCheckRevoked: applying(matching.volunteer_certificates_checked),
            VolunteerWithdrawn: applying(matching.volunteer_withdrawn),
            VolunteerErased: applying(matching.volunteer_erased),
            NeedOpened: applying(matching.need_opened),
            NeedUpdated: applying(matching.need_updated),
            NeedCancelled: applying(matching.need_cancelled),
            NeedClosed: applying(matching.need_closed),
        },
        unhandled=applying(matching.nothing_to_change),
    )


def partner_handlers(matching: Matching) -> HandlerTable:
    """Partners' answers to proposals; need and volunteer commands are the registry's (passed over)."""

    async def accept(event: Envelope[AcceptProposal], delivery: Delivery) -> None:
        await answer(matching, event, delivery, "accept", None)

    async def decline(event: Envelope[DeclineProposal], delivery: Delivery) -> None:
        await answer(matching, event, delivery, "decline", event.data.reason)

    return {AcceptProposal: accept, DeclineProposal: decline}


async def answer(
    matching: Matching,
    event: Envelope[AcceptProposal] | Envelope[DeclineProposal],
    delivery: Delivery,
    choice: str,
    reason: DeclineReason | None,
) -> None:
    topic_tenant = tenant_of_partner_topic(delivery.topic)
    if topic_tenant != event.tenant:
        raise RejectEvent(
            DeadLetterReason.TENANT_MISMATCH, f"event of tenant {event.tenant!r} on the topic of {topic_tenant!r}"
        )
    # The audit trail's actor, as in the registry: the topic, and the system as the event names it.
    system = event.source.removeprefix(f"{PARTNER_SOURCE_PREFIX}{event.tenant}/")
    act_as(partner_on_kafka(delivery.topic, system, event.type))
    data = event.data
    outcome = await matching.answer(
        event.tenant,
        str(data.proposal_id),
        choice,
        AnswerChannel.PARTNER,
        volunteer_id=str(data.volunteer_id),
        need_id=str(data.need_id),
        reason=reason,
        cause=event,
    )
    if outcome is Outcome.NOT_FOUND:
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, "no such proposal for this volunteer and need")
    if outcome not in APPLIED:
        # Not an error of the message (already answered, staffed, expired, limit): nothing changes.
        log.info("partner answer changed nothing", tenant=event.tenant, event_id=str(event.id), outcome=outcome.value)
