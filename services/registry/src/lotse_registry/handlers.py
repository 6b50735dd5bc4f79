"""The registry's Kafka handlers: partner commands from every tenant's inbound topic (the rules
are ``partner``'s, shared with HTTP), and matching's outcomes.

A volunteer's registration is refused on the inbound topic (over HTTPS only, see the topic
catalogue's ``refused_types``): dead-lettered without its personal data.

Outcomes back in: matching's events show each need's staffing and each volunteer's engagements.

Matching numbers its events per need (the envelope version); the registry keeps the last
version it applied per need and ignores anything older, and the inbox ignores repeats.
Staffing is matching's fact, not a registry change, so it publishes no registry event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from lotse_contracts import (
    AcceptProposal,
    CancelNeed,
    DeclineProposal,
    Envelope,
    NeedStaffed,
    NeedUnstaffed,
    ProposalAccepted,
    ReportNeed,
    UpdateNeed,
    VolunteerPickedNeed,
    VolunteerSteppedBack,
    tenant_of_partner_topic,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.topics import refusal
from lotse_registry.domain import DomainError, NeedStatus, VolunteerStatus
from lotse_registry.partner import PartnerCommand, apply_command, partner_system
from lotse_registry.store import (
    NEEDS,
    VOLUNTEERS,
    Document,
    Store,
    TenantScope,
    TransactionScope,
    in_tenant,
)
from lotse_runtime.audit import SYSTEM, Actor, act_as, partner_on_kafka
from lotse_runtime.consumer import Delivery, Dispatch, HandlerTable, RejectEvent, ignore

log = structlog.get_logger("lotse.registry.outcomes")

Outcome = NeedStaffed | NeedUnstaffed | ProposalAccepted | VolunteerPickedNeed | VolunteerSteppedBack
E = TypeVar("E", bound=Outcome)


def outcome_handlers(registry: Store, consumer: str) -> HandlerTable:
    """The outcomes the registry shows; proposals, declines and expiries are matching's and
    notifications' business (not in the table: passed over)."""

    def applying(
        apply: Callable[[TenantScope, Envelope[E], Document], Awaitable[None]],
    ) -> Callable[[Envelope[E], Delivery], Awaitable[None]]:
        async def handle(event: Envelope[E], delivery: Delivery) -> None:
            act_as(Actor(SYSTEM.subject, (), f"event {event.type}"))  # the audit trail's actor

            async def work(scope: TransactionScope) -> None:
                need = await _need_of(scope, event)
                if need is not None:
                    await apply(scope, event, need)

            await registry.unit_of_work.run_once(consumer, event, in_tenant(event.tenant, work))

        return handle

    return {
        NeedStaffed: applying(need_staffed),
        NeedUnstaffed: applying(need_unstaffed),
        ProposalAccepted: applying(volunteer_committed),
        VolunteerPickedNeed: applying(volunteer_committed),
        VolunteerSteppedBack: applying(volunteer_stepped_back),
    }


async def _need_of(scope: TenantScope, event: Envelope[E]) -> Document | None:
    """The need the outcome is about, unless the outcome is not news for it."""
    need = await scope.get(NEEDS, str(event.data.need_id))
    if need is None:
        # Not a need of this registry (or of a tenant it does not hold): nothing to show.
        log.info("outcome for an unknown need ignored", tenant=scope.tenant, event_type=event.type)
        return None
    if event.version <= need.get("staffing_version", 0):
        log.info("older outcome ignored", tenant=scope.tenant, event_type=event.type, version=event.version)
        return None
    return need


async def need_staffed(scope: TenantScope, event: Envelope[NeedStaffed], need: Document) -> None:
    listed = [str(volunteer) for volunteer in event.data.volunteer_ids]
    erased = await _erased(scope, listed)
    committed = [volunteer for volunteer in listed if volunteer not in erased]
    for volunteer_id in committed:
        await _engagement(scope, volunteer_id, need["_id"], add=True)
    changes: dict[str, Any] = {"unstaffed": False, "unstaffed_reason": None}
    if need["status"] == NeedStatus.OPEN:
        changes["status"] = NeedStatus.STAFFED.value
    await _record(scope, event.version, need, committed, changes)


async def need_unstaffed(scope: TenantScope, event: Envelope[NeedUnstaffed], need: Document) -> None:
    changes: dict[str, Any] = {}
    if need["status"] not in {NeedStatus.CLOSED, NeedStatus.CANCELLED}:
        changes.update(unstaffed=True, unstaffed_reason=event.data.reason.value)
    await _record(scope, event.version, need, list(need.get("committed", [])), changes)


