"""Kafka: the registry's events into the read model, and partners' answers to proposals.

Two steps (issue 19): whichever replica reads a registry event or a partner's answer forwards it
unchanged to ``lotse.matching.work.v1``, keyed by its tenant (``forwarding``); the replica that
owns the tenant's partition there applies it (``work_handlers``), with the tenant's index at hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream.kafka import KafkaBroker

from lotse_contracts import (
    CONTENT_TYPE,
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
    partner_inbound_topic,
    tenant_of_partner_topic,
)
from lotse_contracts.base import EventData
from lotse_contracts.codec import to_bytes
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
from lotse_runtime.consumer import (
    Delivery,
    Dispatch,
    EventHandler,
    HandlerTable,
    RejectEvent,
    RetryPolicy,
    subscribe_events,
)
from lotse_runtime.sealed import Keyring, NoKeyring, SealedSource, subscribe_person_keys, unsealing

log = structlog.get_logger("lotse.matching")
APPLIED = (Outcome.ACCEPTED, Outcome.DECLINED, Outcome.DUPLICATE)
REGISTRY_TOPICS = (TENANTS.name, ORGANISATIONS.name, VOLUNTEERS.name, NEEDS.name)
NO_SUCH_PROPOSAL = "no such proposal for this volunteer and need"
E = TypeVar("E", bound=EventData)


def subscribe(broker: KafkaBroker, matching: Matching, settings: MatchingSettings, keyring: Keyring) -> None:
    # An update may overtake the registration on another partition or after a replay: retry briefly.
    patience = RetryPolicy(
        attempts=settings.unknown_retry_attempts,
        first_backoff_seconds=settings.unknown_retry_backoff_seconds,
        max_backoff_seconds=max(2.0, settings.unknown_retry_backoff_seconds),
    )
    subscribe_person_keys(broker, keyring, consumer=settings.person_keys_consumer_group)
    forward = forwarding(broker, settings.work_topic)
    subscribe_events(broker, Dispatch({}, unhandled=forward), consumer=settings.consumer_group, topics=REGISTRY_TOPICS)
    subscribe_events(
        broker,
        {AcceptProposal: checked_answer(matching, forward), DeclineProposal: checked_answer(matching, forward)},
        consumer=settings.partner_consumer_group,
        pattern=PARTNER_INBOUND_PATTERN,
    )
    subscribe_events(
        broker,
        work_handlers(matching, keyring),
        consumer=settings.work_consumer_group,
        topics=(settings.work_topic,),
        retry=patience,
        listener=WorkPartitions(matching),
    )


def forwarding(broker: KafkaBroker, topic: str) -> EventHandler:
    """Forward an event to the replica that owns its tenant: onto the work topic, keyed by the
    tenant, and acknowledged before the offset is committed. At least once: the owner's inbox
    drops what a crash made it forward twice."""

    async def forward(event: Envelope[Any], delivery: Delivery) -> None:
        await broker.publish(
            to_bytes(event), topic=topic, key=event.tenant.encode(), headers={"content-type": CONTENT_TYPE}
        )

    return forward


def checked_answer(matching: Matching, forward: EventHandler) -> EventHandler:
    """A partner's answer is forwarded only from its own tenant's topic and only if it names one of
    the tenant's proposals, so that the partner finds a refused answer in its own dead letters."""

    async def check(event: Envelope[AcceptProposal] | Envelope[DeclineProposal], delivery: Delivery) -> None:
        topic_tenant = tenant_of_partner_topic(delivery.topic)
        if topic_tenant != event.tenant:
            raise RejectEvent(
                DeadLetterReason.TENANT_MISMATCH, f"event of tenant {event.tenant!r} on the topic of {topic_tenant!r}"
            )
        data = event.data
        if not await matching.answerable(
            event.tenant, str(data.proposal_id), str(data.volunteer_id), str(data.need_id)
        ):
            raise RejectEvent(DeadLetterReason.NOT_ALLOWED, NO_SUCH_PROPOSAL)
        await forward(event, delivery)

    return check


class WorkPartitions(ConsumerRebalanceListener):
    """The tenants of the work topic's assigned partitions are this replica's (``ownership``)."""

    def __init__(self, matching: Matching) -> None:
        self.matching = matching

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.matching.give_up_partitions({each.partition for each in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.matching.take_partitions({each.partition for each in assigned})


def work_handlers(matching: Matching, keyring: SealedSource = NoKeyring()) -> Dispatch:
    """What the tenant's owner applies: the registry's events and the partners' answers."""
    registry = registry_handlers(matching, keyring)
    return Dispatch({**registry.handlers, **partner_handlers(matching)}, unhandled=registry.unhandled)


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
    # The audit trail's actor, as in the registry: the partner's topic (which the forwarding
    # replica checked against the event's tenant), and the system as the event names it.
    system = event.source.removeprefix(f"{PARTNER_SOURCE_PREFIX}{event.tenant}/")
    act_as(partner_on_kafka(partner_inbound_topic(event.tenant), system, event.type))
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
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, NO_SUCH_PROPOSAL)
    if outcome not in APPLIED:
        # Not an error of the message (already answered, staffed, expired, limit): nothing changes.
        log.info("partner answer changed nothing", tenant=event.tenant, event_id=str(event.id), outcome=outcome.value)