async def volunteer_committed(
    scope: TenantScope, event: Envelope[ProposalAccepted | VolunteerPickedNeed], need: Document
) -> None:
    committed = list(need.get("committed", []))
    volunteer_id = str(event.data.volunteer_id)
    if await _engagement(scope, volunteer_id, need["_id"], add=True) and volunteer_id not in committed:
        committed.append(volunteer_id)
    await _record(scope, event.version, need, committed, {})


async def volunteer_stepped_back(scope: TenantScope, event: Envelope[VolunteerSteppedBack], need: Document) -> None:
    volunteer_id = str(event.data.volunteer_id)
    committed = [other for other in need.get("committed", []) if other != volunteer_id]
    await _engagement(scope, volunteer_id, need["_id"], add=False)
    changes: dict[str, Any] = {}
    if need["status"] == NeedStatus.STAFFED and len(committed) < need["volunteers_needed"]:
        changes["status"] = NeedStatus.OPEN.value
    await _record(scope, event.version, need, committed, changes)


async def _record(
    scope: TenantScope, version: int, need: Document, committed: list[str], changes: dict[str, Any]
) -> None:
    """The need's staffing as of the outcome of ``version`` (older outcomes are ignored)."""
    update = {"staffing_version": version, **changes, "committed": committed}
    await scope.update(NEEDS, need["_id"], {"$set": update})


async def _engagement(scope: TenantScope, volunteer_id: str, need_id: str, *, add: bool) -> bool:
    """Record or remove the engagement; False for a volunteer the registry does not (or no
    longer, after erasure) hold, whose id then stays out of the need as well. One conditional
    update, no read first."""
    operator = "$addToSet" if add else "$pull"
    not_erased = {"status": {"$ne": VolunteerStatus.ERASED.value}}
    return await scope.update(VOLUNTEERS, volunteer_id, {operator: {"engagements": need_id}}, where=not_erased)


async def _erased(scope: TenantScope, volunteer_ids: list[str]) -> set[str]:
    query = {"_id": {"$in": volunteer_ids}, "status": VolunteerStatus.ERASED.value}
    erased = await scope.find(VOLUNTEERS, query, projection={"_id": 1})
    return {document["_id"] for document in erased}


# --- partner commands -----------------------------------------------------------------------


def partner_handlers(registry: Store, consumer: str) -> Dispatch:
    """The Kafka handlers of the partner inbound topics: every event must be of the topic's tenant;
    proposal answers are matching's, a volunteer's registration (personal data, over HTTPS only)
    and anything else that is not a partner command are refused."""

    async def command(event: Envelope[PartnerCommand], delivery: Delivery) -> None:
        system = partner_system(event.source, event.tenant)
        act_as(partner_on_kafka(delivery.topic, system, event.type))  # the audit trail's actor

        async def work(scope: TransactionScope) -> None:
            if await scope.tenant_settings() is None:
                raise RejectEvent(DeadLetterReason.NOT_ALLOWED, f"tenant {scope.tenant} is not onboarded")
            try:
                await apply_command(scope, system, event.data, channel="kafka", sequence=event.version, cause=event)
            except DomainError as error:
                refused = error.status in {403, 409}
                reason = DeadLetterReason.NOT_ALLOWED if refused else DeadLetterReason.INVALID_DATA
                where = f"{error.field}: " if error.field else ""
                raise RejectEvent(reason, f"{error.title}: {where}{error.detail}") from error

        await registry.unit_of_work.run_once(consumer, event, in_tenant(event.tenant, work, registry.known))

    return Dispatch(
        {
            ReportNeed: command,
            UpdateNeed: command,
            CancelNeed: command,
            AcceptProposal: ignore,  # matching consumes proposal answers
            DeclineProposal: ignore,
        },
        guard=accepted_on_the_topic,
        unhandled=not_a_partner_command,
    )


def accepted_on_the_topic(event: Envelope[Any], delivery: Delivery) -> None:
    """Refuse a type the topic refuses (its dead letter without the data: on another tenant's topic
    as well), then an event of another tenant than the topic's."""
    why = refusal(delivery.topic, event.type)
    if why is not None:
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, f"{event.type} refused: {why}", redact=True)
    of_the_topics_tenant(event, delivery)


def of_the_topics_tenant(event: Envelope[Any], delivery: Delivery) -> None:
    topic_tenant = tenant_of_partner_topic(delivery.topic)
    if topic_tenant != event.tenant:
        raise RejectEvent(
            DeadLetterReason.TENANT_MISMATCH,
            f"event of tenant {event.tenant!r} on the partner topic of {topic_tenant!r}",
        )


async def not_a_partner_command(event: Envelope[Any], delivery: Delivery) -> None:
    raise RejectEvent(DeadLetterReason.NOT_ALLOWED, f"{event.type} is not a partner command")
